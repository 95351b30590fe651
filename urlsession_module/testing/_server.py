"""A small, fast, local HTTP/1.1 (+TLS) server for demos, tests and benchmarks.

It exists so the package can be exercised end to end without the network: every
endpoint is deterministic (see :mod:`._content`) and the misbehaving ones
(``/stall``, ``/drop``, ``/drop-before-headers``, ``/redirect-loop``) reproduce the
failures a URLSession client has to survive. Only loopback traffic is intended.

Threading model (from :mod:`._base`): one accept thread plus one thread per connection.
Every open connection is tracked so :meth:`LocalServer.stop` can shut the sockets down and
join all threads within a bounded time, also when handlers sleep or stall. What a connection
speaks is in :mod:`._http` (the plumbing) and :mod:`._routes` (the endpoints).
"""

from __future__ import annotations

import logging
import shutil
import socket
import socketserver
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._base import ServerBase, trustme_context
from ._http import RequestRecord
from ._routes import RouteHandler

if TYPE_CHECKING:
    import trustme

__all__ = ["LocalServer", "RequestRecord"]

logger = logging.getLogger(__name__)

_HANDSHAKE_TIMEOUT = 10.0


class LocalServer(ServerBase):
    """Local HTTP/1.1 server (optionally TLS) with deterministic test endpoints.

    ``start()``/``stop()`` are bounded (5 s) so a broken test cannot hang the run,
    and ``stop()`` leaves no thread or socket behind.
    """

    def __init__(self, tls: bool = False, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(name="LocalServer", host=host, port=port)
        self.tls = tls
        self._body_bytes = 0
        self._requests: list[RequestRecord] = []
        self._tmpdir: Path | None = None
        self._ca_bundle: str | None = None
        self.tls_ca: trustme.CA | None = None
        if tls:
            import trustme

            self.tls_ca = trustme.CA()

    # ----------------------------------------------------------------- properties

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` or, with TLS, ``https://localhost:PORT`` (the cert name)."""
        if self.tls:
            host = (
                "localhost"
                if self._bind_host in ("127.0.0.1", "localhost", "")
                else self._bind_host
            )
            return f"https://{host}:{self.port}"
        host = self._bind_host or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL for ``path`` (which must start with ``/``)."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        return self.base_url + path

    @property
    def ca_bundle(self) -> str | None:
        """PEM file of the test CA in TLS mode (exists between start and stop), else None."""
        return self._ca_bundle

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the requests seen so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget recorded requests (e.g. between tests sharing one server)."""
        with self._lock:
            self._requests.clear()

    @property
    def connections_accepted(self) -> int:
        """Number of TCP connections accepted so far (lets tests observe keep-alive reuse)."""
        return self.connections

    @property
    def body_bytes_sent(self) -> int:
        """Response body bytes written so far by content endpoints (lets tests measure refetches)."""
        with self._lock:
            return self._body_bytes

    def _count_body_bytes(self, n: int) -> None:
        with self._lock:
            self._body_bytes += n

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    # ----------------------------------------------------------------- lifecycle

    def _prepare(self) -> None:
        """With TLS: a leaf certificate from the test CA, and the CA's PEM in a temporary file."""
        if self.tls_ca is None:
            return
        self._ssl_context = trustme_context(self.tls_ca)
        self._tmpdir = Path(tempfile.mkdtemp(prefix="urlsession-testing-"))
        bundle = self._tmpdir / "ca.pem"
        self.tls_ca.cert_pem.write_to_path(str(bundle))
        self._ca_bundle = str(bundle)

    def stop(self) -> None:
        """Stop accepting, shut down open connections and join all threads (<= 5 s)."""
        super().stop()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self._ca_bundle = None

    def _serve(self, number: int, sock: socket.socket, addr: Any) -> None:
        """TLS handshake (here, not in accept), then the handler's keep-alive loop."""
        if self.tls:
            sock = self._start_tls(number, sock, _HANDSHAKE_TIMEOUT)
        try:
            # The stdlib handler only keeps its ``server``; the routes reach LocalServer through it.
            RouteHandler(sock, addr, cast(socketserver.BaseServer, self))
        except OSError:
            raise
        except Exception:
            logger.exception("LocalServer: connection %s from %s crashed", number, addr)
