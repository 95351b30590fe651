"""Resume data (Apple's ``cancelByProducingResumeData`` / ``downloadTaskWithResumeData``).

Resume data is an opaque, JSON-safe string: base64 of a small JSON record (the URL, the
validator ``If-Range`` will check, the partial file and its size) with an HMAC-SHA256 over it,
keyed by a secret kept 0600 in the private state directory. The key makes resume data that is
not ours (hand-made, edited, from another user or machine) fail at the call, before a task
exists, and keeps a caller from pointing the package at a file of its choosing. The partial
file is moved out of the session's download folder into ``resume/`` under the state directory,
so it outlives the task (and the session) until a download continues it.

Why by hand and not a library: the record is five fields and the standard library's ``hmac``
and ``base64`` are all it needs; a token library (itsdangerous, PyJWT) would be a dependency
for the same three lines.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from .._events import SessionCompleted
from .._storage import open_private, part_name, private_dir, state_dir
from ..exceptions import ErrorCode, InvalidArgumentTypeError, InvalidArgumentValueError

__all__ = ["ResumeData", "adopt", "finish_partial", "parse_resume_data", "produce_resume_data"]

_VERSION = 1
_KEY_BYTES = 32


@attrs.frozen
class ResumeData:
    """What a resume-data string says, checked."""

    url: str
    validator: str
    path: str
    size: int


def _folder() -> Path:
    return private_dir(state_dir() / "resume")


def _key() -> bytes:
    """The secret resume data is signed with (made once, 0600, never a planted link)."""
    path = _folder() / "key"
    try:
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        fd = open_private(path, os.O_RDONLY)
        try:
            key = os.read(fd, _KEY_BYTES)
        finally:
            os.close(fd)
        if len(key) == _KEY_BYTES:
            return key
        os.unlink(path)  # a torn key from a crash: a new one (old resume data is refused)
        return _key()
    try:
        key = os.urandom(_KEY_BYTES)
        os.write(fd, key)
    finally:
        os.close(fd)
    return key


def _mac(record: dict[str, Any]) -> str:
    raw = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_key(), raw, hashlib.sha256).hexdigest()


def produce_resume_data(url: str, validator: str | None, part: str, size: int) -> str | None:
    """Keep ``part`` (``size`` bytes of ``url``) for a later download; None (and the file
    removed) when it cannot be resumed: no validator for If-Range, or no bytes."""
    if not validator or size <= 0:
        with contextlib.suppress(OSError):
            os.unlink(part)
        return None
    dest = str(_folder() / f"{uuid.uuid4().hex}.part")
    try:
        os.replace(part, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            return None
        shutil.move(part, dest)  # another file system: copy, then remove
    record = {"v": _VERSION, "url": url, "validator": validator, "path": dest, "size": size}
    blob = json.dumps({"record": record, "mac": _mac(record)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(blob.encode()).decode("ascii")


def parse_resume_data(value: Any, argument: str = "resumeData") -> ResumeData:
    """Check resume data given to ``downloadTask``: ours, untouched, its partial file still
    there (``InvalidArgumentValueError`` naming ``argument`` otherwise)."""
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(
            argument, f"{argument!r} must be the str a cancelled download produced"
        )
    try:
        outer = json.loads(base64.urlsafe_b64decode(value.encode("ascii")))
        record, mac = outer["record"], outer["mac"]
        ok = (
            isinstance(record, dict)
            and isinstance(mac, str)
            and hmac.compare_digest(mac, _mac(record))
        )
        data = ResumeData(
            str(record["url"]), str(record["validator"]), str(record["path"]), int(record["size"])
        )
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        ok = False
    if not ok or record.get("v") != _VERSION:
        raise InvalidArgumentValueError(
            argument, f"{argument!r} is not resume data this package produced (or was altered)"
        )
    try:
        size = os.stat(data.path).st_size
    except OSError:
        size = -1
    if size != data.size:
        raise InvalidArgumentValueError(
            argument, f"{argument!r} names a partial download that is gone or was changed"
        )
    return data


def adopt(data: ResumeData, folder: str, identifier: str) -> tuple[int, str]:
    """Move the partial file to where the new task's download grows: (size, validator)."""
    dest = os.path.join(folder, part_name(identifier))
    try:
        os.replace(data.path, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(data.path, dest)
    return data.size, data.validator


def finish_partial(
    payload: SessionCompleted,
    url: str,
    part: str | None,
    validator: str | None,
    callback: Callable[[dict[str, Any]], None] | None,
    submit: Callable[[Callable[[], None]], None],
) -> SessionCompleted:
    """A download's end: what becomes of the partial file it kept.

    A success used it up; a task cancelled by ``cancelByProducingResumeData`` hands resume data
    to its callback (through the session's delivery, before ``sessioncompleted``); a failure
    that can be continued carries ``resumeData`` in its payload. Otherwise the file goes.
    """
    data = None
    if not payload.success and part is not None:
        try:
            size = os.stat(part).st_size
        except OSError:
            size = 0
        wanted = callback is not None or payload.errorCode != ErrorCode.CANCELLED
        data = produce_resume_data(url, validator, part, size) if wanted else None
    if part is not None:
        with contextlib.suppress(OSError):
            os.unlink(part)
    if callback is not None:
        answer = {"resumeData": data}
        submit(lambda: callback(answer))
        return payload
    return attrs.evolve(payload, resumeData=data) if data else payload
