"""Which waiting tasks start now, and when to look again: one sans-IO scheduler.

The in-process :class:`~._session.Session` and the background transfer process follow the same
rules, so they share this module rather than each keeping a copy:

* a task waits in the queue of its host (its origin: scheme, host, port); at most ``limit`` tasks
  of one host run at once, counted across everything this scheduler started;
* within a host, higher ``priority`` first, then first come first served;
* a task does not start before its ``not_before`` time (``earliestBeginDate``, or a retry's next
  attempt): :attr:`Plan.wake` says when the earliest of those comes due;
* a suspended task takes no slot and keeps its place until it is resumed;
* a cancelled task is let out at once, whatever its date or its host's limit, so that it can
  report -999 now rather than when it would have started;
* discretionary tasks go after every other task that could start, and at most
  ``discretionary_limit`` of them run at once (a background session's ``isDiscretionary``).

The scheduler owns no clock, thread or lock: the caller passes ``now`` and serialises its calls.
It is generic over the task type: what it needs to know about a task it learns from the
functions given to it, so neither user has to wrap its tasks. ``priority`` and ``not_before`` are
read when a task is added (or :meth:`Scheduler.update`-d); ``hold`` and ``limit`` are read at every
pass, because a task is suspended, resumed or cancelled from other threads between passes.
"""

from __future__ import annotations

import bisect
import enum
import heapq
import itertools
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import attrs

__all__ = ["Hold", "Plan", "Scheduler"]

T = TypeVar("T")


class Hold(enum.Enum):
    """What a waiting task's own state says about starting it."""

    READY = "ready"  # may start when its date, its host's limit and its turn allow
    SUSPENDED = "suspended"  # keeps its place, takes no slot
    CANCELLED = "cancelled"  # let out at once, only to report its cancellation


@attrs.frozen
class Plan(Generic[T]):
    """One pass's answer: tasks to start now (each holds a slot until ``finished``), in order,
    and the time (epoch seconds, the caller's clock) a dated task comes due, or None."""

    start: list[T]
    wake: float | None


@attrs.define(eq=False)
class _Entry(Generic[T]):
    item: T
    ident: Hashable
    host: Hashable
    order: tuple[bool, float, int]  # discretionary last, then higher priority, then arrival
    due: float
    queued: bool = True


def _ready(_item: object) -> Hold:
    return Hold.READY


def _no_date(_item: object) -> float | None:
    return None


def _normal(_item: object) -> bool:
    return False


def _default_priority(_item: object) -> float:
    return 0.5


class Scheduler(Generic[T]):
    """Per-host queues of waiting tasks and the count of running ones, host by host."""

    def __init__(
        self,
        *,
        origin: Callable[[T], Hashable],
        limit: Callable[[T], int],
        priority: Callable[[T], float] = _default_priority,
        not_before: Callable[[T], float | None] = _no_date,
        hold: Callable[[T], Hold] = _ready,
        discretionary: Callable[[T], bool] = _normal,
        discretionary_limit: int = 1,
        ident: Callable[[T], Hashable] = id,
    ) -> None:
        self._origin = origin
        self._limit = limit  # a limit of 0 holds the task (e.g. its session is not described yet)
        self._priority = priority
        self._not_before = not_before
        self._hold = hold
        self._discretionary = discretionary
        self._discretionary_limit = discretionary_limit
        self._ident = ident
        self._queues: dict[Hashable, list[_Entry[T]]] = {}
        self._queued: dict[Hashable, _Entry[T]] = {}
        self._dates: list[tuple[float, int, _Entry[T]]] = []  # a heap; stale entries dropped late
        self._running: dict[Hashable, tuple[Hashable, bool]] = {}  # ident -> (host, discretionary)
        self._per_host: dict[Hashable, int] = {}
        self._discretionary_running = 0
        self._arrivals = itertools.count()
        self._pushes = itertools.count()  # heap ties: stale and fresh copies may share a date

    # -- the queue --------------------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Queue a task (again, after a failed attempt: it then waits as a newcomer)."""
        ident = self._ident(item)
        if ident in self._queued:
            raise ValueError(f"task {ident!r} is already waiting")
        self._insert(item, ident, next(self._arrivals))

    def update(self, item: T) -> bool:
        """A waiting task's priority or date changed (or a fresher copy of it): re-place it,
        keeping its arrival. False if it is not waiting (it started, or was never added)."""
        entry = self._queued.get(self._ident(item))
        if entry is None:
            return False
        self._unlink(entry)
        self._insert(item, entry.ident, entry.order[2])
        return True

    def remove(self, item: T) -> bool:
        """Take a waiting task out without starting it; False if it was not waiting."""
        entry = self._queued.get(self._ident(item))
        if entry is None:
            return False
        self._unlink(entry)
        return True

    def finished(self, item: T) -> None:
        """A task this scheduler started has ended: its slot is free again."""
        host, discretionary = self._running.pop(self._ident(item))
        self._per_host[host] -= 1
        if not self._per_host[host]:
            del self._per_host[host]
        self._discretionary_running -= discretionary

    def __len__(self) -> int:
        return len(self._queued)

    def __contains__(self, item: T) -> bool:
        return self._ident(item) in self._queued

    @property
    def waiting(self) -> list[T]:
        """The waiting tasks, host by host, each host's in the order they would start."""
        return [e.item for queue in self._queues.values() for e in queue]

    def running(self, host: Hashable | None = None) -> int:
        """How many started tasks have not finished (of ``host``, or in all)."""
        return len(self._running) if host is None else self._per_host.get(host, 0)

    # -- a pass -----------------------------------------------------------------------------------

    def take(self, now: float, *, full: bool = True) -> Plan[T]:
        """Start what may start at ``now``; each started task holds its slot until ``finished``.

        ``full=False`` is for the common case (a task was added, or one ended and freed a slot):
        each host's queue is read only up to the first task that must keep waiting for a slot,
        so thousands of waiting tasks cost nothing per start. A full pass (after a cancel or a
        resume, or when a date came due) reads every queue to the end, so it also lets out a
        cancelled task deep in a queue.
        """
        start: list[T] = []
        later: list[_Entry[T]] = []  # discretionary candidates, host by host
        urgent_waiting = False
        for host in list(self._queues):
            queue = self._queues[host]
            i = 0
            while i < len(queue):
                entry = queue[i]
                hold = self._hold(entry.item)
                if hold is Hold.CANCELLED:
                    self._launch(queue, i, start)
                    continue
                if hold is Hold.SUSPENDED or entry.due > now:
                    i += 1
                    continue
                if entry.order[0]:
                    later.append(entry)
                    i += 1
                    continue
                if self._per_host.get(host, 0) < self._limit(entry.item):
                    self._launch(queue, i, start)
                    continue
                urgent_waiting = True
                if not full:
                    break
                i += 1
            if not queue:
                del self._queues[host]
        if not urgent_waiting and later:
            later.sort(key=lambda e: e.order)
            for entry in later:
                if self._discretionary_running >= self._discretionary_limit:
                    break
                if self._per_host.get(entry.host, 0) < self._limit(entry.item):
                    queue = self._queues[entry.host]
                    self._launch(queue, queue.index(entry), start)
                    if not queue:
                        del self._queues[entry.host]
        return Plan(start, self._wake(now))

    # -- internals --------------------------------------------------------------------------------

    def _insert(self, item: T, ident: Hashable, arrival: int) -> None:
        host = self._origin(item)
        due = self._not_before(item)
        entry = _Entry(
            item,
            ident,
            host,
            (self._discretionary(item), -self._priority(item), arrival),
            0.0 if due is None else due,
        )
        queue = self._queues.setdefault(host, [])
        if not queue or entry.order > queue[-1].order:
            queue.append(entry)  # the common case: same priority, so last in line
        else:
            bisect.insort(queue, entry, key=lambda e: e.order)
        self._queued[ident] = entry
        if due is not None:
            heapq.heappush(self._dates, (entry.due, next(self._pushes), entry))

    def _unlink(self, entry: _Entry[T]) -> None:
        queue = self._queues[entry.host]
        queue.remove(entry)
        if not queue:
            del self._queues[entry.host]
        del self._queued[entry.ident]
        entry.queued = False

    def _launch(self, queue: list[_Entry[T]], i: int, start: list[T]) -> None:
        entry = queue.pop(i)
        entry.queued = False
        del self._queued[entry.ident]
        discretionary = entry.order[0]
        self._running[entry.ident] = (entry.host, discretionary)
        self._per_host[entry.host] = self._per_host.get(entry.host, 0) + 1
        self._discretionary_running += discretionary
        start.append(entry.item)

    def _wake(self, now: float) -> float | None:
        """The earliest date still ahead among waiting tasks (dates passed need no timer)."""
        dates = self._dates
        while dates and (not dates[0][2].queued or dates[0][0] <= now):
            heapq.heappop(dates)
        return dates[0][0] if dates else None
