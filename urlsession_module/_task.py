"""``Task``, the proxy a host holds for one transfer, and :class:`TaskRun`, what runs it.

A task's state, counters and event order belong to its :class:`~._state.TaskMachine`; the proxy
only reads them and forwards the user's controls. An in-process task's controls go to its
:class:`TaskRun` (a :class:`~._driver.TaskDriver` whose payloads go to the session's delivery
queue); a background task's go to the transfer process, which runs its machine.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import os
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._arguments import check_callback, priority_value
from ._events import Payload
from ._proxy import Proxy
from ._state import (
    Cancel,
    Failed,
    Input,
    Request,
    ResponseInfo,
    Resume,
    Suspend,
    TaskMachine,
    TaskState,
)
from ._transport._resume import ResumeData
from ._transport._unreliable import UnreliableDriver
from ._transport._wire import Steps, drive
from .exceptions import ErrorCode, InvalidArgumentValueError, TransferError

if TYPE_CHECKING:
    from ._background._host import RemoteControl, RemoteTaskView
    from ._session import Session
    from ._transport import Transport

__all__ = ["Task", "TaskRun", "new_task_identifier"]

log = logging.getLogger(__name__)

_task_numbers = itertools.count(1)
# Identifiers must never repeat among the tasks one host can see, across its sessions too: a
# process-wide counter, prefixed with a per-process token so two hosts' ids never meet either.
_PROCESS_TOKEN = uuid.uuid4().hex[:8]


def new_task_identifier() -> str:
    return f"{_PROCESS_TOKEN}-{next(_task_numbers)}"


class _Done:
    """Whether a task's ``sessioncompleted`` was delivered. Set and read under the session's
    lock, whose condition is what waiters wait on: a flag, not a ``threading.Event`` (which
    made its own lock and condition per task)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class _Controls(Protocol):
    def control(self, event: Input) -> None: ...


class Task(Proxy):
    """``Modules.URLSession.Task``: one transfer, with URLSessionTask's properties and controls."""

    _api_name = "Modules.URLSession.Task"
    _session: Session
    _machine: TaskMachine | RemoteTaskView
    _run: _Controls
    _priority: float
    taskDescription: str | None
    _begin: float | None
    _done: _Done

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
        # Straight into the instance dict: Proxy.__setattr__'s creation-only check has nothing
        # to refuse here, and a background session makes thousands of these in a loop.
        self._proxy_init(session)
        d = self.__dict__
        d["_session"] = session
        d["_machine"] = machine
        if isinstance(machine, TaskMachine):
            d["_run"] = TaskRun(self, machine)
        else:
            assert remote is not None
            d["_run"] = remote
        d["_priority"] = priority
        d["taskDescription"] = description
        d["_begin"] = begin
        d["_done"] = _Done()  # set once sessioncompleted was delivered

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
        self._priority = priority_value(value)
        self._session._reprioritized(self)  # a waiting task takes its new place in line

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

    @property
    def metrics(self) -> dict[str, Any] | None:
        """URLSessionTaskMetrics once the task ended (as ``sessioncompleted`` carried them)."""
        return getattr(self._machine, "metrics", None)

    # -- control -------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel; the task reports ``sessioncompleted`` with -999 (a finished task ignores it)."""
        self._run.control(Cancel())
        self._session._schedule()  # a task still waiting its turn reports now, not when due

    def cancelByProducingResumeData(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Cancel a download, keeping what arrived: ``callback({'resumeData': str | None})``
        (None when the server gave no validator, or nothing came), then ``sessioncompleted``
        with -999. ``session.downloadTask({'resumeData': ...})`` continues it."""
        check_callback(callback)
        run = self._run
        if self.kind == "download" and hasattr(run, "produce_resume_data"):  # background
            run.produce_resume_data(callback, self._machine.finished)
            return
        if self.kind != "download" or not isinstance(run, TaskRun):
            raise InvalidArgumentValueError(
                "cancelByProducingResumeData",
                "cancelByProducingResumeData() is for downloads of foreground sessions",
            )
        with run._cond:
            finished = run.machine.finished
            if not finished:
                run.resume_callback, run.keeps_partial_on_cancel = callback, True
        if finished:  # as Apple: nothing to resume
            self._session._dispatcher.submit(lambda: callback({"resumeData": None}))
            return
        self.cancel()

    def _run_extras(self, resume: ResumeData | None, rate: int | None) -> None:
        """What a task call gave beyond its request (issue 16): resume data, a rate."""
        if isinstance(self._run, TaskRun):
            self._run.resume_in, self._run.rate = resume, rate

    def suspend(self) -> None:
        """Stop reading: no progress until ``resume()``."""
        self._run.control(Suspend())

    def resume(self) -> None:
        """Continue a suspended task (with Range if its connection had to be let go)."""
        self._run.control(Resume())
        self._session._schedule()  # a task suspended before it started may start now

    def wait(self, timeout: float | None = None) -> bool:
        """Block until this task's ``sessioncompleted`` has been delivered; False on timeout."""
        return self._session._wait_until("wait", self._done.is_set, timeout, one_task=True)

    def __repr__(self) -> str:
        return f"<Task {self.taskIdentifier} {self.kind} {self.state.value}>"


class TaskRun(UnreliableDriver):
    """An in-process task's driver: what its machine answers goes to the session's queue.

    Retries, waiting for connectivity, bandwidth limits and resume data (issue 16) are
    :class:`~._transport._unreliable.UnreliableDriver`'s.
    """

    def __init__(self, task: Task, machine: TaskMachine) -> None:
        super().__init__(machine, task._session._config)
        # Not a strong reference: the task holds its run, and a cycle between the two made
        # every finished task (some 20 objects) garbage for the cyclic collector once the
        # session let it go. The session holds a task until its end is delivered.
        self._task = weakref.ref(task)

    def publish(self, event: Input, payloads: list[Payload]) -> None:
        task = self._task()
        if task is None:  # (gone: nobody can hear it any more)
            return
        session = task._session
        submit = session._dispatcher.submit
        for payload in payloads:
            session._enqueue(task, self.ending(payload, submit))

    def run(
        self, transport: Transport, directory: Callable[[], str] | None, cancelling: bool
    ) -> None:
        """:meth:`steps` on this thread, blocking wherever the transfer waits."""
        drive(self.steps(transport, directory, cancelling))

    def steps(
        self, transport: Transport, directory: Callable[[], str] | None, cancelling: bool
    ) -> Steps[None]:
        """A worker's job for this task: the transfer, or only its -999 if it was cancelled.

        A generator (see ``Transport.steps``): where the transfer waits for the network it
        yields what it waits for, and the runner gives the worker back until that wakes.
        ``directory`` makes (or checks) the download directory now, as the transfer starts;
        ``cancelling``: ``invalidateAndCancel()`` is on its way to this task.
        """
        machine = self.machine
        try:
            if cancelling and machine.state is not TaskState.CANCELING:
                # A worker freed by an earlier task's cancel took this one from the queue before
                # invalidateAndCancel() reached it: it must not reach the network.
                self.control(Cancel())
            if machine.state is TaskState.CANCELING:  # cancelled while it waited its turn
                self.feed(Failed(ErrorCode.CANCELLED))
                return
            folder = None
            if directory is not None:
                try:
                    folder = directory()
                except OSError as exc:  # e.g. the directory was replaced by a file meanwhile
                    code = ErrorCode.CANNOT_CREATE_FILE
                    where = os.fsdecode(exc.filename) if exc.filename else "the download folder"
                    said = (exc.strerror or "cannot be made").lower()
                    self.feed(Failed(code, f"{code.description} ({where}: {said})"))
                    return
            yield from self.run_transport(
                transport, folder
            )  # (issue 16: _transport/_unreliable.py)
        except Exception:  # the machine refused an input: a bug, but the task must still end
            log.exception("task %s: engine error", machine.identifier)
            if not machine.finished:
                self.feed(Failed(ErrorCode.UNKNOWN, "internal error"))
