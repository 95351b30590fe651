"""Running a session's in-process tasks: the scheduler's answers put to work on threads.

The rules of who starts when are :mod:`._scheduler`'s; this is the IO around them: the worker
threads that run transfers, and the timer that wakes the scheduler when an
``earliestBeginDate`` comes due. A background session has none of this: its tasks run in the
transfer process.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from ._dispatch import WorkerPool
from ._scheduler import Hold, Scheduler
from ._state import TaskKind, TaskState
from ._task import Task, TaskRun
from ._transport import Transport
from ._urls import origin

__all__ = ["Runner"]

_MAX_TIMER_WAIT = 24 * 3600.0  # the begin-date timer re-arms at least daily

_HOLDS = {TaskState.SUSPENDED: Hold.SUSPENDED, TaskState.CANCELING: Hold.CANCELLED}


def _hold(task: Task) -> Hold:
    return _HOLDS.get(task._machine.state, Hold.READY)


def _origin(task: Task) -> tuple[str, str, int]:
    return origin(task._machine.original_request.url)


def _priority(task: Task) -> float:
    return task._priority


def _begin(task: Task) -> float | None:
    again = task._run.requeue_at if isinstance(task._run, TaskRun) else None  # a retry's time
    return max(task._begin or 0.0, again or 0.0) or None


class Runner:
    """Starts a session's waiting tasks on worker threads, as the scheduler allows."""

    def __init__(
        self, transport: Transport, limit: int, download_directory: Callable[[], str]
    ) -> None:
        self._transport = transport
        self._download_directory = download_directory
        self._lock = threading.Lock()
        self._scheduler: Scheduler[Task] = Scheduler(
            origin=_origin,
            limit=lambda _task: limit,
            priority=_priority,
            not_before=_begin,
            hold=_hold,
        )
        self.pool = WorkerPool()
        self._timer: threading.Timer | None = None
        self._timer_due = 0.0
        self._closed = False
        # invalidateAndCancel() is on its way: a task a worker takes now must not reach the network.
        self.cancelling = False

    def add(self, task: Task) -> None:
        """Queue a new task and start what may start (it, if its host has a free slot)."""
        with self._lock:
            self._scheduler.add(task)
        self.schedule(full=False)

    def reprioritized(self, task: Task) -> None:
        with self._lock:
            self._scheduler.update(task)  # False once it started: then nothing to re-order

    def schedule(
        self, full: bool = True, ended: Task | None = None, again: bool = False
    ) -> Task | None:
        """Start what may start now, and arm the timer for the next task that comes due.

        ``full=False`` (a task was added, or one ended and freed its slot) reads each host's
        queue only up to the first task that must wait; a full pass (cancel, resume, the timer)
        also lets out a cancelled task deep in a queue (it starts at once, only to report -999).

        ``ended``: a task that just ended on a worker (its slot is freed under the same lock
        hold); that worker gets one of the tasks that may start now back, to run it itself,
        rather than hand it to another thread and go idle (one thread hand-off less per task,
        which is most of a small task's cost).
        """
        with self._lock:
            if ended is not None:
                self._scheduler.finished(ended)
                if again:  # its run ended in a retry: it waits its turn (and time) again
                    self._scheduler.add(ended)
            now = time.time()
            plan = self._scheduler.take(now, full=full)
            ready = plan.start
            mine = ready.pop(0) if ended is not None and ready else None
            for task in ready:
                self.pool.submit(functools.partial(self._work, task))
            wake = plan.wake
            if (
                wake is not None
                and not self._closed
                and (self._timer is None or wake < self._timer_due)
            ):
                if self._timer is not None:  # a task due sooner than the one the timer waits for
                    self._timer.cancel()
                # Capped: a date centuries away must not overflow the timer; it just re-arms.
                delay = min(max(0.0, wake - now), _MAX_TIMER_WAIT)
                self._timer = threading.Timer(delay, self._timer_fired)
                self._timer.name = "urlsession-timer"
                self._timer.daemon = True
                self._timer_due = wake
                self._timer.start()
        return mine

    def _timer_fired(self) -> None:
        with self._lock:
            if self._timer is threading.current_thread():  # not a timer replaced meanwhile
                self._timer = None
        self.schedule()

    def _work(self, task: Task) -> None:
        """A worker's job: this task, then whatever the end of each frees a slot for."""
        next_task: Task | None = task
        while next_task is not None:
            run = next_task._run
            assert isinstance(run, TaskRun)  # only in-process tasks have workers
            download = run.machine.kind is TaskKind.DOWNLOAD
            try:
                run.run(
                    self._transport, self._download_directory if download else None, self.cancelling
                )
            except BaseException:  # not an engine error (those end the task): pass the baton on
                mine = self.schedule(full=False, ended=next_task)
                if mine is not None:
                    self.pool.submit(functools.partial(self._work, mine))
                raise
            again = run.requeue_at is not None and not run.machine.finished
            next_task = self.schedule(full=False, ended=next_task, again=again)

    def close(self) -> None:
        """No timer any more; idle workers leave now, busy ones as their job ends (joined,
        bounded)."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.pool.close()
        self.pool.join(5.0)
