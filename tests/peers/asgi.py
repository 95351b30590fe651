"""hypercorn (with aioquic) as a peer: HTTP/3 over QUIC, and HTTP/1.1 + h2 on the same port number.

hypercorn is the server from PyPI that speaks HTTP/1.1, HTTP/2 and, with its ``h3`` extra
(aioquic), HTTP/3. :func:`start_h3` serves :mod:`tests.peers._app` on one port number, TCP
(HTTP/1.1 + h2 via ALPN) and UDP (QUIC, HTTP/3), with the trustme certificate; its TCP responses
carry ``alt-svc: h3=":<port>"`` as real HTTP/3 deployments advertise it.

httpbin is not served by hypercorn: hypercorn's WSGI adapter (0.18) never sends the response head
of a WSGI response with an empty body, so httpbin's 401s and ``/status/N`` become 500s
(:mod:`tests.peers.wsgi` serves it with waitress).

It runs with ``--workers 0``: the server in the launched process itself, no spawned worker to
re-import aioquic, so it starts in about a second and SIGTERM stops it (``--graceful-timeout 1``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._certs import PeerCerts
from ._process import OnePortPeer, PeerProcess

__all__ = ["Hypercorn", "start_h3"]

REPO = Path(__file__).resolve().parents[2]
APP = "tests.peers._app:app"


class Hypercorn(OnePortPeer):
    """``python -m hypercorn`` on 127.0.0.1:<port> (TCP, and UDP for QUIC when ``quic``)."""

    def __init__(
        self,
        directory: Path,
        app: str,
        *,
        certs: PeerCerts | None = None,
        quic: bool = False,
    ) -> None:
        if quic and certs is None:
            raise ValueError("'quic' needs 'certs' (got certs=None)")
        self.app = app
        self.quic = quic
        self.scheme = "https" if certs is not None else "http"

        def argv(port: int) -> list[str]:
            argv = [sys.executable, "-m", "hypercorn", "--workers", "0", "--graceful-timeout", "1"]
            argv += ["--bind", f"127.0.0.1:{port}", "--access-logfile", "-"]
            if certs is not None:
                argv += ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
            if quic:
                argv += ["--quic-bind", f"127.0.0.1:{port}"]
            return [*argv, app]

        def serving_quic(process: PeerProcess) -> bool:
            # UDP cannot be probed without speaking QUIC: hypercorn says when it serves it.
            return not quic or "(QUIC)" in process.log_text()

        self._launch_on_port(
            "hypercorn", directory, argv, udp=quic, also_ready=serving_quic, cwd=REPO
        )


def start_h3(directory: Path, certs: PeerCerts) -> Hypercorn:
    """The ASGI app over QUIC (HTTP/3) and TCP (HTTP/1.1, h2) on one port number, TLS."""
    return Hypercorn(directory, APP, certs=certs, quic=True)
