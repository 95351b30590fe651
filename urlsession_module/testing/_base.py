"""The one server base of the testing servers: bind, accept, track, bounded stop, optional TLS.

:class:`~urlsession_module.testing.LocalServer`, :class:`~urlsession_module.testing.FaultServer`
and the tests' raw-socket server differ only in what they do with a connection
(:meth:`ServerBase._serve`); everything around it lives here, once:

- ``start()`` binds on 127.0.0.1 (port 0: an ephemeral port), listens and starts one accept
  thread; it is bounded (5 s) and turns a failure to listen into ``RuntimeError``.
- Every accepted connection gets its own thread; the socket and the thread are tracked, so
  ``stop()`` can shut the sockets down (which wakes a thread blocked in ``recv``) and join every
  thread it started within one bounded deadline (5 s), also when handlers sleep or stall.
- TLS is optional: with an ``ssl_context`` the handshake runs in the connection's thread (never
  in the accept loop, so a silent client cannot block other connections), after the subclass
  has had its say about the plain socket (:meth:`ServerBase._start_tls`).
  :func:`trustme_context` makes a server context from a throwaway trustme CA.

Every loop that waits is bounded: the accept loop polls the stop flag every 50 ms, and waits
inside handlers go through :meth:`ServerBase.wait_stop`, which returns as soon as the server stops.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import trustme

__all__ = ["ServerBase", "trustme_context"]

logger = logging.getLogger(__name__)

_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0
_ACCEPT_POLL = 0.05

_S = TypeVar("_S", bound="ServerBase")


def trustme_context(ca: trustme.CA) -> ssl.SSLContext:
    """A TLS server context for ``localhost`` and ``127.0.0.1``, signed by ``ca``, HTTP/1.1 ALPN."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class ServerBase:
    """A TCP server on loopback with one thread per connection and a bounded ``stop()``.

    Subclasses implement :meth:`_serve` (one connection, in its own thread; the base closes the
    socket afterwards and logs an ``OSError`` as the client going away). ``name`` prefixes the
    thread names (``NAME-accept-PORT``, ``NAME-conn-PORT-N``) and the log and error messages.
    """

    def __init__(
        self,
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        url_host: str | None = None,
        backlog: int = 128,
    ) -> None:
        self._name = name
        self._bind_host = host
        self._requested_port = port
        self._ssl_context = ssl_context
        self._url_host = url_host
        self._backlog = backlog
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._accept_thread: threading.Thread | None = None
        self._started = False
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[int, socket.socket] = {}  # open connections, by number
        self._threads: dict[int, threading.Thread] = {}  # every connection thread not yet joined
        self._accepted = 0

    # -- properties ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address the listener is bound to."""
        return self._bind_host

    @property
    def port(self) -> int:
        """The listening port (the ephemeral one once started with ``port=0``)."""
        if self._port is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, or ``https://localhost:PORT`` with TLS (the cert's name)."""
        scheme = "https" if self._ssl_context is not None else "http"
        host = self._url_host or ("localhost" if self._ssl_context is not None else "127.0.0.1")
        return f"{scheme}://{host}:{self.port}"

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` has begun."""
        return self._stopping.is_set()

    def wait_stop(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True at once (and early) when the server stops."""
        return self._stopping.wait(seconds)

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def open_connections(self) -> int:
        """How many connections are still being served."""
        with self._lock:
            return len(self._conns)

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self: _S) -> _S:
        """Bind, listen and start accepting; raises RuntimeError if not ready within 5 s."""
        if self._started:
            raise RuntimeError(f"{self._name} can only be started once")
        self._started = True
        try:
            self._prepare()
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._listener = listener
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._bind_host, self._requested_port))
            listener.listen(self._backlog)
            listener.settimeout(_ACCEPT_POLL)  # the accept loop looks at the stop flag this often
            self._port = int(listener.getsockname()[1])
            self._accept_thread = threading.Thread(
                target=self._accept_loop, name=f"{self._name}-accept-{self._port}", daemon=True
            )
            self._accept_thread.start()
            if not self._ready.wait(_START_TIMEOUT):
                raise RuntimeError(f"{self._name} did not start listening within 5 s")
        except BaseException as exc:
            self.stop()
            if isinstance(exc, OSError):
                raise RuntimeError(f"{self._name} could not listen: {exc}") from exc
            raise
        logger.debug("%s listening on %s", self._name, self.base_url)
        return self

    def stop(self) -> None:
        """Stop accepting, shut every connection down and join every thread (<= 5 s in all)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        deadline = time.monotonic() + _STOP_TIMEOUT
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
            if self._accept_thread.is_alive():
                logger.warning("%s: accept thread did not exit in time", self._name)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            conns = list(self._conns.values())
            threads = list(self._threads.values())
        for sock in conns:
            # socket.socket.shutdown also for an SSLSocket: keep its TLS state, just kick the fd
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("%s: %s did not exit in time", self._name, thread.name)
        logger.debug("%s on port %s stopped", self._name, self._port)

    # -- for subclasses --------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Called by ``start()`` before binding (e.g. to make certificates); a failure stops."""

    def _serve(self, number: int, sock: socket.socket, addr: Any) -> None:
        """Serve connection ``number`` (1 for the first accepted) in its own thread."""
        raise NotImplementedError

    def _start_tls(self, number: int, sock: socket.socket, timeout: float) -> ssl.SSLSocket:
        """Wrap ``sock`` in the server's TLS context and handshake, bounded by ``timeout``.

        The wrapped socket replaces the plain one in the tracking before the handshake, so a
        ``stop()`` during the handshake shuts it down.
        """
        assert self._ssl_context is not None
        sock.settimeout(timeout)
        tls = self._ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._conns[number] = tls
            if self._stopping.is_set():  # stop() may have looked at the sockets already
                raise ConnectionAbortedError("server stopping")
        tls.do_handshake()
        return tls

    # -- threads ---------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        self._ready.set()
        while not self._stopping.is_set():
            try:
                conn, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                logger.warning("%s: accept failed: %r", self._name, exc)
                self._stopping.wait(_ACCEPT_POLL)
                continue
            self._spawn(conn, addr)

    def _spawn(self, conn: socket.socket, addr: Any) -> None:
        with self._lock:
            if self._stopping.is_set():
                conn.close()
                return
            self._accepted += 1
            number = self._accepted
            # Forget the threads that have ended; stop() joins the rest.
            self._threads = {n: t for n, t in self._threads.items() if t.is_alive()}
            thread = threading.Thread(
                target=self._connection,
                args=(number, conn, addr),
                name=f"{self._name}-conn-{self._port}-{number}",
                daemon=True,
            )
            self._conns[number] = conn
            self._threads[number] = thread
        thread.start()

    def _connection(self, number: int, conn: socket.socket, addr: Any) -> None:
        try:
            self._serve(number, conn, addr)
        except OSError as exc:  # reset, broken pipe, TLS errors, shutdown by stop()
            logger.debug("%s: connection %d from %s ended: %r", self._name, number, addr, exc)
        finally:
            with self._lock:
                sock = self._conns.get(number, conn)
            for each in (sock, conn):
                with contextlib.suppress(OSError):
                    each.close()
            with self._lock:  # after the close: none counted open has its socket open
                self._conns.pop(number, None)
