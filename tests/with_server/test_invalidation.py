"""finishTasksAndInvalidate and invalidateAndCancel: what finishes, what is refused, what is freed."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import ErrorCode
from urlsession_module.testing import LocalServer, content_sha256

from ._util import file_sha256, raw_server, read_request_head, session_threads, wait_until

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

N = 1_000_000
RATE = 2_000_000


@pytest.fixture
def threads_before() -> set[threading.Thread]:
    """The threads alive when the test starts (other tests' sessions are not this test's)."""
    return set(threading.enumerate())


def no_session_threads_left(before: set[threading.Thread], timeout: float = 5.0) -> None:
    """Wait (bounded) until no urlsession-* thread started by this test is alive."""
    wait_until(
        lambda: not session_threads(before),
        timeout,
        f"session threads gone: {session_threads(before)}",
    )


def open_files_under(directory: Path) -> list[str]:
    """Paths under ``directory`` that this process still holds open."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            held.append(target)
    return held


def test_finish_tasks_and_invalidate_lets_running_tasks_finish(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    threads_before: set[threading.Thread],
) -> None:
    """Running tasks finish and report; new tasks are refused; listeners go after the last event."""
    session = make_session()
    rec = recorder(session)
    module_rec = recorder(URLSession)
    down = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}"))
    data = session.dataTask(url=server.url("/slow?delay=0.3"), method="GET")
    task = session.getTask(down)
    task_rec = recorder(task)
    t0 = time.monotonic()
    session.finishTasksAndInvalidate()
    assert time.monotonic() - t0 < 0.2  # returns at once
    before = len(server.requests)
    for call, args in (
        (session.dataTask, {"url": server.url("/echo")}),
        (session.uploadTask, {"url": server.url("/upload"), "data": b"x"}),
        (session.downloadTask, {"url": server.url("/bytes/10")}),
    ):
        with pytest.raises(URLSession.SessionInvalidatedError) as info:
            call(args)
        assert isinstance(info.value, ValueError) and info.value.argument == "session"
    assert len(server.requests) == before
    assert session.waitForInvalidation(15)
    assert session.invalidated
    done = rec.of(down, "sessioncompleted")[0]
    assert done.success
    (completed,) = rec.of(down, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(N)
    assert rec.of(data, "sessioncompleted")[0].success
    assert module_rec.of(down, "sessioncompleted") and task_rec.of(down, "sessioncompleted")
    # after the last event, nobody listens any more
    for name in ("sessioncompleted", "downloadprogress", "downloadcompleted"):
        assert not session.hasListeners(name)
        assert not task.hasListeners(name)
    count = len(rec.events)
    session.fireEvent("sessioncompleted", {"taskIdentifier": "synthetic"})
    assert len(rec.events) == count
    assert session.tasks == [] and session.waitForTasks(0)
    no_session_threads_left(threads_before)


def test_invalidating_an_idle_session_completes(
    make_session: MakeSession, threads_before: set[threading.Thread]
) -> None:
    """An idle session invalidates at once and leaves no thread behind."""
    session = make_session()
    session.finishTasksAndInvalidate()
    session.finishTasksAndInvalidate()  # twice is harmless
    assert session.waitForInvalidation(5)
    session.invalidateAndCancel()  # so is cancelling afterwards
    assert session.invalidated
    no_session_threads_left(threads_before)


def test_invalidate_and_cancel_reports_minus_999_for_every_task(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    threads_before: set[threading.Thread],
) -> None:
    """Running, waiting, suspended and not-yet-due tasks each report -999 exactly once."""
    session = make_session(httpMaximumConnectionsPerHost=2)
    rec = recorder(session)
    running = session.downloadTask(url=server.url(f"/bytes/{N * 5}?rate={RATE}"))
    slow = session.dataTask(url=server.url("/slow?delay=10"), method="GET")
    waiting = session.dataTask(url=server.url("/echo?waiting=1"), method="GET")
    not_due = session.dataTask(
        url=server.url("/echo?later=1"), method="GET", earliestBeginDate=time.time() + 600
    )
    suspended = session.downloadTask(url=f"http://localhost:{server.port}/bytes/{N}?rate={RATE}")
    session.getTask(suspended).suspend()
    ids = [running, slow, waiting, not_due, suspended]
    rec.wait_for(
        lambda evs: any(e.type == "downloadprogress" and e.taskIdentifier == running for e in evs)
    )
    t0 = time.monotonic()
    session.invalidateAndCancel()
    assert session.waitForInvalidation(5)
    assert time.monotonic() - t0 < 3.0
    for tid in ids:
        (done,) = rec.of(tid, "sessioncompleted")
        assert (done.success, done.errorCode) == (False, ErrorCode.CANCELLED), tid
        assert rec.of(tid)[-1] is done
    assert not [r for r in server.requests if "waiting=1" in r.path or "later=1" in r.path]
    assert sorted(session.downloadDirectory.iterdir()) == []
    no_session_threads_left(threads_before)


def test_invalidate_and_cancel_starts_no_waiting_task(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The worker freed by the first cancel must not start a waiting task on the network before
    invalidateAndCancel has come to it: every waiting task reports -999 without a request."""
    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    busy = session.dataTask(url=server.url("/slow?delay=10"), method="GET")
    waiting = [
        session.dataTask(url=server.url(f"/echo?queued={i}"), method="GET") for i in range(50)
    ]
    wait_until(lambda: any("delay=10" in r.path for r in server.requests), 5, "the busy task")
    session.invalidateAndCancel()
    assert session.waitForInvalidation(10)
    for tid in [busy, *waiting]:
        (done,) = rec.of(tid, "sessioncompleted")
        assert done.errorCode == ErrorCode.CANCELLED
    assert not [r for r in server.requests if "queued=" in r.path]


def test_invalidation_releases_threads_connections_and_files(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    threads_before: set[threading.Thread],
) -> None:
    """After waitForInvalidation no session thread, connection or file handle is left."""
    closed = threading.Event()

    def keep_alive(conn: socket.socket) -> None:
        conn.settimeout(10)
        while read_request_head(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        closed.set()  # the client closed its end

    session = make_session(httpMaximumConnectionsPerHost=3)
    rec = recorder(session)
    with raw_server(keep_alive) as raw:
        ids = [session.dataTask(url=raw.url(f"/{i}"), method="GET") for i in range(3)]
        ids += [
            session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE * 2}")) for _ in range(2)
        ]
        rec.wait_for(lambda evs: any(e.type == "downloadprogress" for e in evs))
        assert session_threads(threads_before)  # the transfers are running on session threads
        session.finishTasksAndInvalidate()
        assert session.waitForInvalidation(15)
        assert all(rec.of(t, "sessioncompleted")[0].success for t in ids)
        assert closed.wait(5), "the idle keep-alive connection was not closed"
    no_session_threads_left(threads_before)
    assert open_files_under(session.downloadDirectory) == []


def test_invalidate_and_cancel_after_finish_cancels_the_rest(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    threads_before: set[threading.Thread],
) -> None:
    """invalidateAndCancel after finishTasksAndInvalidate still cancels what is running."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/slow?delay=10"), method="GET")
    session.finishTasksAndInvalidate()
    session.invalidateAndCancel()
    assert rec.completed(tid, 3).errorCode == ErrorCode.CANCELLED
    assert session.waitForInvalidation(5)
    no_session_threads_left(threads_before)
