"""What hosts and the transfer process say to each other: JSON messages over a Unix socket.

Framing and authentication come from :mod:`multiprocessing.connection` (length-prefixed
messages, an HMAC challenge with a key only the user can read); the payload of every message is
a JSON object, never a pickle, so nothing but plain data crosses the boundary. This module is
sans-IO apart from the thin helpers at the bottom: it turns requests, configurations and task
snapshots into dicts and back.

Messages carry ``op``. Host → transfer process: ``attach``, ``create``, ``control``, ``ack``,
``invalidate``, ``status``, ``shutdown`` (requests carry ``req``, answered by a ``reply`` with the
same ``req``). Transfer process → host: ``reply``, ``event`` (live or journaled: ``seq`` > 0 must
be acknowledged), ``replay`` (what a relaunched host missed, in order).
"""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

import attrs

from .._configuration import ConfigValues
from .._state import Request, ResponseInfo

__all__ = [
    "config_from_dict",
    "config_to_dict",
    "decode",
    "encode",
    "peer_uid",
    "request_from_dict",
    "request_to_dict",
    "response_from_dict",
    "response_to_dict",
]

SOCKET_NAME = "transfer.sock"
KEY_NAME = "transfer.key"
LOCK_NAME = "transfer.lock"
PID_NAME = "transfer.pid"
JOURNAL_NAME = "journal.sqlite3"
LOG_NAME = "transfer.log"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> dict[str, Any]:
    message = json.loads(data)
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError("a message is a JSON object with an 'op'")
    return message


def request_to_dict(request: Request) -> dict[str, Any]:
    if request.body is not None:
        raise ValueError("background requests carry bodies as files (body_path), not bytes")
    return {
        "method": request.method,
        "url": request.url,
        "headers": [list(h) for h in request.headers],
        "body_path": request.body_path,
        "body_length": request.body_length,
    }


def request_from_dict(d: dict[str, Any]) -> Request:
    return Request(
        method=d["method"],
        url=d["url"],
        headers=tuple((str(k), str(v)) for k, v in d.get("headers", ())),
        body_path=d.get("body_path"),
        body_length=int(d.get("body_length", 0)),
    )


def response_to_dict(response: ResponseInfo | None) -> dict[str, Any] | None:
    if response is None:
        return None
    return {
        "url": response.url,
        "statusCode": response.statusCode,
        "headers": [list(h) for h in response.headers],
    }


def response_from_dict(d: dict[str, Any] | None) -> ResponseInfo | None:
    if d is None:
        return None
    return ResponseInfo(
        d["url"], int(d["statusCode"]), tuple((str(k), str(v)) for k, v in d["headers"])
    )


def config_to_dict(config: ConfigValues) -> dict[str, Any]:
    d = attrs.asdict(config, recurse=False)
    d["HTTPHeaderFields"] = dict(config.HTTPHeaderFields)
    d["launchCommand"] = list(config.launchCommand) if config.launchCommand else None
    return d


def config_from_dict(d: dict[str, Any]) -> ConfigValues:
    return ConfigValues(**d)


def peer_uid(fileno: int) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    sock = socket.socket(fileno=os.dup(fileno))
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    finally:
        sock.close()
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def read_or_make_key(home: Path) -> bytes:
    """The shared secret of the HMAC challenge: a 0600 file only this user can read."""
    path = home / KEY_NAME
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = os.urandom(32)
    tmp = home / f"{KEY_NAME}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # first writer wins; a racing writer reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()
