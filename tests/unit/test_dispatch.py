"""Per-session delivery queues (``_dispatch``): thread, asyncio loop, host-drained."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from tests._signals import sigint_to_another_thread
from urlsession_module import EventQueue
from urlsession_module._dispatch import LoopDispatcher, ThreadDispatcher

WAIT = 5.0  # upper bound for anything that should happen at once


@pytest.fixture
def dispatcher() -> Iterator[ThreadDispatcher]:
    """A ThreadDispatcher whose worker is gone (bounded wait) when the test ends."""
    d = ThreadDispatcher(name="test-delivery")
    yield d
    d.close()
    deadline = time.monotonic() + WAIT
    for t in threading.enumerate():
        if t.name == "test-delivery":
            t.join(max(0.0, deadline - time.monotonic()))
    assert not [t for t in threading.enumerate() if t.name == "test-delivery"]


def _close_and_join(d: ThreadDispatcher, thread: threading.Thread | None) -> None:
    d.close()
    if thread is not None:
        thread.join(WAIT)
        assert not thread.is_alive()


# -- ThreadDispatcher ---------------------------------------------------------------------------


def test_thread_dispatcher_runs_in_order_on_one_thread(dispatcher: ThreadDispatcher) -> None:
    """Callbacks run in submission order, all on one worker thread that is not the caller's."""
    ran: list[int] = []
    threads: set[threading.Thread] = set()
    done = threading.Event()

    def job(i: int) -> None:
        ran.append(i)
        threads.add(threading.current_thread())
        if i == 199:
            done.set()

    for i in range(200):
        dispatcher.submit(lambda i=i: job(i))
    assert done.wait(WAIT)
    assert ran == list(range(200))
    [worker] = threads
    assert worker is not threading.current_thread()
    assert worker.name == "test-delivery"
    assert worker.daemon
    assert dispatcher.host_drained is False
    _close_and_join(dispatcher, worker)


def test_thread_dispatcher_runs_one_at_a_time(dispatcher: ThreadDispatcher) -> None:
    """A callback submitted from inside another runs after it, never inside it."""
    log: list[str] = []
    done = threading.Event()

    def second() -> None:
        log.append("second")
        done.set()

    def first() -> None:
        log.append("first-start")
        dispatcher.submit(second)
        log.append("first-end")

    dispatcher.submit(first)
    assert done.wait(WAIT)
    assert log == ["first-start", "first-end", "second"]
    dispatcher.close()


def test_thread_goes_away_when_idle(
    dispatcher: ThreadDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker thread ends after the idle period, and a new one starts for new work."""
    monkeypatch.setattr(ThreadDispatcher, "IDLE_SECONDS", 0.05)
    seen: list[threading.Thread] = []
    first = threading.Event()
    dispatcher.submit(lambda: (seen.append(threading.current_thread()), first.set()))
    assert first.wait(WAIT)
    seen[0].join(WAIT)
    assert not seen[0].is_alive()
    assert dispatcher._thread is None

    second = threading.Event()
    dispatcher.submit(lambda: (seen.append(threading.current_thread()), second.set()))
    assert second.wait(WAIT)
    assert seen[1] is not seen[0]
    _close_and_join(dispatcher, seen[1])


def test_thread_stays_while_work_keeps_coming(
    dispatcher: ThreadDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Work arriving within the idle period reuses the same worker thread."""
    monkeypatch.setattr(ThreadDispatcher, "IDLE_SECONDS", 30.0)
    seen: list[threading.Thread] = []
    for _ in range(3):
        ev = threading.Event()
        dispatcher.submit(lambda ev=ev: (seen.append(threading.current_thread()), ev.set()))
        assert ev.wait(WAIT)
    assert len(set(seen)) == 1
    _close_and_join(dispatcher, seen[0])


def test_thread_goes_away_after_close(
    dispatcher: ThreadDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() ends the worker at once (no idle wait) after what was queued has run."""
    monkeypatch.setattr(ThreadDispatcher, "IDLE_SECONDS", 60.0)
    gate = threading.Event()
    ran: list[int] = []
    seen: list[threading.Thread] = []
    dispatcher.submit(lambda: (seen.append(threading.current_thread()), gate.wait(WAIT)))
    dispatcher.submit(lambda: ran.append(1))
    dispatcher.submit(lambda: ran.append(2))
    dispatcher.close()
    gate.set()
    started = time.monotonic()
    dispatcher.join(WAIT)
    seen[0].join(WAIT)
    assert not seen[0].is_alive()
    assert time.monotonic() - started < WAIT
    assert ran == [1, 2]
    assert dispatcher._thread is None


def test_join_from_the_worker_itself_does_not_deadlock(dispatcher: ThreadDispatcher) -> None:
    """join() called on the worker thread returns instead of waiting for itself."""
    done = threading.Event()
    dispatcher.submit(lambda: (dispatcher.join(WAIT), done.set()))
    started = time.monotonic()
    assert done.wait(WAIT)
    assert time.monotonic() - started < 1.0
    dispatcher.close()
    dispatcher.join(WAIT)


def test_failing_callback_is_logged_and_the_queue_goes_on(
    dispatcher: ThreadDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises is logged with its traceback; the next one still runs."""
    done = threading.Event()

    def bad() -> None:
        raise RuntimeError("delivery bug")

    with caplog.at_level(logging.ERROR, logger="urlsession_module"):
        dispatcher.submit(bad)
        dispatcher.submit(done.set)
        assert done.wait(WAIT)
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    dispatcher.close()
    dispatcher.join(WAIT)


# -- EventQueue ---------------------------------------------------------------------------------


def test_event_queue_runs_on_the_draining_thread() -> None:
    """drain() runs pending callbacks on the calling thread, in order, and returns the count."""
    q = EventQueue()
    ran: list[tuple[int, threading.Thread]] = []
    for i in range(3):
        q.submit(lambda i=i: ran.append((i, threading.current_thread())))
    assert len(q) == 3
    assert ran == []  # nothing runs until the host drains
    assert q.drain() == 3
    assert [i for i, _ in ran] == [0, 1, 2]
    assert all(t is threading.current_thread() for _, t in ran)
    assert len(q) == 0
    assert q.host_drained is True


def test_event_queue_max_events() -> None:
    """drain(max_events=n) runs at most n callbacks and leaves the rest queued."""
    q = EventQueue()
    ran: list[int] = []
    for i in range(5):
        q.submit(lambda i=i: ran.append(i))
    assert q.drain(max_events=2) == 2
    assert ran == [0, 1]
    assert len(q) == 3
    assert q.drain(max_events=0) == 0
    assert q.processEvents() == 3
    assert ran == [0, 1, 2, 3, 4]


def test_event_queue_timeout_zero_never_waits() -> None:
    """drain() on an empty queue with timeout 0 returns 0 at once."""
    started = time.monotonic()
    assert EventQueue().drain(timeout=0) == 0
    assert time.monotonic() - started < 0.5


def test_event_queue_timeout_waits_then_returns_zero() -> None:
    """drain(timeout=t) on an empty queue waits about t, then returns 0."""
    started = time.monotonic()
    assert EventQueue().drain(timeout=0.1) == 0
    elapsed = time.monotonic() - started
    assert 0.09 <= elapsed < WAIT


def test_event_queue_wakes_when_work_arrives() -> None:
    """drain(timeout) returns as soon as another thread submits, running it here."""
    q = EventQueue()
    ran: list[threading.Thread] = []
    submitter = threading.Timer(
        0.05, q.submit, args=(lambda: ran.append(threading.current_thread()),)
    )
    started = time.monotonic()
    submitter.start()
    try:
        assert q.drain(timeout=WAIT) == 1
    finally:
        submitter.join(WAIT)
    assert time.monotonic() - started < WAIT
    assert ran == [threading.current_thread()]


def test_event_queue_wait_forever_until_work_arrives() -> None:
    """drain(timeout=None) waits until a callback comes (bounded here by the submitter)."""
    q = EventQueue()
    ran: list[int] = []
    submitter = threading.Timer(0.05, q.submit, args=(lambda: ran.append(1),))
    submitter.start()
    try:
        assert q.drain(timeout=None) == 1
    finally:
        submitter.join(WAIT)
    assert ran == [1]


def test_event_queue_callback_submitting_more_is_drained_too() -> None:
    """A callback that submits another: both run in one drain, in order."""
    q = EventQueue()
    ran: list[str] = []
    q.submit(lambda: (ran.append("a"), q.submit(lambda: ran.append("b"))))
    assert q.drain() == 2
    assert ran == ["a", "b"]


def test_event_queue_failing_callback_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A failing callback in drain() is logged and counted; the next one runs."""
    q = EventQueue()
    ran: list[int] = []
    q.submit(lambda: 1 / 0)  # type: ignore[func-returns-value,return-value]
    q.submit(lambda: ran.append(1))
    with caplog.at_level(logging.ERROR, logger="urlsession_module"):
        assert q.drain() == 2
    assert ran == [1]
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


# -- LoopDispatcher -----------------------------------------------------------------------------


def test_loop_dispatcher_runs_on_the_loop_in_order() -> None:
    """Callbacks submitted from other threads run on the loop's thread, in submission order."""

    async def main() -> tuple[list[int], set[threading.Thread], threading.Thread]:
        loop = asyncio.get_running_loop()
        d = LoopDispatcher(loop)
        assert d.host_drained is False
        ran: list[int] = []
        threads: set[threading.Thread] = set()
        done = loop.create_future()

        def job(i: int) -> None:
            ran.append(i)
            threads.add(threading.current_thread())
            if i == 99:
                done.set_result(None)

        def submit_all() -> None:
            for i in range(100):
                d.submit(lambda i=i: job(i))

        submitter = threading.Thread(target=submit_all)
        submitter.start()
        await asyncio.wait_for(done, WAIT)
        submitter.join(WAIT)
        d.close()
        return ran, threads, threading.current_thread()

    ran, threads, loop_thread = asyncio.run(main())
    assert ran == list(range(100))
    assert threads == {loop_thread}


def test_loop_dispatcher_failing_callback_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A failing callback on the loop is logged and later ones run."""

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        d = LoopDispatcher(loop)
        ran: list[int] = []
        done = loop.create_future()
        d.submit(lambda: 1 / 0)  # type: ignore[func-returns-value,return-value]
        d.submit(lambda: (ran.append(1), done.set_result(None)))
        await asyncio.wait_for(done, WAIT)
        return ran

    with caplog.at_level(logging.ERROR, logger="urlsession_module"):
        assert asyncio.run(main()) == [1]
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


def test_loop_dispatcher_after_loop_closed_drops_with_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Submitting to a closed loop logs a warning and does not raise."""
    loop = asyncio.new_event_loop()
    loop.close()
    d = LoopDispatcher(loop)
    ran: list[int] = []
    with caplog.at_level(logging.WARNING, logger="urlsession_module"):
        d.submit(lambda: ran.append(1))
    assert ran == []
    assert any("loop closed" in r.getMessage() for r in caplog.records)


def test_drain_without_timeout_lets_ctrl_c_through() -> None:
    """drain(None) waits in slices: a SIGINT the kernel gave another thread is raised here soon,
    not when the next event comes."""
    queue = EventQueue()
    t0 = time.monotonic()
    with sigint_to_another_thread(), pytest.raises(KeyboardInterrupt):
        queue.drain(timeout=None)
    assert time.monotonic() - t0 < 2.0
