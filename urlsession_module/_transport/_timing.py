"""The urllib3 engine's metrics: a connection mixin that stamps each phase as it happens.

urllib3 keeps no timings; Apple's metrics want the connect, the TLS handshake, the request
going out and the head coming back as separate dates. The mixin sits before urllib3's
connection classes (:mod:`._connections`) and writes to the current transaction of the attempt
the connection sends for (``self.attempt``, set by the pool for each request). The name lookup
happens inside urllib3's connect, so its start and end are the connect's start.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from typing import TYPE_CHECKING, Any

from urllib3 import HTTPHeaderDict, HTTPResponse
from urllib3.connection import HTTPConnection

from ._metrics import Transaction, head_size

if TYPE_CHECKING:
    from ._attempt import Attempt


class TimedConnection(HTTPConnection):
    """Stamps connect, TLS, request and response-head dates on the attempt's transaction."""

    attempt: Attempt | None = None
    _served = 0
    _tcp_done = 0.0
    _ends: tuple[Any, dict[str, Any]] | None = None  # (socket, its connection_ends)

    def _tx(self) -> dict[str, Any] | None:
        """The current transaction's record (written as a plain dict: see :class:`Transaction`)."""
        attempt = self.attempt
        if attempt is None or attempt.metrics is None:
            return None
        tx: Transaction | None = attempt.metrics.current
        return None if tx is None else tx.fields

    def _new_conn(self) -> Any:
        tx = self._tx()
        if tx is not None:
            now = time.time()
            tx["domainLookupStartDate"] = tx["domainLookupEndDate"] = tx["connectStartDate"] = now
        sock = super()._new_conn()
        self._tcp_done = time.time()
        return sock

    def connect(self) -> None:
        super().connect()
        # urllib3 connects the same connection object again after a drop: a new socket has
        # served nothing yet (else isReusedConnection says yes on a fresh connection).
        self._served = 0
        tx = self._tx()
        if tx is not None:
            now = time.time()
            tx["connectEndDate"] = now
            if tx["requestStartDate"] is not None:  # http.client connects inside request()
                tx["requestStartDate"] = now
            if isinstance(self.sock, ssl.SSLSocket):
                tx["secureConnectionStartDate"] = self._tcp_done or tx["connectStartDate"]
                tx["secureConnectionEndDate"] = now

    def request(self, method: str, url: str, *args: Any, **kw: Any) -> None:
        tx = self._tx()
        if tx is not None:
            tx["requestStartDate"] = time.time()
            headers = kw.get("headers") if len(args) < 2 else args[1]
            # the request line "METHOD url HTTP/1.1"
            line = len(method) + len(url) + 10
            if not isinstance(headers, HTTPHeaderDict):  # (both engines send urllib3's)
                headers = (headers or {}).items()
            tx["countOfRequestHeaderBytesSent"] = head_size(line, headers)
        try:
            super().request(method, url, *args, **kw)  # (http.client connects in here)
        except BaseException:
            if tx is not None and self.sock is None:  # the connect failed: nothing went out
                tx["requestStartDate"] = None
                tx["countOfRequestHeaderBytesSent"] = 0
            raise
        if tx is not None:
            tx["requestEndDate"] = time.time()

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        tx = self._tx()
        resp = super().getresponse()
        if tx is not None:
            tx["responseStartDate"] = time.time()
            sock = self.sock
            if self._ends is None or self._ends[0] is not sock:
                # Once per connection, not per request: two system calls and the TLS version.
                self._ends = (sock, connection_ends(sock))
            tx.update(self._ends[1])
        return resp


def connection_ends(sock: Any) -> dict[str, Any]:
    """Both ends of a connection, and its TLS version, as transaction fields."""
    ends: dict[str, Any] = {}
    with contextlib.suppress(OSError, AttributeError, TypeError, ValueError):
        ends["remoteAddress"], ends["remotePort"] = sock.getpeername()[:2]
        ends["localAddress"], ends["localPort"] = sock.getsockname()[:2]
    if isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(OSError, ValueError):
            ends["negotiatedTLSProtocolVersion"] = sock.version()
    return ends
