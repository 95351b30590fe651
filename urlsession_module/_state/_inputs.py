"""What a task's machine is fed: its kinds and states, and the frozen inputs from the wire and
the user (h11's ``_events``, for a task)."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from .._events import Payload
from .._request import Request, ResponseInfo

__all__ = [
    "BodyReceived",
    "BodySent",
    "Cancel",
    "DownloadFinished",
    "Failed",
    "Finished",
    "Input",
    "Redirected",
    "ResponseStarted",
    "Resume",
    "Step",
    "Suspend",
    "TaskKind",
    "TaskState",
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
    metrics: dict[str, Any] | None = attrs.field(default=None, eq=False, hash=False)


@attrs.frozen
class Failed:
    """The transfer ended with a URLSession error code (cancellation included)."""

    code: int
    message: str = ""
    metrics: dict[str, Any] | None = attrs.field(default=None, eq=False, hash=False)


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
