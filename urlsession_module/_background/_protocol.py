"""How hosts and the transfer process reach each other: files, framing, the handshake.

Framing and authentication come from :mod:`multiprocessing.connection` (length-prefixed
messages, an HMAC challenge with a key only the user can read); the payload of every message is
a JSON object, never a pickle, so nothing but plain data crosses the boundary. What the objects
mean is :mod:`._wire`'s business; this module is the thin part that needs a socket.

Every file here is opened without following links and only if this user owns it
(:func:`~urlsession_module._storage.open_private`): whoever could swap in the key or the socket
would receive a host's tasks and credentials.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Callable
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any, ClassVar

import attrs

from .._storage import check_private_file, open_private
from ._wire import Message, MessageError

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "Encoded",
    "check_state_files",
    "decode",
    "encode",
    "handshake",
    "peer_uid",
    "read_or_make_key",
]

SOCKET_NAME = "transfer.sock"
KEY_NAME = "transfer.key"
LOCK_NAME = "transfer.lock"
PID_NAME = "transfer.pid"
JOURNAL_NAME = "journal.sqlite3"
LOG_NAME = "transfer.log"
STDERR_NAME = "transfer.stderr"

HANDSHAKE_TIMEOUT = 5.0  # a peer that does not answer the challenge by then is dropped


_fast_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - an interpreter without its wheel: the json module
    _fast_loads = None

# Made once (encode runs per hand-over); what it encodes is plain data built here, never cyclic.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


@attrs.frozen
class Encoded(Message):
    """A message already in its wire form: a replay's chunk, put together from the journal's
    JSON text (:mod:`._replay`) rather than decoded and encoded again."""

    op: ClassVar[str] = "replay"
    frame: bytes

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = json.loads(self.frame)
        return d


def encode(message: Message | dict[str, Any]) -> bytes:
    if isinstance(message, Encoded):
        return message.frame
    d = message.to_dict() if isinstance(message, Message) else message
    return _ENCODER.encode(d).encode()


def decode(data: bytes) -> Any:
    """The JSON object of a frame (:class:`MessageError` if it is not JSON); :func:`_wire.parse`
    says whether it is a message.

    orjson first where it is installed: a replay's frames are megabytes of JSON, which it reads
    about three times as fast. What it refuses and the json module takes (``NaN``, integers
    beyond 64 bits, which our encoder may write) goes to the json module, so both read the same.
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(data)
        except ValueError:  # (orjson.JSONDecodeError is one)
            pass
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise MessageError("a message is a JSON object") from None


def peer_uid(fileno: int) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    sock = socket.socket(fileno=os.dup(fileno))
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    finally:
        sock.close()
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _io_timeout(fileno: int, seconds: float) -> None:
    """Bound each blocking read and write of the socket (0: unbounded again).

    SO_RCVTIMEO/SO_SNDTIMEO rather than ``settimeout``: the connection reads with ``os.read`` on
    a blocking descriptor, which a non-blocking socket would break.
    """
    sock = socket.socket(fileno=os.dup(fileno))
    try:
        whole = int(seconds)
        value = struct.pack("ll", whole, int((seconds - whole) * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    finally:
        sock.close()


def handshake(
    conn: Connection, key: bytes, *, server: bool, timeout: float = HANDSHAKE_TIMEOUT
) -> None:
    """The HMAC challenge both ways, each read and write bounded by ``timeout``.

    A peer that connects and never speaks must not hold anyone up: it fails here (``OSError``)
    after ``timeout``, on its own thread.
    """
    _io_timeout(conn.fileno(), timeout)
    if server:
        deliver_challenge(conn, key)
        answer_challenge(conn, key)
    else:
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
    _io_timeout(conn.fileno(), 0)


def read_or_make_key(home: Path) -> bytes:
    """The shared secret of the HMAC challenge: a 0600 file of this user, never a link."""
    path = home / KEY_NAME
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    key = os.urandom(32)
    tmp = home / f"{KEY_NAME}.{os.getpid()}"
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
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
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    fd = open_private(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


STATE_FILES = (KEY_NAME, SOCKET_NAME, PID_NAME, LOCK_NAME, JOURNAL_NAME, LOG_NAME, STDERR_NAME)


def check_state_files(home: Path) -> None:
    """Refuse at once (:class:`StateDirectoryError`) a transfer file that is a link or not ours,
    rather than start a transfer process that would refuse it and leave the host waiting."""
    for name in STATE_FILES:
        check_private_file(home / name)


def check_socket(home: Path) -> str:
    """The socket's path, once it is known not to be a link or another user's (absent is fine)."""
    path = home / SOCKET_NAME
    check_private_file(path)
    return str(path)
