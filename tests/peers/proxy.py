"""pproxy (PyPI) as the peer proxy: HTTP (plain forwarding and CONNECT), HTTPS, SOCKS5; with or without auth.

Each proxy is its own ``python -m pproxy`` process on a free 127.0.0.1 port, started with ``-v`` so
that it logs one line per connection it relays (``http 127.0.0.1:40212 -> 127.0.0.1:8443``). Those
lines are the proof a test needs that a request really went through the proxy:
:meth:`Pproxy.connections` returns the targets, in order: one per client connection, however
many keep-alive requests it then carries (so a test that needs "N requests went through" counts
N fresh connections, or asserts at least one). The output is unbuffered (``-u``), and
pproxy writes the line before it opens the upstream connection, so by the time the client has its
response the line is in the log.

Two pproxy habits the launcher switches off or works around:

- pproxy remembers, per client IP, that a client once authenticated and then lets every later
  connection from that IP in without credentials for 30 days (``--auth``, default 2592000 s). On
  127.0.0.1 that would let a test that sends no credential pass after one that did; ``--auth -1``
  makes every connection authenticate.
- With credentials set, the HTTP proxy answers a request without them with 407 (to CONNECT
  too); the SOCKS5 proxy closes the connection during the method negotiation. Neither logs a
  relayed connection then (it logs ``Unauthorized ... from 127.0.0.1``).

The launcher's readiness probe (a bare TCP connect) shows in the log as ``Unsupported protocol``
and is not counted.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ._certs import PeerCerts
from ._process import OnePortPeer

__all__ = ["Pproxy"]

_RELAYED = re.compile(r"^(?:http|socks5|socks4)\S* \S+ -> (\S+)$", re.MULTILINE)


class Pproxy(OnePortPeer):
    """One pproxy listener: ``kind`` is ``http``, ``https`` (HTTP proxy over TLS) or ``socks5``."""

    def __init__(
        self,
        directory: Path,
        kind: str,
        *,
        auth: tuple[str, str] | None = None,
        certs: PeerCerts | None = None,
    ) -> None:
        if kind not in ("http", "https", "socks5"):
            raise ValueError(f"'kind' must be 'http', 'https' or 'socks5' (got {kind!r})")
        if kind == "https" and certs is None:
            raise ValueError("'kind' 'https' needs 'certs' (got certs=None)")
        self.kind = kind
        self.auth = auth
        listen_scheme = {"http": "http", "https": "http+ssl", "socks5": "socks5"}[kind]

        def argv(port: int) -> list[str]:
            listen = f"{listen_scheme}://127.0.0.1:{port}"
            if auth is not None:
                listen += f"#{auth[0]}:{auth[1]}"
            argv = [sys.executable, "-u", "-m", "pproxy", "-l", listen, "-v", "--auth", "-1"]
            if certs is not None and kind == "https":
                argv += ["--ssl", f"{certs.server_cert},{certs.server_key}"]
            return argv

        self._launch_on_port(f"pproxy {kind}", directory, argv)

    @property
    def url(self) -> str:
        """The proxy's URL without credentials (``http://``, ``https://`` or ``socks5://``)."""
        return f"{self.kind}://127.0.0.1:{self.port}"

    @property
    def authed_url(self) -> str:
        """The proxy's URL with its ``user:password@`` (the plain URL when it has no auth)."""
        if self.auth is None:
            return self.url
        return f"{self.kind}://{self.auth[0]}:{self.auth[1]}@127.0.0.1:{self.port}"

    def connections(self) -> list[str]:
        """``host:port`` of every connection pproxy relayed so far, oldest first."""
        return _RELAYED.findall(self.process.log_text())
