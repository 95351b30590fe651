"""Reading the background wire's plain data: field checks that name the field, requests as dicts.

Sans-IO helpers of :mod:`._snapshot` and :mod:`._wire`: each reader refuses a value with a
:class:`MessageError` that says which field and what it got (as attrs' validators word it).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import attrs

from .._state import Request, ResponseInfo
from .._urls import CREDENTIAL_HEADERS, without_userinfo

__all__ = [
    "MessageError",
    "Refused",
    "WireError",
    "plain_request",
    "request_from_dict",
    "request_to_dict",
    "response_from_dict",
    "response_to_dict",
]

T = TypeVar("T")
_MISSING: Any = object()


class MessageError(ValueError):
    """A message that is not what the protocol allows; says which field and what it got."""


class WireError(str, enum.Enum):
    """Why the transfer process refused a request: a code for programs, never an exception text."""

    BAD_MESSAGE = "bad-message"
    UNKNOWN_OP = "unknown-op"
    BAD_CONFIG = "bad-config"
    NOT_ATTACHED = "not-attached"
    NO_SUCH_TASK = "no-such-task"
    INTERNAL = "internal"

    @property
    def text(self) -> str:
        return _WIRE_ERROR_TEXT[self]


_WIRE_ERROR_TEXT = {
    WireError.BAD_MESSAGE: "the message is malformed",
    WireError.UNKNOWN_OP: "the transfer process does not know this request",
    WireError.BAD_CONFIG: "the session configuration is not valid",
    WireError.NOT_ATTACHED: "the session is not attached to the transfer process",
    WireError.NO_SUCH_TASK: "the transfer process has no outstanding task with this identifier",
    WireError.INTERNAL: "the transfer process failed to handle the request",
}


class Refused(Exception):
    """A request the runner turns down; the server answers it with ``code``."""

    def __init__(self, code: WireError, message: str = "") -> None:
        super().__init__(message or code.text)
        self.code = code
        self.message = message or code.text


# -- field readers: each names the field it refuses ---------------------------------------------


def field(
    d: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = _MISSING
) -> Any:
    value = d.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise MessageError(f"'{name}' is required")
        return default
    if value is None and default is None:
        return None
    # bool is an int to Python, never to the protocol.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise MessageError(f"'{name}' must be {_kind_name(kind)} (got {value!r})")
    if not isinstance(value, kind):
        raise MessageError(f"'{name}' must be {_kind_name(kind)} (got {value!r:.80})")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def number(d: Mapping[str, Any], name: str, default: Any = _MISSING) -> Any:
    value = field(d, name, (int, float), default)
    if value is not None and not math.isfinite(value):
        raise MessageError(f"'{name}' must be a finite number (got {value!r})")
    return value


def count(d: Mapping[str, Any], name: str, default: Any = _MISSING, low: int = 0) -> int:
    value = int(field(d, name, int, default))
    if value < low:
        raise MessageError(f"'{name}' must be >= {low} (got {value})")
    return value


def enum_field(d: Mapping[str, Any], name: str, enum_type: Callable[[str], T]) -> T:
    value = field(d, name, str)
    try:
        return enum_type(value)
    except ValueError:
        raise MessageError(f"'{name}' is not one the protocol knows (got {value!r:.80})") from None


def headers(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, (list, tuple)):
        raise MessageError(f"'{name}' must be a list of [name, value] pairs")
    out = []
    for pair in value:
        # Spelled out (no generator per pair): a replay checks 10,000 requests' headers.
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], str)
        ):
            raise MessageError(f"'{name}' must be a list of [name, value] pairs of str")
        out.append((pair[0], pair[1]))
    return tuple(out)


def session_field(d: Mapping[str, Any]) -> str:
    value = field(d, "session", str)
    if not value:
        raise MessageError("'session' must be a non-empty str")
    return cast(str, value)


# -- plain data for the state machine's values -----------------------------------------------------


def request_to_dict(request: Request) -> dict[str, Any]:
    if request.body is not None:
        raise MessageError("background requests carry bodies as files ('body_path'), not bytes")
    return {
        "method": request.method,
        "url": request.url,
        "headers": [list(h) for h in request.headers],
        "body_path": request.body_path,
        "body_length": request.body_length,
        # (the journal keeps it, in its 0600 file; redact_request drops it for everyone else)
        **({"credential": list(request.credential)} if request.credential else {}),
    }


def request_from_dict(d: Any, name: str = "request", *, url_checked: bool = False) -> Request:
    """``url_checked``: the URL was parsed and checked where it came in (the transfer process's
    intake, before journaling it), so a snapshot read back from there checks types only: a
    replay reads 10,000 of them."""
    request = plain_request(d)
    if request is None:
        request = _checked_request(d, name)
    if not url_checked:
        parts = urlsplit(request.url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise MessageError(f"'{name}.url' must be an http(s) URL (got {request.url!r:.80})")
    return request


def plain_request(d: Any) -> Request | None:
    """The common request (what ``request_to_dict`` writes, as JSON reads it) checked with no
    call per field: a replay reads 10,000, the intake as many. None: let the checked path read
    it, and say what is wrong."""
    if type(d) is not dict or "body" in d:
        return None
    method, url, pairs = d.get("method"), d.get("url"), d.get("headers", [])
    body_path, body_length = d.get("body_path"), d.get("body_length", 0)
    credential = d.get("credential")
    if (
        type(method) is not str
        or type(url) is not str
        or type(pairs) is not list
        or not (body_path is None or type(body_path) is str)
        or type(body_length) is not int
        or body_length < 0
    ):
        return None
    out = []
    for pair in pairs:
        if type(pair) is not list or len(pair) != 2:
            return None
        key, value = pair
        if type(key) is not str or type(value) is not str:
            return None
        out.append((key, value))
    if credential is not None:
        if not (
            type(credential) is list
            and len(credential) == 2
            and type(credential[0]) is str
            and type(credential[1]) is str
        ):
            return None
        credential = (credential[0], credential[1])
    return Request(method, url, tuple(out), None, body_path, body_length, credential)


def _checked_request(d: Any, name: str) -> Request:
    if not isinstance(d, Mapping):
        raise MessageError(f"'{name}' must be an object")
    if "body" in d:
        raise MessageError(f"'{name}' carries its body as a file ('body_path'), not bytes")
    return Request(
        method=field(d, "method", str),
        url=field(d, "url", str),
        headers=headers(d.get("headers", []), f"{name}.headers"),
        body_path=field(d, "body_path", str, None),
        body_length=count(d, "body_length", 0),
        credential=_credential(d.get("credential"), name),
    )


def _credential(value: Any, name: str) -> tuple[str, str] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise MessageError(f"'{name}.credential' must be [user, password]")
    return value[0], value[1]


def response_to_dict(response: ResponseInfo | None) -> dict[str, Any] | None:
    if response is None:
        return None
    return {
        "url": response.url,
        "statusCode": response.statusCode,
        "headers": [list(h) for h in response.headers],
    }


def response_from_dict(d: Any) -> ResponseInfo | None:
    if d is None:
        return None
    if not isinstance(d, Mapping):
        raise MessageError("'response' must be an object or null")
    return ResponseInfo(
        field(d, "url", str),
        count(d, "statusCode"),
        headers(d.get("headers", []), "response.headers"),
    )


def redact_request(request: Request) -> Request:
    return attrs.evolve(
        request,
        url=without_userinfo(request.url),
        credential=None,
        headers=tuple((k, v) for k, v in request.headers if k.lower() not in CREDENTIAL_HEADERS),
    )
