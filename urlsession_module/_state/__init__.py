"""The task lifecycle: a sans-IO state machine, table-driven, knowing nothing of sockets.

Everything that decides a task's state, its byte counters and which Titanium event comes next
lives in this package (as h11's ``_state.py`` does for HTTP). A driver (the in-process transport, or the
background transfer process) feeds it small frozen *inputs* describing what happened on the wire
or what the user asked for; :meth:`TaskMachine.send` answers with the *payloads* to deliver, in
order. An input the table does not allow in the current state raises :class:`TaskStateError`
and changes nothing. The machine owns the promise that every task produces exactly one
``sessioncompleted``, and that it is the task's last event.

A driver feeds the two sides through :meth:`TaskMachine.feed` (the wire) and
:meth:`TaskMachine.control` (the user), which add the one rule that spans both: what the wire
says while the task is suspended is held, and applied on resume or absorbed after a cancel.
``send`` is the bare table.

No threads, no locks, no pyee, no urllib3: a driver that shares a machine between threads holds
its own lock around it (``_driver.TaskDriver``). The request and response values the machine
keeps are in ``_request`` (re-exported here).
"""

from __future__ import annotations

from .._request import Request, ResponseInfo, resume_validator
from ._background import (
    JOURNAL_TASK_STATE,
    TRANSIENT_CODES,
    CompletionLedger,
    Retry,
    cancel_unstarted,
    fail_unstarted,
    journal_task_state,
    transient,
)
from ._inputs import (
    BodyReceived,
    BodySent,
    Cancel,
    DownloadFinished,
    Failed,
    Finished,
    Input,
    Redirected,
    ResponseStarted,
    Resume,
    Step,
    Suspend,
    TaskKind,
    TaskState,
)
from ._machine import TaskMachine

__all__ = [
    "JOURNAL_TASK_STATE",
    "TRANSIENT_CODES",
    "BodyReceived",
    "BodySent",
    "Cancel",
    "CompletionLedger",
    "DownloadFinished",
    "Failed",
    "Finished",
    "Input",
    "Redirected",
    "Request",
    "ResponseInfo",
    "ResponseStarted",
    "Resume",
    "Retry",
    "Step",
    "Suspend",
    "TaskKind",
    "TaskMachine",
    "TaskState",
    "cancel_unstarted",
    "fail_unstarted",
    "journal_task_state",
    "resume_validator",
    "transient",
]
