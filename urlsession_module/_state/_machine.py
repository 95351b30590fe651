"""The task machine: the transitions table and the counters, held inputs while suspended."""

from __future__ import annotations

from typing import Any

from .._events import (
    DownloadCompleted,
    DownloadProgress,
    Payload,
    SessionCompleted,
    UploadProgress,
)
from .._request import Request, ResponseInfo
from ..exceptions import ErrorCode, TaskStateError, TransferError
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

__all__ = ["TaskMachine"]

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
        self.metrics: dict[str, Any] | None = None  # URLSessionTaskMetrics, once the task ended
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
        # (the table gave a next state, so the input's type has a handler)
        out: list[Payload] = _HANDLERS[type(event)](self, event)  # raises before any change
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
            return self._on_Failed(Failed(ErrorCode.CANCELLED, metrics=e.metrics))
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
                metrics=self._keep_metrics(e.metrics),
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
                metrics=self._keep_metrics(e.metrics),
            )
        ]

    def _keep_metrics(self, metrics: dict[str, Any] | None) -> dict[str, Any] | None:
        self.metrics = metrics
        return metrics


# Each input type's handler, looked up once: a name built per input (``f"_on_{name}"`` and a
# getattr) was a measurable part of the three or four inputs every task's machine takes.
_HANDLERS: dict[type, Any] = {
    t: getattr(TaskMachine, f"_on_{t.__name__}")
    for t in {t for allowed in TRANSITIONS.values() for t in allowed}
}


def _check_count(n: int) -> None:
    if n < 0:
        raise TaskStateError(f"byte count must be >= 0 (got {n})")
