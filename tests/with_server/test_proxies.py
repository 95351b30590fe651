"""Proxies (issue 15): proxyURL of every kind, Apple's dictionary, the environment, 407s.

Each test proves the request went through the proxy by the proxy's own log (pproxy writes one
line per connection it relays, :meth:`ProxyView.connections`), not only that the task succeeded;
a direct connection shows as no line. Runs on the default engine; ``.ci/run`` runs this file
again with ``--engine urllib3``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.peers._certs import PeerCerts
from tests.peers.fixtures import PROXY_AUTH, ProxyView
from tests.peers.nginx import Nginx
from urlsession_module import ErrorCode
from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without proxies (upper- and lower-case)."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def _target(server: LocalServer) -> str:
    """How the proxy's log names the server: the host of its URL and its port."""
    return urlsplit(server.base_url).netloc.replace("localhost", "127.0.0.1")


def _tls_url(tls_server: LocalServer, path: str) -> str:
    """The TLS server by address (its certificate names 127.0.0.1 too): ``localhost`` would
    resolve to ::1 first on some hosts, where the server does not listen."""
    return tls_server.url(path).replace("://localhost:", "://127.0.0.1:")


def _get(make_session: MakeSession, recorder: MakeRecorder, url: str, **config: Any) -> Any:
    session = make_session(**config)
    rec = recorder(session)
    return rec.completed(session.dataTask(url=url, method="GET"))


def _echo(done: Any) -> dict[str, Any]:
    assert done.success, (done.errorCode, done.message)
    return json.loads(done.responseText)  # type: ignore[no-any-return]


def _headers(echo: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in echo["headers"].items()}


def test_http_proxy_forwards_plain_http(
    http_proxy: ProxyView, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    done = _get(make_session, recorder, server.url("/echo"), proxyURL=http_proxy.url)
    assert _echo(done)["method"] == "GET"
    assert http_proxy.connections() == [_target(server)]


def test_http_proxy_tunnels_https_and_keeps_headers_apart(
    http_proxy_auth: ProxyView,
    tls_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """CONNECT with the proxy's credential; the origin sees its own Authorization, never the
    proxy's."""
    done = _get(
        make_session,
        recorder,
        _tls_url(tls_server, "/echo"),
        proxyURL=http_proxy_auth.authed_url,
        caBundle=tls_server.ca_bundle,
        HTTPHeaderFields={"Authorization": "Bearer origin-token"},
    )
    headers = _headers(_echo(done))
    assert headers["authorization"] == "Bearer origin-token"
    assert "proxy-authorization" not in headers
    assert http_proxy_auth.connections() == [_target(tls_server)]


def test_proxy_credential_for_plain_http(
    http_proxy_auth: ProxyView,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    user, password = PROXY_AUTH
    url = http_proxy_auth.url.replace("://", f"://{user}:{password}@")
    done = _get(make_session, recorder, server.url("/echo"), proxyURL=url)
    headers = _headers(_echo(done))
    assert "proxy-authorization" not in headers  # the proxy's own header stops there
    assert http_proxy_auth.connections() == [_target(server)]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_407_without_credential_is_minus_1013(
    scheme: str,
    http_proxy_auth: ProxyView,
    server: LocalServer,
    tls_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    url = server.url("/echo") if scheme == "http" else _tls_url(tls_server, "/echo")
    done = _get(
        make_session,
        recorder,
        url,
        proxyURL=http_proxy_auth.url,
        caBundle=tls_server.ca_bundle,
    )
    assert (done.success, done.statusCode, done.errorCode) == (
        False,
        407,
        ErrorCode.USER_AUTHENTICATION_REQUIRED,
    )
    assert "407" in done.message and "proxy" in done.message
    assert http_proxy_auth.connections() == []  # refused: nothing relayed


def test_wrong_proxy_password_is_minus_1013_and_never_shown(
    http_proxy_auth: ProxyView,
    tls_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    url = http_proxy_auth.url.replace("://", "://proxy-user:not-the-Pass-42@")
    done = _get(
        make_session,
        recorder,
        _tls_url(tls_server, "/echo"),
        proxyURL=url,
        caBundle=tls_server.ca_bundle,
    )
    assert (done.statusCode, done.errorCode) == (407, ErrorCode.USER_AUTHENTICATION_REQUIRED)
    assert "not-the-Pass-42" not in done.message


def test_proxy_over_tls(
    https_proxy: ProxyView,
    nginx_peer: Nginx,
    peer_certs: PeerCerts,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """An https:// proxy: TLS to the proxy, then CONNECT and TLS to the origin inside it."""
    done = _get(
        make_session,
        recorder,
        nginx_peer.url("https", "/files/1k.bin"),
        proxyURL=https_proxy.url,
        caBundle=str(peer_certs.ca),
        httpVersion="auto",
    )
    assert done.success and done.statusCode == 200, (done.errorCode, done.message)
    assert https_proxy.connections() == [f"127.0.0.1:{nginx_peer.ports['https']}"]


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks5_proxy(
    scheme: str,
    socks5_proxy: ProxyView,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    url = socks5_proxy.url.replace("socks5://", f"{scheme}://")
    done = _get(make_session, recorder, server.url("/echo"), proxyURL=url)
    assert _echo(done)["method"] == "GET"
    assert socks5_proxy.connections() == [_target(server)]


def test_socks5h_resolves_on_the_proxy(
    socks5_proxy: ProxyView, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """socks5h hands the proxy the host name: the proxy's log shows the name, not an address."""
    url = socks5_proxy.url.replace("socks5://", "socks5h://")
    done = _get(make_session, recorder, f"http://localhost:{server.port}/echo", proxyURL=url)
    assert _echo(done)["method"] == "GET"
    assert socks5_proxy.connections() == [f"localhost:{server.port}"]


def test_socks5_proxy_with_user_and_password(
    socks5_proxy_auth: ProxyView,
    tls_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    done = _get(
        make_session,
        recorder,
        _tls_url(tls_server, "/echo"),
        proxyURL=socks5_proxy_auth.authed_url,
        caBundle=tls_server.ca_bundle,
    )
    assert _echo(done)["method"] == "GET"
    assert socks5_proxy_auth.connections() == [_target(tls_server)]


# -- the environment, Apple's dictionary, precedence ----------------------------------------------


def test_environment_proxy_is_followed_by_default(
    http_proxy: ProxyView,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("http_proxy", http_proxy.url)
    session = make_session()
    monkeypatch.delenv("http_proxy")  # read when the session was made, not per request
    rec = recorder(session)
    assert _echo(rec.completed(session.dataTask(url=server.url("/echo"))))["method"] == "POST"
    assert http_proxy.connections() == [_target(server)]


def test_no_proxy_bypasses_the_environment_proxy(
    http_proxy: ProxyView,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    monkeypatch.setenv("no_proxy", "example.invalid, 127.0.0.1")
    assert _get(make_session, recorder, server.url("/echo")).success
    assert http_proxy.connections() == []


def test_empty_dictionary_connects_directly_despite_the_environment(
    http_proxy: ProxyView,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("all_proxy", http_proxy.url)
    done = _get(make_session, recorder, server.url("/echo"), connectionProxyDictionary={})
    assert done.success
    assert http_proxy.connections() == []


def test_connection_proxy_dictionary(
    http_proxy: ProxyView,
    socks5_proxy: ProxyView,
    server: LocalServer,
    tls_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """HTTP through the HTTP proxy, https through SOCKS (no HTTPS proxy set); ``localhost`` is an
    exception and goes directly."""
    port = int(http_proxy.url.rsplit(":", 1)[1])
    socks_port = int(socks5_proxy.url.rsplit(":", 1)[1])
    dictionary = {
        "HTTPEnable": True,
        "HTTPProxy": "127.0.0.1",
        "HTTPPort": port,
        "SOCKSEnable": 1,
        "SOCKSProxy": "127.0.0.1",
        "SOCKSPort": socks_port,
        "ExceptionsList": ["*.invalid", "localhost"],
    }
    session = make_session(connectionProxyDictionary=dictionary, caBundle=tls_server.ca_bundle)
    assert session.configuration.connectionProxyDictionary == dictionary | {"SOCKSEnable": True}
    rec = recorder(session)
    plain = session.dataTask(url=server.url("/echo"), method="GET")
    secure = session.dataTask(url=_tls_url(tls_server, "/echo"), method="GET")
    direct = session.dataTask(url=f"http://localhost:{server.port}/echo", method="GET")
    for tid in (plain, secure, direct):
        assert rec.completed(tid).success
    assert http_proxy.connections() == [_target(server)]
    assert socks5_proxy.connections() == [_target(tls_server)]


def test_proxy_url_comes_before_the_dictionary_and_the_environment(
    http_proxy: ProxyView,
    socks5_proxy: ProxyView,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("http_proxy", http_proxy.url)
    done = _get(
        make_session,
        recorder,
        server.url("/echo"),
        proxyURL=socks5_proxy.url,
        connectionProxyDictionary={"HTTPEnable": True, "HTTPProxy": "127.0.0.1", "HTTPPort": 9},
    )
    assert done.success
    assert socks5_proxy.connections() == [_target(server)]
    assert http_proxy.connections() == []


def test_background_session_carries_the_hosts_environment_proxy(
    http_proxy: ProxyView,
    server: LocalServer,
    transfer: Any,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The transfer process, started with no proxy in its environment, sends a session's tasks
    through the proxy its host's environment named when the session was made."""
    from tests.with_server.test_background import _bg_session

    direct = _bg_session("com.test.proxy.direct")
    rec = recorder(direct)
    assert rec.completed(direct.downloadTask(url=server.url("/bytes/1000"))).success
    transfer.pid()  # the transfer process runs now, with no http_proxy in its environment
    assert http_proxy.connections() == []

    monkeypatch.setenv("http_proxy", http_proxy.url)
    proxied = _bg_session("com.test.proxy.via")
    rec = recorder(proxied)
    assert rec.completed(proxied.downloadTask(url=server.url("/bytes/2000"))).success
    assert http_proxy.connections() == [_target(server)]
    direct.invalidateAndCancel()
    proxied.invalidateAndCancel()
    assert direct.waitForInvalidation(10) and proxied.waitForInvalidation(10)
