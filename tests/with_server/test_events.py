"""Event order and payloads of real transfers (SPEC §5), and how events bubble."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

import urlsession_module as URLSession
from urlsession_module.testing import LocalServer, content_bytes, content_sha256

from ._util import (
    ANSWERED_FIELDS,
    DOWNLOADCOMPLETED_FIELDS,
    DOWNLOADPROGRESS_FIELDS,
    UPLOADPROGRESS_FIELDS,
    echoed,
    fields,
    file_sha256,
    sha256,
)

N = 600_000  # three 256 KiB blocks: several progress events

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def test_download_events_in_order_with_exact_fields(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A download reports progress, then downloadcompleted with a Blob, then sessioncompleted."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}"))
    assert isinstance(tid, str)
    done = rec.completed(tid)
    events = rec.of(tid)
    names = [e.type for e in events]
    assert names[-2:] == ["downloadcompleted", "sessioncompleted"]
    assert set(names[:-2]) == {"downloadprogress"} and len(names) >= 4

    progress = rec.of(tid, "downloadprogress")
    total = 0
    for e in progress:
        assert fields(e) == DOWNLOADPROGRESS_FIELDS
        assert e.taskIdentifier == e["taskIdentifier"] == tid
        assert e.bytesWritten > 0
        total += e.bytesWritten
        assert e.totalBytesWritten == total
        assert e.totalBytesExpectedToWrite == N
    assert total == N

    (completed,) = rec.of(tid, "downloadcompleted")
    assert fields(completed) == DOWNLOADCOMPLETED_FIELDS
    blob = completed.data
    assert isinstance(blob, URLSession.Blob)
    assert blob.length == N
    assert blob.mimeType == "application/octet-stream"
    assert file_sha256(blob.nativePath) == content_sha256(N)

    assert fields(done) == ANSWERED_FIELDS  # no responseText for a download
    assert (done.success, done.errorCode, done.message, done.statusCode) == (True, 0, "", 200)


def test_data_task_events_with_exact_fields(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A data task with a body reports uploadprogress, then one sessioncompleted with the text."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/echo"), data={"hello": "wörld"})
    done = rec.completed(tid)
    body = json.dumps({"hello": "wörld"}).encode()
    names = [e.type for e in rec.of(tid)]
    assert names[-1] == "sessioncompleted" and names.count("sessioncompleted") == 1
    assert set(names[:-1]) == {"uploadprogress"}
    for e in rec.of(tid, "uploadprogress"):
        assert fields(e) == UPLOADPROGRESS_FIELDS
        assert e.totalBytesExpectedToSend == len(body)
    assert rec.of(tid, "uploadprogress")[-1].totalBytesSent == len(body)

    assert fields(done) == ANSWERED_FIELDS | {"responseText"}
    assert (done.success, done.errorCode, done.message, done.statusCode) == (True, 0, "", 200)
    echo = echoed(done)
    assert echo["method"] == "POST"  # Titanium's default method
    assert echo["body_sha256"] == sha256(body)


def test_upload_task_events_and_server_digest(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """An upload of bytes reports cumulative uploadprogress; the server got every byte."""
    session = make_session()
    rec = recorder(session)
    payload = content_bytes(N)
    tid = session.uploadTask(url=server.url("/upload"), data=payload)
    done = rec.completed(tid)
    progress = rec.of(tid, "uploadprogress")
    assert len(progress) >= 3
    assert [e.totalBytesSent for e in progress] == sorted(e.totalBytesSent for e in progress)
    assert sum(e.bytesSent for e in progress) == N == progress[-1].totalBytesSent
    assert all(e.totalBytesExpectedToSend == N for e in progress)
    assert rec.of(tid)[-1] is done
    reply = echoed(done)
    assert reply == {
        "method": "POST",
        "body_length": N,
        "body_sha256": content_sha256(N),
        "content_type": "application/octet-stream",
    }


def test_background_configuration_adds_session_identifier(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Every task event of a background-typed session carries its sessionIdentifier."""
    session = make_session(identifier="com.example.events.bg")
    rec = recorder(session)
    down = session.downloadTask(url=server.url(f"/bytes/{N}"))
    data = session.dataTask(url=server.url("/echo"), data=b"x" * 10)
    rec.completed(down)
    rec.completed(data)
    expected = {
        "downloadprogress": DOWNLOADPROGRESS_FIELDS,
        "downloadcompleted": DOWNLOADCOMPLETED_FIELDS,
        "uploadprogress": UPLOADPROGRESS_FIELDS,
        "sessioncompleted": ANSWERED_FIELDS,
    }
    seen = set()
    for e in rec.of(down) + rec.of(data):
        extra = (
            {"responseText"} if (e.type, e.taskIdentifier) == ("sessioncompleted", data) else set()
        )
        assert fields(e) == expected[e.type] | extra | {"sessionIdentifier"}
        assert e.sessionIdentifier == "com.example.events.bg"
        seen.add(e.type)
    assert seen == set(expected)


@pytest.mark.parametrize("kind", ["default", "ephemeral"])
def test_no_session_identifier_without_identifier(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, kind: str
) -> None:
    """Default and ephemeral sessions have no identifier, so no event carries one."""
    session = make_session(type=kind)
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/bytes/1000"))
    rec.completed(tid)
    assert rec.of(tid) and all("sessionIdentifier" not in e for e in rec.of(tid))


@pytest.mark.parametrize("status", [404, 500, 201, 204])
def test_http_status_is_not_a_transfer_error(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, status: int
) -> None:
    """An HTTP error status completes with success=True and that statusCode."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=server.url(f"/status/{status}"), method="GET")
    done = rec.completed(tid)
    assert (done.success, done.errorCode, done.message, done.statusCode) == (True, 0, "", status)
    assert done.responseText == ("" if status == 204 else f"status {status}")


def test_download_of_404_still_completes_with_status(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A download of an error page delivers the page and success=True, statusCode=404."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/status/404"))
    done = rec.completed(tid)
    assert (done.success, done.statusCode) == (True, 404)
    (completed,) = rec.of(tid, "downloadcompleted")
    assert completed.data.read() == b"status 404"


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("utf-8", "héllo wörld ✓"),
        ("iso-8859-1", "héllo wörld"),
        ("utf-16", "héllo wörld ✓"),
        ("shift_jis", "こんにちは"),
    ],
)
def test_response_text_decoded_by_charset(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    charset: str,
    text: str,
) -> None:
    """responseText is decoded with the charset the response declares."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(
        url=server.url(f"/charset?charset={charset}&text={quote(text)}"), method="GET"
    )
    assert rec.completed(tid).responseText == text


@pytest.mark.parametrize("ctype", ["text/plain", "application/octet-stream"])
def test_response_text_defaults_to_utf8(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, ctype: str
) -> None:
    """Without a charset parameter the body is decoded as UTF-8 (invalid bytes replaced)."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=server.url(f"/bytes/5000?type={quote(ctype)}"), method="GET")
    assert rec.completed(tid).responseText == content_bytes(5000).decode("utf-8", "replace")


def test_response_text_latin1_round_trips_bytes(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A latin-1 body decodes byte for byte: responseText carries the exact content."""
    session = make_session()
    rec = recorder(session)
    ctype = quote("text/plain; charset=iso-8859-1")
    tid = session.dataTask(url=server.url(f"/bytes/{N}?type={ctype}"), method="GET")
    assert rec.completed(tid).responseText.encode("latin-1") == content_bytes(N)


@pytest.mark.parametrize("framing", ["chunked=1", "nolength=1", "gzip=1"])
def test_unknown_length_reports_minus_one(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, framing: str
) -> None:
    """Chunked, close-delimited or encoded bodies report totalBytesExpectedToWrite == -1."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?{framing}"))
    done = rec.completed(tid)
    assert done.success, done.message
    progress = rec.of(tid, "downloadprogress")
    assert progress and all(e.totalBytesExpectedToWrite == -1 for e in progress)
    assert progress[-1].totalBytesWritten == N
    (completed,) = rec.of(tid, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(N)


def test_task_events_fire_on_task_then_session_then_module(
    server: LocalServer, make_session: MakeSession
) -> None:
    """Each task event reaches the Task, then the Session, then the module; source is the task."""
    session = make_session()
    seen: list[tuple[str, str, Any]] = []

    def listen(where: str) -> Callable[[Any], None]:
        return lambda e: seen.append((where, e.type, e.source))

    URLSession.addEventListener("sessioncompleted", listen("module"))
    URLSession.addEventListener("downloadcompleted", listen("module"))
    session.addEventListener("sessioncompleted", listen("session"))
    session.addEventListener("downloadcompleted", listen("session"))
    # a start date a moment ahead leaves time to listen on the Task before anything happens
    tid = session.downloadTask(url=server.url("/bytes/1000"), earliestBeginDate=time.time() + 0.3)
    task = session.getTask(tid)
    assert task is not None and task.apiName == "Modules.URLSession.Task"
    task.addEventListener("sessioncompleted", listen("task"))
    task.addEventListener("downloadcompleted", listen("task"))
    assert task.wait(10)
    assert [(w, t) for w, t, _ in seen] == [
        ("task", "downloadcompleted"),
        ("session", "downloadcompleted"),
        ("module", "downloadcompleted"),
        ("task", "sessioncompleted"),
        ("session", "sessioncompleted"),
        ("module", "sessioncompleted"),
    ]
    assert all(source is task for _, _, source in seen)


def test_cancel_bubble_stops_event_at_current_proxy(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A session listener setting cancelBubble keeps the event from the module."""
    session = make_session()
    module_rec = recorder(URLSession)

    def stop(e: Any) -> None:
        e.cancelBubble = True

    session.addEventListener("sessioncompleted", stop)
    session_rec = recorder(session)
    first = session.dataTask(url=server.url("/echo"), method="GET")
    assert session_rec.completed(first).success
    session.removeEventListener("sessioncompleted", stop)
    second = session.dataTask(url=server.url("/echo"), method="GET")
    assert module_rec.completed(second).success
    assert module_rec.of(first, "sessioncompleted") == []


def test_bubble_parent_false_keeps_events_on_session(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """With session.bubbleParent False, task events stop at the session."""
    session = make_session()
    session.bubbleParent = False
    module_rec = recorder(URLSession)
    session_rec = recorder(session)
    tid = session.downloadTask(url=server.url("/bytes/1000"))
    assert session_rec.completed(tid).success
    assert len(session_rec.of(tid)) >= 3
    assert module_rec.of(tid) == []


def test_failing_listener_does_not_stop_delivery(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A listener that raises is logged; other listeners and later events still arrive."""
    session = make_session()

    def boom(e: Any) -> None:
        raise RuntimeError("listener bug")

    session.addEventListener("downloadprogress", boom)
    session.addEventListener("sessioncompleted", boom)
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}"))
    assert rec.completed(tid).success
    again = session.dataTask(url=server.url("/echo"), method="GET")
    assert rec.completed(again).success
