"""Pinning and the TLS floor (issue 15, item 4) against nginx with trustme certificates.

A pin mismatch must stop the task before a request byte is sent: nginx's access log, which
logs every request it reads, shows none for the test's own unique path. Runs on the default
engine; ``.ci/run`` runs this file again with ``--engine urllib3``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.peers._certs import PeerCerts
from tests.peers.nginx import Nginx
from urlsession_module import ErrorCode

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def _get(make_session: MakeSession, recorder: MakeRecorder, url: str, **config: Any) -> Any:
    session = make_session(**config)
    rec = recorder(session)
    return rec.completed(session.dataTask(url=url, method="GET"))


def _unique(nginx: Nginx, listener: str = "https") -> tuple[str, str]:
    tag = uuid.uuid4().hex
    return nginx.url(listener, f"/files/1k.bin?{tag}"), tag


def test_matching_pin_succeeds(
    nginx_peer: Nginx, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    url, _ = _unique(nginx_peer)
    pins = {"127.0.0.1": [peer_certs.wrong_pin, peer_certs.server_pin]}
    done = _get(make_session, recorder, url, caBundle=str(peer_certs.ca), pinnedPublicKeys=pins)
    assert done.statusCode == 200, (done.errorCode, done.message)


@pytest.mark.parametrize("verify", [True, False])
def test_mismatched_pin_is_minus_1202_before_any_request_byte(
    verify: bool,
    nginx_peer: Nginx,
    peer_certs: PeerCerts,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    url, tag = _unique(nginx_peer)
    done = _get(
        make_session,
        recorder,
        url,
        caBundle=str(peer_certs.ca),
        tlsVerify=verify,
        pinnedPublicKeys={"127.0.0.1": [peer_certs.wrong_pin]},
    )
    assert (done.success, done.errorCode, done.statusCode) == (
        False,
        ErrorCode.SERVER_CERTIFICATE_UNTRUSTED,
        0,
    )
    assert "127.0.0.1" in done.message and "pinnedPublicKeys" in done.message
    assert not [line for line in nginx_peer.access_lines() if tag in line]


def test_hosts_not_pinned_are_unaffected(
    nginx_peer: Nginx, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    url, _ = _unique(nginx_peer)
    pins = {"*.example": [peer_certs.wrong_pin], "other.test": [peer_certs.wrong_pin]}
    done = _get(make_session, recorder, url, caBundle=str(peer_certs.ca), pinnedPublicKeys=pins)
    assert done.statusCode == 200, (done.errorCode, done.message)


def test_wildcard_pin_applies_to_one_label(
    nginx_peer: Nginx, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """``*.0.0.1`` names ``127.0.0.1`` (one label before the suffix): the wrong pin fails it."""
    url, _ = _unique(nginx_peer)
    pins = {"*.0.0.1": [peer_certs.wrong_pin]}
    done = _get(make_session, recorder, url, caBundle=str(peer_certs.ca), pinnedPublicKeys=pins)
    assert done.errorCode == ErrorCode.SERVER_CERTIFICATE_UNTRUSTED


def test_tls_floor_1_3_refuses_a_tls_1_2_server(
    nginx_peer: Nginx, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    url, tag = _unique(nginx_peer, "tls12")
    done = _get(
        make_session,
        recorder,
        url,
        caBundle=str(peer_certs.ca),
        tlsMinimumSupportedProtocolVersion="TLSv1.3",
    )
    assert (done.success, done.errorCode) == (False, ErrorCode.SECURE_CONNECTION_FAILED)
    assert not [line for line in nginx_peer.access_lines() if tag in line]
    ok = _get(make_session, recorder, url, caBundle=str(peer_certs.ca))  # the default, 1.2
    assert ok.statusCode == 200, (ok.errorCode, ok.message)
