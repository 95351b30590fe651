"""pytest fixtures for the peer servers (registered for the whole suite by tests/conftest.py).

Every peer is session-scoped and started only when a test asks for it; the function-scoped proxy
fixtures wrap a session-scoped pproxy so that each test counts only its own connections. A peer
that cannot be had fails the test loudly (CI installs every one, so a skip would hide a broken
install step); the message names the `.ci/run` step that installs it.

==========================  ==========================================================================
fixture                     gives
==========================  ==========================================================================
``peer_certs``              :class:`~tests.peers._certs.PeerCerts`: CAs, client certs in every form, pins
``nginx_peer``              :class:`~tests.peers.nginx.Nginx` with listeners http (1.1), https (ALPN
                            h2 + 1.1), tls12 (TLS 1.2 only), h2c (HTTP/2 prior knowledge), mtls
``h3_peer``                 hypercorn + aioquic: HTTP/3 over QUIC and h2/1.1 over TCP, one port number
``httpbin_peer``            PyPI's httpbin served by waitress, cleartext HTTP/1.1 (Digest, Basic, ...)
``client_cert_peer``        :class:`ClientCertPeer`: nginx that answers 400 without a trusted client
                            certificate, openssl s_server that refuses it with a TLS alert, the certs
``http_proxy``              :class:`ProxyView` of pproxy as an HTTP proxy (forwarding and CONNECT)
``http_proxy_auth``         the same, demanding Basic proxy credentials (``proxy-user``/``proxy-pass``)
``https_proxy``             pproxy as an HTTP proxy reached over TLS (trustme certificate)
``socks5_proxy``            pproxy as a SOCKS5 proxy
``socks5_proxy_auth``       the same, demanding a SOCKS5 user/password (``socks-user``/``socks-pass``)
==========================  ==========================================================================

A test asks for what it needs; URLs come from the peer, the CA from ``peer_certs``::

    def test_h2_by_alpn(nginx_peer, peer_certs):
        url = nginx_peer.url("https", "/files/64k.bin")  # listeners: http https tls12 h2c mtls
        ...  # trust peer_certs.ca; expect 'h2'; the body is pattern_bytes(64 << 10)

    def test_via_proxy(http_proxy_auth, nginx_peer):
        ...  # proxy http_proxy_auth.authed_url (or .url and .auth)
        assert http_proxy_auth.connections() == [f"127.0.0.1:{nginx_peer.ports['https']}"]

    def test_digest(httpbin_peer):
        url = httpbin_peer.url("/digest-auth/auth/user/passwd/SHA-256")
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ._certs import PeerCerts, make_certs
from .asgi import Hypercorn, start_h3
from .nginx import Nginx, find_nginx
from .proxy import Pproxy
from .tls import OpensslServer, find_openssl
from .wsgi import Httpbin

__all__ = [
    "PROXY_AUTH",
    "SOCKS_AUTH",
    "ClientCertPeer",
    "ProxyView",
    "client_cert_peer",
    "h3_peer",
    "http_proxy",
    "http_proxy_auth",
    "httpbin_peer",
    "https_proxy",
    "nginx_peer",
    "peer_certs",
    "require_module",
    "require_nginx",
    "require_openssl",
    "socks5_proxy",
    "socks5_proxy_auth",
]

PROXY_AUTH = ("proxy-user", "proxy-pass")
SOCKS_AUTH = ("socks-user", "socks-pass")

#: What `.ci/run` runs to install the peers, quoted in every "not installed" failure.
APT_STEP = "`.ci/run` step 'peers: apt-get install nginx curl openssl' (tests/peers/install-system-peers.sh, as root)"
PIP_STEP = "`.ci/run` step \"pip install -e '.[dev,docs]'\" (setup.cfg's 'peers' extra, in 'test')"


def require_nginx() -> str:
    """The nginx binary (installed now when missing and we may), or a loud failure."""
    return _require_binary("nginx", find_nginx() or (_install_system_peers() and find_nginx()))


def require_openssl() -> str:
    """The openssl command (installed now when missing and we may), or a loud failure."""
    return _require_binary(
        "openssl", find_openssl() or (_install_system_peers() and find_openssl())
    )


INSTALL_SCRIPT = Path(__file__).with_name("install-system-peers.sh")


@functools.cache
def _install_system_peers() -> bool:
    """The README's test command on a fresh Debian machine: the script .ci/run runs, once.

    Only as root with apt-get at hand (a developer's own machine is left alone: the failure
    then says what to install).
    """
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    done = subprocess.run(["bash", str(INSTALL_SCRIPT)], check=False, timeout=600)
    return done.returncode == 0


def _require_binary(name: str, found: str | None) -> str:
    if found is None:
        pytest.fail(f"{name} is not installed: the peer tests need it; {APT_STEP}", pytrace=False)
    return found


def require_module(name: str, package: str | None = None) -> None:
    """Fail loudly (not skip) when a peer's Python package is missing."""
    if importlib.util.find_spec(name) is None:
        pytest.fail(
            f"{package or name} is not installed: the peer tests need it; {PIP_STEP}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def peer_certs(tmp_path_factory: pytest.TempPathFactory) -> PeerCerts:
    require_module("trustme")
    require_module("cryptography")
    return make_certs(tmp_path_factory.mktemp("peer-certs"))


@pytest.fixture(scope="session")
def nginx_peer(tmp_path_factory: pytest.TempPathFactory, peer_certs: PeerCerts) -> Iterator[Nginx]:
    """One nginx with every listener; files 64k.bin and 1m.bin besides 1k.bin and text.txt."""
    binary = require_nginx()
    files = {"64k.bin": 64 << 10, "1m.bin": 1 << 20}
    root = tmp_path_factory.mktemp("nginx")
    with Nginx(binary, root, files, certs=peer_certs, h2c=True, mtls=True) as server:
        yield server


@pytest.fixture(scope="session")
def h3_peer(tmp_path_factory: pytest.TempPathFactory, peer_certs: PeerCerts) -> Iterator[Hypercorn]:
    require_module("hypercorn")
    require_module("aioquic", "hypercorn[h3] (aioquic)")
    with start_h3(tmp_path_factory.mktemp("h3"), peer_certs) as server:
        yield server


@pytest.fixture(scope="session")
def httpbin_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Httpbin]:
    require_module("waitress")
    require_module("httpbin")
    with Httpbin(tmp_path_factory.mktemp("httpbin")) as server:
        yield server


@dataclass(frozen=True)
class ClientCertPeer:
    """Two servers that demand a client certificate signed by ``certs.client_ca``.

    ``http400_url``: nginx (``ssl_verify_client on``) completes the handshake and answers 400 to a
    client without a trusted certificate; ``/whoami`` returns the verified subject.
    ``handshake_url``: ``openssl s_server`` refuses with a TLS alert instead (``certificate
    required`` without a certificate, ``unknown ca`` with an untrusted one).
    """

    nginx: Nginx
    openssl: OpensslServer
    certs: PeerCerts

    def http400_url(self, path: str = "/whoami") -> str:
        return self.nginx.url("mtls", path)

    def handshake_url(self, path: str = "/") -> str:
        return self.openssl.url(path)


@pytest.fixture(scope="session")
def client_cert_peer(
    tmp_path_factory: pytest.TempPathFactory, nginx_peer: Nginx, peer_certs: PeerCerts
) -> Iterator[ClientCertPeer]:
    binary = require_openssl()
    with OpensslServer(binary, tmp_path_factory.mktemp("s_server"), peer_certs) as server:
        yield ClientCertPeer(nginx_peer, server, peer_certs)


class ProxyView:
    """A session-scoped pproxy seen from one test: only the connections made since it began."""

    def __init__(self, proxy: Pproxy) -> None:
        self.proxy = proxy
        #: the proxy URL without credentials, and with ``user:password@`` (the same without auth)
        self.url, self.authed_url = proxy.url, proxy.authed_url
        #: (user, password) the proxy demands, or None
        self.auth = proxy.auth
        self._skip = len(proxy.connections())

    def connections(self) -> list[str]:
        """``host:port`` of each connection the proxy relayed during this test."""
        return self.proxy.connections()[self._skip :]

    @property
    def count(self) -> int:
        return len(self.connections())


class _Proxies:
    """The session's pproxy processes, each started the first time a test asks for its kind."""

    def __init__(self, factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> None:
        self._factory = factory
        self._request = request
        self._started: dict[tuple[str, tuple[str, str] | None], Pproxy] = {}

    def get(self, kind: str, auth: tuple[str, str] | None) -> Pproxy:
        if (kind, auth) not in self._started:
            require_module("pproxy")
            certs = self._request.getfixturevalue("peer_certs") if kind == "https" else None
            directory = self._factory.mktemp(f"pproxy-{kind}")
            self._started[kind, auth] = Pproxy(directory, kind, auth=auth, certs=certs)
        return self._started[kind, auth]

    def stop(self) -> None:
        for proxy in self._started.values():
            proxy.stop()


@pytest.fixture(scope="session")
def _pproxies(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[_Proxies]:
    proxies = _Proxies(tmp_path_factory, request)
    try:
        yield proxies
    finally:
        proxies.stop()


def _proxy_fixture(name: str, kind: str, auth: tuple[str, str] | None, doc: str) -> Any:
    """A function-scoped fixture ``name``: a fresh :class:`ProxyView` of the session's proxy."""

    def view(_pproxies: _Proxies) -> ProxyView:
        return ProxyView(_pproxies.get(kind, auth))

    view.__doc__ = doc
    return pytest.fixture(name=name)(view)


http_proxy = _proxy_fixture("http_proxy", "http", None, "pproxy as an HTTP proxy.")
http_proxy_auth = _proxy_fixture(
    "http_proxy_auth", "http", PROXY_AUTH, "pproxy as an HTTP proxy demanding Basic credentials."
)
https_proxy = _proxy_fixture("https_proxy", "https", None, "pproxy as an HTTP proxy over TLS.")
socks5_proxy = _proxy_fixture("socks5_proxy", "socks5", None, "pproxy as a SOCKS5 proxy.")
socks5_proxy_auth = _proxy_fixture(
    "socks5_proxy_auth", "socks5", SOCKS_AUTH, "pproxy as a SOCKS5 proxy demanding user/password."
)
