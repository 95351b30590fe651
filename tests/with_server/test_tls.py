"""TLS: verified by default, a custom CA bundle, verification off, and TLS failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

import urlsession_module as URLSession
from urlsession_module import ErrorCode
from urlsession_module.testing import LocalServer, content_sha256

from ._util import echoed, file_sha256

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

N = 800_000


def test_unknown_ca_reports_minus_1202(
    tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A certificate from a CA the system does not trust fails with -1202, nothing received."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=tls_server.url("/echo"), method="GET")
    done = rec.completed(tid)
    assert (done.success, done.errorCode, done.statusCode) == (
        False,
        ErrorCode.SERVER_CERTIFICATE_UNTRUSTED,
        0,
    )
    assert done.message


def test_ca_bundle_makes_the_server_trusted(
    tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """With caBundle set to the server's CA, data and download tasks succeed."""
    assert tls_server.base_url.startswith("https://localhost:")
    session = make_session(caBundle=tls_server.ca_bundle)
    rec = recorder(session)
    data = session.dataTask(url=tls_server.url("/echo"), data={"secure": True})
    down = session.downloadTask(url=tls_server.url(f"/bytes/{N}"))
    echo = echoed(rec.completed(data))
    assert echo["method"] == "POST" and echo["body_text"] == '{"secure": true}'
    assert rec.completed(down).success
    (completed,) = rec.of(down, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(N)


def test_ip_address_in_certificate_is_accepted(
    tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The certificate also names 127.0.0.1, so that URL verifies too."""
    session = make_session(caBundle=tls_server.ca_bundle)
    rec = recorder(session)
    tid = session.dataTask(url=f"https://127.0.0.1:{tls_server.port}/status/201", method="GET")
    assert rec.completed(tid).statusCode == 201


def test_verification_can_be_turned_off(
    tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """tlsVerify=False accepts the untrusted certificate."""
    session = make_session(tlsVerify=False)
    rec = recorder(session)
    tid = session.downloadTask(url=tls_server.url("/bytes/1000"))
    assert rec.completed(tid).success


def test_tls_to_a_plain_http_port_reports_minus_1200(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """https:// to a server that does not speak TLS fails with -1200."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=f"https://127.0.0.1:{server.port}/echo", method="GET")
    done = rec.completed(tid)
    assert (done.success, done.errorCode) == (False, ErrorCode.SECURE_CONNECTION_FAILED)


def test_redirect_from_http_to_https_drops_credentials(
    server: LocalServer, tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A scheme change is an origin change: Authorization does not follow to https."""
    session = make_session(caBundle=tls_server.ca_bundle)
    rec = recorder(session)
    target = tls_server.url("/echo")
    tid = session.dataTask(
        url=server.url(f"/redirect-to?url={quote(target)}&code=301"),
        method="GET",
        requestHeaders={"Authorization": "Bearer t", "X-Plain": "1"},
    )
    echo = echoed(rec.completed(tid))
    assert "authorization" not in echo["headers"]
    assert echo["headers"]["x-plain"] == "1"
    assert echo["headers"]["host"] == f"localhost:{tls_server.port}"


@pytest.mark.parametrize("verify", [True, False])
def test_cancel_mid_tls_download(
    tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, verify: bool
) -> None:
    """Cancelling a throttled TLS download reports -999 promptly."""
    config = {"caBundle": tls_server.ca_bundle} if verify else {"tlsVerify": False}
    session = make_session(**config)
    rec = recorder(session)
    tid = session.downloadTask(url=tls_server.url(f"/bytes/{N * 4}?rate=1000000"))
    rec.wait_for(lambda evs: any(e.type == "downloadprogress" for e in evs), 10)
    session.getTask(tid).cancel()
    assert rec.completed(tid, 3).errorCode == ErrorCode.CANCELLED
    assert sorted(session.downloadDirectory.iterdir()) == []


def test_configuration_copies_tls_settings(tls_server: LocalServer) -> None:
    """A session keeps the TLS settings it was created with."""
    cfg = URLSession.createSessionConfiguration(caBundle=tls_server.ca_bundle)
    session = URLSession.createSession(configuration=cfg)
    try:
        cfg.caBundle = None
        assert session.configuration.caBundle == tls_server.ca_bundle
    finally:
        session.invalidateAndCancel()
        assert session.waitForInvalidation(5)
