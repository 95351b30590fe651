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
import threading
from multiprocessing.connection import Connection, Listener
from pathlib import Path

from . import _protocol as proto
from ._fields import Refused
from ._runner import Runner
from ._wire import (
    Ack,
    Attach,
    Control,
    Create,
    CreateReply,
    ErrorReply,
    Invalidate,
    Message,
    MessageError,
    OkReply,
    Reply,
    Shutdown,
    Status,
    StatusReply,
    WireError,
    parse,
    request_req,
)

__all__ = ["Server"]

log = logging.getLogger("urlsession_module.transfer")


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
                with contextlib.suppress(OSError):
                    host.conn.close()
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
        with self.lock:
            self.hosts.add(host)
        self.runner.host_count(+1)
        try:
            while not self.runner.stopping:
                try:
                    data = host.conn.recv_bytes()
                except (EOFError, OSError):
                    break
                reply = self._answer(host, data)
                if reply is not None:
                    host.send(reply)
        finally:
            host.alive = False
            with self.lock:
                self.hosts.discard(host)
            self.runner.host_count(-1, gone=host)

    def _answer(self, host: Host, data: bytes) -> Reply | None:
        """The reply to one frame (None when it asked for none): never silence, never a crash."""
        raw: object = None
        req: int | None = None
        try:
            raw = proto.decode(data)
            req = request_req(raw)
            message = parse(raw, from_host=True)
            reply = self.handle(host, message, req or 0)
        except MessageError as exc:
            code = WireError.UNKNOWN_OP if "'op'" in str(exc) else WireError.BAD_MESSAGE
            log.warning("refused a message: %s", exc)
            reply = ErrorReply(req or 0, code, f"{code.text}: {exc}")
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
        elif isinstance(m, Control):
            runner.control(m.task, m.action)
        elif isinstance(m, Ack):
            runner.ack(m.session, m.upto)
        elif isinstance(m, Invalidate):
            runner.invalidate(host, m.session, m.cancel)
        elif isinstance(m, Status):
            tasks, pending = runner.status()
            return StatusReply(req, os.getpid(), tasks, pending)
        elif isinstance(m, Shutdown):
            runner.stop()
        return OkReply(req)
