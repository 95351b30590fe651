"""Where and in what order events are delivered: thread, asyncio loop, host-drained queue."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import urlsession_module as URLSession
from tests._signals import sigint_to_another_thread
from urlsession_module.testing import LocalServer, content_sha256

from ._util import file_sha256, session_threads, wait_until

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

N = 700_000


def test_default_queue_is_one_background_thread_in_order(
    server: LocalServer, make_session: MakeSession
) -> None:
    """By default listeners run one at a time on the session's delivery thread, in order."""
    session = make_session()
    seen: list[tuple[str, str, str]] = []
    running = 0
    overlap = False
    lock = threading.Lock()

    def listener(e: Any) -> None:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap = overlap or running > 1
        time.sleep(0.002)  # widen the window in which a second delivery could overlap
        with lock:
            running -= 1
            seen.append((threading.current_thread().name, e.type, e.taskIdentifier))

    for name in ("downloadprogress", "downloadcompleted", "sessioncompleted"):
        session.addEventListener(name, listener)
    ids = [session.downloadTask(url=server.url(f"/bytes/{N}")) for _ in range(4)]
    assert session.waitForTasks(20)
    assert not overlap
    assert {thread for thread, _, _ in seen} == {"urlsession-delivery"}
    for tid in ids:
        names = [t for _, t, i in seen if i == tid]
        assert names[-2:] == ["downloadcompleted", "sessioncompleted"]
        assert set(names[:-2]) == {"downloadprogress"}


def test_wait_for_tasks_blocks_until_done_and_times_out(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """waitForTasks returns False on timeout and True once every sessioncompleted is delivered."""
    session = make_session()
    rec = recorder(session)
    assert session.waitForTasks(0)  # nothing to wait for
    tid = session.dataTask(url=server.url("/slow?delay=0.6"), method="GET")
    t0 = time.monotonic()
    assert session.waitForTasks(0.1) is False
    assert 0.09 <= time.monotonic() - t0 < 0.5
    assert session.waitForTasks(10) is True
    assert rec.of(tid, "sessioncompleted")  # delivered before waitForTasks returned
    assert session.tasks == []


def test_task_wait(server: LocalServer, make_session: MakeSession, recorder: MakeRecorder) -> None:
    """Task.wait blocks until that task's sessioncompleted was delivered."""
    session = make_session()
    rec = recorder(session)
    slow = session.dataTask(url=server.url("/slow?delay=2"), method="GET")
    quick = session.downloadTask(url=server.url(f"/bytes/{N}"))
    task = session.getTask(quick)
    assert task.wait(10)
    assert rec.of(quick, "sessioncompleted") and not rec.of(slow, "sessioncompleted")
    assert session.getTask(slow).wait(0.05) is False


def test_asyncio_loop_delivery(server: LocalServer, make_session: MakeSession) -> None:
    """With an asyncio loop as delegateQueue, listeners run on that loop's thread."""

    async def main() -> tuple[list[tuple[str, bool]], Any, Any]:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        session = make_session(delegateQueue=loop)
        finished: asyncio.Future[Any] = loop.create_future()
        seen: list[tuple[str, bool]] = []

        def listener(e: Any) -> None:
            seen.append((e.type, threading.get_ident() == loop_thread))
            if e.type == "sessioncompleted" and not finished.done():
                finished.set_result(e)

        for name in ("downloadprogress", "downloadcompleted", "sessioncompleted"):
            session.addEventListener(name, listener)
        session.downloadTask(url=server.url(f"/bytes/{N}"))
        done = await asyncio.wait_for(finished, 10)
        data = [e for e in seen if e[0] == "downloadcompleted"]
        assert data
        # waitForTasks blocks: from the loop it must run in an executor thread
        assert await loop.run_in_executor(None, session.waitForTasks, 10)
        completed: list[Any] = []
        session.addEventListener("downloadcompleted", completed.append)
        tid = session.downloadTask(url=server.url(f"/bytes/{N}"))
        assert await loop.run_in_executor(None, session.waitForTasks, 10)
        session.finishTasksAndInvalidate()
        assert await loop.run_in_executor(None, session.waitForInvalidation, 10)
        assert completed[0].taskIdentifier == tid
        return seen, done, completed[0].data

    seen, done, blob = asyncio.run(main())
    assert done.success
    assert all(on_loop for _, on_loop in seen)
    assert [t for t, _ in seen][-2:] == ["downloadcompleted", "sessioncompleted"]
    assert file_sha256(blob.nativePath) == content_sha256(N)


def test_host_drained_queue_delivers_only_when_drained(
    server: LocalServer, make_session: MakeSession
) -> None:
    """With an EventQueue nothing is delivered until the host drains it, on the host's thread."""
    queue = URLSession.EventQueue()
    session = make_session(delegateQueue=queue)
    seen: list[tuple[str, str]] = []
    session.addEventListener(
        "sessioncompleted", lambda e: seen.append((e.type, threading.current_thread().name))
    )
    session.addEventListener(
        "downloadcompleted", lambda e: seen.append((e.type, threading.current_thread().name))
    )
    tid = session.downloadTask(url=server.url(f"/bytes/{N}"))
    task = session.getTask(tid)
    wait_until(lambda: task.state == "completed" and len(queue) > 0, 10, "transfer finished")
    assert seen == []  # finished, but nothing delivered yet
    assert session.getTask(tid) is task  # outstanding until its sessioncompleted is delivered
    ran = queue.drain(timeout=0)
    assert ran >= 3  # progress, downloadcompleted, sessioncompleted
    me = threading.current_thread().name
    assert seen == [("downloadcompleted", me), ("sessioncompleted", me)]
    assert task not in session.tasks  # no longer outstanding...
    assert session.getTask(tid) is task  # ...but getTask still finds it (SPEC 4)
    assert queue.drain(timeout=0) == 0


def test_host_drained_queue_with_wait_for_tasks(
    server: LocalServer, make_session: MakeSession
) -> None:
    """waitForTasks drains a host queue itself, so a plain script can just wait."""
    queue = URLSession.EventQueue()
    first = make_session(delegateQueue=queue)
    second = make_session(delegateQueue=queue, type="ephemeral")  # one queue, two sessions
    got: list[str] = []
    for s in (first, second):
        s.addEventListener("sessioncompleted", lambda e: got.append(e.taskIdentifier))
    a = first.dataTask(url=server.url("/echo"), method="GET")
    b = second.dataTask(url=server.url("/slow?delay=0.2"), method="GET")
    assert first.waitForTasks(10)
    assert second.waitForTasks(10)
    assert sorted(got) == sorted([a, b])
    first.finishTasksAndInvalidate()
    assert first.waitForInvalidation(5)  # drains the queue for the invalidation too


def test_ctrl_c_reaches_a_host_waiting_on_its_queue(
    server: LocalServer, make_session: MakeSession
) -> None:
    """The kernel may hand SIGINT to any thread; Python runs the handler in the main thread only
    when that thread runs again. A host waiting for its queue must not sleep through it until
    the next event: the wait wakes in bounded slices, and the KeyboardInterrupt comes soon."""
    queue = URLSession.EventQueue()
    session = make_session(delegateQueue=queue)
    tid = session.dataTask(url=server.url("/slow?delay=5"), method="GET")
    t0 = time.monotonic()
    with sigint_to_another_thread(), pytest.raises(KeyboardInterrupt):
        session.getTask(tid).wait(10)
    assert time.monotonic() - t0 < 2.0
    session.invalidateAndCancel()
    assert session.waitForInvalidation(10)


def test_flush_and_reset_call_back_on_the_delivery_queue(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """flush and reset call back with {'completed': True} on the delivery thread; reset clears files."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/bytes/1000"))
    rec.completed(tid)
    assert session.waitForTasks(5)  # no longer outstanding: its file is now unclaimed
    (completed,) = rec.of(tid, "downloadcompleted")
    calls: list[tuple[str, Any, str]] = []
    done = threading.Event()

    def flushed(result: Any) -> None:
        calls.append(("flush", result, threading.current_thread().name))

    def reset(result: Any) -> None:
        calls.append(("reset", result, threading.current_thread().name))
        done.set()

    session.flush(flushed)
    session.reset(reset)
    assert done.wait(5)
    assert calls == [
        ("flush", {"completed": True}, "urlsession-delivery"),
        ("reset", {"completed": True}, "urlsession-delivery"),
    ]
    assert not os.path.exists(completed.data.nativePath)  # unclaimed: removed
    with pytest.raises(TypeError) as info:
        session.flush("not callable")
    assert info.value.argument == "callback"  # type: ignore[attr-defined]


def test_idle_session_holds_no_delivery_thread(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The delivery thread goes away when idle and comes back for new events."""
    before = set(threading.enumerate())
    session = make_session()
    rec = recorder(session)
    assert rec.completed(session.dataTask(url=server.url("/echo"), method="GET")).success
    assert "urlsession-delivery" in session_threads(before)
    wait_until(
        lambda: "urlsession-delivery" not in session_threads(before), 5, "idle delivery thread gone"
    )
    assert rec.completed(session.dataTask(url=server.url("/echo"), method="GET")).success


def test_reset_spares_a_running_download(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """reset() removes unclaimed downloads but not the file a running download is writing."""
    session = make_session()
    rec = recorder(session)
    old = session.downloadTask(url=server.url("/bytes/1000"))
    assert rec.completed(old).success and session.waitForTasks(5)
    (unclaimed,) = rec.of(old, "downloadcompleted")
    running = session.downloadTask(url=server.url(f"/bytes/{N}?rate=1000000"))
    rec.wait_for(lambda evs: any(e.type == "downloadprogress" for e in evs), 10)
    reset_done = threading.Event()
    session.reset(lambda result: reset_done.set())
    assert reset_done.wait(5)
    assert not os.path.exists(unclaimed.data.nativePath)
    assert rec.completed(running).success
    (completed,) = rec.of(running, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(N)
