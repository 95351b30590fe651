"""Sessions' delivery queues on one shared, bounded pool (``_dispatch.ThreadDispatcher``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from urlsession_module import _dispatch
from urlsession_module._dispatch import DELIVERY_THREADS, ThreadDispatcher

WAIT = 5.0
QUEUES = 40
EACH = 50


def _delivery_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "urlsession-delivery"]


@pytest.fixture
def queues() -> Iterator[list[ThreadDispatcher]]:
    made = [ThreadDispatcher() for _ in range(QUEUES)]
    yield made
    for q in made:
        q.close()
    for q in made:
        q.join(WAIT)
    assert not _delivery_threads()


def test_many_queues_keep_their_order_on_a_bounded_pool(queues: list[ThreadDispatcher]) -> None:
    """40 queues fed from 4 threads at once: each runs its callbacks in order, one at a time,
    on at most DELIVERY_THREADS threads between them."""
    ran: dict[int, list[int]] = {i: [] for i in range(QUEUES)}
    running: dict[int, int] = dict.fromkeys(range(QUEUES), 0)
    overlap: list[int] = []
    threads: set[threading.Thread] = set()
    lock = threading.Lock()
    done = threading.Semaphore(0)

    def job(q: int, n: int) -> None:
        with lock:
            running[q] += 1
            if running[q] > 1:
                overlap.append(q)
            threads.add(threading.current_thread())
        time.sleep(0.0002)
        ran[q].append(n)
        with lock:
            running[q] -= 1
        done.release()

    def feed(part: int) -> None:
        for n in range(EACH):
            for q in range(part, QUEUES, 4):
                queues[q].submit(lambda q=q, n=n: job(q, n))

    feeders = [threading.Thread(target=feed, args=(p,)) for p in range(4)]
    for f in feeders:
        f.start()
    for f in feeders:
        f.join(WAIT)
    for _ in range(QUEUES * EACH):
        assert done.acquire(timeout=WAIT)
    assert all(ran[q] == list(range(EACH)) for q in range(QUEUES))
    assert overlap == []
    assert 1 <= len(threads) <= DELIVERY_THREADS
    assert all(t.name == "urlsession-delivery" for t in threads)


def test_callbacks_queued_during_a_turn_need_no_wake_up(
    queues: list[ThreadDispatcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a queue's turn runs, what is submitted joins it: one pool hand-off for a batch."""
    q = queues[0]
    gate = threading.Event()
    finished = threading.Event()
    ran: list[int] = []
    q.submit(lambda: gate.wait(WAIT))
    pool = _dispatch._delivery._pool
    assert pool is not None
    handed = []
    real = pool.submit
    monkeypatch.setattr(pool, "submit", lambda fn: (handed.append(fn), real(fn))[-1])
    for i in range(100):
        q.submit(lambda i=i: ran.append(i))
    q.submit(finished.set)
    gate.set()
    assert finished.wait(WAIT)
    assert ran == list(range(100))
    assert handed == []  # the running turn took all 101


def test_the_last_queue_closed_takes_the_pool_threads_with_it(
    queues: list[ThreadDispatcher],
) -> None:
    """Once every queue is closed and joined, no delivery thread is left (idle processes hold
    none); a queue that never had work never held the pool."""
    done = threading.Event()
    queues[0].submit(done.set)
    assert done.wait(WAIT)
    assert _dispatch._delivery._pool is not None
    for q in queues:
        q.close()
    queues[0].join(WAIT)
    assert _dispatch._delivery._pool is None
    assert not _delivery_threads()


def test_a_callback_that_waits_lends_the_pool_a_thread(queues: list[ThreadDispatcher]) -> None:
    """All DELIVERY_THREADS threads in callbacks that wait (as a listener's waitForTasks does,
    through Delivery.wait): the pool may start another thread meanwhile, so the delivery they
    wait for, on another queue, still runs."""
    release = threading.Event()
    waiting = threading.Semaphore(0)
    woke: list[bool] = []

    def waiter() -> None:
        with _dispatch.lending():
            waiting.release()
            woke.append(release.wait(WAIT))

    for q in queues[:DELIVERY_THREADS]:
        q.submit(waiter)
    for _ in range(DELIVERY_THREADS):
        assert waiting.acquire(timeout=WAIT)
    started = time.monotonic()
    queues[DELIVERY_THREADS].submit(release.set)
    assert release.wait(WAIT)
    assert time.monotonic() - started < WAIT / 2
    deadline = time.monotonic() + WAIT
    while len(woke) < DELIVERY_THREADS and time.monotonic() < deadline:
        time.sleep(0.01)
    assert woke == [True] * DELIVERY_THREADS
