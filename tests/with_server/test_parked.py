"""No thread per task: on the curl engine a task waiting for the network holds no thread.

Many sessions with one task each, every task in flight at once (the server answers none for a
while): the worker threads are all idle meanwhile (the tasks are parked on their transfers,
woken by the network thread), deliveries share a bounded pool, and every task still ends well.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from urlsession_module import _dispatch
from urlsession_module.testing import LocalServer, content_bytes, content_sha256

from ._util import echoed, file_sha256, wait_until

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
SESSIONS = 24


def _busy_workers() -> int:
    pool = _dispatch._workers._pool
    if pool is None:
        return 0
    with pool._cond:
        return len(pool._alive) - pool._idle


def _delivery_threads() -> int:
    return sum(t.name == "urlsession-delivery" for t in threading.enumerate())


@pytest.mark.engine("curl")
def test_tasks_waiting_for_their_heads_hold_no_worker_thread(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """24 sessions, one slow task each: while all wait, no worker thread is busy."""
    sessions = [make_session() for _ in range(SESSIONS)]
    recs = [recorder(s) for s in sessions]
    ids = [s.dataTask(url=server.url(f"/slow?delay=3&parked={i}")) for i, s in enumerate(sessions)]
    wait_until(lambda: _busy_workers() == 0, 2.5, "every waiting task parked")
    assert not any(rec.of(tid, "sessioncompleted") for rec, tid in zip(recs, ids, strict=True))
    for rec, tid in zip(recs, ids, strict=True):
        assert rec.completed(tid).success
    assert _delivery_threads() <= _dispatch.DELIVERY_THREADS


@pytest.mark.engine("curl")
def test_a_task_waiting_for_its_body_holds_no_worker_thread(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A body that stalls after its first bytes: the task parks until the rest (or the end)."""
    session = make_session(timeoutIntervalForRequest=1.5)
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/stall?length=4000&after=1000&hang=5"))
    time.sleep(0.5)  # the head and the first bytes have come; the rest does not
    for _ in range(5):  # and it stays parked
        assert _busy_workers() == 0
        time.sleep(0.1)
    event = rec.completed(tid)
    assert event.errorCode == -1001  # the idle timeout ended it, from the network thread


@pytest.mark.engine("curl")
def test_a_plain_download_is_written_by_libcurl_itself(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """A download to a file with no cap and no limit is handed to libcurl's own ``os.write``
    once its body starts (counted mode): the task's writer sees at most the pieces before the
    hand-over, the count is taken on the network thread, and file and progress add up."""
    from urlsession_module._transport._curl import _direct

    n = 4 * (1 << 20) + 777
    spy_write = mocker.spy(_direct.DirectWrite, "write")
    spy_count = mocker.spy(_direct.DirectWrite, "count")
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{n}?rate={8 << 20}&key=counted"))
    done = rec.completed(tid)
    assert done.success, done.message
    assert spy_count.call_count > 0
    assert spy_write.call_count * 16384 < n // 2  # most pieces never passed through Python
    (completed,) = rec.of(tid, "downloadcompleted")
    assert completed.data.length == n
    assert file_sha256(completed.data.nativePath) == content_sha256(n)
    progress = rec.of(tid, "downloadprogress")
    assert len(progress) >= 4  # still a step per MiB or so, not one at the end
    assert sum(e.bytesWritten for e in progress) == n == progress[-1].totalBytesWritten


@pytest.mark.engine("curl")
def test_a_body_that_keeps_coming_outlasts_the_idle_timeout(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A download that takes 2.5 idle timeouts but never pauses that long succeeds: libcurl
    calls the writer itself (the task's, or ``os.write`` in counted mode), not
    ``Transfer.on_body``, and the clock's tick counts what was written as the wire being
    alive (``DirectWrite.tick``)."""
    session = make_session(timeoutIntervalForRequest=1.0)
    rec = recorder(session)
    n = 500_000
    tid = session.downloadTask(url=server.url(f"/bytes/{n}?rate=200000&key=alive"))
    done = rec.completed(tid)
    assert (done.success, done.statusCode) == (True, 200), done.message
    (completed,) = rec.of(tid, "downloadcompleted")
    assert completed.data.length == n
    assert file_sha256(completed.data.nativePath) == content_sha256(n)


@pytest.mark.engine("curl")
def test_cancel_wakes_a_parked_task_at_once(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A parked task's cancel ends its transfer, which wakes it to report -999."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/slow?delay=5"))
    wait_until(lambda: _busy_workers() == 0, 2.0, "the task parked")
    session.getTask(tid).cancel()
    assert rec.completed(tid).errorCode == -999


@pytest.mark.engine("curl")
@pytest.mark.parametrize("framing", ["", "&chunked=1"], ids=["length", "chunked"])
def test_a_download_is_written_by_the_network_thread(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    mocker: Any,
    framing: str,
) -> None:
    """A download's body goes from libcurl's write callback to its file, on the network
    thread (no queue, no read per piece on a worker), and its progress still adds up. (The
    callback is the task's writer, or ``os.write`` itself in counted mode, whose count is
    taken after each ``socket_action``: both are watched.)"""
    from urlsession_module._transport._curl import _direct

    n = 3 * (1 << 20) + 12345
    threads: set[str] = set()
    real_write, real_count = _direct.DirectWrite.write, _direct.DirectWrite.count

    def write(self: Any, data: bytes) -> Any:
        threads.add(threading.current_thread().name)
        return real_write(self, data)

    def count(self: Any) -> None:
        threads.add(threading.current_thread().name)
        real_count(self)

    mocker.patch.object(_direct.DirectWrite, "write", write)
    mocker.patch.object(_direct.DirectWrite, "count", count)
    session = make_session()
    rec = recorder(session)
    # Paced (~0.4 s): a body that all came before the task handed its file over would be
    # queued and written by the task's thread, as it must be (and this test would see no write).
    tid = session.downloadTask(url=server.url(f"/bytes/{n}?rate={8 << 20}{framing}"))
    done = rec.completed(tid)
    assert done.success, done.message
    assert threads == {"urlsession-curl"}
    (completed,) = rec.of(tid, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(n)
    progress = rec.of(tid, "downloadprogress")
    assert sum(e.bytesWritten for e in progress) == n == progress[-1].totalBytesWritten


@pytest.mark.engine("curl")
def test_a_downloads_progress_is_reported_on_the_network_thread_and_its_file_moved_off_it(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """The body's progress steps go on on the network thread that wakes them (no worker woken
    per step); what follows the body (the file closed, moved) goes to a worker."""
    from urlsession_module._transport import _bodies

    n = 4 * (1 << 20)
    reported: list[str] = []
    finished: list[str] = []
    real_add, real_finish = _bodies.Progress.add, _bodies.Sink.finish

    def add(self: Any, k: int) -> None:
        reported.append(threading.current_thread().name)
        real_add(self, k)

    def finish(self: Any, *args: Any) -> Any:
        finished.append(threading.current_thread().name)
        return real_finish(self, *args)

    mocker.patch.object(_bodies.Progress, "add", add)
    mocker.patch.object(_bodies.Sink, "finish", finish)
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{n}?rate={8 << 20}"))  # ~0.5 s
    done = rec.completed(tid)
    assert done.success, done.message
    assert reported.count("urlsession-curl") >= len(reported) // 2 > 0, reported
    assert finished and "urlsession-curl" not in finished, finished
    (completed,) = rec.of(tid, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(n)
    progress = rec.of(tid, "downloadprogress")
    assert sum(e.bytesWritten for e in progress) == n == progress[-1].totalBytesWritten


@pytest.mark.engine("curl")
@pytest.mark.parametrize("from_file", [False, True], ids=["bytes", "file"])
def test_an_upload_is_read_by_the_network_thread(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    mocker: Any,
    tmp_path: Any,
    from_file: bool,
) -> None:
    """A request body goes to libcurl from its read callback, on the network thread (no
    worker feeds it), and its progress still comes block by block and adds up."""
    from urlsession_module._transport._curl import _upload

    n = 3 * (1 << 20) + 17
    threads: set[str] = set()
    real = _upload.DirectRead.read

    def read(self: Any, size: int) -> Any:
        threads.add(threading.current_thread().name)
        return real(self, size)

    mocker.patch.object(_upload.DirectRead, "read", read)
    session = make_session()
    rec = recorder(session)
    if from_file:
        path = tmp_path / "body.bin"
        path.write_bytes(content_bytes(n))
        tid = session.uploadTask(url=server.url("/upload"), data=path, method="PUT")
    else:
        tid = session.uploadTask(url=server.url("/upload"), data=content_bytes(n))
    done = rec.completed(tid)
    assert done.success, done.message
    assert threads == {"urlsession-curl"}
    assert echoed(done)["body_sha256"] == content_sha256(n)
    progress = rec.of(tid, "uploadprogress")
    assert len(progress) >= 12  # 256 KiB at most per report
    assert sum(e.bytesSent for e in progress) == n == progress[-1].totalBytesSent
