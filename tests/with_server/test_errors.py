"""Transfer errors reported with URLSession codes, and bad input refused at the call."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import ErrorCode
from urlsession_module.testing import LocalServer, content_sha256

from ._util import closed_port, file_sha256, raw_server, read_request_head, wait_until

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def failed(rec: Any, tid: str, code: ErrorCode, timeout: float = 30.0) -> Any:
    """Wait for the task's sessioncompleted and check it failed with ``code``."""
    done = rec.completed(tid, timeout)
    assert (done.success, done.errorCode) == (False, code), done.message
    assert isinstance(done.message, str) and done.message.strip()
    return done


def leftover_files(session: Any) -> list[str]:
    return sorted(os.listdir(session.downloadDirectory))


# --------------------------------------------------------------------------- -999


def test_cancelled_data_task_reports_minus_999(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """cancel() while waiting for a slow response ends the task at once with -999."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/slow?delay=5&cancel_me=1"), method="GET")
    task = session.getTask(tid)
    wait_until(lambda: any("cancel_me=1" in r.path for r in server.requests), 5.0, "request sent")
    started = time.monotonic()
    task.cancel()
    done = failed(rec, tid, ErrorCode.CANCELLED, timeout=4.0)
    assert time.monotonic() - started < 3.0
    assert done.statusCode == 0 and done.responseText == ""
    assert task.error is not None and task.error.code == -999
    assert task.state == "completed"
    task.cancel()  # a finished task ignores it
    assert len(rec.of(tid, "sessioncompleted")) == 1


# --------------------------------------------------------------------------- -1001


@pytest.mark.parametrize(
    "path",
    ["/slow?delay=3", "/stall?length=100000&after=1000&hang=3"],
    ids=["no-response-head", "stalled-body"],
)
def test_idle_timeout_reports_minus_1001(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, path: str
) -> None:
    """timeoutIntervalForRequest is an idle timeout: a silent server fails the task with -1001."""
    session = make_session(timeoutIntervalForRequest=0.5)
    rec = recorder(session)
    started = time.monotonic()
    tid = session.dataTask(url=server.url(path), method="GET")
    failed(rec, tid, ErrorCode.TIMED_OUT, timeout=10)
    assert time.monotonic() - started < 2.5


def test_resource_timeout_reports_minus_1001_and_leaves_no_file(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """timeoutIntervalForResource bounds a whole transfer that never goes idle."""
    session = make_session(timeoutIntervalForResource=1.0, timeoutIntervalForRequest=5.0)
    rec = recorder(session)
    started = time.monotonic()
    tid = session.downloadTask(url=server.url("/bytes/3000000?rate=1000000"))
    done = failed(rec, tid, ErrorCode.TIMED_OUT, timeout=10)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2.5
    assert done.statusCode == 200  # the response had started
    assert rec.of(tid, "downloadprogress")  # bytes were flowing all along
    assert rec.of(tid, "downloadcompleted") == []
    assert leftover_files(session) == []


# --------------------------------------------------------------------------- -1002 / -1003 / -1004


def test_redirect_to_another_scheme_reports_minus_1002(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A redirect to ftp:// is an unsupported URL."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(
        url=server.url("/redirect-to?url=ftp://127.0.0.1/file.txt&code=302"), method="GET"
    )
    done = failed(rec, tid, ErrorCode.UNSUPPORTED_URL)
    assert "ftp://127.0.0.1/file.txt" in done.message


def test_unresolvable_host_reports_minus_1003(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A name that cannot resolve (.invalid never does) fails with -1003."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url="http://nonexistent.invalid/", method="GET")
    done = failed(rec, tid, ErrorCode.CANNOT_FIND_HOST)
    assert done.statusCode == 0


def test_refused_connection_reports_minus_1004(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A closed port on 127.0.0.1 fails with -1004 and statusCode 0."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=f"http://127.0.0.1:{closed_port()}/file")
    done = failed(rec, tid, ErrorCode.CANNOT_CONNECT_TO_HOST)
    assert done.statusCode == 0
    task = done.source  # the Task, also once it is no longer outstanding
    assert task.taskIdentifier == tid and task.state == "completed"
    assert task.response is None
    assert task.error.code == ErrorCode.CANNOT_CONNECT_TO_HOST
    assert task.error.message == done.message


# --------------------------------------------------------------------------- -1005


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_connection_dropped_mid_body_reports_minus_1005(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    rst: bool,
) -> None:
    """A body cut short fails with -1005: no downloadcompleted, no partial file left."""
    session = make_session()
    rec = recorder(session)
    query = "length=600000&after=300000" + ("&rst=1" if rst else "")
    down = session.downloadTask(url=server.url(f"/drop?{query}"))
    data = session.dataTask(url=server.url(f"/drop?{query}"), method="GET")
    done = failed(rec, down, ErrorCode.NETWORK_CONNECTION_LOST)
    assert done.statusCode == 200
    assert rec.of(down, "downloadcompleted") == []
    assert failed(rec, data, ErrorCode.NETWORK_CONNECTION_LOST).statusCode == 200
    assert leftover_files(session) == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_connection_dropped_before_headers_reports_minus_1005(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, method: str
) -> None:
    """A server that closes a fresh connection without answering fails the task with -1005."""
    session = make_session()
    rec = recorder(session)
    server.clear_requests()
    tid = session.dataTask(url=server.url("/drop-before-headers"), method=method, data=None)
    assert failed(rec, tid, ErrorCode.NETWORK_CONNECTION_LOST).statusCode == 0
    assert len(server.requests) == 1  # a fresh connection is not retried


def _second_request_dropped(requests: list[str]) -> Callable[[socket.socket], None]:
    """Answer the first request of a connection, then close on the next one without a word."""

    def handler(conn: socket.socket) -> None:
        for served in range(2):
            head = read_request_head(conn)
            if not head:
                return
            requests.append(head.split(b" ")[0].decode())
            if served:
                return  # the client sent a request on a kept-alive connection: drop it
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    return handler


def test_idempotent_request_retried_once_on_dead_reused_connection(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A GET that finds its kept-alive connection dead goes out again on a fresh connection."""
    seen: list[str] = []
    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    with raw_server(_second_request_dropped(seen)) as raw:
        first = rec.completed(session.dataTask(url=raw.url("/1"), method="GET"), 10)
        second = rec.completed(session.dataTask(url=raw.url("/2"), method="GET"), 10)
        assert (first.success, second.success) == (True, True), second.message
        assert second.responseText == "ok"
        assert seen == ["GET", "GET", "GET"] and raw.connections == 2


def test_post_not_retried_on_dead_reused_connection(
    make_session: MakeSession, recorder: MakeRecorder, engine: str
) -> None:
    """A POST is never sent twice: on a dead reused connection it fails with -1005."""
    seen: list[str] = []
    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    with raw_server(_second_request_dropped(seen)) as raw:
        assert rec.completed(session.dataTask(url=raw.url("/1"), method="GET"), 10).success
        tid = session.dataTask(url=raw.url("/2"), method="POST")
        failed(rec, tid, ErrorCode.NETWORK_CONNECTION_LOST, timeout=10)
        assert seen == ["GET", "POST"]
        if engine == "urllib3":
            assert raw.connections == 1
        else:
            # libcurl connects afresh before it asks whether to send again (and is told not
            # to): that connection is closed unused, and the server's accept thread may count
            # it a moment after the task ended (on a loaded machine it did, now and then).
            wait_until(lambda: raw.connections == 2, 5, "the fresh connection counted")


def test_server_closing_after_each_response_does_not_fail_tasks(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A server that closes every connection without saying so still serves each request."""

    def answer_once(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")

    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    with raw_server(answer_once) as raw:
        for _ in range(3):
            tid = session.dataTask(url=raw.url("/"), method="GET")
            done = rec.completed(tid, 10)
            assert (done.success, done.statusCode, done.responseText) == (True, 200, "ok")
        assert raw.connections >= 3


# --------------------------------------------------------------------------- -1007


def test_redirect_loop_reports_minus_1007(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A redirect loop fails with -1007 after 20 redirects."""
    session = make_session()
    rec = recorder(session)
    server.clear_requests()
    tid = session.dataTask(url=server.url("/redirect-loop"), method="GET")
    failed(rec, tid, ErrorCode.HTTP_TOO_MANY_REDIRECTS)
    assert len([r for r in server.requests if r.path == "/redirect-loop"]) == 21


def test_twenty_redirects_succeed_and_the_21st_fails(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Up to 20 redirects are followed; a chain of 21 fails with -1007."""
    session = make_session()
    rec = recorder(session)
    ok = session.dataTask(url=server.url("/redirect/20"), method="GET")
    too_many = session.dataTask(url=server.url("/redirect/21"), method="GET")
    done = rec.completed(ok)
    assert (done.success, done.statusCode) == (True, 200)
    assert json.loads(done.responseText)["path"] == "/redirect/0"
    failed(rec, too_many, ErrorCode.HTTP_TOO_MANY_REDIRECTS)


# --------------------------------------------------------------------------- -1011


@pytest.mark.parametrize(
    "status_line",
    [b"garbage\r\n", b"HTTP/1.1 abc OK\r\n", b"HTTP/1.1 99999 Nope\r\n"],
    ids=["no-version", "no-code", "code-out-of-range"],
)
def test_invalid_status_line_reports_minus_1011(
    make_session: MakeSession, recorder: MakeRecorder, status_line: bytes
) -> None:
    """A response whose status line is not HTTP fails with -1011."""

    def bad(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(status_line + b"Content-Length: 2\r\n\r\nok")

    session = make_session()
    rec = recorder(session)
    with raw_server(bad) as raw:
        tid = session.dataTask(url=raw.url("/x"), method="POST", data=b"body")
        failed(rec, tid, ErrorCode.BAD_SERVER_RESPONSE, timeout=10)


# --------------------------------------------------------------------------- -3000s


def test_download_directory_replaced_by_a_file_reports_minus_3000(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A download whose directory cannot be used fails with a -3000-range code (also as root)."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/bytes/1000"), earliestBeginDate=time.time() + 0.5)
    directory = Path(session.downloadDirectory)
    directory.rmdir()
    directory.write_bytes(b"not a directory")
    done = rec.completed(tid)
    assert not done.success and -3999 <= done.errorCode <= -3000, done.errorCode
    assert done.errorCode == ErrorCode.CANNOT_CREATE_FILE
    assert rec.of(tid, "downloadcompleted") == []


_FSIZE_SCRIPT = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    import urlsession_module as URLSession

    url, limit = sys.argv[1], int(sys.argv[2])
    session = URLSession.createSession(configuration=URLSession.createSessionConfiguration())
    events = []
    session.addEventListener("downloadcompleted", lambda e: events.append(e.type))
    session.addEventListener("sessioncompleted", lambda e: events.append(dict(
        type=e.type, success=e.success, errorCode=e.errorCode, message=e.message)))
    directory = session.downloadDirectory
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    session.downloadTask(url=url)
    ok = session.waitForTasks(20)
    session.finishTasksAndInvalidate()
    session.waitForInvalidation(10)
    print(json.dumps({"ok": ok, "events": events, "left": os.listdir(directory)}))
    """
)


def test_disk_full_reports_minus_3003_and_leaves_no_file(
    server: LocalServer, tmp_path: Path
) -> None:
    """A write that fails (file size limit, which binds root too) reports -3003, no partial file."""
    env = dict(os.environ, URLSESSION_HOME=str(tmp_path / "fsize-home"))
    proc = subprocess.run(
        [sys.executable, "-c", _FSIZE_SCRIPT, server.url("/bytes/2000000"), "300000"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    (done,) = result["events"]  # no downloadcompleted
    assert done["success"] is False
    assert done["errorCode"] == ErrorCode.CANNOT_WRITE_TO_FILE
    assert "could not be written" in done["message"]
    assert result["left"] == []


# --------------------------------------------------------------------------- at the call


def _bad_calls(url: str, missing: str) -> list[tuple[str, dict[str, Any], type, str]]:
    return [
        ("dataTask", {}, ValueError, "url"),
        ("dataTask", {"url": ""}, ValueError, "url"),
        ("dataTask", {"url": None}, ValueError, "url"),
        ("dataTask", {"url": 42}, TypeError, "url"),
        ("dataTask", {"url": "ftp://127.0.0.1/x"}, ValueError, "url"),
        ("dataTask", {"url": "file:///etc/passwd"}, ValueError, "url"),
        ("dataTask", {"url": "http:///nohost"}, ValueError, "url"),
        ("dataTask", {"url": url + "\r\nX: y"}, ValueError, "url"),
        ("dataTask", {"url": url, "method": "GE T"}, ValueError, "method"),
        ("dataTask", {"url": url, "method": 7}, TypeError, "method"),
        ("dataTask", {"url": url, "requestHeaders": "X: y"}, TypeError, "requestHeaders"),
        ("dataTask", {"url": url, "requestHeaders": {1: "x"}}, TypeError, "requestHeaders"),
        ("dataTask", {"url": url, "requestHeaders": {"X": 1}}, TypeError, "requestHeaders"),
        (
            "dataTask",
            {"url": url, "requestHeaders": {"X": "a\r\nB: c"}},
            ValueError,
            "requestHeaders",
        ),
        ("dataTask", {"url": url, "requestHeaders": {"X": "a\nb"}}, ValueError, "requestHeaders"),
        (
            "dataTask",
            {"url": url, "requestHeaders": {"Bad Name": "x"}},
            ValueError,
            "requestHeaders",
        ),
        ("dataTask", {"url": url, "data": object()}, TypeError, "data"),
        ("dataTask", {"url": url, "data": {"a": object()}}, TypeError, "data"),
        ("dataTask", {"url": url, "priority": 2}, ValueError, "priority"),
        ("dataTask", {"url": url, "taskDescription": 5}, TypeError, "taskDescription"),
        ("dataTask", {"url": url, "earliestBeginDate": "soon"}, TypeError, "earliestBeginDate"),
        ("dataTask", {"url": url, "urll": url}, ValueError, "urll"),
        ("uploadTask", {"url": url}, ValueError, "data"),
        ("uploadTask", {"url": url, "data": missing}, OSError, "data"),
        ("uploadTask", {"url": url, "data": 3.5}, TypeError, "data"),
        ("uploadTask", {"url": "", "data": b"x"}, ValueError, "url"),
        ("downloadTask", {"url": url, "method": "GET"}, ValueError, "method"),
        ("downloadTask", {"url": "gopher://127.0.0.1/"}, ValueError, "url"),
        (
            "downloadTask",
            {"url": url, "requestHeaders": {"Range": "a\rb"}},
            ValueError,
            "requestHeaders",
        ),
    ]


def test_bad_input_raises_at_the_call_and_sends_nothing(
    server: LocalServer, make_session: MakeSession, tmp_path: Path
) -> None:
    """Each bad argument raises a TypeError/ValueError/OSError naming it; nothing goes out."""
    session = make_session()
    url = server.url("/echo")
    before = len(server.requests)
    for method, args, kind, argument in _bad_calls(url, str(tmp_path / "missing.bin")):
        with pytest.raises(kind) as info:
            getattr(session, method)(args)
        assert isinstance(info.value, URLSession.URLSessionError), (method, args)
        assert info.value.argument == argument, (method, args, info.value)  # type: ignore[attr-defined]
        assert argument in str(info.value), (method, args)
    with pytest.raises(TypeError) as positional:
        session.dataTask(url)  # Titanium passes a dict, Python keywords; a bare str is neither
    assert positional.value.argument == "args"  # type: ignore[attr-defined]
    assert session.tasks == []
    assert len(server.requests) == before


def test_missing_upload_file_is_a_file_not_found_error(
    server: LocalServer, make_session: MakeSession, tmp_path: Path
) -> None:
    """Uploading a path that does not exist raises FileNotFoundError naming 'data'."""
    session = make_session()
    before = len(server.requests)
    with pytest.raises(FileNotFoundError) as info:
        session.uploadTask(url=server.url("/upload"), data=str(tmp_path / "nope.bin"))
    assert isinstance(info.value, URLSession.UploadFileNotFoundError)
    assert info.value.argument == "data"
    assert "nope.bin" in str(info.value)
    assert len(server.requests) == before


def test_bad_delegate_queue_is_refused(make_session: MakeSession) -> None:
    """createSession names delegateQueue when it is neither None, a loop nor an EventQueue."""
    with pytest.raises(TypeError) as info:
        make_session(delegateQueue="main")
    assert info.value.argument == "delegateQueue"  # type: ignore[attr-defined]


def test_error_codes_have_foundation_messages(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Failure messages are readable, starting with Foundation's wording for the code."""
    session = make_session()
    rec = recorder(session)
    refused = session.dataTask(url=f"http://127.0.0.1:{closed_port()}/", method="GET")
    done = failed(rec, refused, ErrorCode.CANNOT_CONNECT_TO_HOST)
    assert done.message.startswith(ErrorCode.CANNOT_CONNECT_TO_HOST.description)
    ok = session.downloadTask(url=server.url("/bytes/100"))
    assert rec.completed(ok).message == ""
    (completed,) = rec.of(ok, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(100)
