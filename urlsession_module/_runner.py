"""Running a session's in-process tasks: the scheduler's answers put to work on threads.

The rules of who starts when are :mod:`._scheduler`'s; this is the IO around them: the shared
worker threads that run transfers (a task that waits for the network without a thread is
parked meanwhile, or goes on on the engine's network thread when its answer comes there, see
:meth:`Runner._advance`), and the timer that wakes the scheduler when an ``earliestBeginDate``
comes due. A background session has none of this: its tasks run in the
transfer process.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from ._dispatch import HeldWakeups, WorkerPool
from ._scheduler import Hold, Plan, Scheduler
from ._state import TaskKind, TaskState
from ._task import Task, TaskRun
from ._transport import Transport
from ._transport._ratelimit import paced
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
        gather = getattr(transport.engine, "gather_turns", None)
        if gather is not None:  # tasks go on on its network thread: a wake-up per burst
            gather(HeldWakeups)
        self._timer: threading.Timer | None = None
        self._timer_due = 0.0
        self._closed = False
        # invalidateAndCancel() is on its way: a task a worker takes now must not reach the network.
        self.cancelling = False

    def add(self, task: Task) -> None:
        """Queue a new task and start what may start (it, if its host has a free slot)."""
        self.schedule(full=False, added=task)  # (queued under the same lock hold)

    def reprioritized(self, task: Task) -> None:
        with self._lock:
            self._scheduler.update(task)  # False once it started: then nothing to re-order

    def schedule(
        self,
        full: bool = True,
        ended: Task | None = None,
        again: bool = False,
        added: Task | None = None,
    ) -> list[Task]:
        """Start what may start now, and arm the timer for the next task that comes due.

        ``full=False`` (a task was added, or one ended and freed its slot) reads each host's
        queue only up to the first task that must wait; a full pass (cancel, resume, the timer)
        also lets out a cancelled task deep in a queue (it starts at once, only to report -999).

        ``ended``: a task that just ended (its slot is freed under the same lock hold); the
        tasks that may start now are returned, for the thread that ran it to run or hand out
        (:meth:`_run_from`: one thread hand-off less per task, which is most of a small task's
        cost). Otherwise they go to the worker pool.
        """
        with self._lock:
            if added is not None:
                self._scheduler.add(added)
            if ended is not None:
                self._scheduler.finished(ended)
                if again:  # its run ended in a retry: it waits its turn (and time) again
                    self._scheduler.add(ended)
            now = time.time()
            due = None if added is None or ended is not None else _begin(added)
            plan: Plan[Task]
            if due is not None and due > now and added is not None and _hold(added) is Hold.READY:
                # A task added for later: it cannot start now, and adding it lets no other task
                # start, so there is no pass to make (a pass reads past every dated task of its
                # host: thousands of tasks queued for later made each new one cost milliseconds).
                # The timer is already armed for any earlier date.
                plan = Plan([], due)
            else:
                plan = self._scheduler.take(now, full=full)
            ready = plan.start
            if ended is None:
                for task in ready:
                    self.pool.submit(functools.partial(self._work, task))
                ready = []
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
        return ready

    def _timer_fired(self) -> None:
        with self._lock:
            if self._timer is threading.current_thread():  # not a timer replaced meanwhile
                self._timer = None
        self.schedule()

    def _steps(self, task: Task) -> Steps[None]:
        run = task._run
        assert isinstance(run, TaskRun)  # only in-process tasks have workers
        download = run.machine.kind is TaskKind.DOWNLOAD
        return run.steps(
            self._transport, self._download_directory if download else None, self.cancelling
        )

    def _work(self, task: Task) -> None:
        """A worker's job: this task, then whatever the end of each frees a slot for."""
        self._run_from(task, self._steps(task), here=False)

    def _resume(self, task: Task, steps: Steps[None]) -> None:
        """A parked task's waiter woke: run it on (this worker) until it waits again or ends."""
        self._run_from(task, steps, here=False)

    def _resume_here(self, task: Task, steps: Steps[None]) -> None:
        """A task's waiter woke on the engine's network thread (``run_on_wake``): go on there."""
        self._run_from(task, steps, here=True)

    def _run_from(self, task: Task, steps: Steps[None], here: bool) -> None:
        """Run ``task`` from ``steps`` until it waits or ends, then the tasks its end lets start.

        A worker keeps the first of those and hands the others to the pool (each may block its
        thread: the urllib3 engine). On a network thread (``here``) the tasks that may run there
        (:meth:`_light`) start at once, one after the other: each runs only until its request
        is handed to libcurl; the others go to the pool.
        """
        todo: list[tuple[Task, Steps[None]]] = [(task, steps)]
        while todo:
            task, steps = todo.pop(0)
            if not self._advance(task, steps, here):
                continue  # parked
            ready = self._ended(task)
            if not here and ready:
                todo.append((ready[0], self._steps(ready[0])))
                ready = ready[1:]
            for following in ready:
                if here and self._light(following):
                    todo.append((following, self._steps(following)))
                else:
                    self.pool.submit(functools.partial(self._work, following))

    def _light(self, task: Task, waiter: object = None) -> bool:
        """Whether ``task`` may go on on an engine's network thread when its waiter wakes there.

        Its steps then run there until they end or reach an ``OFF_LOOP`` (a step that may
        block: a store's file, the cache's SQLite, a wait while suspended). Not a download
        (its file is opened, moved and synced), unless the waiter says the steps after it
        only report its body's bytes (``light``); not a paced task (its driver sleeps between
        blocks), not a suspended one.
        """
        run = task._run
        if not isinstance(run, TaskRun):
            return False
        machine = run.machine
        return (
            (machine.kind is not TaskKind.DOWNLOAD or getattr(waiter, "light", False))
            and machine.state is TaskState.RUNNING
            and not paced(run)
        )

    def _advance(self, task: Task, steps: Steps[None], here: bool = False) -> bool:
        """Run ``steps`` until they end (True) or wait (False: parked until the waiter wakes).

        A waiter that can go on with the task on the thread that wakes it (``run_on_wake``:
        the curl engine's network thread) takes it there, for a task that may run there: no
        worker waits for it, and no thread is woken when its answer comes. Otherwise, a wait
        that ends within ``PARK_AFTER`` (the next chunk of a body being downloaded, a head from
        a near server) is waited out on a worker: parking and waking costs a hand-off to
        another worker, more than such a short wait; a longer one parks. On the network
        thread (``here``) nothing is waited out: the task goes to a worker.
        """
        while True:
            try:
                waiter = steps.send(None)
            except StopIteration:
                return True
            except BaseException:  # not an engine error (those end the task): pass the baton on
                for following in self._ended(task):
                    self.pool.submit(functools.partial(self._work, following))
                raise
            on_wake = getattr(waiter, "run_on_wake", None)
            if on_wake is not None and self._light(task, waiter):
                on_wake(functools.partial(self._resume_here, task, steps))
                return False
            if here:  # a step that may block, or a waiter only a worker can wait for
                self.pool.submit(functools.partial(self._resume, task, steps))
                return False
            if not waiter.block(PARK_AFTER):
                break
        waiter.subscribe(
            functools.partial(self.pool.submit, functools.partial(self._resume, task, steps))
        )
        return False

    def _ended(self, task: Task) -> list[Task]:
        """``task``'s run is over (it reported its end to its machine): free its slot, and
        return the tasks that may start now, for this thread to run or hand out. The one
        place a run's end is seen (a run that ended in a retry queues its task again, for its
        retry time)."""
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
