"""hypercorn (with aioquic) as a peer: HTTP/3 over QUIC, and a handshake-level mTLS refusal.

hypercorn is the server from PyPI that speaks HTTP/1.1, HTTP/2 and, with its ``h3`` extra
(aioquic), HTTP/3. One launcher, two uses:

- :func:`start_h3`: :mod:`tests.peers._app` on one port number, TCP (HTTP/1.1 + h2 via ALPN) and
  UDP (QUIC, HTTP/3), with the trustme certificate; its TCP responses carry
  ``alt-svc: h3=":<port>"`` as real HTTP/3 deployments advertise it.
- :func:`start_mtls`: the same ASGI app over TLS with ``verify_mode=CERT_REQUIRED``: Python's
  ``ssl`` (OpenSSL) aborts the handshake with an alert when the client sends no certificate
  (``certificate required``) or one from a CA it does not trust (``unknown ca``), the refusals
  URLSession reports as -1206 and -1205 (nginx, by contrast, completes the handshake and answers
  400). With TLS 1.3 the client's certificate travels after the client has finished its side of the
  handshake, so libcurl sees the refusal on its first read (``CURLE_RECV_ERROR``, "unexpected eof"):
  hypercorn's asyncio transport closes without flushing the alert.

httpbin is not served by hypercorn: hypercorn's WSGI adapter (0.18) never sends the response head
of a WSGI response with an empty body, so httpbin's 401s and ``/status/N`` become 500s
(:mod:`tests.peers.wsgi` serves it with waitress).

It runs with ``--workers 0``: the server in the launched process itself, no spawned worker to
re-import aioquic, so it starts in about a second and SIGTERM stops it (``--graceful-timeout 1``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ._certs import PeerCerts
from ._process import Peer, PeerProcess, free_port, tcp_ready

__all__ = ["Hypercorn", "start_h3", "start_mtls"]

REPO = Path(__file__).resolve().parents[2]
APP = "tests.peers._app:app"


class Hypercorn(Peer):
    """``python -m hypercorn`` on 127.0.0.1:<port> (TCP, and UDP for QUIC when ``quic``)."""

    def __init__(
        self,
        directory: Path,
        app: str,
        *,
        certs: PeerCerts | None = None,
        quic: bool = False,
        require_client_cert: bool = False,
    ) -> None:
        if (quic or require_client_cert) and certs is None:
            raise ValueError("'quic' and 'require_client_cert' need 'certs' (got certs=None)")
        directory.mkdir(parents=True, exist_ok=True)
        self.app = app
        self.quic = quic
        self.scheme = "https" if certs is not None else "http"

        def start() -> tuple[PeerProcess, Callable[[], bool]]:
            self.port = free_port(udp=quic)
            argv = [
                sys.executable,
                "-m",
                "hypercorn",
                "--workers",
                "0",
                "--graceful-timeout",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "-",
            ]
            if certs is not None:
                argv += ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
            if quic:
                argv += ["--quic-bind", f"127.0.0.1:{self.port}"]
            if require_client_cert and certs is not None:
                argv += ["--ca-certs", str(certs.client_ca), "--verify-mode", "CERT_REQUIRED"]
            argv.append(app)
            log = directory / f"hypercorn-{self.port}.log"
            process = PeerProcess("hypercorn", argv, log, cwd=REPO)
            tcp = tcp_ready(self.port)

            def ready() -> bool:
                # UDP cannot be probed without speaking QUIC: hypercorn says when it serves it.
                return tcp() and (not quic or "(QUIC)" in process.log_text())

            return process, ready

        self._launch(start)

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"


def start_h3(directory: Path, certs: PeerCerts) -> Hypercorn:
    """The ASGI app over QUIC (HTTP/3) and TCP (HTTP/1.1, h2) on one port number, TLS."""
    return Hypercorn(directory, APP, certs=certs, quic=True)


def start_mtls(directory: Path, certs: PeerCerts) -> Hypercorn:
    """The ASGI app over TLS that refuses, in the handshake, a client without a trusted certificate."""
    return Hypercorn(directory, APP, certs=certs, require_client_cert=True)
