"""The command-line tool's proxy, certificate and pinning flags (issue 15, item 6): curl's names,
the library's checks and messages, and the environment's proxies by default.

The tool runs on the default engine; ``--engine urllib3`` runs these again (it sets
``URLSESSION_ENGINE`` for the processes the tests start).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.peers._certs import PeerCerts
from tests.peers.fixtures import ClientCertPeer, ProxyView
from tests.peers.nginx import Nginx
from urlsession_module.testing import LocalServer

from .conftest import Result

Cli = Callable[..., Result]
_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_proxy_flag(cli: Cli, http_proxy: ProxyView, server: LocalServer, workdir: Path) -> None:
    r = cli("get", server.url("/bytes/1000"), "-o", "out", "--proxy", http_proxy.url)
    assert r.code == 0, r
    assert (workdir / "out").stat().st_size == 1000
    assert http_proxy.connections() == [f"127.0.0.1:{server.port}"]


def test_socks5h_proxy_flag_with_credential(
    cli: Cli, socks5_proxy_auth: ProxyView, server: LocalServer
) -> None:
    url = socks5_proxy_auth.authed_url.replace("socks5://", "socks5h://")
    r = cli("get", f"http://localhost:{server.port}/bytes/10", "-o", "out", "--proxy", url)
    assert r.code == 0, r
    assert socks5_proxy_auth.connections() == [f"localhost:{server.port}"]


def test_environment_proxy_by_default_and_noproxy(
    cli: Cli, http_proxy: ProxyView, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", http_proxy.url)
    assert cli("get", server.url("/bytes/10"), "-o", "one").code == 0
    assert http_proxy.connections() == [f"127.0.0.1:{server.port}"]
    r = cli("get", server.url("/bytes/10"), "-o", "two", "--noproxy", "example.test,127.0.0.1")
    assert r.code == 0, r
    assert len(http_proxy.connections()) == 1  # the second went directly


def test_proxy_407_message(cli: Cli, http_proxy_auth: ProxyView, server: LocalServer) -> None:
    r = cli("get", server.url("/bytes/10"), "-o", "x", "--proxy", http_proxy_auth.url)
    assert r.code == 1, r
    assert "407" in r.stderr and "-1013" in r.stderr
    assert r.stderr.count("the proxy 127.0.0.1:") == 1, r.stderr  # named once, where it failed


@pytest.mark.parametrize("form", ["pem", "encrypted", "pkcs12"])
def test_cert_flags(form: str, cli: Cli, client_cert_peer: ClientCertPeer, workdir: Path) -> None:
    certs = client_cert_peer.certs
    password = certs.client_key_password
    flags = {
        "pem": ["--cert", str(certs.client_cert), "--key", str(certs.client_key)],
        "encrypted": [
            "--cert",
            f"{certs.client_cert}:{password}",
            "--key",
            str(certs.client_key_encrypted),
        ],
        "pkcs12": ["--cert", f"{certs.client_p12}:{password}"],
    }[form]
    url = client_cert_peer.http400_url("/whoami")
    r = cli("get", url, "-o", "who", "--cacert", str(certs.ca), *flags)
    assert r.code == 0, r
    assert (workdir / "who").read_text().startswith("CN=peer-client,")


def test_pinnedpubkey_flag(cli: Cli, nginx_peer: Nginx, peer_certs: PeerCerts) -> None:
    url = nginx_peer.url("https", "/files/1k.bin")
    right = peer_certs.server_pin.replace("sha256/", "sha256//")
    wrong = peer_certs.wrong_pin.replace("sha256/", "sha256//")
    ca = str(peer_certs.ca)
    assert (
        cli("get", url, "-o", "a", "--cacert", ca, "--pinnedpubkey", f"{wrong};{right}").code == 0
    )
    r = cli("get", url, "-o", "b", "--cacert", ca, "--pinnedpubkey", wrong)
    assert r.code == 1, r
    assert "pinnedPublicKeys" in r.stderr and "127.0.0.1" in r.stderr and "-1202" in r.stderr


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--proxy", "gopher://127.0.0.1:70"], "proxyURL"),
        (["--proxy", "http://127.0.0.1:99999"], "proxyURL"),
        (["--pinnedpubkey", "md5//abc"], "pinnedPublicKeys"),
        (["--cert", "/nonexistent/client.pem:Hidden-Pw-1"], "clientCertificate"),
        (["--key", "/nonexistent/key.pem"], "--key"),
    ],
)
def test_bad_flags_are_usage_errors_that_show_no_password(
    flags: list[str], named: str, cli: Cli, server: LocalServer
) -> None:
    r = cli("get", server.url("/bytes/10"), "-o", "x", *flags)
    assert r.code == 2, r
    assert named in r.stderr
    assert "Hidden-Pw-1" not in r.stderr + r.stdout
