"""``Session`` and ``Task`` proxies: argument checks, the task registry, scheduling, invalidation.

A session validates a call completely before anything starts, builds a plain-data
:class:`~._state.Request`, gives the task a :class:`~._state.TaskMachine`, and schedules it on a
worker thread (at most ``httpMaximumConnectionsPerHost`` per host; the rest wait their turn,
higher ``priority`` first). The worker runs the transport, which feeds the machine through
:class:`_TaskRun`; what the machine answers goes to the session's serial delivery queue, where it
becomes an ``Event`` on the Task proxy and bubbles to the session and the module.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import datetime as _dt
import functools
import itertools
import json
import logging
import math
import mimetypes
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from . import _validate as check
from ._background._host import BackgroundHost, RemoteControl, RemoteTaskView
from ._background._snapshot import TaskSnapshot
from ._configuration import ConfigValues, SessionConfiguration, credential_value
from ._dispatch import Dispatcher, EventQueue, LoopDispatcher, ThreadDispatcher, WorkerPool
from ._driver import TaskDriver
from ._events import DownloadCompleted, Event, Payload, SessionCompleted
from ._proxy import Proxy
from ._state import (
    Cancel,
    Failed,
    Input,
    Request,
    ResponseInfo,
    Resume,
    Suspend,
    TaskKind,
    TaskMachine,
    TaskState,
)
from ._storage import Blob, background_key, part_name, private_dir, safe_name, state_dir
from ._stores import Stores, memory_stores, persistent_stores, redact
from ._transport import Transport, build_request
from ._urls import origin
from .exceptions import (
    ErrorCode,
    InvalidArgumentTypeError,
    InvalidArgumentValueError,
    SessionInvalidatedError,
    TransferError,
    UploadFileNotFoundError,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._types import DataTaskArgs, DownloadTaskArgs, UploadTaskArgs

__all__ = ["Session", "Task"]

log = logging.getLogger(__name__)

_task_numbers = itertools.count(1)
# Identifiers must never repeat among the tasks one host can see, across its sessions too: a
# process-wide counter, prefixed with a per-process token so two hosts' ids never meet either.
_PROCESS_TOKEN = uuid.uuid4().hex[:8]


def _new_task_identifier() -> str:
    return f"{_PROCESS_TOKEN}-{next(_task_numbers)}"


_FINISHED_KEPT = 1000  # finished tasks getTask() still finds
_MAX_TIMER_WAIT = 24 * 3600.0  # the begin-date timer re-arms at least daily
_WAIT_SLICE = 0.25  # a waiting host thread wakes this often to run pending signal handlers

_DATA_KEYS = frozenset(
    {
        "url",
        "method",
        "data",
        "requestHeaders",
        "taskDescription",
        "priority",
        "earliestBeginDate",
        "credential",
    }
)
_DOWNLOAD_KEYS = frozenset(
    {"url", "requestHeaders", "taskDescription", "priority", "earliestBeginDate", "credential"}
)


class Task(Proxy):
    """``Modules.URLSession.Task``: one transfer, with URLSessionTask's properties and controls."""

    _api_name = "Modules.URLSession.Task"

    def __init__(
        self,
        session: Session,
        machine: TaskMachine | RemoteTaskView,
        *,
        priority: float,
        description: str | None,
        begin: float | None,
        remote: RemoteControl | None = None,
    ) -> None:
        super().__init__(parent=session)
        self._session = session
        self._machine = machine
        self._run: _TaskRun | RemoteControl
        if isinstance(machine, TaskMachine):
            self._run = _TaskRun(self, machine)
        else:
            assert remote is not None
            self._run = remote
        self._priority = priority
        self.taskDescription = description
        self._begin = begin
        self._done = threading.Event()  # set once sessioncompleted was delivered

    # -- identity and progress -------------------------------------------------------------------

    @property
    def taskIdentifier(self) -> str:
        return self._machine.identifier

    @property
    def kind(self) -> str:
        return self._machine.kind.value

    @property
    def state(self) -> TaskState:
        return self._machine.state

    @property
    def priority(self) -> float:
        return self._priority

    @priority.setter
    def priority(self, value: float) -> None:
        self._priority = _priority(value)
        self._session._waiting.dirty = True  # waiting tasks are re-ordered before the next start

    @property
    def earliestBeginDate(self) -> _dt.datetime | None:
        return (
            None
            if self._begin is None
            else _dt.datetime.fromtimestamp(self._begin, _dt.timezone.utc)
        )

    @property
    def countOfBytesReceived(self) -> int:
        return self._machine.count_received

    @property
    def countOfBytesExpectedToReceive(self) -> int:
        return self._machine.count_expected_to_receive

    @property
    def countOfBytesSent(self) -> int:
        return self._machine.count_sent

    @property
    def countOfBytesExpectedToSend(self) -> int:
        return self._machine.count_expected_to_send

    @property
    def originalRequest(self) -> Request:
        return self._machine.original_request

    @property
    def currentRequest(self) -> Request:
        return self._machine.current_request

    @property
    def response(self) -> ResponseInfo | None:
        return self._machine.response

    @property
    def error(self) -> TransferError | None:
        return self._machine.error

    # -- control -------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel; the task reports ``sessioncompleted`` with -999 (a finished task ignores it)."""
        self._run.control(Cancel())
        self._session._schedule()  # a task still waiting its turn reports now, not when due

    def suspend(self) -> None:
        """Stop reading: no progress until ``resume()``."""
        self._run.control(Suspend())

    def resume(self) -> None:
        """Continue a suspended task (with Range if its connection had to be let go)."""
        self._run.control(Resume())
        self._session._schedule()  # a task suspended before it started may start now

    def wait(self, timeout: float | None = None) -> bool:
        """Block until this task's ``sessioncompleted`` has been delivered; False on timeout."""
        return self._session._wait_until(self._done.is_set, timeout, one_task=True)

    def __repr__(self) -> str:
        return f"<Task {self.taskIdentifier} {self.kind} {self.state.value}>"


def _priority(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidArgumentValueError(
            "priority", f"'priority' must be a number in [0, 1] (got {value!r})"
        )
    return float(value)


def _begin_date(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return (value if value.tzinfo else value.astimezone()).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InvalidArgumentValueError(
                "earliestBeginDate", f"'earliestBeginDate' must be a finite time (got {value!r})"
            )
        return float(value)
    raise InvalidArgumentTypeError(
        "earliestBeginDate",
        f"'earliestBeginDate' must be a datetime or epoch seconds (got {value!r})",
    )


class _TaskRun(TaskDriver):
    """An in-process task's driver: what its machine answers goes to the session's queue."""

    def __init__(self, task: Task, machine: TaskMachine) -> None:
        super().__init__(machine)
        self._task = task

    def publish(self, event: Input, payloads: list[Payload]) -> None:
        for payload in payloads:
            self._task._session._enqueue(self._task, payload)


class Session(Proxy):
    """``Modules.URLSession.Session``: starts tasks and delivers their events in order."""

    _api_name = "Modules.URLSession.Session"
    _creation_only = frozenset({"configuration"})

    def __init__(
        self, config: ConfigValues, *, parent: Proxy | None = None, delegateQueue: Any = None
    ) -> None:
        super().__init__(parent)
        self._config = config
        self._dispatcher = _make_dispatcher(delegateQueue)
        self._transport = Transport(config, _stores_for(config))
        self._lock = threading.Condition()
        self._tasks: dict[
            str, Task
        ] = {}  # outstanding: created, sessioncompleted not yet delivered
        self._pending: list[Task] = []  # new tasks, not yet placed in their host's queue
        self._waiting = _WaitingTasks()
        self._active: dict[tuple[str, str, int], int] = {}
        self._pool = WorkerPool()
        self._task_waiters = 0  # threads in Task.wait(): each task's end must wake them
        self._timer: threading.Timer | None = None
        self._timer_due = 0.0
        self._invalidating = False
        self._invalidated = False
        self._cancelling = False
        # Finished tasks stay reachable by getTask() for a while (bounded: hosts run for days).
        self._finished: collections.OrderedDict[str, Task] = collections.OrderedDict()
        # Background sessions: the line to the transfer process, replay, acks (_background/_host).
        self._remote: BackgroundHost | None = None
        self._key = (
            background_key(config.identifier or "")
            if config.is_background
            else "default"
            if config.type == "default"
            else f"ephemeral-{uuid.uuid4().hex[:12]}"
        )
        if config.is_background:
            self._remote = BackgroundHost(self, config, state_dir(), self._remote_task)
            try:
                self._remote.start()  # starts the transfer process if need be; replay follows
            except BaseException:  # e.g. a second session with this identifier: nothing stays
                self._transport.close()
                self._dispatcher.close()
                raise

    # -- properties ------------------------------------------------------------------------------

    @property
    def configuration(self) -> SessionConfiguration:
        """The session's own copy: changing it does not change the session."""
        return SessionConfiguration._from_values(self._config)

    @property
    def identifier(self) -> str | None:
        return self._config.identifier

    sessionIdentifier = identifier

    @property
    def tasks(self) -> list[Task]:
        """The outstanding tasks (not yet reported complete), oldest first."""
        with self._lock:
            return list(self._tasks.values())

    def getTask(self, identifier: str) -> Task | None:
        """The task with this identifier (outstanding, or among the last finished), or None."""
        with self._lock:
            return self._tasks.get(identifier) or self._finished.get(identifier)

    @property
    def downloadDirectory(self) -> Path:
        """Where this session's finished downloads wait for the host (private, 0700)."""
        return private_dir(self._downloads_path)

    @property
    def _downloads_path(self) -> Path:
        return state_dir() / "downloads" / self._key

    # -- tasks -----------------------------------------------------------------------------------

    @overload
    def dataTask(self, args: DataTaskArgs, /) -> str: ...
    @overload
    def dataTask(self, /, **kwargs: Unpack[DataTaskArgs]) -> str: ...
    def dataTask(self, *args: Any, **kwargs: Any) -> str:
        """Start a data task; ``data`` as a dict/list goes as JSON, str as UTF-8, bytes as is."""
        return self._task_with_body("dataTask", TaskKind.DATA, _data_body, args, kwargs)

    @overload
    def uploadTask(self, args: UploadTaskArgs, /) -> str: ...
    @overload
    def uploadTask(self, /, **kwargs: Unpack[UploadTaskArgs]) -> str: ...
    def uploadTask(self, *args: Any, **kwargs: Any) -> str:
        """Start an upload; ``data`` is a Blob, bytes, or a file path streamed from disk."""
        return self._task_with_body("uploadTask", TaskKind.UPLOAD, _upload_body, args, kwargs)

    def _task_with_body(
        self,
        name: str,
        kind: TaskKind,
        body_of: Callable[[Any], tuple[bytes | None, str | None, str | None]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> str:
        """Data and upload tasks differ only in what ``data`` may be (and Titanium's name)."""
        a = self._args(name, args, kwargs, _DATA_KEYS)
        url = check.http_url("url", a.get("url"))
        method = check.method("method", a.get("method", "POST"))
        headers = check.header_fields("requestHeaders", a.get("requestHeaders"))
        body, body_path, ctype = body_of(a.get("data"))
        request = build_request(
            method,
            url,
            self._config.headers,
            headers,
            body=body,
            body_path=body_path,
            content_type=ctype,
            credential=credential_value("credential", a.get("credential")),
        )
        return self._start(kind, request, a)

    @overload
    def downloadTask(self, args: DownloadTaskArgs, /) -> str: ...
    @overload
    def downloadTask(self, /, **kwargs: Unpack[DownloadTaskArgs]) -> str: ...
    def downloadTask(self, *args: Any, **kwargs: Any) -> str:
        """Start a download streamed to a private file; ``downloadcompleted`` hands over a Blob."""
        a = self._args("downloadTask", args, kwargs, _DOWNLOAD_KEYS)
        url = check.http_url("url", a.get("url"))
        headers = check.header_fields("requestHeaders", a.get("requestHeaders"))
        request = build_request(
            "GET",
            url,
            self._config.headers,
            headers,
            credential=credential_value("credential", a.get("credential")),
        )
        self.downloadDirectory  # noqa: B018  (made now, so a failure to make it raises here)
        return self._start(TaskKind.DOWNLOAD, request, a)

    def _args(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], known: frozenset[str]
    ) -> dict[str, Any]:
        if self._invalidating:
            raise SessionInvalidatedError(f"{name}() called on an invalidated session")
        a = check.args_dict(name, args, kwargs, known)
        for key in a:
            if key not in known:
                raise InvalidArgumentValueError(
                    key, f"{key!r} is not an argument of {name}() (known: {sorted(known)})"
                )
        return a

    def _start(self, kind: TaskKind, request: Request, a: Mapping[str, Any]) -> str:
        priority = _priority(a.get("priority", 0.5))
        begin = _begin_date(a.get("earliestBeginDate"))
        description = a.get("taskDescription")
        if description is not None and not isinstance(description, str):
            raise InvalidArgumentTypeError(
                "taskDescription", f"'taskDescription' must be a str (got {description!r})"
            )
        if self._remote is not None:
            return self._remote.create(kind, request, priority, description, begin)
        identifier = _new_task_identifier()
        machine = TaskMachine(identifier, kind, request, self._config.identifier)
        task = Task(self, machine, priority=priority, description=description, begin=begin)
        with self._lock:
            if self._invalidating:
                raise SessionInvalidatedError(
                    f"{kind.value}Task() called on an invalidated session"
                )
            self._tasks[identifier] = task
            self._pending.append(task)
        log.debug("task %s: %s %s", identifier, request.method, redact(request.url))
        self._schedule(full=False)
        return identifier

    # -- scheduling: per-host limits, priority, earliestBeginDate ---------------------------------

    def _schedule(
        self, full: bool = True, ended: tuple[str, str, int] | None = None
    ) -> Task | None:
        """Start what may start now: per host, highest priority first, up to the limit.

        ``full=False`` (a task was added, or one ended and freed its slot) only looks at the
        head of each host's queue that has a free slot, so many waiting tasks cost nothing per
        start. A full pass (cancel, resume, the timer) also finds a cancelled task deep in a
        queue (it starts at once, whatever its date or the limit, only to report -999) and
        every task that has become due.

        ``ended``: the host of a task that just ended on a worker (its slot is freed under the
        same lock hold); that worker gets one of the tasks that may start now back, to run it
        itself, rather than hand it to another thread and go idle (one thread hand-off less
        per task, which is most of a small task's cost).
        """
        with self._lock:
            if ended is not None:
                self._active[ended] -= 1
            now = time.time()
            next_begin: float | None = None
            for task in self._pending:
                self._waiting.add(task)
                if task._begin is not None and task._begin > now:
                    next_begin = task._begin if next_begin is None else min(next_begin, task._begin)
            self._pending.clear()
            ready, due = self._waiting.take(
                self._active, self._config.httpMaximumConnectionsPerHost, now, full
            )
            if due is not None:
                next_begin = due if next_begin is None else min(next_begin, due)
            mine = ready.pop(0) if ended is not None and ready else None
            for task in ready:
                self._pool.submit(lambda task=task: self._work(task))  # type: ignore[misc]
            if (
                next_begin is not None
                and not self._invalidated
                and (self._timer is None or next_begin < self._timer_due)
            ):
                if self._timer is not None:  # a task due sooner than the one the timer waits for
                    self._timer.cancel()
                # Capped: a date centuries away must not overflow the timer; it just re-arms.
                delay = min(max(0.0, next_begin - now), _MAX_TIMER_WAIT)
                self._timer = threading.Timer(delay, self._timer_fired)
                self._timer.name = "urlsession-timer"
                self._timer.daemon = True
                self._timer_due = next_begin
                self._timer.start()
        return mine

    def _timer_fired(self) -> None:
        with self._lock:
            if self._timer is threading.current_thread():  # not a timer replaced meanwhile
                self._timer = None
        self._schedule()

    def _work(self, task: Task) -> None:
        """A worker's job: this task, then whatever the end of each frees a slot for."""
        next_task: Task | None = task
        while next_task is not None:
            host = origin(next_task._machine.original_request.url)
            try:
                self._run_task(next_task)
            except BaseException:  # not an engine error (those end the task): pass the baton on
                mine = self._schedule(full=False, ended=host)
                if mine is not None:
                    self._pool.submit(functools.partial(self._work, mine))
                raise
            next_task = self._schedule(full=False, ended=host)

    def _run_task(self, task: Task) -> None:
        run = task._run
        assert isinstance(run, _TaskRun)  # only in-process tasks have workers
        try:
            if self._cancelling and task._machine.state is not TaskState.CANCELING:
                # invalidateAndCancel() is on its way to this task (a worker freed by an earlier
                # one's cancel took it from the queue first): it must not reach the network.
                run.control(Cancel())
            if task._machine.state is TaskState.CANCELING:  # cancelled while it waited its turn
                run.feed(Failed(ErrorCode.CANCELLED))
            else:
                directory = None
                if task._machine.kind is TaskKind.DOWNLOAD:
                    try:
                        directory = str(self.downloadDirectory)
                    except OSError as exc:  # e.g. the directory was replaced by a file meanwhile
                        code = ErrorCode.CANNOT_CREATE_FILE
                        run.feed(Failed(code, f"{code.description} ({exc})"))
                        return
                self._transport.run(
                    run,
                    task._machine.kind,
                    task._machine.original_request,
                    directory,
                    task.taskIdentifier,
                )
        except Exception:  # the machine refused an input: a bug, but the task must still end
            log.exception("task %s: engine error", task.taskIdentifier)
            if not task._machine.finished:
                run.feed(Failed(ErrorCode.UNKNOWN, "internal error"))

    # -- delivery --------------------------------------------------------------------------------

    def _enqueue(self, task: Task, payload: Payload) -> None:
        self._dispatcher.submit(lambda: self._deliver(task, payload))

    def _deliver(self, task: Task, payload: Payload) -> None:
        fields = payload.to_dict()
        if isinstance(payload, DownloadCompleted):
            del fields["location"], fields["mimeType"]
            fields["data"] = Blob(path=payload.location, mimeType=payload.mimeType)
        task._dispatch_event(Event(payload.name, task, fields))
        if isinstance(payload, SessionCompleted):
            if self._invalidating:
                with self._lock:
                    last = len(self._tasks) == 1 and task.taskIdentifier in self._tasks
                if last:  # workers leave as they finish, so invalidation can join them at once
                    self._pool.close()
            self._task_done(task)

    def _task_done(self, task: Task) -> None:
        with self._lock:
            self._tasks.pop(task.taskIdentifier, None)
            self._finished[task.taskIdentifier] = task
            while len(self._finished) > _FINISHED_KEPT:
                self._finished.popitem(last=False)
            task._done.set()
            finish = self._invalidating and not self._tasks and not self._invalidated
            if not self._tasks or self._task_waiters:  # waitForTasks wakes once, not per task
                self._lock.notify_all()
        task._drop_listeners()  # nothing fires on a finished task again
        if finish:
            self._complete_invalidation()

    def _wait_until(
        self, predicate: Callable[[], bool], timeout: float | None, *, one_task: bool = False
    ) -> bool:
        """Wait for ``predicate`` without polling; a host-drained queue is drained meanwhile.

        ``one_task``: the predicate is about one task, so every task's end must wake the waiter
        (otherwise only the last one's does, and invalidation's).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not predicate():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            # In slices: a signal the kernel gave another thread (Ctrl-C) is handled only when
            # this thread runs Python again, and a lock wait does not end for it.
            step = _WAIT_SLICE if remaining is None else min(remaining, _WAIT_SLICE)
            if isinstance(self._dispatcher, EventQueue):
                self._dispatcher.drain(timeout=step)
            else:
                with self._lock:
                    self._task_waiters += one_task
                    try:
                        self._lock.wait_for(predicate, step)
                    finally:
                        self._task_waiters -= one_task
        return True

    def waitForTasks(self, timeout: float | None = None) -> bool:
        """Block until every task so far has delivered its ``sessioncompleted``; False on timeout."""
        # A background session also waits for what its transfer process sent (the replay).
        return self._wait_until(
            lambda: not self._tasks and (self._remote is None or self._remote.idle), timeout
        )

    # -- background sessions: Task proxies for the transfer process's tasks ----------------------

    def _remote_task(self, view: RemoteTaskView, snap: TaskSnapshot, remote: RemoteControl) -> Task:
        return Task(
            self,
            view,
            priority=snap.priority,
            description=snap.description,
            begin=snap.begin_at,
            remote=remote,
        )

    # -- stores ----------------------------------------------------------------------------------

    def flush(self, callback: Callable[[dict[str, Any]], Any] | None = None) -> None:
        """Write stores to disk, drop idle connections, then call back on the delivery queue."""
        _check_callback(callback)
        self._flush_stores()
        self._callback(callback)

    def _flush_stores(self) -> None:
        try:
            self._transport.stores.flush()
        except (OSError, sqlite3.Error):  # the callback still comes: nothing was lost in memory
            log.exception("session %s: flushing the stores failed", self._key)
        self._transport.clear_idle()

    def reset(self, callback: Callable[[dict[str, Any]], Any] | None = None) -> None:
        """Empty the stores, remove the session's files (unclaimed downloads too), flush, call back."""
        _check_callback(callback)
        try:
            self._transport.stores.clear()  # cookies, cache, credentials (shared ones for all)
        except (OSError, sqlite3.Error):
            log.exception("session %s: emptying the stores failed", self._key)
        directory = self._downloads_path
        with self._lock:
            busy = [t.taskIdentifier for t in self._tasks.values()]
        # An outstanding download's files (its .part, or the finished file whose
        # downloadcompleted is still on its way) belong to that task: leave them be. Matched
        # exactly: a substring test would let task "x-2" shield the files of task "x-26".
        spared = {part_name(b) for b in busy}
        prefixes = tuple(f"{safe_name(b)}-" for b in busy)
        if directory.exists():
            for entry in directory.iterdir():
                if entry.name in spared or (prefixes and entry.name.startswith(prefixes)):
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        self._flush_stores()
        self._callback(callback)

    def _callback(self, callback: Callable[[dict[str, Any]], Any] | None) -> None:
        if callback is None:
            return

        def call() -> None:
            try:
                callback({"completed": True})
            except Exception:
                log.exception("flush/reset callback raised")

        self._dispatcher.submit(call)

    # -- invalidation ----------------------------------------------------------------------------

    def finishTasksAndInvalidate(self) -> None:
        """No new tasks; running ones finish and report; then listeners are dropped. Returns now."""
        with self._lock:
            if self._invalidating:
                return
            self._invalidating = True
            idle = not self._tasks
        if idle:
            self._dispatcher.submit(self._complete_invalidation)

    def invalidateAndCancel(self) -> None:
        """Cancel every outstanding task (each reports -999), then invalidate."""
        self._cancelling = True
        self.finishTasksAndInvalidate()
        for task in self.tasks:
            task.cancel()
        self._schedule()  # pending tasks that were cancelled start only to report -999

    def _complete_invalidation(self) -> None:
        with self._lock:
            if self._invalidated:
                return
            self._invalidated = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        # Idle workers leave now, busy ones as their job ends; invalidation returns once they have.
        self._pool.close()
        self._pool.join(5.0)
        self._transport.close()
        if self._remote is not None:
            self._remote.detach(cancel=self._cancelling)
        if self._config.type == "ephemeral":
            # An ephemeral session's folder is its own: gone with it, unless downloads the host
            # has not collected yet are in it (they stay until moved, as SPEC 5 says).
            with contextlib.suppress(OSError):
                self._downloads_path.rmdir()
        self._drop_listeners()
        self._dispatcher.close()
        with self._lock:
            self._lock.notify_all()
        log.debug("session %s invalidated", self._key)

    @property
    def invalidated(self) -> bool:
        """True once invalidation finished: listeners dropped, threads and connections released."""
        return self._invalidated

    def waitForInvalidation(self, timeout: float | None = None) -> bool:
        """Block until invalidation has completed (see ``finishTasksAndInvalidate``)."""
        ok = self._wait_until(lambda: self._invalidated, timeout)
        if ok and isinstance(self._dispatcher, ThreadDispatcher):
            self._dispatcher.join(timeout or 5.0)
        return ok

    def __repr__(self) -> str:
        return f"<Session {self._key} tasks={len(self._tasks)}>"


class _WaitingTasks:
    """Tasks waiting for a connection: one queue per host, highest priority first, then FIFO.

    Only the session touches it, under its lock. ``dirty`` is set when a task's priority
    changes; the queues are re-sorted before the next start.
    """

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str, int], list[tuple[float, int, Task]]] = {}
        self._arrivals = itertools.count()
        self.dirty = False

    def add(self, task: Task) -> None:
        host = origin(task._machine.original_request.url)
        queue = self._queues.setdefault(host, [])
        entry = (-task._priority, next(self._arrivals), task)
        if not queue or entry[:2] > queue[-1][:2]:
            queue.append(entry)
        else:
            bisect.insort(queue, entry, key=lambda e: e[:2])

    def take(
        self, active: dict[tuple[str, str, int], int], limit: int, now: float, full: bool
    ) -> tuple[list[Task], float | None]:
        """Tasks to start now (counted in ``active``), and when the next dated one is due."""
        if self.dirty:
            self.dirty = False
            for host, queue in self._queues.items():
                self._queues[host] = sorted(
                    ((-t._priority, n, t) for _, n, t in queue), key=lambda e: e[:2]
                )
        ready: list[Task] = []
        due: float | None = None
        for host in list(self._queues):
            queue = self._queues[host]
            free = limit - active.get(host, 0)
            if free <= 0 and not full:
                continue
            i = 0
            while i < len(queue):
                task = queue[i][2]
                state = task._machine.state
                cancelled = state is TaskState.CANCELING
                if state is TaskState.SUSPENDED:
                    i += 1  # takes no slot until it is resumed
                    continue
                if not cancelled and task._begin is not None and task._begin > now:
                    due = task._begin if due is None else min(due, task._begin)
                    i += 1
                    continue
                if cancelled or free > 0:
                    del queue[i]
                    active[host] = active.get(host, 0) + 1
                    free -= 1
                    ready.append(task)
                    continue
                if not full:
                    break
                i += 1
            if not queue:
                del self._queues[host]
        return ready, due


def _stores_for(config: ConfigValues) -> Stores:
    """Default and background sessions share the persistent stores; ephemeral ones own theirs."""
    if config.type == "ephemeral":
        return memory_stores()
    try:
        return persistent_stores(state_dir())
    except OSError as exc:  # an unwritable state directory: keep working, forget on exit
        log.warning("session stores kept in memory: the state directory is unusable (%s)", exc)
        return memory_stores()


def _make_dispatcher(queue: Any) -> Dispatcher:
    if queue is None:
        return ThreadDispatcher()
    if isinstance(queue, EventQueue):
        return queue
    if isinstance(queue, asyncio.AbstractEventLoop):
        return LoopDispatcher(queue)
    raise InvalidArgumentTypeError(
        "delegateQueue",
        f"'delegateQueue' must be None, an asyncio loop or an EventQueue (got {queue!r})",
    )


def _check_callback(callback: object) -> None:
    if callback is not None and not callable(callback):
        raise InvalidArgumentTypeError(
            "callback", f"'callback' must be callable (got {callback!r})"
        )


def _data_body(data: Any) -> tuple[bytes | None, str | None, str | None]:
    """A data task's body: JSON for dict/list, UTF-8 for str, bytes or a Blob as is."""
    if data is None:
        return None, None, None
    if isinstance(data, (dict, list)):
        try:
            return json.dumps(data).encode(), None, "application/json"
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentTypeError(
                "data", f"'data' must be JSON-serializable ({exc})"
            ) from None
    if isinstance(data, str):
        return data.encode(), None, "text/plain; charset=utf-8"
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), None, "application/octet-stream"
    if isinstance(data, Blob):
        if data.nativePath is not None:
            _must_exist(data.nativePath)
            return None, data.nativePath, data.mimeType
        return data.read(), None, data.mimeType
    raise InvalidArgumentTypeError(
        "data", f"'data' must be a dict, list, str, bytes or Blob (got {type(data).__name__})"
    )


def _upload_body(data: Any) -> tuple[bytes | None, str | None, str | None]:
    """An upload's body: a Blob or bytes as is, or a file path streamed from disk."""
    if data is None:
        raise InvalidArgumentValueError(
            "data", "'data' is required for an upload (a Blob, bytes or file path)"
        )
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        _must_exist(path)
        return None, path, mimetypes.guess_type(path)[0] or "application/octet-stream"
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), None, "application/octet-stream"
    if isinstance(data, Blob):
        return _data_body(data)
    raise InvalidArgumentTypeError(
        "data", f"'data' must be a Blob, bytes or a file path (got {type(data).__name__})"
    )


def _must_exist(path: str) -> None:
    if not os.path.isfile(path):
        raise UploadFileNotFoundError(2, f"'data' names a file that does not exist: {path!r}", path)
    if not os.access(path, os.R_OK):
        raise InvalidArgumentValueError(
            "data", f"'data' names a file that cannot be read: {path!r}"
        )
