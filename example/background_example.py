"""A background download that finishes after the script exits, collected by a second run.

::

    python example/background_example.py start     # starts a download, exits at once
    urlsession status                              # (optional) watch it go on
    python example/background_example.py collect   # receives what happened meanwhile

``start`` makes a *background* session (a configuration with an ``identifier``): its tasks run
in the package's transfer process, not in this script, so they go on when the script exits.
``collect`` creates a session with the same identifier; the transfer process then delivers
``backgroundtransfer`` (on the module), every event the script missed (``downloadcompleted``,
``sessioncompleted``), progress of tasks still running, and ``sessioneventscompleted``.

So that no internet is needed, ``start`` also launches the package's local server as a
detached process (it serves a throttled download of a few seconds, and stops when ``collect``
is done, or after ten minutes). What the two runs share — the task identifiers and the server
— is kept in a small JSON file in the state directory, as a Titanium app would keep it in
``Ti.App.Properties``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import urlsession_module as URLSession
from urlsession_module.testing import content_sha256

IDENTIFIER = "com.example.background-download"
SIZE = 12_000_000
# bytes per second: the download takes about six seconds, long enough to see it outlive this
# script (and for `urlsession status` to find it running) on a loaded machine too
RATE = 2_000_000
SERVER_LIFETIME = 600.0
PROPERTIES = URLSession.state_dir() / "background-example.json"  # Ti.App.Properties
DOWNLOADS = URLSession.state_dir() / "background-example-downloads"


def load() -> dict[str, Any]:
    try:
        return dict(json.loads(PROPERTIES.read_text()))
    except FileNotFoundError:
        return {"pending": [], "server": None}


def save(props: dict[str, Any]) -> None:
    PROPERTIES.write_text(json.dumps(props))


def start_server() -> dict[str, Any]:
    """The local server in its own process, which outlives this script (bounded lifetime)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in our process group: Ctrl-C here does not stop it
        text=True,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    proc.stdout.close()
    return {"url": base_url, "pid": proc.pid}


def serve() -> int:
    """(internal) Run the local server until SIGTERM or ``SERVER_LIFETIME`` seconds."""
    from urlsession_module.testing import LocalServer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalServer() as srv:
        print(srv.base_url, flush=True)
        sys.stdout.close()
        stop.wait(SERVER_LIFETIME)
    return 0


def start() -> int:
    props = load()
    if props["server"] is None:
        props["server"] = start_server()
    cfg = URLSession.createSessionConfiguration({"identifier": IDENTIFIER})
    session = URLSession.createSession({"configuration": cfg})
    url = f"{props['server']['url']}/bytes/{SIZE}?rate={RATE}"
    task_id = session.downloadTask({"url": url})
    props["pending"].append(task_id)
    save(props)
    print(f"started background download {task_id} ({SIZE} bytes at {RATE} B/s)")
    print("this script exits now; the transfer goes on. Later:")
    print("    python example/background_example.py collect")
    # No waiting, no invalidation: leaving is the point. The transfer process has the task.
    return 0


def collect(timeout: float = 60.0) -> int:
    props = load()
    if not props["pending"]:
        print("nothing pending: run `python example/background_example.py start` first")
        return 1
    DOWNLOADS.mkdir(exist_ok=True)
    drained = threading.Event()
    results: dict[str, bool] = {}

    def on_backgroundtransfer(e: URLSession.Event) -> None:
        print(f"backgroundtransfer: session {e.sessionIdentifier} has events waiting")

    def on_progress(e: URLSession.Event) -> None:
        percent = e.totalBytesWritten / e.totalBytesExpectedToWrite * 100
        print(f"downloadprogress {e.taskIdentifier}: {percent:.0f}% (still running)")

    def on_downloaded(e: URLSession.Event) -> None:
        target = DOWNLOADS / f"{e.taskIdentifier}.bin"
        e.data.move(target)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        ok = digest == content_sha256(SIZE)
        print(
            f"downloadcompleted {e.taskIdentifier}: saved {target} (sha256 {'OK' if ok else 'BAD'})"
        )
        results[e.taskIdentifier] = ok

    def on_completed(e: URLSession.Event) -> None:
        print(f"sessioncompleted {e.taskIdentifier}: success={e.success} HTTP {e.statusCode}")
        if e.taskIdentifier in props["pending"]:
            props["pending"].remove(e.taskIdentifier)
            save(props)
        results[e.taskIdentifier] = results.get(e.taskIdentifier, False) and e.success
        if not props["pending"]:
            drained.set()

    def on_events_completed(e: URLSession.Event) -> None:
        print(f"sessioneventscompleted: {e.sessionIdentifier}")

    URLSession.addEventListener("backgroundtransfer", on_backgroundtransfer)
    URLSession.addEventListener("downloadprogress", on_progress)
    URLSession.addEventListener("downloadcompleted", on_downloaded)
    URLSession.addEventListener("sessioncompleted", on_completed)
    URLSession.addEventListener("sessioneventscompleted", on_events_completed)

    cfg = URLSession.createSessionConfiguration({"identifier": IDENTIFIER})
    session = URLSession.createSession({"configuration": cfg})  # the replay starts here
    if not drained.wait(timeout):
        print(f"still pending after {timeout:.0f}s: {props['pending']}; run collect again later")
        return 1
    session.finishTasksAndInvalidate()
    session.waitForInvalidation(10)
    if props["server"] is not None:  # the server `start` launched, by its process id
        with contextlib.suppress(ProcessLookupError):
            os.kill(props["server"]["pid"], signal.SIGTERM)
    PROPERTIES.unlink()
    ok = bool(results) and all(results.values())
    print("all downloads collected" if ok else "some downloads failed")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    commands = {"start": start, "collect": collect, "serve": serve}
    if len(argv) != 1 or argv[0] not in commands:
        print(__doc__)
        print("usage: python example/background_example.py start|collect")
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
