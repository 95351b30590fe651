"""The transfer process's server: the listener, each peer's checks and handshake, op routing.

Hosts reach the process over a Unix socket in the private state directory. A peer of another
user is refused before anything is read (``SO_PEERCRED``); every peer must answer an HMAC
challenge with the key in a 0600 file. Each connection gets its own thread from the start, and
its handshake is bounded (:data:`~._protocol.HANDSHAKE_TIMEOUT`), so a peer that connects and
never speaks delays no one: the accept loop only accepts.

Every message is parsed by :mod:`._wire` before anything acts on it; every request that carries
a ``req`` gets a reply: the answer, or an error code with plain words (never an exception text).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from multiprocessing.connection import Connection, Listener
from pathlib import Path

from . import _protocol as proto
from ._fields import Refused
from ._intake import FrameReader
from ._runner import Runner
from ._wire import (
    Ack,
    Attach,
    Control,
    Create,
    CreateReply,
    ErrorReply,
    Invalidate,
    Lease,
    LeaseReply,
    Message,
    MessageError,
    OkReply,
    Reply,
    SetRate,
    Shutdown,
    Status,
    StatusReply,
    WireError,
    parse,
    request_req,
)

__all__ = ["Server"]

log = logging.getLogger("urlsession_module.transfer")

MAX_FRAME = 1 << 20  # no request is near this; a bigger frame closes its connection
MAX_BATCH = 4096  # hand-overs journaled in one commit at most


class Host:
    """One connected host process (the runner's :class:`~._runner.Peer`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.sessions: set[str] = set()
        self.alive = True

    def send(self, message: Message) -> None:
        if not self.alive:
            return
        try:
            data = proto.encode(message)
            with self.lock:
                self.conn.send_bytes(data)
        except (OSError, ValueError):
            self.alive = False


class Server:
    """Listens on the state directory's socket; each host is served on its own thread."""

    def __init__(self, home: Path, runner: Runner) -> None:
        self.home = home
        self.runner = runner
        self.key = proto.read_or_make_key(home)
        self.listener: Listener | None = None
        self.threads: set[threading.Thread] = set()
        self.hosts: set[Host] = set()
        self.lock = threading.Lock()

    def serve(self) -> None:
        """Listen, run the runner's loop until it ends, then close every connection."""
        address = proto.check_socket(self.home)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)  # a stale socket of a dead process: we hold the lock now
        old_umask = os.umask(0o177)
        try:
            self.listener = Listener(address, family="AF_UNIX")
        finally:
            os.umask(old_umask)
        os.chmod(address, 0o600, follow_symlinks=False)
        accept = threading.Thread(target=self._accept_loop, name="transfer-accept", daemon=True)
        accept.start()
        try:
            self.runner.loop()
        finally:
            self.runner.stopping = True
            self.listener.close()
            with self.lock:
                hosts = list(self.hosts)
            for host in hosts:
                host.alive = False
                _hang_up(host.conn)
            accept.join(2.0)
            for t in list(self.threads):
                t.join(5.0)
            self.runner.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address)

    def _accept_loop(self) -> None:
        assert self.listener is not None
        while not self.runner.stopping:
            try:
                conn = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(
                target=self._serve_peer, args=(conn,), name="transfer-host", daemon=True
            )
            with self.lock:
                self.threads.add(t)
            t.start()

    def _serve_peer(self, conn: Connection) -> None:
        try:
            if self._admit(conn):
                self._host_loop(Host(conn))
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self.lock:
                self.threads.discard(threading.current_thread())

    def _admit(self, conn: Connection) -> bool:
        try:
            uid = proto.peer_uid(conn.fileno())
            if uid != os.getuid():
                log.warning("refused a peer of uid %d", uid)
                return False
            proto.handshake(conn, self.key, server=True)
        except (OSError, EOFError, ValueError) as exc:  # a bad or silent peer never gets further
            log.warning("refused a peer: %s", type(exc).__name__)
            return False
        return True

    def _host_loop(self, host: Host) -> None:
        """Read the host's messages in order. Hand-overs are gathered while more is waiting on
        the socket and journaled together (group commit), always before the next message of
        another kind is handled and before the loop ends, so a host killed right after writing
        loses nothing the kernel held."""
        with self.lock:
            self.hosts.add(host)
        self.runner.host_count(+1)
        batch: list[Create] = []
        frames = FrameReader(host.conn.fileno(), MAX_FRAME)
        try:
            while not self.runner.stopping:
                if batch and (len(batch) >= MAX_BATCH or not frames.pending()):
                    self._commit(host, batch)
                    batch = []
                try:
                    data = frames.read()
                except (EOFError, OSError):
                    break  # the host left, or sent a frame over MAX_FRAME: this connection only
                message, reply = self._read(data)
                if isinstance(message, Create) and message.id is not None and message.req is None:
                    batch.append(message)
                    continue
                if batch:
                    self._commit(host, batch)
                    batch = []
                if message is not None:
                    reply = self._handle_safely(host, message)
                if reply is not None:
                    host.send(reply)
                elif message is None:
                    log.warning("closed a connection that sent a malformed message")
                    break
        finally:
            self._commit(host, batch)
            host.alive = False
            with self.lock:
                self.hosts.discard(host)
            self.runner.host_count(-1, gone=host)

    def _commit(self, host: Host, batch: list[Create]) -> None:
        if batch:
            host.send(self.runner.hand_over(batch))

    def _read(self, data: bytes) -> tuple[Message | None, Reply | None]:
        """The message in a frame, or the error reply owed for one that is not a message (None
        for both when it asked for no reply: the connection is then closed)."""
        raw: object = None
        try:
            raw = proto.decode(data)
            return parse(raw, from_host=True), None
        except MessageError as exc:
            req = request_req(raw)
            code = WireError.UNKNOWN_OP if "'op'" in str(exc) else WireError.BAD_MESSAGE
            log.warning("refused a message: %s", exc)
            return None, None if req is None else ErrorReply(req, code, f"{code.text}: {exc}")

    def _handle_safely(self, host: Host, message: Message) -> Reply | None:
        """The reply to one request (None when it asked for none): never silence, never a crash."""
        req: int | None = getattr(message, "req", None)
        try:
            reply = self.handle(host, message, req or 0)
        except Refused as exc:
            reply = ErrorReply(req or 0, exc.code, exc.message)
        except Exception:
            log.exception("failed to handle a message")
            reply = ErrorReply(req or 0, WireError.INTERNAL)
        return reply if req is not None else None

    def handle(self, host: Host, m: Message, req: int) -> Reply:
        """Route one parsed request to the runner."""
        runner = self.runner
        if isinstance(m, Attach):
            runner.attach(host, m.session, m.config)
        elif isinstance(m, Create):
            return CreateReply(req, runner.create(m))
        elif isinstance(m, Lease):
            return LeaseReply(req, runner.lease(m.count), m.count)
        elif isinstance(m, Control):
            runner.control(m.task, m.action)
        elif isinstance(m, SetRate):
            runner.set_rate(m.session, m.rate)
        elif isinstance(m, Ack):
            runner.ack(m.session, m.upto)
        elif isinstance(m, Invalidate):
            runner.invalidate(host, m.session, m.cancel)
        elif isinstance(m, Status):
            tasks, pending = runner.status(m.all)
            return StatusReply(req, os.getpid(), tasks, pending)
        elif isinstance(m, Shutdown):
            runner.stop()
        return OkReply(req)


def _hang_up(conn: Connection) -> None:
    """End a host's connection under the thread reading it: shut the socket down (its reader
    sees end of file and closes it), never close it under the reader (a closed
    ``Connection`` read by another thread fails with a TypeError, not an EOF)."""
    with contextlib.suppress(OSError, ValueError):
        dup = socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()
