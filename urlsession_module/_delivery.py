"""A session's delivery queue as the session sees it, and how a host thread waits on it.

The queue itself is one of :mod:`._dispatch`'s strategies (the host's ``delegateQueue``). Around
it, :class:`Delivery` remembers which thread is running one of the session's callbacks, because a
blocking wait on that thread could never see the events it waits for: they queue behind the
callback that is waiting. Such a wait, with no timeout, is refused with
:class:`~.exceptions.WouldDeadlockError` rather than left to hang; so is one on the asyncio loop
the session delivers on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from ._dispatch import Dispatcher, EventQueue, ThreadDispatcher, lending
from ._validate import check_timeout
from .exceptions import InvalidArgumentTypeError, WouldDeadlockError

__all__ = ["Delivery", "default_queue", "set_default_queue"]

_WAIT_SLICE = 0.25  # a waiting host thread wakes this often to run pending signal handlers


class Delivery:
    """The session's serial queue, marking the thread that runs each callback."""

    def __init__(self, queue: Dispatcher, loop: asyncio.AbstractEventLoop | None) -> None:
        self.queue = queue
        self._loop = loop
        self._here = threading.local()
        # A session's own serial queue knows which thread runs its turn: its callbacks need no
        # wrapper marking the thread (a frame and three thread-local writes per payload).
        # Queues that several sessions may share (an EventQueue, a loop) are marked per call.
        self._own = queue if isinstance(queue, ThreadDispatcher) else None

    @property
    def host_drained(self) -> bool:
        return self.queue.host_drained

    def submit(self, fn: Callable[[], None]) -> None:
        if self._own is not None:
            self._own.submit(fn)
        else:
            self.queue.submit(functools.partial(self._run, fn))

    def _run(self, fn: Callable[[], None]) -> None:
        depth = getattr(self._here, "depth", 0)
        self._here.depth = depth + 1
        try:
            fn()
        finally:
            self._here.depth = depth

    def close(self) -> None:
        self.queue.close()

    def drain(self, timeout: float | None = 0.0) -> int:
        """A host-drained queue's :meth:`EventQueue.drain`, for code that holds only this."""
        if not isinstance(self.queue, EventQueue):
            raise TypeError("only a host-drained queue (EventQueue) is drained by its host")
        return self.queue.drain(timeout)

    @property
    def delivering_here(self) -> bool:
        """True on a thread that is running one of this queue's callbacks right now."""
        own = self._own
        if own is not None:
            return own._turn_thread is threading.current_thread()
        return bool(getattr(self._here, "depth", 0))

    def wait(
        self,
        call: str,
        predicate: Callable[[], bool],
        timeout: Any,
        block: Callable[[float], None],
    ) -> bool:
        """Wait for ``predicate``; False on timeout. ``call`` names the public method.

        A host-drained queue is drained meanwhile (nothing else would deliver); otherwise
        ``block(seconds)`` waits on the session's lock for a change. In slices: a signal the
        kernel gave another thread (Ctrl-C) is handled only when this thread runs Python again,
        and a lock wait does not end for it.
        """
        limit = check_timeout(call, timeout)
        if limit is None and not predicate():
            self._refuse_deadlock(call)
        deadline = None if limit is None else time.monotonic() + limit
        with self._lend():
            return self._wait(predicate, deadline, block)

    def _lend(self) -> contextlib.AbstractContextManager[None]:
        """While a callback of a pool-run queue waits, the pool may start one thread more."""
        return lending()

    def _wait(
        self, predicate: Callable[[], bool], deadline: float | None, block: Callable[[float], None]
    ) -> bool:
        while not predicate():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            step = _WAIT_SLICE if remaining is None else min(remaining, _WAIT_SLICE)
            if isinstance(self.queue, EventQueue):
                self.queue.drain(timeout=step)
            else:
                block(step)
        return True

    def _refuse_deadlock(self, call: str) -> None:
        if self.delivering_here:
            where = "inside a listener (or callback) of this session"
        elif self._loop is not None and _running_loop() is self._loop:
            where = "on the event loop that is this session's delegateQueue"
        else:
            return
        raise WouldDeadlockError(
            f"{call}() without a timeout {where} would never return: the events it waits for "
            "are delivered on this same thread; wait from another thread, pass a timeout, "
            "or react in the sessioncompleted listener instead"
        )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# -- the module-wide default delegateQueue ---------------------------------------------------------

_default_queue: EventQueue | asyncio.AbstractEventLoop | None = None


def default_queue() -> EventQueue | asyncio.AbstractEventLoop | None:
    """The ``delegateQueue`` a session gets when its creator gives none (None: its own thread)."""
    return _default_queue


def set_default_queue(
    queue: EventQueue | asyncio.AbstractEventLoop | None,
) -> EventQueue | asyncio.AbstractEventLoop | None:
    """Make ``queue`` the default ``delegateQueue`` of sessions created from now on.

    A scripting host whose scripts create sessions without naming a queue (the JavaScript host:
    Titanium apps never do) needs every listener on its own thread; this gives it that without
    changing how each session is created. Returns the previous default, so a host can restore it.
    Sessions that already exist keep the queue they were made with.
    """
    global _default_queue
    if queue is not None and not isinstance(queue, (EventQueue, asyncio.AbstractEventLoop)):
        raise InvalidArgumentTypeError(
            "queue", f"'queue' must be None, an asyncio loop or an EventQueue (got {queue!r})"
        )
    previous, _default_queue = _default_queue, queue
    return previous
