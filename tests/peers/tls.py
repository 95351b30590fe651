"""``openssl s_server`` as the peer that refuses a client certificate in the TLS handshake itself.

nginx (``ssl_verify_client on``) lets the handshake finish and answers 400; hypercorn's asyncio
transport closes without sending an alert, so a client cannot tell "no certificate" from "bad
certificate". OpenSSL's own test server, with ``-Verify`` (a certificate is required) and
``-verify_return_error`` (an untrusted one fails), sends the TLS alert a client needs to tell them
apart, the distinction URLSession makes between -1206 and -1205:

=======================  =====================================  ===================================
client offers            TLS 1.3 (libcurl sees it on 1st read)  TLS 1.2 (libcurl sees it connecting)
=======================  =====================================  ===================================
no certificate           alert ``certificate required`` (116)   alert ``handshake failure`` (40)
an untrusted one         alert ``unknown ca`` (48)              alert ``unknown ca`` (48)
one signed by client CA  ``HTTP/1.0 200``, s_server's status page (``-www``)
=======================  =====================================  ===================================

s_server answers one connection at a time (each is short: ``-www`` closes after the response).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ._certs import PeerCerts
from ._process import OnePortPeer

__all__ = ["OpensslServer", "find_openssl"]


def find_openssl() -> str | None:
    """The openssl command (Debian's ``openssl`` package; .ci/run installs it with nginx)."""
    return shutil.which("openssl")


class OpensslServer(OnePortPeer):
    """``openssl s_server -www`` on 127.0.0.1:<free port>, demanding a client-CA-signed cert."""

    scheme = "https"

    def __init__(self, binary: str, directory: Path, certs: PeerCerts) -> None:
        def argv(port: int) -> list[str]:
            return [
                *(binary, "s_server", "-accept", f"127.0.0.1:{port}"),
                *("-cert", str(certs.server_cert), "-key", str(certs.server_key)),
                *("-CAfile", str(certs.client_ca), "-Verify", "2", "-verify_return_error"),
                *("-www", "-quiet"),
            ]

        self._launch_on_port("openssl s_server", directory, argv)
