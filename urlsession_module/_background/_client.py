"""A host's side of the transfer process: connect (starting it on demand), ask, listen.

One :class:`TransferClient` per state directory per host process, shared by its background
sessions. A reader thread routes replies to the callers waiting for them and events to the
session they belong to. If the transfer process dies, the reader reconnects (starting a new one,
which recovers from the journal) and the sessions attach again, which replays what they missed.
The thread ends when the last session lets go.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .._state import Request, ResponseInfo, TaskKind, TaskState
from ..exceptions import TransferError, URLSessionError
from . import _protocol as proto

__all__ = ["RemoteTaskView", "TransferClient", "TransferUnavailableError"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0


class TransferUnavailableError(URLSessionError, OSError):
    """The transfer process could not be reached or started."""


class SessionEndpoint(Protocol):
    identifier: str

    def _remote_message(self, message: dict[str, Any]) -> None: ...

    def _remote_attach_message(self) -> dict[str, Any]: ...


class RemoteTaskView:
    """What a host knows of a task run by the transfer process (the TaskMachine's attributes)."""

    def __init__(self, snap: dict[str, Any], session_identifier: str) -> None:
        self.identifier: str = snap["id"]
        self.kind = TaskKind(snap["kind"])
        self.session_identifier = session_identifier
        self.original_request: Request = proto.request_from_dict(snap["request"])
        self.location: str | None = None
        self.update(snap)

    def update(self, snap: dict[str, Any]) -> None:
        self.state = TaskState(snap["state"])
        current = snap.get("current_request")
        self.current_request: Request = (
            self.original_request
            if current is None or current == snap["request"]
            else proto.request_from_dict(current)
        )
        self.count_received: int = int(snap.get("received", 0))
        self.count_expected_to_receive: int = int(snap.get("expected_receive", -1))
        self.count_sent: int = int(snap.get("sent", 0))
        self.count_expected_to_send: int = int(snap.get("expected_send", 0))
        self.response: ResponseInfo | None = proto.response_from_dict(snap.get("response"))
        err = snap.get("error")
        self.error: TransferError | None = TransferError(err[0], err[1]) if err else None

    def mark_completed(self) -> None:
        self.state = TaskState.COMPLETED

    @property
    def finished(self) -> bool:
        return self.state is TaskState.COMPLETED


class TransferClient:
    """The connection of this host process to the transfer process of one state directory."""

    _instances: ClassVar[dict[Path, TransferClient]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def for_home(cls, home: Path) -> TransferClient:
        with cls._instances_lock:
            client = cls._instances.get(home)
            if client is None:
                client = cls._instances[home] = cls(home)
            return client

    def __init__(self, home: Path) -> None:
        self.home = home
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._numbers = itertools.count(1)
        self._sessions: dict[str, SessionEndpoint] = {}
        self._reader: threading.Thread | None = None
        self._closing = False

    # -- sessions ----------------------------------------------------------------------------------

    def attach(self, session: SessionEndpoint) -> None:
        """Register the session and tell the transfer process about it (this starts the replay)."""
        with self._cond:
            self._sessions[session.identifier] = session
            self._closing = False
        self._ensure_connected()
        self.request(session._remote_attach_message())

    def detach(self, session: SessionEndpoint, cancel: bool = False) -> None:
        """The session is invalidated; the last one to go closes the connection and its thread."""
        with contextlib.suppress(URLSessionError, OSError):
            self.request({"op": "invalidate", "session": session.identifier, "cancel": cancel})
        with self._cond:
            if self._sessions.get(session.identifier) is session:
                del self._sessions[session.identifier]
            last = not self._sessions
            if last:
                self._closing = True
            conn, reader = (self._conn, self._reader) if last else (None, None)
            if last:
                self._conn = None
        if conn is not None:
            _hang_up(conn)
        if reader is not None and reader is not threading.current_thread():
            reader.join(5.0)

    # -- messages ----------------------------------------------------------------------------------

    def request(self, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        number = next(self._numbers)
        self._send({**message, "req": number})
        with self._cond:
            if not self._cond.wait_for(
                lambda: number in self._replies or self._conn is None, timeout
            ):
                raise TransferUnavailableError(
                    f"the transfer process did not answer {message['op']!r}"
                )
            reply = self._replies.pop(number, None)
        if reply is None:
            raise TransferUnavailableError("the connection to the transfer process was lost")
        if not reply.get("ok", False):
            raise URLSessionError(
                f"the transfer process refused {message['op']!r}: {reply.get('error')}"
            )
        return reply

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(TransferUnavailableError):
            self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        conn = self._ensure_connected()
        try:
            with self._send_lock:
                conn.send_bytes(proto.encode(message))
        except (OSError, ValueError) as exc:
            raise TransferUnavailableError(f"cannot reach the transfer process: {exc}") from None

    # -- connection --------------------------------------------------------------------------------

    def _ensure_connected(self) -> Connection:
        with self._cond:
            if self._conn is not None:
                return self._conn
        conn = connect(self.home)
        with self._cond:
            if self._conn is None:
                self._conn = conn
                if self._reader is None or not self._reader.is_alive():
                    self._reader = threading.Thread(
                        target=self._read_loop, name="urlsession-background", daemon=True
                    )
                    self._reader.start()
            else:
                conn.close()
            return self._conn

    def _read_loop(self) -> None:
        while True:
            with self._cond:
                conn = self._conn
            if conn is None:
                return
            try:
                message = proto.decode(conn.recv_bytes())
            except (EOFError, OSError, ValueError):
                if not self._lost(conn):
                    return
                continue
            if message["op"] == "reply":
                with self._cond:
                    self._replies[int(message["req"])] = message
                    self._cond.notify_all()
                continue
            with self._cond:
                session = self._sessions.get(message.get("session", ""))
            if session is not None:
                try:
                    session._remote_message(message)
                except Exception:
                    log.exception("background session failed to take a message")

    def _lost(self, conn: Connection) -> bool:
        """The transfer process went away: reconnect and re-attach, unless we are closing."""
        with self._cond:
            if self._conn is conn:
                self._conn = None
            self._cond.notify_all()  # waiters for replies give up on this connection
            if self._closing or not self._sessions:
                return False
            sessions = list(self._sessions.values())
        with contextlib.suppress(OSError):
            conn.close()
        log.info("transfer process lost; reconnecting")
        try:
            new = connect(self.home)
        except TransferUnavailableError:
            log.exception("cannot restart the transfer process")
            return False
        with self._cond:
            self._conn = new
        for session in sessions:
            threading.Thread(target=self._reattach, args=(session,), daemon=True).start()
        return True

    def _reattach(self, session: SessionEndpoint) -> None:
        with contextlib.suppress(URLSessionError, OSError):
            self.request(session._remote_attach_message())


def _hang_up(conn: Connection) -> None:
    """Close a connection so that a thread blocked reading it wakes up (close alone does not)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
    with contextlib.suppress(OSError):
        conn.close()


def connect(home: Path, timeout: float = CONNECT_TIMEOUT, spawn: bool = True) -> Connection:
    """Connect to the transfer process of ``home``, starting it if nobody answers."""
    address = str(home / proto.SOCKET_NAME)
    deadline = time.monotonic() + timeout
    spawned_at = 0.0
    delay = 0.005
    while True:
        try:
            key = proto.read_or_make_key(home)
            return Client(address, family="AF_UNIX", authkey=key)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, EOFError):
            pass
        now = time.monotonic()
        if now > deadline:
            raise TransferUnavailableError(f"no transfer process answers at {address}")
        if spawn and now - spawned_at > 3.0:
            spawn_process(home)
            spawned_at = time.monotonic()
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def spawn_process(home: Path, runner: Callable[..., Any] = subprocess.run) -> None:
    """Start a detached transfer process with the host's environment (it double-forks).

    The package's own location goes first on PYTHONPATH, so the process imports the same code
    as the host even when the host runs from a source tree; its stderr goes to a private file
    in the state directory, so a process that dies before it can log still leaves a trace.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    fd = os.open(home / "transfer.stderr", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        runner(
            [
                sys.executable,
                "-m",
                "urlsession_module._background._daemon",
                "--home",
                str(home),
                "--detach",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=fd,
            timeout=30,
            check=False,
        )
    finally:
        os.close(fd)
