"""``Session``: starts tasks, keeps the registry, delivers events in order, invalidates.

A call is checked completely (``_arguments``) before anything starts; an in-process task gets a
:class:`~._state.TaskMachine` and waits in the session's :class:`~._scheduler.Scheduler` (at most
``httpMaximumConnectionsPerHost`` per host, higher ``priority`` first, not before its
``earliestBeginDate``) until a worker thread runs it (``_task.TaskRun``). What the machine answers
goes to the session's serial delivery queue, where it becomes an ``Event`` on the Task proxy and
bubbles to the session and the module. A background session's tasks run in the transfer process;
their events arrive over the link and take the same queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import attrs

from ._arguments import (
    DATA_KEYS as _DATA_KEYS,  # noqa: F401  (the names tests/reliability reads the key sets by)
)
from ._arguments import (
    DOWNLOAD_KEYS as _DOWNLOAD_KEYS,  # noqa: F401
)
from ._arguments import TaskArgs, check_callback, dispatcher_for, task_args
from ._background._host import BackgroundHost, RemoteControl, RemoteTaskView
from ._background._snapshot import TaskSnapshot
from ._configuration import ConfigValues, SessionConfiguration
from ._delivery import Delivery, default_queue
from ._dispatch import ThreadDispatcher
from ._events import Event, Payload
from ._proxy import Proxy
from ._runner import Runner
from ._state import TaskKind, TaskMachine
from ._storage import Blob, background_key, part_name, private_dir, safe_name, state_dir
from ._stores import Stores, memory_stores, persistent_stores, redact
from ._task import Task, new_task_identifier
from ._transport import Transport, with_system_proxies
from ._transport._ratelimit import set_session_rate
from ._validate import bytes_per_second
from .exceptions import SessionInvalidatedError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._types import DataTaskArgs, DownloadTaskArgs, UploadTaskArgs

__all__ = ["Session", "Task"]

log = logging.getLogger(__name__)

_FINISHED_KEPT = 1000  # finished tasks getTask() still finds


BACKGROUND_FLUSH_WAIT = 60.0  # flush() on a background session: the journal's answer, at most


class Session(Proxy):
    """``Modules.URLSession.Session``: starts tasks and delivers their events in order."""

    _api_name = "Modules.URLSession.Session"
    _creation_only = frozenset({"configuration"})

    def __init__(
        self, config: ConfigValues, *, parent: Proxy | None = None, delegateQueue: Any = None
    ) -> None:
        super().__init__(parent)
        config = with_system_proxies(config)  # the environment's proxies, read now (issue 15)
        self._config = config
        # None: the module-wide default (setDefaultDelegateQueue), if any
        queue = default_queue() if delegateQueue is None else delegateQueue
        loop = queue if isinstance(queue, asyncio.AbstractEventLoop) else None
        self._dispatcher = Delivery(dispatcher_for(queue), loop)
        self._transport = Transport(config, _stores_for(config))
        self._lock = threading.Condition()
        self._tasks: dict[
            str, Task
        ] = {}  # outstanding: created, sessioncompleted not yet delivered
        self._runner = Runner(
            self._transport, config.httpMaximumConnectionsPerHost, self._download_directory
        )
        self._task_waiters = 0  # threads in Task.wait(): each task's end must wake them
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
                self._runner.close()  # (its hold on the shared workers: no thread stays either)
                self._transport.close()
                self._dispatcher.close()
                raise

    # -- properties ------------------------------------------------------------------------------

    @property
    def configuration(self) -> SessionConfiguration:
        """The session's own copy: changing it does not change the session."""
        return SessionConfiguration._from_values(self._config)

    def setMaximumBytesPerSecond(self, rate: int | None) -> None:
        """Change the session's ``maximumBytesPerSecond`` (None: no limit) while it runs: its
        running tasks' shares follow within a block, later tasks start with it. The one
        configuration value that can change after creation (docs/unreliable-networks.md); a
        background session's transfer process is told, and keeps it across its restarts."""
        rate = bytes_per_second("maximumBytesPerSecond", rate)
        self._config = attrs.evolve(self._config, maximumBytesPerSecond=rate)
        if self._remote is not None:
            if not self._invalidated:  # (an invalidated session has let go of the process)
                self._remote.set_rate(self._config)
        else:
            set_session_rate(self._transport, rate)

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
        return self._start(self._task_args("dataTask", TaskKind.DATA, args, kwargs))

    @overload
    def uploadTask(self, args: UploadTaskArgs, /) -> str: ...
    @overload
    def uploadTask(self, /, **kwargs: Unpack[UploadTaskArgs]) -> str: ...
    def uploadTask(self, *args: Any, **kwargs: Any) -> str:
        """Start an upload; ``data`` is a Blob, bytes, or a file path streamed from disk."""
        return self._start(self._task_args("uploadTask", TaskKind.UPLOAD, args, kwargs))

    @overload
    def downloadTask(self, args: DownloadTaskArgs, /) -> str: ...
    @overload
    def downloadTask(self, /, **kwargs: Unpack[DownloadTaskArgs]) -> str: ...
    def downloadTask(self, *args: Any, **kwargs: Any) -> str:
        """Start a download streamed to a private file; ``downloadcompleted`` hands over a Blob."""
        a = self._task_args("downloadTask", TaskKind.DOWNLOAD, args, kwargs)
        self.downloadDirectory  # noqa: B018  (made now, so a failure to make it raises here)
        return self._start(a)

    def _task_args(
        self, name: str, kind: TaskKind, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TaskArgs:
        if self._invalidating:
            raise SessionInvalidatedError(f"{name}() called on an invalidated session")
        return task_args(name, kind, args, kwargs, self._config)

    def _start(self, a: TaskArgs) -> str:
        if self._remote is not None:
            return self._remote.create(
                a.kind, a.request, a.priority, a.description, a.begin, a.resume, a.rate
            )
        identifier = new_task_identifier()
        machine = TaskMachine(identifier, a.kind, a.request, self._config.identifier)
        task = Task(self, machine, priority=a.priority, description=a.description, begin=a.begin)
        task._run_extras(a.resume, a.rate)  # resume data, bandwidth limit (issue 16)
        with self._lock:
            if self._invalidating:
                raise SessionInvalidatedError(
                    f"{a.kind.value}Task() called on an invalidated session"
                )
            self._tasks[identifier] = task
        if log.isEnabledFor(logging.DEBUG):  # (redact parses the URL: not for every task)
            log.debug("task %s: %s %s", identifier, a.request.method, redact(a.request.url))
        self._runner.add(task)
        return identifier

    # -- scheduling: in _runner (the threads) and _scheduler (the rules) --------------------------

    def _schedule(self) -> None:
        """A task was cancelled or resumed: it may start (or report) now."""
        self._runner.schedule()

    def _reprioritized(self, task: Task) -> None:
        self._runner.reprioritized(task)

    def _download_directory(self) -> str:
        return str(self.downloadDirectory)

    # -- delivery --------------------------------------------------------------------------------

    def _enqueue(self, task: Task, payload: Payload) -> None:
        self._dispatcher.submit(lambda: self._deliver(task, payload))

    def _deliver(self, task: Task, payload: Payload) -> None:
        self._deliver_fields(task, payload.name, payload.to_dict())

    def _deliver_fields(self, task: Task, name: str, fields: dict[str, Any]) -> None:
        """The one path from a task's event (in-process, or as the transfer process sent it) to
        its listeners: the file handed over as a Blob, and the task's end recorded."""
        if name == "downloadcompleted":
            fields["data"] = Blob(
                path=fields.pop("location"), mimeType=fields.pop("mimeType", None)
            )
        task._dispatch_event(Event._owning(name, task, fields))
        if name == "sessioncompleted":
            if self._invalidating:
                with self._lock:
                    last = len(self._tasks) == 1 and task.taskIdentifier in self._tasks
                if last:  # workers leave as they finish, so invalidation can join them at once
                    self._runner.pool.close()
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
        self, call: str, predicate: Callable[[], bool], timeout: Any, *, one_task: bool = False
    ) -> bool:
        """Wait for ``predicate`` without polling (see ``Delivery.wait``).

        ``one_task``: the predicate is about one task, so every task's end must wake the waiter
        (otherwise only the last one's does, and invalidation's).
        """

        def block(seconds: float) -> None:
            with self._lock:
                self._task_waiters += one_task
                try:
                    self._lock.wait_for(predicate, seconds)
                finally:
                    self._task_waiters -= one_task

        return self._dispatcher.wait(call, predicate, timeout, block)

    def waitForTasks(self, timeout: float | None = None) -> bool:
        """Block until every task so far has delivered its ``sessioncompleted``; False on timeout."""
        # A background session also waits for what its transfer process sent (the replay).
        return self._wait_until(
            "waitForTasks",
            lambda: not self._tasks and (self._remote is None or self._remote.idle),
            timeout,
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
        """Write stores to disk, drop idle connections, then call back on the delivery queue.

        On a background session it first waits (bounded) until every task handed over so far
        is in the transfer process's journal: the strict promise, for hosts that want it.
        """
        check_callback(callback)
        if self._remote is not None:
            self._remote.flush(BACKGROUND_FLUSH_WAIT)
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
        check_callback(callback)
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
        self._cancelling = self._runner.cancelling = True
        self.finishTasksAndInvalidate()
        for task in self.tasks:
            task.cancel()
        self._schedule()  # pending tasks that were cancelled start only to report -999

    def _complete_invalidation(self) -> None:
        with self._lock:
            if self._invalidated:
                return
            self._invalidated = True
        # Idle workers leave now, busy ones as their job ends; invalidation returns once they have.
        self._runner.close()
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
        ok = self._wait_until("waitForInvalidation", lambda: self._invalidated, timeout)
        queue = self._dispatcher.queue
        if ok and isinstance(queue, ThreadDispatcher) and not self._dispatcher.delivering_here:
            queue.join(timeout or 5.0)
        return ok

    def __repr__(self) -> str:
        return f"<Session {self._key} tasks={len(self._tasks)}>"


def _stores_for(config: ConfigValues) -> Stores:
    """Default and background sessions share the persistent stores; ephemeral ones own theirs."""
    if config.type == "ephemeral":
        return memory_stores()
    try:
        return persistent_stores(state_dir())
    except OSError as exc:  # an unwritable state directory: keep working, forget on exit
        log.warning("session stores kept in memory: the state directory is unusable (%s)", exc)
        return memory_stores()
