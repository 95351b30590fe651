"""Per-session serial delivery of events: one strategy, three implementations.

A session hands every callback to its dispatcher; the dispatcher runs them one at a time, in
order. Which thread runs them is the host's choice (the ``delegateQueue`` of Apple's URLSession):

* :class:`ThreadDispatcher` (default) — a background thread, started when there is work and gone
  after a short idle period, so idle sessions hold no thread.
* :class:`LoopDispatcher` — an asyncio event loop (``call_soon_threadsafe``, FIFO).
* :class:`EventQueue` — a queue the host drains itself from its own loop (scripting hosts).

Callbacks never raise into a dispatcher: delivery catches listener errors before this layer,
and :func:`report_callback_error` reports them (and any other failing callback) for both.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "Dispatcher",
    "EventQueue",
    "LoopDispatcher",
    "ThreadDispatcher",
    "WorkerPool",
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

    The one worker loop both thread-backed queues share; they differ only in when a submitted
    job gets a new thread (:meth:`_needs_thread`): never while one exists (serial delivery), or
    whenever no thread is idle (a pool).
    """

    IDLE_SECONDS = 2.0

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: collections.deque[Callback] = collections.deque()
        self._cond = threading.Condition()
        self._idle = 0
        self._closed = False
        self._alive: set[threading.Thread] = set()

    def _needs_thread(self) -> bool:
        raise NotImplementedError

    def submit(self, fn: Callback) -> None:
        with self._cond:
            self._jobs.append(fn)
            if not self._needs_thread():
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
                    deadline = time.monotonic() + self.IDLE_SECONDS
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


class ThreadDispatcher(_OnDemandThreads):
    """Runs callbacks on one worker thread that exists only while there is work."""

    def __init__(self, name: str = "urlsession-delivery") -> None:
        super().__init__(name)

    @property
    def host_drained(self) -> bool:
        return False

    def _needs_thread(self) -> bool:
        return not self._alive  # one thread at most: callbacks run one at a time, in order

    @property
    def _thread(self) -> threading.Thread | None:
        """The delivery thread, while there is one."""
        return next(iter(self._alive), None)


class WorkerPool(_OnDemandThreads):
    """Runs jobs concurrently on threads that are reused, and gone after a short idle period.

    A session starts each task's transfer here: starting a thread per task costs more than a
    small request itself. A job that is submitted while no thread is idle gets a new one, so
    the pool never queues work behind a busy thread (the session already limits how many
    tasks run at once).
    """

    def __init__(self, name: str = "urlsession-worker") -> None:
        super().__init__(name)

    def _needs_thread(self) -> bool:
        return len(self._jobs) > self._idle

    @property
    def threads(self) -> int:
        return len(self._alive)


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
