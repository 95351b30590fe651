"""The package's one exception tree, and URLSession's error codes.

Errors raised at a call (bad arguments) also subclass the builtin a Python user would catch, and
name the argument. Errors that happen *during* a transfer are never raised at the user: they reach
listeners as a ``sessioncompleted`` event carrying an :class:`ErrorCode`, and the task's ``error``
holds a :class:`TransferError` for inspection.

::

    URLSessionError
    ├── InvalidArgumentError            .argument names the bad argument
    │   ├── InvalidArgumentTypeError    (also TypeError)
    │   └── InvalidArgumentValueError   (also ValueError)
    │       └── UnsupportedURLError     a URL we cannot fetch (scheme, host)
    ├── SessionInvalidatedError         (also ValueError) a task asked of an invalidated session
    ├── UploadFileNotFoundError         (also FileNotFoundError) upload from a missing path
    ├── StateDirectoryError             (also PermissionError) a state directory or file not ours
    ├── CreationOnlyError               (also AttributeError) a creation-only property was set
    ├── TaskStateError                  (also RuntimeError) illegal input to the task machine
    ├── WouldDeadlockError              (also RuntimeError) a wait that could never end
    ├── TransferError                   a failed transfer: .code (ErrorCode) and .message
    └── TransferUnavailableError        (also OSError) the background transfer process cannot
                                        be reached or started
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "CreationOnlyError",
    "ErrorCode",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidArgumentValueError",
    "SessionInvalidatedError",
    "StateDirectoryError",
    "TaskStateError",
    "TransferError",
    "TransferUnavailableError",
    "URLSessionError",
    "UnsupportedURLError",
    "UploadFileNotFoundError",
    "WouldDeadlockError",
]


class ErrorCode(enum.IntEnum):
    """Foundation's ``NSURLError`` codes, as URLSession reports them (``errorCode`` in events)."""

    OK = 0
    UNKNOWN = -1
    CANCELLED = -999
    BAD_URL = -1000
    TIMED_OUT = -1001
    UNSUPPORTED_URL = -1002
    CANNOT_FIND_HOST = -1003
    CANNOT_CONNECT_TO_HOST = -1004
    NETWORK_CONNECTION_LOST = -1005
    HTTP_TOO_MANY_REDIRECTS = -1007
    RESOURCE_UNAVAILABLE = -1008
    REDIRECT_TO_NON_EXISTENT_LOCATION = -1010
    BAD_SERVER_RESPONSE = -1011
    USER_CANCELLED_AUTHENTICATION = -1012
    USER_AUTHENTICATION_REQUIRED = -1013
    CANNOT_DECODE_RAW_DATA = -1015
    CANNOT_DECODE_CONTENT_DATA = -1016
    CANNOT_PARSE_RESPONSE = -1017
    FILE_DOES_NOT_EXIST = -1100
    NO_PERMISSIONS_TO_READ_FILE = -1102
    DATA_LENGTH_EXCEEDS_MAXIMUM = -1103
    SECURE_CONNECTION_FAILED = -1200
    SERVER_CERTIFICATE_HAS_BAD_DATE = -1201
    SERVER_CERTIFICATE_UNTRUSTED = -1202
    SERVER_CERTIFICATE_HAS_UNKNOWN_ROOT = -1203
    CLIENT_CERTIFICATE_REJECTED = -1205
    CLIENT_CERTIFICATE_REQUIRED = -1206
    CANNOT_CREATE_FILE = -3000
    CANNOT_OPEN_FILE = -3001
    CANNOT_CLOSE_FILE = -3002
    CANNOT_WRITE_TO_FILE = -3003
    CANNOT_REMOVE_FILE = -3004
    CANNOT_MOVE_FILE = -3005
    DOWNLOAD_DECODING_FAILED_MID_STREAM = -3006
    DOWNLOAD_DECODING_FAILED_TO_COMPLETE = -3007

    @property
    def description(self) -> str:
        """Foundation's wording, so messages read like the ones Titanium apps already show."""
        return _DESCRIPTIONS.get(self, "An unknown error occurred.")


_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.OK: "",
    ErrorCode.CANCELLED: "cancelled",
    ErrorCode.BAD_URL: "unsupported URL",
    ErrorCode.TIMED_OUT: "The request timed out.",
    ErrorCode.UNSUPPORTED_URL: "unsupported URL",
    ErrorCode.CANNOT_FIND_HOST: "A server with the specified hostname could not be found.",
    ErrorCode.CANNOT_CONNECT_TO_HOST: "Could not connect to the server.",
    ErrorCode.NETWORK_CONNECTION_LOST: "The network connection was lost.",
    ErrorCode.HTTP_TOO_MANY_REDIRECTS: "too many HTTP redirects",
    ErrorCode.RESOURCE_UNAVAILABLE: "The requested resource is unavailable.",
    ErrorCode.REDIRECT_TO_NON_EXISTENT_LOCATION: "redirected to nowhere",
    ErrorCode.BAD_SERVER_RESPONSE: "bad server response",
    ErrorCode.USER_AUTHENTICATION_REQUIRED: "The user must be authenticated.",
    ErrorCode.CANNOT_DECODE_RAW_DATA: "cannot decode raw data",
    ErrorCode.CANNOT_DECODE_CONTENT_DATA: "cannot decode content data",
    ErrorCode.CANNOT_PARSE_RESPONSE: "cannot parse response",
    ErrorCode.FILE_DOES_NOT_EXIST: "The requested file does not exist.",
    ErrorCode.NO_PERMISSIONS_TO_READ_FILE: "The file cannot be read.",
    ErrorCode.DATA_LENGTH_EXCEEDS_MAXIMUM: "resource exceeds maximum size",
    ErrorCode.SECURE_CONNECTION_FAILED: "An SSL error has occurred and a secure connection to the "
    "server cannot be made.",
    ErrorCode.SERVER_CERTIFICATE_HAS_BAD_DATE: "The certificate for this server has expired or "
    "is not yet valid.",
    ErrorCode.SERVER_CERTIFICATE_UNTRUSTED: "The certificate for this server is invalid.",
    ErrorCode.SERVER_CERTIFICATE_HAS_UNKNOWN_ROOT: "The certificate for this server was signed "
    "by an unknown certifying authority.",
    ErrorCode.CLIENT_CERTIFICATE_REJECTED: "The server did not accept the certificate.",
    ErrorCode.CLIENT_CERTIFICATE_REQUIRED: "The server requires a client certificate.",
    ErrorCode.CANNOT_CREATE_FILE: "The file could not be created.",
    ErrorCode.CANNOT_OPEN_FILE: "The file could not be opened.",
    ErrorCode.CANNOT_CLOSE_FILE: "The file could not be closed.",
    ErrorCode.CANNOT_WRITE_TO_FILE: "The file could not be written.",
    ErrorCode.CANNOT_REMOVE_FILE: "The file could not be removed.",
    ErrorCode.CANNOT_MOVE_FILE: "The file could not be moved.",
}


class URLSessionError(Exception):
    """Base of every exception this package raises."""


class InvalidArgumentError(URLSessionError):
    """A call got an argument it cannot use; nothing was started."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class InvalidArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong type."""


class InvalidArgumentValueError(InvalidArgumentError, ValueError):
    """An argument of the right type with a value we refuse."""


class UnsupportedURLError(InvalidArgumentValueError):
    """A URL with a scheme or shape we cannot fetch (Foundation's -1002 at the call)."""


class SessionInvalidatedError(URLSessionError, ValueError):
    """A task was asked of a session after ``finishTasksAndInvalidate``/``invalidateAndCancel``."""

    argument = "session"


class UploadFileNotFoundError(URLSessionError, FileNotFoundError):
    """``uploadTask`` was given a path that does not exist."""

    argument = "data"


class StateDirectoryError(URLSessionError, PermissionError):
    """A directory or file of the package's state is a symbolic link or owned by another user.

    Refused as ssh refuses a loose ``~/.ssh``: its owner could swap in the transfer key or socket.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"refusing to use the state directory entry {path}: it {problem}")
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])  # OSError's own would read "[Errno None] None"


class CreationOnlyError(URLSessionError, AttributeError):
    """A creation-only property (``identifier``, ``configuration``) was assigned after creation."""


class TaskStateError(URLSessionError, RuntimeError):
    """An input the task machine does not accept in its current state; nothing changed."""


class WouldDeadlockError(URLSessionError, RuntimeError):
    """A wait with no timeout on the thread that delivers the events it waits for.

    Inside a listener, or on the asyncio loop given as ``delegateQueue``, the session cannot
    deliver anything until the waiting code returns, so the wait would never end.
    """


class TransferError(URLSessionError):
    """Why a transfer failed, as URLSession says it: a code and a readable message.

    Plain data only (no chained exception objects are needed to rebuild it), so the background
    transfer process can send it across the process boundary.
    """

    def __init__(self, code: ErrorCode | int, message: str | None = None) -> None:
        code = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
        text = message or (code.description if isinstance(code, ErrorCode) else "unknown error")
        super().__init__(text)
        self.code: int = int(code)
        self.message: str = text

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message))

    def __repr__(self) -> str:
        return f"TransferError({self.code}, {self.message!r})"


class TransferUnavailableError(URLSessionError, OSError):
    """The background transfer process could not be reached or started (or stopped answering)."""
