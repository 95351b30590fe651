"""The task lifecycle: a sans-IO state machine, table-driven, knowing nothing of sockets.

Everything that decides a task's state, its byte counters and which Titanium event comes next
lives here (as h11's ``_state.py`` does for HTTP). A driver (the in-process transport, or the
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

import enum

import attrs

from ._events import (
    DownloadCompleted,
    DownloadProgress,
    Payload,
    SessionCompleted,
    UploadProgress,
)
from ._request import Request, ResponseInfo, resume_validator
from .exceptions import ErrorCode, TaskStateError, TransferError

__all__ = [
    "BodyReceived",
    "BodySent",
    "Cancel",
    "DownloadFinished",
    "Failed",
    "Finished",
    "Input",
    "Redirected",
    "Request",
    "ResponseInfo",
    "ResponseStarted",
    "Resume",
    "Step",
    "Suspend",
    "TaskKind",
    "TaskMachine",
    "TaskState",
    "resume_validator",
]


class TaskKind(str, enum.Enum):
    DATA = "data"
    UPLOAD = "upload"
    DOWNLOAD = "download"


class TaskState(str, enum.Enum):
    """URLSessionTask.State, as strings (``task.state == 'running'`` reads naturally)."""

    RUNNING = "running"
    SUSPENDED = "suspended"
    CANCELING = "canceling"
    COMPLETED = "completed"

    def __str__(self) -> str:
        return self.value


# -- inputs ---------------------------------------------------------------------------------------


@attrs.frozen
class Suspend:
    """The user suspended the task: no more reading, no progress, until Resume."""


@attrs.frozen
class Resume:
    """The user resumed a suspended task."""


@attrs.frozen
class Cancel:
    """The user cancelled the task; the driver answers with Failed(-999) once it has stopped."""


@attrs.frozen
class Redirected:
    """The driver followed a redirect; ``request`` is the new current request."""

    request: Request


@attrs.frozen
class BodySent:
    """``n`` more bytes of the request body went to the server."""

    n: int


@attrs.frozen
class ResponseStarted:
    """A final (non-redirect) response's head arrived.

    ``expected`` is this response's body length (-1 unknown); ``offset`` is how many bytes of the
    resource the task already has when this response continues it (a 206 to a Range request);
    a response that starts over has offset 0 and resets the received counter.
    """

    response: ResponseInfo
    expected: int = -1
    offset: int = 0


@attrs.frozen
class BodyReceived:
    """``n`` more body bytes reached the destination (memory or the download file)."""

    n: int


@attrs.frozen
class DownloadFinished:
    """The download's file is complete and in its final place."""

    location: str
    mime_type: str = "application/octet-stream"


@attrs.frozen
class Finished:
    """The transfer ended well; ``response_text`` for data and upload tasks."""

    response_text: str | None = None


@attrs.frozen
class Failed:
    """The transfer ended with a URLSession error code (cancellation included)."""

    code: int
    message: str = ""


Input = (
    Suspend
    | Resume
    | Cancel
    | Redirected
    | BodySent
    | ResponseStarted
    | BodyReceived
    | DownloadFinished
    | Finished
    | Failed
)

Step = tuple[Input, list[Payload]]  # an input the machine applied, and what it answered

S = TaskState
_WIRE = (Redirected, BodySent, ResponseStarted, BodyReceived, DownloadFinished)

# TRANSITIONS[state][input type] -> next state. Absent pairs are illegal inputs.
TRANSITIONS: dict[TaskState, dict[type, TaskState]] = {
    S.RUNNING: {
        Suspend: S.SUSPENDED,
        Resume: S.RUNNING,
        Cancel: S.CANCELING,
        **{t: S.RUNNING for t in _WIRE},
        Finished: S.COMPLETED,
        Failed: S.COMPLETED,
    },
    S.SUSPENDED: {
        # The wire is quiet while suspended: a driver waits for Resume before feeding bytes.
        Suspend: S.SUSPENDED,
        Resume: S.RUNNING,
        Cancel: S.CANCELING,
        Failed: S.COMPLETED,  # e.g. the resource deadline passed while suspended
    },
    S.CANCELING: {
        Suspend: S.CANCELING,
        Resume: S.CANCELING,
        Cancel: S.CANCELING,
        # Bytes already in flight when the user cancelled are accepted and reported to nobody.
        **{t: S.CANCELING for t in _WIRE},
        Finished: S.COMPLETED,
        Failed: S.COMPLETED,
    },
    S.COMPLETED: {
        # Apple ignores control calls on a finished task; anything from the wire is a bug.
        Suspend: S.COMPLETED,
        Resume: S.COMPLETED,
        Cancel: S.COMPLETED,
    },
}


class TaskMachine:
    """One task's state, counters and event order. Feed inputs, deliver what comes back."""

    def __init__(
        self,
        identifier: str,
        kind: TaskKind,
        request: Request,
        session_identifier: str | None = None,
    ) -> None:
        self.identifier = identifier
        self.kind = kind
        self.session_identifier = session_identifier
        self.original_request = request
        self.current_request = request
        self.state = TaskState.RUNNING
        self.response: ResponseInfo | None = None
        self.error: TransferError | None = None
        self.count_sent = 0
        self.count_expected_to_send = request.body_length if request.has_body else 0
        self.count_received = 0
        self.count_expected_to_receive = -1
        self.location: str | None = None
        self._download_done = False
        self._held: list[Input] = []  # wire inputs that arrived while suspended, in order

    def restore_received(self, n: int) -> None:
        """Count ``n`` bytes an earlier run already received (a ``.part`` file being resumed).

        Only before anything happened on the wire: this is how a restarted transfer process
        rebuilds a machine for a download it continues with Range.
        """
        if self.response is not None or self.state is not TaskState.RUNNING or n < 0:
            raise TaskStateError(
                f"task {self.identifier}: restore_received only before the response"
            )
        self.count_received = n

    def restore_download_finished(self, response: ResponseInfo, location: str) -> None:
        """Rebuild a download whose file an earlier run already put in place (and reported).

        Only on a fresh machine: what follows is Finished (its sessioncompleted) or Failed.
        """
        if (
            self.kind is not TaskKind.DOWNLOAD
            or self.response is not None
            or self.state is not TaskState.RUNNING
        ):
            raise TaskStateError(
                f"task {self.identifier}: restore_download_finished only on a fresh download"
            )
        self.response = response
        self.location = location
        self._download_done = True

    @property
    def finished(self) -> bool:
        return self.state is TaskState.COMPLETED

    def send(self, event: Input) -> list[Payload]:
        """Apply one input; return the payloads to deliver, in order. Illegal input raises."""
        allowed = TRANSITIONS[self.state]
        next_state = allowed.get(type(event))
        if next_state is None:
            raise TaskStateError(
                f"task {self.identifier}: {type(event).__name__} is not allowed while {self.state.value}"
            )
        if self._download_done and isinstance(event, Cancel) and self.state is TaskState.RUNNING:
            # The file was handed over (downloadcompleted went out): as in Foundation, a cancel
            # that comes now changes nothing, and the task ends as the success it is.
            return []
        if self._download_done and isinstance(event, _WIRE):
            # The file is complete and in place (downloadcompleted went out): only the end may
            # follow, or progress would be reported after downloadcompleted.
            raise TaskStateError(
                f"task {self.identifier}: {type(event).__name__} after the download finished"
            )
        handler = getattr(self, f"_on_{type(event).__name__}")
        out: list[Payload] = handler(event)  # raises before any change if the input is bad
        self.state = next_state
        return out

    # -- the two sides a driver feeds: the wire, and the user ----------------------------------
    #
    # The wire does not stop the instant the user suspends: a block already being read (or
    # sent), a response head, the end of the transfer may still arrive. The table accepts none of
    # that while suspended, so such inputs are held, in order, and applied on resume (their
    # progress is reported then) or, after a cancel, absorbed (the task then reports -999).

    def feed(self, event: Input) -> list[Step]:
        """An input from the wire; held while suspended, unless it ends the task.

        Returns each input applied with the payloads it produced, in order (none while held).
        """
        if self.state is TaskState.SUSPENDED and not isinstance(event, Failed):
            self._held.append(event)
            return []
        if isinstance(event, Failed):
            self._held.clear()  # the task ends here; what was held no longer matters
        return [(event, self.send(event))]

    def control(self, event: Input) -> list[Step]:
        """Suspend, Resume or Cancel from the user; leaving suspension applies what was held.

        Held inputs are applied after a cancel too: a held Finished is what ends the task
        (as -999).
        """
        steps = [(event, self.send(event))]
        if self._held and self.state is not TaskState.SUSPENDED:
            held, self._held = self._held, []
            steps += [(item, self.send(item)) for item in held]
        return steps

    @property
    def held(self) -> int:
        """How many wire inputs wait for the task to leave suspension."""
        return len(self._held)

    # -- handlers: validate first, then change, then say what to deliver ------------------------

    def _on_Suspend(self, _e: Suspend) -> list[Payload]:
        return []

    def _on_Resume(self, _e: Resume) -> list[Payload]:
        return []

    def _on_Cancel(self, _e: Cancel) -> list[Payload]:
        return []

    def _on_Redirected(self, e: Redirected) -> list[Payload]:
        self.current_request = e.request
        self.count_sent = 0
        self.count_expected_to_send = e.request.body_length if e.request.has_body else 0
        return []

    def _on_BodySent(self, e: BodySent) -> list[Payload]:
        _check_count(e.n)
        self.count_sent += e.n
        if self.state is not TaskState.RUNNING:
            return []
        return [
            UploadProgress(
                taskIdentifier=self.identifier,
                bytesSent=e.n,
                totalBytesSent=self.count_sent,
                totalBytesExpectedToSend=self.count_expected_to_send,
                sessionIdentifier=self.session_identifier,
            )
        ]

    def _on_ResponseStarted(self, e: ResponseStarted) -> list[Payload]:
        if e.offset < 0 or e.offset > self.count_received:
            raise TaskStateError(
                f"task {self.identifier}: resume offset {e.offset} beyond what was received"
            )
        self.response = e.response
        self.count_received = e.offset
        self.count_expected_to_receive = e.offset + e.expected if e.expected >= 0 else -1
        return []

    def _on_BodyReceived(self, e: BodyReceived) -> list[Payload]:
        _check_count(e.n)
        if self.response is None:
            raise TaskStateError(f"task {self.identifier}: body bytes before a response")
        self.count_received += e.n
        if self.kind is not TaskKind.DOWNLOAD or self.state is not TaskState.RUNNING:
            return []
        return [
            DownloadProgress(
                taskIdentifier=self.identifier,
                bytesWritten=e.n,
                totalBytesWritten=self.count_received,
                totalBytesExpectedToWrite=self.count_expected_to_receive,
                sessionIdentifier=self.session_identifier,
            )
        ]

    def _on_DownloadFinished(self, e: DownloadFinished) -> list[Payload]:
        if self.kind is not TaskKind.DOWNLOAD or self._download_done or self.response is None:
            raise TaskStateError(f"task {self.identifier}: unexpected DownloadFinished")
        self._download_done = True
        if self.state is not TaskState.RUNNING:
            return []
        self.location = e.location
        return [
            DownloadCompleted(
                taskIdentifier=self.identifier,
                location=e.location,
                mimeType=e.mime_type,
                sessionIdentifier=self.session_identifier,
            )
        ]

    def _on_Finished(self, e: Finished) -> list[Payload]:
        if self.state is TaskState.CANCELING:
            return self._on_Failed(Failed(ErrorCode.CANCELLED))
        if self.response is None:
            raise TaskStateError(f"task {self.identifier}: finished without a response")
        if self.kind is TaskKind.DOWNLOAD and not self._download_done:
            raise TaskStateError(f"task {self.identifier}: a download finished without its file")
        return [
            SessionCompleted(
                taskIdentifier=self.identifier,
                success=True,
                errorCode=0,
                message="",
                statusCode=self.response.statusCode,
                responseText=(e.response_text or "")
                if self.kind is not TaskKind.DOWNLOAD
                else None,
                sessionIdentifier=self.session_identifier,
                networkProtocolName=self.response.networkProtocolName,
            )
        ]

    def _on_Failed(self, e: Failed) -> list[Payload]:
        code = ErrorCode.CANCELLED if self.state is TaskState.CANCELING else e.code
        if code == 0:
            raise TaskStateError(f"task {self.identifier}: Failed needs a non-zero error code")
        self.error = TransferError(code, e.message if code == e.code else None)
        return [
            SessionCompleted(
                taskIdentifier=self.identifier,
                success=False,
                errorCode=self.error.code,
                message=self.error.message,
                statusCode=self.response.statusCode if self.response else 0,
                responseText=None if self.kind is TaskKind.DOWNLOAD else "",
                sessionIdentifier=self.session_identifier,
                networkProtocolName=self.response.networkProtocolName if self.response else None,
            )
        ]


def _check_count(n: int) -> None:
    if n < 0:
        raise TaskStateError(f"byte count must be >= 0 (got {n})")


# -- background tasks: the lifecycle rules of the transfer process and its hosts ------------------
# (Kept apart from the machine above; the transfer process and the host side of background
# sessions call these instead of deciding for themselves.)

# A task's state in the transfer process's journal -> what its Task proxy says. Queued, running
# and downloaded (file in place, the end not yet journaled) tasks are all running to a host.
JOURNAL_TASK_STATE: dict[str, TaskState] = {
    "queued": TaskState.RUNNING,
    "running": TaskState.RUNNING,
    "downloaded": TaskState.RUNNING,
    "suspended": TaskState.SUSPENDED,
    "completed": TaskState.COMPLETED,
}

# Failures that say "not now" rather than "never": a background task tries again later.
TRANSIENT_CODES = frozenset(
    {
        ErrorCode.CANNOT_CONNECT_TO_HOST,
        ErrorCode.NETWORK_CONNECTION_LOST,
        ErrorCode.TIMED_OUT,
        ErrorCode.CANNOT_FIND_HOST,
    }
)


def journal_task_state(journal_state: str) -> TaskState:
    """The Task state a journaled task shows; an unknown journal state is a finished task."""
    return JOURNAL_TASK_STATE.get(journal_state, TaskState.COMPLETED)


def cancel_unstarted(machine: TaskMachine) -> list[Payload]:
    """Cancel a task that never reached the wire: its one sessioncompleted, with -999."""
    machine.send(Cancel())
    return machine.send(Failed(ErrorCode.CANCELLED))


def fail_unstarted(machine: TaskMachine, code: int, message: str) -> list[Payload]:
    """End a task that cannot start (e.g. a journal record this version cannot run)."""
    if machine.finished:
        return []
    return machine.send(Failed(code, message))


@attrs.frozen
class Retry:
    """A background attempt ended in a way worth trying again: why, and when the server asks."""

    code: int
    message: str
    retry_after: float | None = None

    def give_up(self, cancelled: bool) -> Failed:
        """The input that ends the task once retrying is over (the resource deadline passed)."""
        if cancelled:
            return Failed(ErrorCode.CANCELLED)
        if self.code:
            return Failed(self.code, self.message)
        return Failed(ErrorCode.TIMED_OUT, f"the resource timeout passed ({self.message})")


def transient(event: Input) -> Retry | None:
    """Whether this input from the wire ends a background attempt to be retried, not the task.

    A connection refused, lost or timed out, or an unknown host, and a 503 response (whose
    ``Retry-After`` in seconds is honoured). The machine never sees such an input; the runner
    ends the attempt and decides, with its backoff and deadline, whether to try again.
    """
    if isinstance(event, Failed) and event.code in TRANSIENT_CODES:
        return Retry(event.code, event.message)
    if isinstance(event, ResponseStarted) and event.response.statusCode == 503:
        after = event.response.header("retry-after")
        delay = float(after) if after and after.strip().isdigit() else None
        return Retry(0, "503 Service Unavailable", delay)
    return None


class CompletionLedger:
    """A host's half of "exactly one sessioncompleted": a task's second one is dropped.

    Journaled events reach a host at least once (a reconnect replays what was not acknowledged).
    Replays are dropped by their sequence number first; this ledger catches what that cannot,
    and forgets a task once the events up to its completion are acknowledged (they are never
    sent again then), so a host that runs for months keeps it small. ``limit`` bounds it anyway.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._seqs: dict[str, int] = {}
        self._limit = limit

    def first(self, task_id: str, seq: int) -> bool:
        """Record a sessioncompleted about to be delivered; False if this task already had one."""
        if task_id in self._seqs:
            return False
        self._seqs[task_id] = seq
        while len(self._seqs) > self._limit:
            del self._seqs[next(iter(self._seqs))]
        return True

    def settled(self, upto: int) -> None:
        """Events up to ``upto`` are acknowledged: the tasks they completed can be forgotten."""
        self._seqs = {t: s for t, s in self._seqs.items() if s == 0 or s > upto}

    def __len__(self) -> int:
        return len(self._seqs)
