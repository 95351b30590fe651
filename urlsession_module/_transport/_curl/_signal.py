"""How a curl transfer wakes a task that waits for it without a thread.

The network thread already notifies a transfer's condition whenever its state changes (the
head, a body chunk, upload room, a rewind, the end). :class:`Signal` is that condition with a
generation count and one optional ``wake`` callback: a task that found nothing to do yields a
:class:`SignalWaiter` (see :class:`~.._wire.Waiter`), and its runner subscribes to it, so the
next change puts the task back on a worker instead of a worker sitting in ``wait``, or (with
``run_on_wake``) goes on with the task on the network thread itself.
"""

from __future__ import annotations

import collections
import functools
import threading
from collections.abc import Callable
from typing import Any

from ...exceptions import ErrorCode, TransferError

_LOCK = type(threading.Lock())


class Signal(threading.Condition):
    """A transfer's condition that also wakes one threadless waiter: every notify counts a
    generation and calls the waiter's ``wake`` (at most once), on the notifying thread (the
    network thread, under the transfer's lock: ``wake`` only queues work)."""

    def __init__(
        self, lock: Any, loop: Callable[[Callable[[], None]], None], loop_thread: int | None
    ) -> None:
        if type(lock) is _LOCK:
            # Condition.__init__ for a plain lock, without its three failed lookups of an
            # RLock's methods (each an AttributeError caught: ~1 µs a transfer).
            self._lock = lock
            self.acquire = lock.acquire  # type: ignore[method-assign]
            self.release = lock.release  # type: ignore[method-assign]
            self._waiters: collections.deque[Any] = collections.deque()
        else:
            super().__init__(lock)
        self.generation = 0
        self.wake: Callable[[], None] | None = None
        self.loop = loop  # runs a job on the network thread, after the current callbacks
        self.loop_thread = loop_thread  # that thread's ident: it must never wait here

    def refuse_wait(self) -> None:
        """A wait for this transfer on the network thread itself could never end (that
        thread is what would end it): fail the task instead (a bug: such a step must come
        after an ``OFF_LOOP``)."""
        if threading.get_ident() == self.loop_thread:
            raise TransferError(ErrorCode.UNKNOWN, "internal error: a wait on the network thread")

    def notify(self, n: int = 1) -> None:  # notify_all calls this too
        self.generation += 1
        wake, self.wake = self.wake, None
        if self._waiters:
            # Condition.notify checks ownership first (a try-acquire of the lock) even when
            # nobody waits, which is most of the time here (a parked task waits by ``wake``).
            super().notify(n)
        if wake is not None:
            wake()

    def notify_all(self) -> None:
        self.notify(1 << 30)


class SignalWaiter:
    """A task waiting for its transfer to change: ``seen`` is the signal's generation when it
    looked and found nothing to do."""

    __slots__ = ("_seen", "_signal", "light")

    def __init__(self, signal: Signal, seen: int, light: bool = False) -> None:
        self._signal = signal
        self._seen = seen
        # The steps after this wait do no blocking work until their next ``OFF_LOOP``, even
        # for a task that may not otherwise go on on the network thread (a download's body).
        self.light = light

    def block(self, timeout: float) -> bool:
        with self._signal:
            if self._signal.generation == self._seen:
                self._signal.wait(timeout)
            return self._signal.generation != self._seen

    def subscribe(self, wake: Callable[[], None]) -> None:
        with self._signal:
            if self._signal.generation == self._seen:
                self._signal.wake = wake
                return
        wake()  # it changed meanwhile: look again now

    def run_on_wake(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the network thread after the next change (see ``_wire.Waiter``):
        queued as one of its commands, so it runs outside libcurl's callbacks and the
        transfer's lock, in the same turn of the loop that brought the change."""
        signal = self._signal
        loop = signal.loop
        with signal:
            if signal.generation == self._seen:
                signal.wake = functools.partial(loop, job)
                return
        loop(job)  # it changed meanwhile
