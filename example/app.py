"""Titanium's ti.urlsession example app (``ios/example/app.js``), ported to Python.

Run it as is: ``python example/app.py``. It starts the package's local server on 127.0.0.1
(the original downloaded photos from the internet), presses the "Start Download" button three
times, and prints the app's list view (pending downloads, downloaded files) as it changes.

What changed from the JavaScript, line for line:

* ``require('com.appcelerator.urlSession')`` → ``import urlsession_module as URLSession``;
* ``Ti.App.iOS.addEventListener(...)`` → ``URLSession.addEventListener(...)``: the module is where
  every task's events bubble to, as Ti.App.iOS was;
* ``Ti.App.Properties.getObject('pendingDL')`` → a ``pending`` dict keyed by task identifier;
* ``Ti.API.info`` → ``print``; the list view → :func:`refresh_section` printing its two sections;
* ``Titanium.Filesystem.applicationDataDirectory`` → a folder under the package's state
  directory; ``result.write(event.data)`` → ``event.data.move(filename)`` (a Blob);
* iOS relaunching the app (``backgroundfetch``, ``endBackgroundHandler``, local notifications)
  has no Python counterpart: those handlers log what they would do.
"""

from __future__ import annotations

import json
import time
from typing import Any

import urlsession_module as URLSession
from urlsession_module.testing import LocalServer

# -- app state (app.js: var bgHandlerID, sessionConfig, session, ...) ------------------------------

bg_handler_id: str | None = None
session_config: URLSession.SessionConfiguration | None = None
session: URLSession.Session | None = None
dl_progress = 0.0
dl_started = False
is_bg_transfer_mode = False
ui_ready = False
bg_session_created = False

# Ti.App.Properties.getObject('pendingDL'): task identifier → URL, for the "Pending" section.
pending: dict[str, str] = {}

# Titanium.Filesystem.applicationDataDirectory
application_data_directory = URLSession.state_dir() / "example-app"
application_data_directory.mkdir(exist_ok=True)

server = LocalServer()  # stands in for the photo hosts the original downloaded from


def info(text: str) -> None:
    """``Ti.API.info``."""
    print(f"[INFO] {text}", flush=True)


def stringify(event: URLSession.Event) -> str:
    """``JSON.stringify(event)``: the payload fields (a Blob shows as its path)."""
    fields = {k: event[k] for k in event if k not in ("source", "bubbles", "cancelBubble")}
    return json.dumps(fields, default=lambda blob: f"<Blob {blob.nativePath}>")


# -- handlers (app.js: Ti.App.iOS.addEventListener(...)) --------------------------------------------


def on_backgroundtransfer(event: URLSession.Event) -> None:
    global bg_handler_id, session_config, session, is_bg_transfer_mode, bg_session_created
    info("Backgroundtransfer Event Fired !!! :: " + stringify(event))
    if not bg_session_created and session is None:
        # When this function is called always create a session variable so that events are
        # propagated to it.
        bg_handler_id = event.handlerId
        session_config = URLSession.createSessionConfiguration({"identifier": "com.test.test2"})
        session = URLSession.createSession({"configuration": session_config})
        is_bg_transfer_mode = True
        bg_session_created = True


def on_downloadprogress(event: URLSession.Event) -> None:
    global dl_started, dl_progress
    if not dl_started:
        dl_started = True
    dl_progress = event.totalBytesWritten / event.totalBytesExpectedToWrite * 100
    info(f"Completed : {dl_progress:.0f}% of task number :{event.taskIdentifier}")


def on_downloadcompleted(event: URLSession.Event) -> None:
    info("downloadcompleted Event Fired !!! :: " + stringify(event))
    # JS: new Date().getTime(); nanoseconds here, so two downloads never pick one name.
    filename = application_data_directory / f"downloadedfile{time.time_ns()}.png"
    event.data.move(filename)


def on_sessioncompleted(event: URLSession.Event) -> None:
    info("sessioncompleted Event Fired !!! :: " + stringify(event))
    pending.pop(event.taskIdentifier, None)
    if ui_ready:
        refresh_section()
    # This is where you check for errors, e.g. a download that failed to connect:
    #   {"errorCode": -1004, "taskIdentifier": "...", "success": false,
    #    "message": "Could not connect to the server."}
    info(f"Download task :{event.taskIdentifier} completed, success: {event.success}")


def on_sessioneventscompleted(event: URLSession.Event) -> None:
    # This is where you call your backgroundTransfer endBackgroundHandler
    info("sessioneventscompleted Event Fired !!! :: " + stringify(event))
    if is_bg_transfer_mode and not pending:
        info(f"(Ti.App.iOS.endBackgroundHandler({bg_handler_id!r}) would be called here)")


URLSession.addEventListener("backgroundtransfer", on_backgroundtransfer)
URLSession.addEventListener("downloadprogress", on_downloadprogress)
URLSession.addEventListener("downloadcompleted", on_downloadcompleted)
URLSession.addEventListener("sessioncompleted", on_sessioncompleted)
URLSession.addEventListener("sessioneventscompleted", on_sessioneventscompleted)

# -- the "UI" ------------------------------------------------------------------------------------


def get_pending_data() -> list[dict[str, Any]]:
    data = [
        {"properties": {"title": f"Downloading with Task ID {task_id} ...", "color": "orange"}}
        for task_id in pending
    ]
    if not data:
        data.append({"properties": {"title": "No pending Downloads"}})
    return data


def get_data_from_data_directory() -> list[dict[str, Any]]:
    return [
        {"properties": {"title": path.name}}
        for path in sorted(application_data_directory.glob("downloadedfile*.png"))
    ]


def refresh_section() -> None:
    """``listView.setSections(refreshSection())``: print the two sections."""
    for header, items in (
        ("Pending Downloads", get_pending_data()),
        ("Downloaded Files", get_data_from_data_directory()),
    ):
        print(f"  == {header} ==")
        for item in items:
            print(f"     {item['properties']['title']}")


def trigger_download(size: int) -> None:
    """The "Start Download" button's click handler."""
    global session_config, session, bg_session_created
    # app.js made a new session on every click; Apple asks for one session per background
    # identifier, so the port makes it on the first click only.
    if session is None:
        session_config = URLSession.createSessionConfiguration({"identifier": "com.test.test2"})
        session = URLSession.createSession({"configuration": session_config})
    bg_session_created = True
    if session is not None:
        task_identifier = session.downloadTask(
            {"url": server.url(f"/bytes/{size}?type=image/png&rate=4000000")}
        )
        pending[task_identifier] = f"/bytes/{size}"
        refresh_section()


def main() -> int:
    global ui_ready
    with server:
        ui_ready = True  # window.addEventListener('open', ...)
        refresh_section()
        for size in (1_000_000, 2_000_000, 3_000_000):  # three clicks on "Start Download"
            trigger_download(size)
        assert session is not None
        if not session.waitForTasks(timeout=60):
            info("downloads did not finish within 60 s")
            return 1
        session.finishTasksAndInvalidate()
        session.waitForInvalidation(10)
    return 0 if not pending else 1


if __name__ == "__main__":
    raise SystemExit(main())
