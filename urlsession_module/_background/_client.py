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
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .._storage import open_private
from ..exceptions import (
    InvalidArgumentValueError,
    StateDirectoryError,
    TransferUnavailableError,
    URLSessionError,
)
from . import _protocol as proto
from ._handover import Handovers
from ._wire import (
    ErrorReply,
    Invalidate,
    Journaled,
    Message,
    MessageError,
    Reply,
    parse,
    parse_reply,
)

__all__ = ["TransferClient", "TransferUnavailableError", "connect"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
RECONNECT_ATTEMPTS = 8  # after a crash: up to 2 minutes for a new transfer process to answer
REQUEST_TIMEOUT = 30.0
# multiprocessing.connection's framing (a big-endian 4-byte length, then the payload), written
# here for small frames in one os.write: Connection.send_bytes costs a hand-over a few Python
# calls more for the same bytes. Larger frames still go through it.
_HEADER = struct.Struct("!i")
_SMALL_FRAME = 16384


class SessionEndpoint(Protocol):
    identifier: str

    def _remote_message(self, message: Message) -> None: ...

    def _remote_attach_message(self) -> Message: ...

    def _remote_refused(self, task_id: str, message: str) -> None: ...


class TransferClient:
    """The connection of this host process to the transfer process of one state directory.

    Shared by the process's background sessions (:meth:`for_home`), and used the same way, for
    one question, by ``urlsession status`` and ``cancel`` (:meth:`one_shot`, which never starts
    a transfer process).
    """

    _instances: ClassVar[dict[Path, TransferClient]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def for_home(cls, home: Path) -> TransferClient:
        with cls._instances_lock:
            client = cls._instances.get(home)
            if client is None:
                client = cls._instances[home] = cls(home)
            return client

    @classmethod
    @contextlib.contextmanager
    def one_shot(cls, home: Path, timeout: float = 0.5) -> Any:
        """A client of the running transfer process of ``home`` (TransferUnavailableError if
        none runs), closed on leaving the block."""
        client = cls(home, spawn=False, connect_timeout=timeout)
        try:
            client._ensure_connected()
            yield client
        finally:
            client.close()

    def __init__(
        self, home: Path, *, spawn: bool = True, connect_timeout: float = CONNECT_TIMEOUT
    ) -> None:
        self.home = home
        self._spawn = spawn
        self._connect_timeout = connect_timeout
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._numbers = itertools.count(1)
        self._sessions: dict[str, SessionEndpoint] = {}
        self._reader: threading.Thread | None = None
        self._closing = False
        self._callbacks: dict[int, Callable[[dict[str, Any] | None], None]] = {}
        # Tasks handed over and not yet journaled, and the task numbers leased for new ones.
        self.handovers = Handovers(self)

    # -- sessions ----------------------------------------------------------------------------------

    def attach(self, session: SessionEndpoint) -> None:
        """Register the session and tell the transfer process about it (this starts the replay).

        One session per identifier: events could reach only one of two.
        """
        with self._cond:
            other = self._sessions.get(session.identifier)
            if other is not None and other is not session:
                raise InvalidArgumentValueError(
                    "identifier",
                    f"'identifier' {session.identifier!r} is already used by a background "
                    "session of this process: invalidate that session first",
                )
            self._sessions[session.identifier] = session
            self._closing = False
        try:
            self._ensure_connected()
            # The lease goes right behind the attach, not after its reply: the transfer
            # process answers it as soon as the replay is written, before this host's
            # acknowledgements of that replay (which can take it a while) are read.
            attach = session._remote_attach_message()
            number = self._send_request(attach)
            self.handovers.prefetch(wait=True)
            self._reply(number, attach)
        except BaseException:
            with self._cond:
                if self._sessions.get(session.identifier) is session:
                    del self._sessions[session.identifier]
            raise

    def detach(self, session: SessionEndpoint, cancel: bool = False) -> None:
        """The session is invalidated; the last one to go closes the connection and its thread."""
        with contextlib.suppress(URLSessionError, OSError):
            self.request(Invalidate(session.identifier, cancel))
        with self._cond:
            if self._sessions.get(session.identifier) is session:
                del self._sessions[session.identifier]
            last = not self._sessions
        if last:
            self.close()

    def close(self) -> None:
        """Hang up and end the reader thread (a later request connects again)."""
        with self._cond:
            self._closing = True
            conn, reader = self._conn, self._reader
            self._conn = None
            self._cond.notify_all()
        if conn is not None:
            _hang_up(conn)
        if reader is not None and reader is not threading.current_thread():
            reader.join(5.0)

    # -- messages ----------------------------------------------------------------------------------

    def request(self, message: Message, timeout: float = REQUEST_TIMEOUT) -> Reply:
        """Send a request and wait (bounded) for its reply; a refusal raises, in plain words."""
        return self._reply(self._send_request(message), message, timeout)

    def _send_request(self, message: Message) -> int:
        """Send a request; its number, for :meth:`_reply`."""
        number = next(self._numbers)
        d = message.to_dict()
        d["req"] = number
        self._send(d)
        return number

    def _reply(self, number: int, message: Message, timeout: float = REQUEST_TIMEOUT) -> Reply:
        """Wait (bounded) for request ``number``'s reply; a refusal raises, in plain words."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: number in self._replies or self._conn is None, timeout
            ):
                raise TransferUnavailableError(
                    f"the transfer process did not answer {message.op!r}"
                )
            raw = self._replies.pop(number, None)
        if raw is None:
            raise TransferUnavailableError("the connection to the transfer process was lost")
        try:
            reply = parse_reply(raw, type(message))
        except MessageError:
            raise TransferUnavailableError(
                f"the transfer process answered {message.op!r} with a malformed reply"
            ) from None
        if isinstance(reply, ErrorReply):
            raise URLSessionError(f"the transfer process refused {message.op!r}: {reply.message}")
        return reply

    def request_async(
        self, message: Message, callback: Callable[[dict[str, Any] | None], None]
    ) -> None:
        """Send a request whose raw reply goes to ``callback`` on the reader thread (None if
        the connection is lost first, or it cannot be sent)."""
        number = next(self._numbers)
        d = message.to_dict()
        d["req"] = number
        with self._cond:
            self._callbacks[number] = callback
        try:
            self._send(d)
        except TransferUnavailableError:
            with self._cond:
                dropped = self._callbacks.pop(number, None)
            if dropped is not None:
                dropped(None)

    def send(self, message: Message) -> None:
        """Send without waiting for a reply (none comes): acks and task controls."""
        with contextlib.suppress(TransferUnavailableError):
            self._send(message.to_dict())

    def _send(self, d: dict[str, Any]) -> None:
        self.send_frame(proto.encode(d))

    def send_frame(self, frame: bytes) -> None:
        """One frame written into the kernel's socket buffer (it waits there only when the
        buffer is full: the transfer process is behind, and that is the back-pressure)."""
        conn = self._conn or self._ensure_connected()  # (a stale one fails the write: as a race)
        try:
            with self._send_lock:
                if len(frame) <= _SMALL_FRAME:
                    _write_all(conn.fileno(), _HEADER.pack(len(frame)) + frame)
                else:
                    conn.send_bytes(frame)
        except (OSError, ValueError):
            raise TransferUnavailableError("cannot reach the transfer process") from None

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._conn is not None and not self._closing

    # -- connection --------------------------------------------------------------------------------

    def _ensure_connected(self) -> Connection:
        with self._cond:
            if self._conn is not None:
                return self._conn
        conn = connect(self.home, timeout=self._connect_timeout, spawn=self._spawn)
        with self._cond:
            self._closing = False
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
                raw = proto.decode(conn.recv_bytes())
            except (EOFError, OSError, ValueError):
                if not self._lost(conn):
                    return
                continue
            if isinstance(raw, dict) and raw.get("op") == "reply":
                req = raw.get("req")
                with self._cond:
                    callback = self._callbacks.pop(req, None) if isinstance(req, int) else None
                    if isinstance(req, int) and callback is None:
                        self._replies[req] = raw
                    self._cond.notify_all()
                if callback is not None:
                    callback(raw)
                continue
            try:
                message = parse(raw, from_host=False)
            except MessageError as exc:
                log.warning("ignored a malformed message from the transfer process: %s", exc)
                continue
            if isinstance(message, Journaled):
                self.handovers.journaled(message)
                continue
            with self._cond:
                session = self._sessions.get(getattr(message, "session", ""))
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
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            callback(None)
        self.handovers.connection_lost()
        with self._cond:
            if self._closing or not self._sessions:
                return False
            sessions = list(self._sessions.values())
        with contextlib.suppress(OSError):
            conn.close()
        log.info("transfer process lost; reconnecting")
        new = None
        for attempt in range(RECONNECT_ATTEMPTS):
            # A machine under load can take longer than one connect's bound to start a Python
            # process: giving up after one would leave every task of these sessions unfinished.
            with self._cond:
                if self._closing or not self._sessions:
                    return False
            try:
                new = connect(self.home)
                break
            except StateDirectoryError:
                log.exception("cannot restart the transfer process")
                return False
            except TransferUnavailableError:
                log.warning("transfer process not back yet (attempt %d)", attempt + 1)
        if new is None:
            log.error("cannot restart the transfer process: its tasks stay in its journal")
            return False
        with self._cond:
            self._conn = new
        for session in sessions:
            threading.Thread(target=self._reattach, args=(session,), daemon=True).start()
        return True

    def _reattach(self, session: SessionEndpoint) -> None:
        """Attach again (the replay follows), then hand over again what was not journaled."""
        with contextlib.suppress(URLSessionError, OSError):
            self.request(session._remote_attach_message())
            self.handovers.resend(session.identifier)
            self.handovers.prefetch()

    def session(self, identifier: str) -> SessionEndpoint | None:
        with self._cond:
            return self._sessions.get(identifier)


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
    """Connect to the transfer process of ``home``, starting it if nobody answers.

    The key and the socket are refused (:class:`StateDirectoryError`) if they are links or
    another user's: whoever could plant them would receive this host's tasks.
    """
    proto.check_state_files(home)
    deadline = time.monotonic() + timeout
    spawned_at = 0.0
    delay = 0.005
    while True:
        address = proto.check_socket(home)
        try:
            key = proto.read_or_make_key(home)
            conn = Client(address, family="AF_UNIX")
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, EOFError):
            pass
        else:
            try:
                proto.handshake(conn, key, server=False)
            except (OSError, EOFError, ValueError):
                conn.close()  # a process that is leaving, or not ours: try again
            else:
                return conn
        now = time.monotonic()
        if now > deadline:
            raise TransferUnavailableError(f"no transfer process answers at {address}")
        if spawn and now - spawned_at > 3.0:
            spawn_process(home)
            spawned_at = time.monotonic()
        if now - spawned_at < 1.0:
            # One just started (it has imported; it opens its journal, then listens): ask
            # often, not later and later, for a cold start waits on exactly this.
            time.sleep(0.002)
            continue
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# What ``python -m urlsession_module._background._daemon`` does, without running the package's
# ``__init__`` first: the public API (sessions, proxies, asyncio) is the hosts', not the transfer
# process's, and importing it was about 35 ms of every cold start. The package's modules are
# imported from its location as ever (``find_spec``); only its ``__init__`` is left out.
_BOOT = (
    "import importlib.util, sys; "
    "spec = importlib.util.find_spec('urlsession_module'); "
    "sys.modules['urlsession_module'] = importlib.util.module_from_spec(spec); "
    "from urlsession_module._background._daemon import main; "
    "sys.exit(main())"
)


def spawn_process(home: Path, runner: Callable[..., Any] = subprocess.run) -> None:
    """Start a detached transfer process with the host's environment (it double-forks).

    The package's own location goes first on PYTHONPATH, so the process imports the same code
    as the host even when the host runs from a source tree; its stderr goes to a private file
    in the state directory, so a process that dies before it can log still leaves a trace.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    fd = open_private(home / proto.STDERR_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        runner(
            [sys.executable, "-c", _BOOT, "--home", str(home), "--detach"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=fd,
            timeout=30,
            check=False,
        )
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte (a blocking socket may take fewer per call), as Connection._send does."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
