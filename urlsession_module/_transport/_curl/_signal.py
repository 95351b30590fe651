"""How a curl transfer wakes a task that waits for it without a thread.

The network thread already notifies a transfer's condition whenever its state changes (the
head, a body chunk, upload room, a rewind, the end). :class:`Signal` is that condition with a
generation count and one optional ``wake`` callback: a task that found nothing to do yields a
:class:`SignalWaiter` (see :class:`~.._wire.Waiter`), and its runner subscribes to it, so the
next change puts the task back on a worker instead of a worker sitting in ``wait``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Signal(threading.Condition):
    """A transfer's condition that also wakes one threadless waiter: every notify counts a
    generation and calls the waiter's ``wake`` (at most once), on the notifying thread (the
    network thread, under the transfer's lock: ``wake`` only queues work)."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.generation = 0
        self.wake: Callable[[], None] | None = None

    def notify(self, n: int = 1) -> None:  # notify_all calls this too
        self.generation += 1
        wake, self.wake = self.wake, None
        if self._waiters:  # type: ignore[attr-defined]
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

    __slots__ = ("_seen", "_signal")

    def __init__(self, signal: Signal, seen: int) -> None:
        self._signal = signal
        self._seen = seen

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
