"""Per-session serial delivery of events: one strategy, three implementations.

A session hands every callback to its dispatcher; the dispatcher runs them one at a time, in
order. Which thread runs them is the host's choice (the ``delegateQueue`` of Apple's URLSession):

* :class:`ThreadDispatcher` (default) — a serial queue on a shared, bounded pool of threads
  that exist only while there is work, so idle sessions hold no thread and 1,000 sessions do
  not hold 1,000; each wake-up runs every callback queued meanwhile.
* :class:`LoopDispatcher` — an asyncio event loop (``call_soon_threadsafe``, FIFO).
* :class:`EventQueue` — a queue the host drains itself from its own loop (scripting hosts).

Callbacks never raise into a dispatcher: delivery catches listener errors before this layer,
and :func:`report_callback_error` reports them (and any other failing callback) for both.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Protocol

__all__ = [
    "Dispatcher",
    "EventQueue",
    "HeldWakeups",
    "LoopDispatcher",
    "ThreadDispatcher",
    "WorkerPool",
    "gathered_wakeups",
    "report_callback_error",
]

log = logging.getLogger(__name__)
listener_log = logging.getLogger("urlsession_module.listeners")

Callback = Callable[[], None]


_SLICE = 0.25  # the longest a host thread waits without running Python (signal handlers)


def report_callback_error(what: str) -> None:
    """Report the exception being handled, raised by a host's callback (``what`` names it).

    Through the ``urlsession_module.listeners`` logger when the host has configured a handler
    for it (or any of its parents: the package's own NullHandler does not count); otherwise on
    stderr with its traceback, as :func:`threading.excepthook` reports a thread's exception.
    A host that wants neither sets that logger's level above ERROR.
    """
    if not listener_log.isEnabledFor(logging.ERROR):
        return
    if _has_handler(listener_log):
        listener_log.error("%s raised", what, exc_info=True)
        return
    stream = sys.stderr
    if stream is None:  # pythonw: nowhere to print
        return
    try:
        stream.write(f"Exception in {what}:\n{traceback.format_exc()}")
        stream.flush()
    except (OSError, ValueError):  # a closed stderr must not break delivery either
        pass


def _has_handler(logger: logging.Logger) -> bool:
    node: logging.Logger | None = logger
    while node is not None:
        if any(not isinstance(h, logging.NullHandler) for h in node.handlers):
            return True
        node = node.parent if node.propagate else None
    return False


def _run(fn: Callback) -> None:
    try:
        fn()
    except (Exception, SystemExit):  # a bug (or sys.exit) in a callback must not kill the queue
        report_callback_error("an event delivery callback")


class Dispatcher(Protocol):
    def submit(self, fn: Callback) -> None:
        """Queue ``fn`` to run after everything submitted before it."""

    def close(self) -> None:
        """No more work will come; release threads once what is queued has run."""

    @property
    def host_drained(self) -> bool:
        """True when the waiting thread must drain this queue itself to make progress."""


class _OnDemandThreads:
    """Jobs run by threads that exist only while there is work, each gone after an idle period.

    The one worker loop every thread-backed queue shares. A submitted job gets a new thread
    when no thread is idle and fewer than ``max_threads`` exist; otherwise it waits for the next
    free one. A notify happens only when a thread is idle and waiting for one.
    """

    IDLE_SECONDS = 2.0

    def __init__(self, name: str, max_threads: int | None = None) -> None:
        self._name = name
        self._max = max_threads
        self._jobs: collections.deque[Callback] = collections.deque()
        self._cond = threading.Condition()
        self._idle = 0
        self._closed = False
        self._alive: set[threading.Thread] = set()
        self._blocked = 0  # threads of a bounded pool waiting in a host's wait (not counted)

    def _needs_thread(self) -> bool:
        if len(self._jobs) <= self._idle:
            return False
        return self._max is None or len(self._alive) < self._max + self._blocked

    def blocking(self) -> contextlib.AbstractContextManager[None]:
        """A job is about to wait for others' work (a listener's ``waitForTasks``): for as long
        as it waits the bound allows one thread more, so the work it waits for can still run
        (GCD's pools grow the same way when their threads block)."""
        return self._blocking()

    @contextlib.contextmanager
    def _blocking(self) -> Iterator[None]:
        with self._cond:
            self._blocked += 1
            start = self._needs_thread()
        if start:
            self._start_thread()
        try:
            yield
        finally:
            with self._cond:
                self._blocked -= 1

    def _start_thread(self) -> None:
        with self._cond:
            thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._alive.add(thread)
        thread.start()

    def submit(self, fn: Callback) -> None:
        with self._cond:
            self._jobs.append(fn)
            if not self._needs_thread():
                if self._idle:
                    self._cond.notify()
                return
            # Counted as alive under the lock, before it starts, so the next submit sees it.
            thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._alive.add(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._jobs:
                    self._idle += 1
                    deadline = time.monotonic() + self._idle_seconds()
                    while not self._jobs:
                        remaining = deadline - time.monotonic()
                        if self._closed or remaining <= 0:
                            self._idle -= 1
                            # Under the lock: a submit from now on starts a new thread.
                            self._alive.discard(threading.current_thread())
                            return
                        self._cond.wait(remaining)
                    self._idle -= 1
                fn = self._jobs.popleft()
            _run(fn)

    def _idle_seconds(self) -> float:
        return self.IDLE_SECONDS

    @property
    def threads(self) -> int:
        return len(self._alive)

    def close(self) -> None:
        """Idle threads leave now; busy ones when their job is done and none is waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def join(self, timeout: float = 5.0) -> None:
        """After ``close``: wait (bounded) for every thread but the caller's to leave."""
        deadline = time.monotonic() + timeout
        with self._cond:
            others = [t for t in self._alive if t is not threading.current_thread()]
        for thread in others:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Shared:
    """A process-wide pool of on-demand threads, held by the sessions that use it.

    The first user makes it, the last one's release closes it (its threads leave once their
    jobs are done: an idle process keeps no thread), as the curl engine's network thread lives.
    """

    def __init__(self, make: Callable[[], _OnDemandThreads]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._pool: _OnDemandThreads | None = None
        self._users = 0

    def acquire(self) -> _OnDemandThreads:
        with self._lock:
            if self._pool is None:
                self._pool = self._make()
            self._users += 1
            return self._pool

    def release(self, pool: _OnDemandThreads) -> bool:
        """One user less; True when it was the last (``pool`` is closed then)."""
        with self._lock:
            if pool is not self._pool:
                return True  # a pool already closed by its last user
            self._users -= 1
            if self._users:
                return False
            self._pool = None
        pool.close()
        return True

    def current(self) -> _OnDemandThreads | None:
        return self._pool

    def in_use(self, pool: _OnDemandThreads) -> bool:
        with self._lock:
            return pool is self._pool


#: Delivery: sessions' serial queues take turns on these threads (GCD's serial queues over a
#: shared pool). Bounded: a callback is short, and 1,000 sessions must not mean 1,000 threads.
DELIVERY_THREADS = 8
_delivery = _Shared(lambda: _OnDemandThreads("urlsession-delivery", DELIVERY_THREADS))
#: Work: one job at a time per thread, a new thread when none is idle (see :class:`WorkerPool`).
_workers = _Shared(lambda: _OnDemandThreads("urlsession-worker"))
_BATCH = 256  # callbacks a queue runs per turn before letting another session's queue run


def lending() -> contextlib.AbstractContextManager[None]:
    """Around a host's wait (``waitForTasks`` and the like): on a delivery pool thread, the
    pool may start one thread more while it waits, so the deliveries it waits for, of any
    session, are not stuck behind it and the other busy threads."""
    pool = _delivery.current()
    if pool is None or threading.current_thread() not in pool._alive:
        return contextlib.nullcontext()
    return pool.blocking()


_gathering = threading.local()


class HeldWakeups:
    """The delivery queues' wake-ups this thread causes, held until :meth:`flush`.

    A thread that feeds payloads in bursts (an engine's network thread, which ends many tasks
    and reports many progress steps in a row) holds them, so a queue is woken once for what
    came meanwhile instead of once per payload: on a small VM a thread wake-up costs 50-75 µs
    of CPU (measured), more than delivering a small payload. Made on the thread whose
    wake-ups it holds; the holder flushes them (before it sleeps, and when they have waited
    long enough) and :meth:`release` ends the hold.
    """

    __slots__ = ("_pending", "since")

    def __init__(self) -> None:
        self._pending: list[Callback] = []
        self.since: float | None = None  # when the holder first saw a wake-up held
        _gathering.pending = self._pending

    @property
    def held(self) -> bool:
        return bool(self._pending)

    def flush(self) -> None:
        pending = self._pending
        self.since = None
        while pending:
            woken = pending[:]
            pending.clear()
            for wake in woken:
                wake()

    def release(self) -> None:
        _gathering.pending = None
        self.flush()


@contextlib.contextmanager
def gathered_wakeups() -> Iterator[None]:
    """Around a burst of work on one thread: each delivery queue it feeds is woken once, at
    the end, with all its payloads in one turn, instead of a thread wake-up for the first
    payload of each task (:class:`HeldWakeups` for one block)."""
    if getattr(_gathering, "pending", None) is not None:  # nested: the outer one wakes
        yield
        return
    hold = HeldWakeups()
    try:
        yield
    finally:
        hold.release()


class _PrivateThread(_OnDemandThreads):
    """A queue's own single thread (a ThreadDispatcher made with a name: tools and tests)."""

    def _idle_seconds(self) -> float:
        return ThreadDispatcher.IDLE_SECONDS


class ThreadDispatcher:
    """A serial queue: callbacks run one at a time, in order, on a thread of a shared pool.

    A session's default ``delegateQueue``. The queue is scheduled on the pool once when work
    arrives and then runs every callback that came meanwhile, a batch per wake-up (not a thread
    hand-off per payload); after ``_BATCH`` callbacks it goes to the back of the pool's line, so
    a busy session cannot starve the others. Only one turn of a queue is ever scheduled, so its
    callbacks never run concurrently nor out of order. ``ThreadDispatcher(name=...)`` gets a
    private thread instead (the same queue over a pool of one).
    """

    IDLE_SECONDS = 2.0

    def __init__(self, name: str | None = None) -> None:
        self._lock = threading.Lock()
        self._pending: collections.deque[Callback] = collections.deque()
        self._scheduled = False
        self._private = _PrivateThread(name, 1) if name is not None else None
        self._pool: _OnDemandThreads | None = self._private
        self._released = False
        self._quiet = threading.Event()  # set while no turn is scheduled or running
        self._quiet.set()
        self._turn_thread: threading.Thread | None = None

    @property
    def host_drained(self) -> bool:
        return False

    def submit(self, fn: Callback) -> None:
        with self._lock:
            self._pending.append(fn)
            if self._scheduled:
                return  # the running turn takes it: no wake-up
            self._scheduled = True
            self._quiet.clear()
            pool = self._pool
            if pool is None:  # first work: join the shared pool (an idle queue holds none)
                pool = self._pool = _delivery.acquire()
        later: list[Callback] | None = getattr(_gathering, "pending", None)
        if later is not None:  # woken at the end of the burst (gathered_wakeups)
            later.append(functools.partial(pool.submit, self._turn))
            return
        pool.submit(self._turn)

    def _turn(self) -> None:
        ran = 0
        self._turn_thread = threading.current_thread()
        while True:
            with self._lock:
                if not self._pending:
                    self._scheduled = False
                    self._turn_thread = None
                    self._quiet.set()
                    return
                if ran >= _BATCH:
                    pool = self._pool
                    self._turn_thread = None
                    break
                batch, self._pending = self._pending, collections.deque()
            for fn in batch:
                _run(fn)
            ran += len(batch)
        assert pool is not None
        pool.submit(self._turn)  # still scheduled: the rest after the other queues' turns

    def close(self) -> None:
        """No more work will come; the pool's threads leave once what is queued has run (the
        shared pool's when no other session holds it)."""
        with self._lock:
            pool, released, self._released = self._pool, self._released, True
        if pool is None or released:
            return
        if self._private is not None:
            self._private.close()
        else:
            _delivery.release(pool)

    def join(self, timeout: float = 5.0) -> None:
        """After ``close``: wait (bounded) until what was queued has run and the threads that
        ran this queue are gone, unless another session still holds the shared pool (then they
        are not this queue's). On this queue's own thread it does not wait for itself."""
        deadline = time.monotonic() + timeout
        if self._turn_thread is not threading.current_thread():
            self._quiet.wait(timeout)
        pool = self._pool
        if pool is None or (pool is not self._private and _delivery.in_use(pool)):
            return
        pool.join(max(0.0, deadline - time.monotonic()))

    @property
    def _thread(self) -> threading.Thread | None:
        """The private thread, while there is one."""
        pool = self._private
        return None if pool is None else next(iter(pool._alive), None)


class WorkerPool:
    """One session's way onto the process's worker threads: reused, gone after an idle period.

    A session starts each task's transfer here: starting a thread per task costs more than a
    small request itself, and sharing the threads across sessions means an idle thread of one
    session serves the next. A job submitted while no thread is idle gets a new one, so the pool
    never queues work behind a busy thread (the session already limits how many tasks run at
    once, and a task blocks its thread while it waits for the network: a bound here would hold
    one session's task behind another session's long download). ``threads``: how many threads
    have run this session's jobs.
    """

    def __init__(self) -> None:
        self._pool = _workers.acquire()
        self._seen: set[threading.Thread] = set()
        self._released = False

    def submit(self, fn: Callback) -> None:
        def job() -> None:
            self._seen.add(threading.current_thread())
            fn()

        self._pool.submit(job)

    @property
    def threads(self) -> int:
        return len(self._seen)

    def close(self) -> None:
        """This session needs no more workers (the pool closes with its last session)."""
        if not self._released:
            self._released = True
            _workers.release(self._pool)

    def join(self, timeout: float = 5.0) -> None:
        """After ``close``: wait (bounded) for the pool's threads if no session holds it."""
        if not _workers.in_use(self._pool):
            self._pool.join(timeout)


class LoopDispatcher:
    """Runs callbacks on an asyncio event loop, in submission order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def host_drained(self) -> bool:
        return False

    def submit(self, fn: Callback) -> None:
        try:
            self._loop.call_soon_threadsafe(_run, fn)
        except RuntimeError:  # loop closed: the host is gone; nothing can be delivered
            log.warning("event loop closed; dropping an event")

    def close(self) -> None:
        pass


class EventQueue:
    """A delivery queue that a scripting host drains from its own loop.

    Pass one as ``delegateQueue`` to ``createSession`` (several sessions may share it), then call
    :meth:`drain` from the host's loop: it runs pending callbacks on the calling thread.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[Callback] = collections.deque()
        self._cond = threading.Condition()

    @property
    def host_drained(self) -> bool:
        return True

    def submit(self, fn: Callback) -> None:
        with self._cond:
            self._queue.append(fn)
            self._cond.notify_all()

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._queue)

    def drain(self, timeout: float | None = 0.0, max_events: int | None = None) -> int:
        """Run pending callbacks here; wait up to ``timeout`` seconds for the first one.

        Returns how many ran. ``timeout=0`` never waits; ``None`` waits until one comes.
        """
        ran = 0
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._queue and timeout != 0:
                # In slices, so a Ctrl-C the kernel gave another thread is handled here soon.
                left = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
                if left <= 0:
                    break
                self._cond.wait(left)
        while max_events is None or ran < max_events:
            with self._cond:
                if not self._queue:
                    break
                fn = self._queue.popleft()
            _run(fn)
            ran += 1
        return ran

    # Titanium-flavoured alias for hosts written in that style.
    processEvents = drain
