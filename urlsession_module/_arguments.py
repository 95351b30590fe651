"""Argument shaping: what a task call (or ``createSession``) was given, checked and made plain.

A session validates a call completely before anything starts, so every refusal names the bad
argument and nothing is left half-made. This module turns the Titanium-style dict (or Python
keywords) into a :class:`TaskArgs`: a :class:`~._state.Request` (bodies encoded, headers merged,
upload paths made absolute) plus the scheduling facts (priority, earliest begin date). Plain data
only, so a background session can hand the same request to the transfer process, which runs in
another working directory.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import math
import mimetypes
import os
from typing import Any

import attrs

from . import _validate as check
from ._config_values import ConfigValues, check_url_version, credential_value
from ._dispatch import Dispatcher, EventQueue, LoopDispatcher, ThreadDispatcher
from ._state import Request, TaskKind
from ._storage import Blob
from ._transport import build_request
from ._transport._resume import ResumeData, parse_resume_data
from ._validate import check_timeout
from .exceptions import (
    InvalidArgumentTypeError,
    InvalidArgumentValueError,
    UploadFileNotFoundError,
)

__all__ = [
    "DATA_KEYS",
    "DOWNLOAD_KEYS",
    "TaskArgs",
    "check_callback",
    "check_timeout",
    "dispatcher_for",
    "priority_value",
    "task_args",
]

DATA_KEYS = frozenset(
    {
        "url",
        "method",
        "data",
        "requestHeaders",
        "taskDescription",
        "priority",
        "earliestBeginDate",
        "credential",
        "maximumBytesPerSecond",
    }
)
DOWNLOAD_KEYS = frozenset(
    {"url", "requestHeaders", "taskDescription", "priority", "earliestBeginDate", "credential"}
    | {"resumeData", "maximumBytesPerSecond"}
)

Body = tuple[bytes | None, str | None, str | None]  # bytes, or a file's path; content type


@attrs.frozen
class TaskArgs:
    """A task call, checked: what to send, and when and in which order to start it."""

    kind: TaskKind
    request: Request
    priority: float
    begin: float | None  # epoch seconds; None: at once
    description: str | None
    resume: ResumeData | None = None  # downloadTask({'resumeData'}): where it continues
    rate: int | None = None  # the task's own maximumBytesPerSecond


# The common call, ``dataTask({'url': u, 'method': 'GET'})`` in a loop, checks and builds the
# same Request each time (URL parsing, header merging: most of a background hand-over's cost).
# A request depends only on the session's configuration, the kind, the URL and the method when
# no other key touches it, so it is built once and shared (Request is frozen). Keyed by the
# configuration's id, which the entry keeps alive, so an id is never reused while it is cached.
_PLAIN_DATA_KEYS = frozenset({"url", "method", "taskDescription", "priority", "earliestBeginDate"})
_PLAIN_DOWNLOAD_KEYS = _PLAIN_DATA_KEYS - {"method"}
_PLAIN_KEPT = 1024
_plain: dict[tuple[int, bool, str, str], tuple[ConfigValues, Request]] = {}


def task_args(
    name: str,
    kind: TaskKind,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    config: ConfigValues,
) -> TaskArgs:
    """Check one ``dataTask``/``uploadTask``/``downloadTask`` call; ``name`` is Titanium's.

    Data and upload tasks differ only in what ``data`` may be; a download has no body. A call
    that gives only a URL, a method and scheduling facts reuses the request an earlier call with
    the same URL and method built (checked then); anything else is checked in full.
    """
    key = _plain_key(kind, args, kwargs, config)
    if key is not None:
        hit = _plain.get(key)
        if hit is not None and hit[0] is config:
            a = args[0]
            if len(a) == 2:  # url and method only (the loop of plain GETs): nothing to check
                return TaskArgs(kind, hit[1], 0.5, None, None)
            return TaskArgs(
                kind,
                hit[1],
                priority_value(a.get("priority", 0.5)),
                _begin_date(a.get("earliestBeginDate")),
                _description(a.get("taskDescription")),
            )
    checked = _task_args(name, kind, args, kwargs, config)
    if key is not None:
        if len(_plain) >= _PLAIN_KEPT:
            _plain.clear()
        _plain[key] = (config, checked.request)
    return checked


def _plain_key(
    kind: TaskKind, args: tuple[Any, ...], kwargs: dict[str, Any], config: ConfigValues
) -> tuple[int, bool, str, str] | None:
    """The cache key of a call whose request depends on its URL and method only, else None."""
    if kwargs or len(args) != 1 or type(args[0]) is not dict or kind is TaskKind.UPLOAD:
        return None
    a = args[0]
    download = kind is TaskKind.DOWNLOAD
    if not a.keys() <= (_PLAIN_DOWNLOAD_KEYS if download else _PLAIN_DATA_KEYS):
        return None
    url, method = a.get("url"), a.get("method", "POST")
    if type(url) is not str or type(method) is not str:
        return None
    return id(config), download, url, method


def _task_args(
    name: str,
    kind: TaskKind,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    config: ConfigValues,
) -> TaskArgs:
    known = DOWNLOAD_KEYS if kind is TaskKind.DOWNLOAD else DATA_KEYS
    a = check.args_dict(name, args, kwargs, known)
    for key in a:
        if key not in known:
            raise InvalidArgumentValueError(
                key, f"{key!r} is not an argument of {name}() (known: {sorted(known)})"
            )
    given = a.get("resumeData")  # (None: none, as for the other arguments)
    resume = parse_resume_data(given) if given is not None else None
    rate = check.bytes_per_second("maximumBytesPerSecond", a.get("maximumBytesPerSecond"))
    url = check.http_url("url", a.get("url", resume.url if resume is not None else None))
    check_url_version(config, url)
    download = kind is TaskKind.DOWNLOAD
    method = "GET" if download else check.method("method", a.get("method", "POST"))
    headers = check.header_fields("requestHeaders", a.get("requestHeaders"))
    body: Body = (None, None, None)
    if kind is TaskKind.DATA:
        body = _data_body(a.get("data"))
    elif kind is TaskKind.UPLOAD:
        body = _upload_body(a.get("data"))
    request = build_request(
        method,
        url,
        config.headers,
        headers,
        body=body[0],
        body_path=body[1],
        content_type=body[2],
        credential=credential_value("credential", a.get("credential")),
    )
    priority = priority_value(a.get("priority", 0.5))
    begin = _begin_date(a.get("earliestBeginDate"))
    description = _description(a.get("taskDescription"))
    return TaskArgs(kind, request, priority, begin, description, resume, rate)


def _description(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentTypeError(
            "taskDescription", f"'taskDescription' must be a str (got {value!r})"
        )
    return value


def priority_value(value: Any) -> float:
    """A task's priority: Apple's URLSessionTask.priority range, [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidArgumentValueError(
            "priority", f"'priority' must be a number in [0, 1] (got {value!r})"
        )
    return float(value)


def _begin_date(value: Any) -> float | None:
    """A datetime (naive means local time, as Python's own) or epoch seconds."""
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


def _data_body(data: Any) -> Body:
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
            return None, _readable_file(data.nativePath), data.mimeType
        return data.read(), None, data.mimeType
    raise InvalidArgumentTypeError(
        "data", f"'data' must be a dict, list, str, bytes or Blob (got {type(data).__name__})"
    )


def _upload_body(data: Any) -> Body:
    """An upload's body: a Blob or bytes as is, or a file path streamed from disk."""
    if data is None:
        raise InvalidArgumentValueError(
            "data", "'data' is required for an upload (a Blob, bytes or file path)"
        )
    if isinstance(data, (str, os.PathLike)):
        path = _readable_file(os.fspath(data))
        return None, path, mimetypes.guess_type(path)[0] or "application/octet-stream"
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), None, "application/octet-stream"
    if isinstance(data, Blob):
        return _data_body(data)
    raise InvalidArgumentTypeError(
        "data", f"'data' must be a Blob, bytes or a file path (got {type(data).__name__})"
    )


def _readable_file(path: str) -> str:
    """The file's absolute path, resolved now: the body is read later, perhaps by the transfer
    process, whose working directory is not the caller's."""
    if not os.path.isfile(path):
        raise UploadFileNotFoundError(2, f"'data' names a file that does not exist: {path!r}", path)
    if not os.access(path, os.R_OK):
        raise InvalidArgumentValueError(
            "data", f"'data' names a file that cannot be read: {path!r}"
        )
    return os.path.abspath(path)


# -- other arguments a session takes --------------------------------------------------------------


def dispatcher_for(queue: Any) -> Dispatcher:
    """``delegateQueue``: None (a delivery thread), an asyncio loop, or an EventQueue."""
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


def check_callback(callback: object) -> None:
    if callback is not None and not callable(callback):
        raise InvalidArgumentTypeError(
            "callback", f"'callback' must be callable (got {callback!r})"
        )
