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
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._arguments import check_callback, priority_value
from ._driver import TaskDriver
from ._events import Payload, SessionCompleted
from ._proxy import Proxy
from ._state import (
    BodyReceived,
    BodySent,
    Cancel,
    Failed,
    Input,
    Request,
    ResponseInfo,
    ResponseStarted,
    Resume,
    Suspend,
    TaskKind,
    TaskMachine,
    TaskState,
)
from ._storage import part_name
from ._transport._ratelimit import TaskPacing, pacing_for
from ._transport._resume import ResumeData, adopt, finish_partial
from ._transport._retrying import RunAgain
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


class _Controls(Protocol):
    def control(self, event: Input) -> None: ...


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
        self._run: _Controls
        if isinstance(machine, TaskMachine):
            self._run = TaskRun(self, machine)
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


class TaskRun(TaskDriver):
    """An in-process task's driver: what its machine answers goes to the session's queue."""

    def __init__(self, task: Task, machine: TaskMachine) -> None:
        super().__init__(machine)
        self._task = task
        config = task._session._config
        # retries and waiting for connectivity (issue 16): see _transport/_retrying.py
        self.again = RunAgain(config, machine) if RunAgain.wanted(config) else None
        # resume data (see _transport/_resume.py) and the task's own bandwidth limit
        self.resume_in: ResumeData | None = None
        self.resume_callback: Callable[[dict[str, Any]], None] | None = None
        self.keeps_partial_on_cancel = False
        self.rate: int | None = None
        self._part: str | None = None
        self._validator: str | None = None
        self.pacing: TaskPacing | None = None  # bandwidth limits (see _transport/_ratelimit.py)

    @property
    def cancelled(self) -> bool:
        return super().cancelled or (self.again is not None and self.again.ending)

    @property
    def requeue_at(self) -> float | None:
        """When this task is to run again (its last run ended in a retry), else None."""
        return None if self.again is None else self.again.requeue_at

    def feed(self, event: Input) -> None:
        if isinstance(event, ResponseStarted):
            self._validator = event.response.resume_validator
        again = self.again
        if again is not None:
            with self._cond:
                answer = again.intercept(event, self.publish)
                abort = self._abort if answer is True else None
            if answer is True:
                if abort is not None:
                    abort()  # a response being read (a 503 retried): stop it now
                return
            if answer is not False:
                event = answer
        super().feed(event)
        if self.pacing is not None and isinstance(event, (BodyReceived, BodySent)):
            received = event.n if isinstance(event, BodyReceived) else 0
            wait = self.pacing.delay(received, event.n - received)
            if wait > 0:  # ahead of its share: the read (or send) loop waits, cancellably
                with self._cond:
                    self._cond.wait_for(lambda: self.cancelled, wait)

    def wire_share(self) -> int | None:
        """This task's bandwidth share now, for an engine that shapes the wire (curl)."""
        return None if self.pacing is None else self.pacing.wire_share()

    def publish(self, event: Input, payloads: list[Payload]) -> None:
        for payload in payloads:
            if isinstance(payload, SessionCompleted) and self.machine.kind is TaskKind.DOWNLOAD:
                payload = finish_partial(
                    payload,
                    self.machine.original_request.url,
                    self._part,
                    self._validator,
                    self.resume_callback,
                    self._task._session._dispatcher.submit,
                )
            self._task._session._enqueue(self._task, payload)

    def run(
        self, transport: Transport, directory: Callable[[], str] | None, cancelling: bool
    ) -> None:
        """A worker's job for this task: the transfer, or only its -999 if it was cancelled.

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
            kw = self.again.before_run(folder) if self.again is not None else {}
            self.pacing = pacing_for(
                transport,
                transport.config.maximumBytesPerSecond,
                machine.identifier,
                self.rate,
                machine.original_request.has_body,
            )
            if folder is not None:  # a download keeps its partial file for resume data
                kw["keep_partial"] = True
                self._part = os.path.join(folder, part_name(machine.identifier))
                if self.resume_in is not None:
                    resume, self.resume_in = adopt(self.resume_in, folder, machine.identifier), None
                    machine.restore_received(resume[0])
                    self._validator = resume[1]
                    kw["resume"] = resume
            if self.pacing is not None:
                self.pacing.start()
            try:
                transport.run(
                    self, machine.kind, machine.original_request, folder, machine.identifier, **kw
                )
            finally:
                if self.pacing is not None:
                    self.pacing.stop()
            if self.again is not None:
                self.again.after_run()
        except Exception:  # the machine refused an input: a bug, but the task must still end
            log.exception("task %s: engine error", machine.identifier)
            if not machine.finished:
                self.feed(Failed(ErrorCode.UNKNOWN, "internal error"))
