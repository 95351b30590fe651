"""Running a session's in-process tasks: the scheduler's answers put to work on threads.

The rules of who starts when are :mod:`._scheduler`'s; this is the IO around them: the shared
worker threads that run transfers (a task that waits for the network without a thread is
parked meanwhile, see :meth:`Runner._advance`), and the timer that wakes the scheduler when an
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
from ._transport._wire import Steps
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


#: How long a worker waits for a transfer's news before it parks the task (see Runner._advance).
PARK_AFTER = 0.005

#: Tasks in flight to one host when every one is a stream of one multiplexed connection: RFC 9113
#: asks servers to allow at least 100 concurrent streams (nginx allows 128).
STREAMS_PER_HOST = 100


def in_flight_limit(transport: Transport, connections: int) -> int:
    """How many tasks may run at once per host. ``httpMaximumConnectionsPerHost`` limits
    connections, as in URLSession; over HTTP/2 or HTTP/3 asked for by name (``httpVersion``
    '2' or '3', the curl engine) tasks are streams that share one connection, so the bound is
    the streams a connection carries. ('auto' may end up on HTTP/1.1: connections then.)"""
    config = transport.config
    if config.engine == "curl" and getattr(config, "httpVersion", "auto") in ("2", "3"):
        return max(connections, STREAMS_PER_HOST)
    return connections


class Runner:
    """Starts a session's waiting tasks on worker threads, as the scheduler allows."""

    def __init__(
        self, transport: Transport, limit: int, download_directory: Callable[[], str]
    ) -> None:
        self._transport = transport
        self._download_directory = download_directory
        self._lock = threading.Lock()
        limit = in_flight_limit(transport, limit)
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
        """A worker's job: this task, then whatever the end of each frees a slot for.

        A task that waits for the network without a thread (the curl engine, until its head
        comes) is parked: this worker goes on to other work, and the task's waiter puts
        :meth:`_resume` on the pool when it wakes.
        """
        next_task: Task | None = task
        while next_task is not None:
            run = next_task._run
            assert isinstance(run, TaskRun)  # only in-process tasks have workers
            download = run.machine.kind is TaskKind.DOWNLOAD
            steps = run.steps(
                self._transport, self._download_directory if download else None, self.cancelling
            )
            if not self._advance(next_task, steps):
                return  # parked
            next_task = self._ended(next_task)

    def _resume(self, task: Task, steps: Steps[None]) -> None:
        """A parked task's waiter woke: run it on (this worker) until it waits again or ends."""
        if self._advance(task, steps):
            following = self._ended(task)
            if following is not None:
                self._work(following)

    def _advance(self, task: Task, steps: Steps[None]) -> bool:
        """Run ``steps`` until they end (True) or wait (False: parked until the waiter wakes).

        A wait that ends within ``PARK_AFTER`` (the next chunk of a body being downloaded, a
        head from a near server) is waited out on this thread: parking and waking costs a
        hand-off to another worker, more than such a short wait; a longer one parks.
        """
        while True:
            try:
                waiter = steps.send(None)
            except StopIteration:
                return True
            except BaseException:  # not an engine error (those end the task): pass the baton on
                mine = self._ended(task)
                if mine is not None:
                    self.pool.submit(functools.partial(self._work, mine))
                raise
            if not waiter.block(PARK_AFTER):
                break
        waiter.subscribe(
            functools.partial(self.pool.submit, functools.partial(self._resume, task, steps))
        )
        return False

    def _ended(self, task: Task) -> Task | None:
        """``task``'s run is over (it reported its end to its machine): free its slot, and
        return a task that may start now for this worker to run. The one place a run's end is
        seen (a run that ended in a retry queues its task again, for its retry time)."""
        run = task._run
        again = isinstance(run, TaskRun) and run.requeue_at is not None and not run.machine.finished
        return self.schedule(full=False, ended=task, again=again)

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
