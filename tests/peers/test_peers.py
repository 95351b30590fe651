"""Each peer starts, speaks what it claims (checked with pycurl's libcurl), stops in bounds, leaves nothing.

These tests check the peers, not the package: a libcurl that is not ours is the client, so a
failure here means a peer or its launcher is wrong, not the engine under test.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.peers._certs import PeerCerts
from tests.peers._content import pattern_bytes
from tests.peers._process import PeerDied, PeerProcess
from tests.peers.asgi import Hypercorn, start_h3
from tests.peers.fixtures import (
    PROXY_AUTH,
    SOCKS_AUTH,
    ClientCertPeer,
    ProxyView,
    require_module,
    require_nginx,
    require_openssl,
)
from tests.peers.nginx import ONE_KIB, Nginx
from tests.peers.proxy import Pproxy
from tests.peers.tls import OpensslServer
from tests.peers.wsgi import Httpbin

require_module("pycurl")
import pycurl  # noqa: E402  (after the loud check: a missing pycurl names its install step)

H1 = pycurl.CURL_HTTP_VERSION_1_1
H2 = pycurl.CURL_HTTP_VERSION_2_0
H3 = pycurl.CURL_HTTP_VERSION_3
PRIOR_KNOWLEDGE = pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE  # h2c: HTTP/2 from the first byte


@dataclass
class Fetched:
    """What libcurl saw: status, protocol version, headers (lower-case names), body or error."""

    status: int = 0
    version: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: tuple[int, str] | None = None


def fetch(url: str, ca: Path | None = None, **opts: Any) -> Fetched:
    """One transfer with a fresh easy handle; options by pycurl name (``HTTP_VERSION=...``)."""
    out = Fetched()
    body = io.BytesIO()
    handle = pycurl.Curl()

    def header(line: bytes) -> None:
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            out.headers[name.strip().lower()] = value.strip()

    handle.setopt(pycurl.URL, url)
    handle.setopt(pycurl.WRITEDATA, body)
    handle.setopt(pycurl.HEADERFUNCTION, header)
    handle.setopt(pycurl.TIMEOUT, 20)
    if ca is not None:
        handle.setopt(pycurl.CAINFO, str(ca))
        handle.setopt(pycurl.PROXY_CAINFO, str(ca))
    for name, value in opts.items():
        handle.setopt(getattr(pycurl, name), value)
    try:
        handle.perform()
    except pycurl.error as exc:
        out.error = (exc.args[0], exc.args[1])
    out.status = handle.getinfo(pycurl.RESPONSE_CODE)
    out.version = handle.getinfo(pycurl.INFO_HTTP_VERSION)
    out.body = body.getvalue()
    handle.close()
    return out


# --- nginx ---------------------------------------------------------------------------------------


def test_nginx_plain_listener_speaks_http11(nginx_peer: Nginx) -> None:
    """The http listener serves the 1 KiB ASCII file over HTTP/1.1."""
    got = fetch(nginx_peer.url("http", "/files/1k.bin"))
    assert (got.error, got.status, got.version, got.body) == (None, 200, H1, ONE_KIB)


def test_nginx_https_negotiates_h2_by_alpn(nginx_peer: Nginx, peer_certs: PeerCerts) -> None:
    """The https listener picks h2 by ALPN (libcurl's default for https) and serves the pattern."""
    got = fetch(nginx_peer.url("https", "/files/64k.bin"), peer_certs.ca)
    assert (got.error, got.status, got.version) == (None, 200, H2)
    assert got.body == pattern_bytes(64 << 10)
    # nginx logs a request when it finalises it, which may be just after the client has it all
    deadline = time.monotonic() + 5
    while not any("/files/64k.bin HTTP/2.0 200" in line for line in nginx_peer.access_lines()):
        assert time.monotonic() < deadline, nginx_peer.access_lines()
        time.sleep(0.02)


def test_nginx_serves_a_file_added_later(nginx_peer: Nginx) -> None:
    """add_file makes a file of the asked size that the running nginx serves at once."""
    path = nginx_peer.add_file("peer-test-3000.bin", 3000)
    got = fetch(nginx_peer.url("h2c", path), HTTP_VERSION=PRIOR_KNOWLEDGE)
    assert (got.status, got.body) == (200, pattern_bytes(3000))


def test_nginx_https_still_speaks_http11(nginx_peer: Nginx, peer_certs: PeerCerts) -> None:
    """A client that offers only http/1.1 in ALPN gets HTTP/1.1 on the same listener."""
    got = fetch(nginx_peer.url("https", "/files/1k.bin"), peer_certs.ca, HTTP_VERSION=H1)
    assert (got.error, got.status, got.version) == (None, 200, H1)


def test_nginx_h2c_prior_knowledge(nginx_peer: Nginx) -> None:
    """The h2c listener speaks HTTP/2 on cleartext to a client with prior knowledge."""
    got = fetch(
        nginx_peer.url("h2c", "/files/1m.bin"),
        HTTP_VERSION=PRIOR_KNOWLEDGE,
    )
    assert (got.error, got.status, got.version) == (None, 200, H2)
    assert got.body == pattern_bytes(1 << 20)


def test_nginx_tls12_listener_refuses_a_tls13_minimum(
    nginx_peer: Nginx, peer_certs: PeerCerts
) -> None:
    """The tls12 listener serves TLS 1.2 and fails the handshake of a client that requires 1.3."""
    ok = fetch(nginx_peer.url("tls12", "/files/1k.bin"), peer_certs.ca)
    assert (ok.error, ok.status) == (None, 200)
    refused = fetch(
        nginx_peer.url("tls12", "/files/1k.bin"),
        peer_certs.ca,
        SSLVERSION=pycurl.SSLVERSION_TLSv1_3,
    )
    assert refused.error is not None
    assert refused.error[0] == pycurl.E_SSL_CONNECT_ERROR


def test_server_pin_matches_the_peers_key(nginx_peer: Nginx, peer_certs: PeerCerts) -> None:
    """libcurl's --pinnedpubkey accepts server_pin and refuses wrong_pin before any request."""
    url = nginx_peer.url("https", "/files/1k.bin")

    def curl_form(pin: str) -> str:
        return pin.replace("sha256/", "sha256//", 1)

    ok = fetch(url, peer_certs.ca, PINNEDPUBLICKEY=curl_form(peer_certs.server_pin))
    assert (ok.error, ok.status) == (None, 200)
    pinned = fetch(url, peer_certs.ca, PINNEDPUBLICKEY=curl_form(peer_certs.wrong_pin))
    assert pinned.error is not None and pinned.error[0] == pycurl.E_SSL_PINNEDPUBKEYNOTMATCH
    assert pinned.status == 0


def test_nginx_gzips_text(nginx_peer: Nginx) -> None:
    """text.txt comes gzip-compressed to a client that accepts it, and whole after decoding."""
    got = fetch(nginx_peer.url("http", "/files/text.txt"), ACCEPT_ENCODING="gzip")
    assert got.headers["content-encoding"] == "gzip"
    assert got.body.startswith(b"line 00000: ") and len(got.body) > 60_000


def test_nginx_redirects(nginx_peer: Nginx) -> None:
    """/redirect/302 points at /files/1k.bin with an absolute URL on the same listener."""
    got = fetch(nginx_peer.url("http", "/redirect/302"))
    assert got.status == 302
    assert got.headers["location"] == nginx_peer.url("http", "/files/1k.bin")
    followed = fetch(nginx_peer.url("http", "/redirect/307"), POSTFIELDS=b"abc", FOLLOWLOCATION=1)
    assert (followed.status, followed.body) == (200, b"3\n")


def test_nginx_accepts_uploads(nginx_peer: Nginx, peer_certs: PeerCerts) -> None:
    """PUT stores the body under www/put/; POST /post answers with the byte count it read."""
    data = pattern_bytes(300_000)
    put = fetch(
        nginx_peer.url("https", "/put/peer-test/upload.bin"),
        peer_certs.ca,
        UPLOAD=1,
        READDATA=io.BytesIO(data),
        INFILESIZE=len(data),
    )
    assert (put.error, put.status) == (None, 201)
    assert (nginx_peer.www / "put" / "peer-test" / "upload.bin").read_bytes() == data
    post = fetch(nginx_peer.url("h2c", "/post"), POSTFIELDS=data, HTTP_VERSION=PRIOR_KNOWLEDGE)
    assert (post.status, post.version, post.body) == (200, H2, b"300000\n")


# --- HTTP/3 ---------------------------------------------------------------------------------------


def test_h3_peer_speaks_http3(h3_peer: Hypercorn, peer_certs: PeerCerts) -> None:
    """Over QUIC only (libcurl's 3ONLY), the app answers and says it saw HTTP/3."""
    assert pycurl.version_info()[4] & pycurl.VERSION_HTTP3, "this libcurl has no HTTP/3"
    got = fetch(h3_peer.url("/get"), peer_certs.ca, HTTP_VERSION=pycurl.CURL_HTTP_VERSION_3ONLY)
    assert (got.error, got.status, got.version) == (None, 200, H3)
    assert json.loads(got.body)["http_version"] == "3"
    data = fetch(
        h3_peer.url("/bytes/200000"), peer_certs.ca, HTTP_VERSION=pycurl.CURL_HTTP_VERSION_3ONLY
    )
    assert (data.version, data.body) == (H3, pattern_bytes(200_000))


def test_h3_peer_advertises_alt_svc_over_tcp(h3_peer: Hypercorn, peer_certs: PeerCerts) -> None:
    """On TCP the same port number serves h2 and advertises h3 with Alt-Svc, as deployments do."""
    got = fetch(h3_peer.url("/status/204"), peer_certs.ca)
    assert (got.status, got.version) == (204, H2)
    assert got.headers["alt-svc"].startswith(f'h3=":{h3_peer.port}"')


def test_h3_peer_echoes_uploads(h3_peer: Hypercorn, peer_certs: PeerCerts) -> None:
    """POST /echo over HTTP/3 returns the body it received."""
    data = pattern_bytes(100_000, offset=7)
    got = fetch(
        h3_peer.url("/echo"),
        peer_certs.ca,
        POSTFIELDS=data,
        HTTP_VERSION=pycurl.CURL_HTTP_VERSION_3ONLY,
    )
    assert (got.version, got.headers["x-received-length"], got.body) == (H3, "100000", data)


# --- proxies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("listener", ["http", "https"])
@pytest.mark.parametrize(
    "which", ["http_proxy", "http_proxy_auth", "https_proxy", "socks5_proxy", "socks5_proxy_auth"]
)
def test_proxy_relays_and_counts(
    which: str,
    listener: str,
    request: pytest.FixtureRequest,
    nginx_peer: Nginx,
    peer_certs: PeerCerts,
) -> None:
    """Through each proxy (CONNECT for https), the request arrives and the proxy counted it."""
    proxy: ProxyView = request.getfixturevalue(which)
    got = fetch(nginx_peer.url(listener, "/files/1k.bin"), peer_certs.ca, PROXY=proxy.authed_url)
    assert (got.error, got.status, got.body) == (None, 200, ONE_KIB)
    assert proxy.connections() == [f"127.0.0.1:{nginx_peer.ports[listener]}"]


def test_http_proxy_without_credentials_is_407(
    http_proxy_auth: ProxyView, nginx_peer: Nginx, peer_certs: PeerCerts
) -> None:
    """The authenticating HTTP proxy answers 407, to CONNECT too, and relays nothing."""
    assert http_proxy_auth.auth == PROXY_AUTH
    plain = fetch(nginx_peer.url("http", "/files/1k.bin"), PROXY=http_proxy_auth.url)
    assert plain.status == 407
    tunnel = fetch(nginx_peer.url("https", "/"), peer_certs.ca, PROXY=http_proxy_auth.url)
    assert tunnel.error is not None and "407" in tunnel.error[1]
    assert http_proxy_auth.count == 0


def test_socks5_proxy_without_credentials_refuses(
    socks5_proxy_auth: ProxyView, nginx_peer: Nginx
) -> None:
    """The authenticating SOCKS5 proxy refuses a client with no user/password and relays nothing."""
    assert socks5_proxy_auth.auth == SOCKS_AUTH
    got = fetch(nginx_peer.url("http", "/files/1k.bin"), PROXY=socks5_proxy_auth.url)
    # 97 is CURLE_PROXY (libcurl 7.73+), which pycurl has no name for
    assert got.error is not None and got.error[0] == 97
    assert socks5_proxy_auth.count == 0


# --- httpbin --------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_httpbin_digest_answered_by_libcurl(httpbin_peer: Httpbin, algorithm: str) -> None:
    """httpbin's Digest challenge (qop=auth) is answered by libcurl's Digest; a wrong one gets 401."""
    url = httpbin_peer.url(f"/digest-auth/auth/user/passwd/{algorithm}")
    challenge = fetch(url)
    assert challenge.status == 401
    assert challenge.headers["www-authenticate"].startswith("Digest ")
    assert f"algorithm={algorithm}" in challenge.headers["www-authenticate"]
    ok = fetch(url, HTTPAUTH=pycurl.HTTPAUTH_DIGEST, USERPWD="user:passwd")
    assert (ok.status, json.loads(ok.body)) == (200, {"authenticated": True, "user": "user"})
    wrong = fetch(url, HTTPAUTH=pycurl.HTTPAUTH_DIGEST, USERPWD="user:nope")
    assert wrong.status == 401
    # libcurl cannot answer qop=auth-int; the peer offers it for an engine that can
    auth_int = fetch(httpbin_peer.url(f"/digest-auth/auth-int/user/passwd/{algorithm}"))
    assert 'qop="auth-int"' in auth_int.headers["www-authenticate"]


def test_httpbin_basic_gzip_redirect_status(httpbin_peer: Httpbin) -> None:
    """httpbin's Basic auth, gzip, redirect and status routes answer as httpbin documents."""
    basic = fetch(httpbin_peer.url("/basic-auth/u/p"), USERPWD="u:p")
    assert basic.status == 200
    assert fetch(httpbin_peer.url("/basic-auth/u/p")).status == 401
    gz = fetch(httpbin_peer.url("/gzip"), ACCEPT_ENCODING="gzip")
    assert gz.headers["content-encoding"] == "gzip" and json.loads(gz.body)["gzipped"] is True
    redirect = fetch(httpbin_peer.url("/redirect/2"), FOLLOWLOCATION=1)
    assert redirect.status == 200
    assert fetch(httpbin_peer.url("/status/418")).status == 418


# --- client certificates --------------------------------------------------------------------------


def _client_cert_forms(certs: PeerCerts) -> dict[str, dict[str, Any]]:
    return {
        "pem, key apart": {"SSLCERT": str(certs.client_cert), "SSLKEY": str(certs.client_key)},
        "pem, key inside": {"SSLCERT": str(certs.client_combined)},
        "encrypted key": {
            "SSLCERT": str(certs.client_cert),
            "SSLKEY": str(certs.client_key_encrypted),
            "KEYPASSWD": certs.client_key_password,
        },
        "pkcs12": {
            "SSLCERT": str(certs.client_p12),
            "SSLCERTTYPE": "P12",
            "KEYPASSWD": certs.client_key_password,
        },
    }


def test_nginx_mtls_answers_400_without_a_trusted_cert(client_cert_peer: ClientCertPeer) -> None:
    """nginx completes the handshake, answers 400 without a cert or with the rogue one."""
    certs = client_cert_peer.certs
    none = fetch(client_cert_peer.http400_url(), certs.ca)
    assert (none.error, none.status) == (None, 400)
    assert b"No required SSL certificate was sent" in none.body
    rogue = fetch(
        client_cert_peer.http400_url(),
        certs.ca,
        SSLCERT=str(certs.rogue_cert),
        SSLKEY=str(certs.rogue_key),
    )
    assert (rogue.error, rogue.status) == (None, 400)


def test_nginx_mtls_accepts_every_client_cert_form(client_cert_peer: ClientCertPeer) -> None:
    """PEM with the key apart or inside, an encrypted key and PKCS#12 all authenticate."""
    certs = client_cert_peer.certs
    for form, opts in _client_cert_forms(certs).items():
        got = fetch(client_cert_peer.http400_url(), certs.ca, **opts)
        assert (got.error, got.status, form) == (None, 200, form)
        assert got.body.startswith(b"CN=peer-client,")


def test_openssl_refuses_with_the_alert_that_names_the_reason(
    client_cert_peer: ClientCertPeer,
) -> None:
    """s_server alerts 'certificate required' without a cert, 'unknown ca' for the rogue one."""
    certs = client_cert_peer.certs
    url = client_cert_peer.handshake_url()
    none = fetch(url, certs.ca)
    assert none.error is not None and "alert certificate required" in none.error[1]
    rogue = fetch(url, certs.ca, SSLCERT=str(certs.rogue_cert), SSLKEY=str(certs.rogue_key))
    assert rogue.error is not None and "alert unknown ca" in rogue.error[1]
    tls12 = pycurl.SSLVERSION_TLSv1_2 | pycurl.SSLVERSION_MAX_TLSv1_2
    none12 = fetch(url, certs.ca, SSLVERSION=tls12)
    assert none12.error is not None and none12.error[0] == pycurl.E_SSL_CONNECT_ERROR
    for form, opts in _client_cert_forms(certs).items():
        ok = fetch(url, certs.ca, **opts)
        assert (ok.error, ok.status, form) == (None, 200, form)


# --- lifecycle ------------------------------------------------------------------------------------


def _start_nginx(tmp: Path, certs: PeerCerts) -> Any:
    return Nginx(require_nginx(), tmp / "nginx", certs=certs, h2c=True, mtls=True)


LAUNCHERS: dict[str, Callable[[Path, PeerCerts], Any]] = {
    "nginx": _start_nginx,
    "hypercorn-h3": lambda tmp, certs: start_h3(tmp, certs),
    "waitress-httpbin": lambda tmp, certs: Httpbin(tmp),
    "openssl-s_server": lambda tmp, certs: OpensslServer(require_openssl(), tmp, certs),
    "pproxy-http": lambda tmp, certs: Pproxy(tmp, "http", auth=PROXY_AUTH),
    "pproxy-socks5": lambda tmp, certs: Pproxy(tmp, "socks5"),
}


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_peer_stops_in_bounds_and_leaves_no_process(
    name: str, tmp_path: Path, peer_certs: PeerCerts
) -> None:
    """A fresh peer stops within 5 s; its pid is reaped and nothing is left in its group."""
    peer = LAUNCHERS[name](tmp_path, peer_certs)
    process: PeerProcess = peer.process
    assert process.proc.poll() is None
    started = time.monotonic()
    peer.stop()
    assert time.monotonic() - started < 5
    assert process.gone()
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    with pytest.raises(ChildProcessError):
        os.waitpid(process.pid, os.WNOHANG)  # already reaped by the launcher: not a zombie


def test_a_peer_that_exits_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    """A peer that dies before it is ready raises PeerDied at once, with what it printed."""
    process = PeerProcess("shell", ["sh", "-c", "echo cannot bind; exit 3"], tmp_path / "log")
    started = time.monotonic()
    with pytest.raises(PeerDied, match=r"(?s)exited with 3.*cannot bind"):
        process.wait_ready(lambda: False)
    assert time.monotonic() - started < 5 and process.gone()


def test_a_peer_that_never_gets_ready_is_stopped_after_the_bound(tmp_path: Path) -> None:
    """A peer still not ready when the start bound runs out is killed, reaped and reported."""
    process = PeerProcess("sleeper", ["sleep", "60"], tmp_path / "log")
    with pytest.raises(PeerDied, match=r"not ready after 0\.5s"):
        process.wait_ready(lambda: False, timeout=0.5)
    assert process.gone()
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)


def test_missing_peer_fails_loudly_naming_the_install_step() -> None:
    """A peer's package that is not installed fails the test with the .ci/run step, never skips."""
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run.*peers"):
        require_module("no_such_peer_package_xyz")
