"""A raw-socket HTTP server that misbehaves on purpose: one named fault scenario per path.

:class:`~urlsession_module.testing.LocalServer` is a well-behaved server with a few faults;
this one exists for the failures a real HTTP server library will not produce: a reset before
the headers, a body shorter than its ``Content-Length``, broken chunk framing, a status line
that is not HTTP, headers that never end, corrupt gzip, an interim ``103`` response, and so on.
It speaks HTTP/1.1 by hand over plain sockets (optionally TLS), on loopback only::

    from urlsession_module.testing import FaultServer

    with FaultServer() as faults:
        url = faults.url("reset-mid-body", length=100_000, after=10_000)

The first path segment names the scenario (:data:`SCENARIOS` lists them with a description);
query parameters tune it. Every scenario reads the whole request first (head and body), so a
client's failure is about the response, never about a request it could not send.

Threading model (from :mod:`._base`): one accept thread and one thread per connection. Every
wait inside a scenario wakes up when the server stops, and :meth:`FaultServer.stop` shuts the
sockets down and joins every thread within a bounded time, so a test never leaves a thread
behind. The connection is in :mod:`._fault_conn`, the scenarios in :mod:`._scenarios`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
from typing import Any
from urllib.parse import urlencode, urlsplit

from ._base import ServerBase
from ._fault_conn import IO_TIMEOUT, MAX_HANG, Disconnected, FaultConnection, FaultRequest, Query
from ._scenarios import SCENARIOS, length_headers

__all__ = ["SCENARIOS", "FaultConnection", "FaultRequest", "FaultServer"]

logger = logging.getLogger(__name__)

_ACCEPT_FAULTS = (None, "reset", "close", "stall", "garbage")


class FaultServer(ServerBase):
    """A raw-socket HTTP/1.1 server on 127.0.0.1 whose every path is a fault scenario.

    ``ssl_context`` serves TLS (handshake in the connection thread); ``url_host`` is the host
    name URLs use (``localhost`` by default with TLS, to match a certificate). ``on_accept``
    misbehaves before any byte is read, TLS handshake included: ``'reset'``, ``'close'``,
    ``'stall'`` or ``'garbage'``. ``start()`` and ``stop()`` are bounded (5 s); ``stop()``
    leaves no thread or socket behind.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        url_host: str | None = None,
        on_accept: str | None = None,
    ) -> None:
        if on_accept not in _ACCEPT_FAULTS:
            raise ValueError(f"on_accept must be one of {_ACCEPT_FAULTS} (got {on_accept!r})")
        super().__init__(name="FaultServer", ssl_context=ssl_context, url_host=url_host)
        self._on_accept = on_accept
        self._requests: list[FaultRequest] = []

    # -- properties ------------------------------------------------------------------------------

    def url(self, scenario: str, path: str = "", **params: object) -> str:
        """The URL of ``scenario`` (a key of :data:`SCENARIOS`) with query ``params``."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown fault scenario {scenario!r} (known: {sorted(SCENARIOS)})")
        query = urlencode({k: str(v) for k, v in params.items()})
        return f"{self.base_url}/{scenario}{path}" + (f"?{query}" if query else "")

    @property
    def requests(self) -> list[FaultRequest]:
        """The requests read so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def hits(self, scenario: str) -> int:
        """How many requests named ``scenario``."""
        return sum(1 for r in self.requests if r.scenario == scenario)

    # -- one connection --------------------------------------------------------------------------

    def _serve(self, number: int, sock: socket.socket, addr: Any) -> None:
        """The accept fault, the TLS handshake, then one scenario per request until one closes."""
        try:
            sock.settimeout(IO_TIMEOUT)
            if self._accept_fault(sock):
                return
            if self._ssl_context is not None:
                sock = self._start_tls(number, sock, IO_TIMEOUT)
            conn = FaultConnection(self, sock, number)
            while not self.stopping:
                head = conn.read_request()
                if head is None:
                    return
                method, target, headers, length = head
                path, _, query = target.partition("?")
                name = urlsplit(path).path.lstrip("/").split("/", 1)[0]
                req = FaultRequest(name, method, target, headers, length, number)
                with self._lock:
                    self._requests.append(req)
                if name not in SCENARIOS:
                    conn.send_head(404, "Not Found", length_headers(0))
                    return
                if not SCENARIOS[name][0](conn, req, Query(query)):
                    return
        except (Disconnected, ValueError) as exc:
            logger.debug("FaultServer: connection %d ended: %r", number, exc)

    def _accept_fault(self, sock: socket.socket) -> bool:
        """Misbehave before reading anything, as ``on_accept`` says; True if the scenario ended."""
        fault = self._on_accept
        if fault is None:
            return False
        if fault == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault == "stall":
            self.wait_stop(MAX_HANG)
        elif fault == "garbage":
            with contextlib.suppress(OSError):
                sock.sendall(bytes(range(256)))
        return True
