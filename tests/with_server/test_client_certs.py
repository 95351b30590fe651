"""Client certificates (issue 15, item 3): every form authenticates to nginx, a server's refusal
is -1206 (none sent) or -1205 (not accepted), and bad certificates are refused at the call.

Runs on the default engine; ``.ci/run`` runs this file again with ``--engine urllib3``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import urlsession_module as URLSession
from tests.peers._certs import PeerCerts
from tests.peers.fixtures import ClientCertPeer
from urlsession_module import ErrorCode, InvalidArgumentValueError

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def _forms(certs: PeerCerts) -> dict[str, dict[str, str]]:
    return {
        "pem, key apart": {"certFile": str(certs.client_cert), "keyFile": str(certs.client_key)},
        "pem, key inside": {"certFile": str(certs.client_combined)},
        "encrypted key": {
            "certFile": str(certs.client_cert),
            "keyFile": str(certs.client_key_encrypted),
            "password": certs.client_key_password,
        },
        "pkcs12": {"pkcs12File": str(certs.client_p12), "password": certs.client_key_password},
    }


def _get(make_session: MakeSession, recorder: MakeRecorder, url: str, **config: Any) -> Any:
    session = make_session(**config)
    rec = recorder(session)
    return rec.completed(session.dataTask(url=url, method="GET"))


@pytest.mark.parametrize("form", ["pem, key apart", "pem, key inside", "encrypted key", "pkcs12"])
def test_every_form_authenticates(
    form: str, client_cert_peer: ClientCertPeer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    certs = client_cert_peer.certs
    done = _get(
        make_session,
        recorder,
        client_cert_peer.http400_url("/whoami"),
        caBundle=str(certs.ca),
        clientCertificate=_forms(certs)[form],
    )
    assert done.statusCode == 200, (done.errorCode, done.message)
    assert done.responseText.startswith("CN=peer-client,")


def test_no_certificate_is_minus_1206(
    client_cert_peer: ClientCertPeer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    done = _get(
        make_session,
        recorder,
        client_cert_peer.handshake_url(),
        caBundle=str(client_cert_peer.certs.ca),
    )
    assert (done.success, done.errorCode) == (False, ErrorCode.CLIENT_CERTIFICATE_REQUIRED)


def test_an_untrusted_certificate_is_minus_1205(
    client_cert_peer: ClientCertPeer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    certs = client_cert_peer.certs
    done = _get(
        make_session,
        recorder,
        client_cert_peer.handshake_url(),
        caBundle=str(certs.ca),
        clientCertificate={"certFile": str(certs.rogue_cert), "keyFile": str(certs.rogue_key)},
    )
    assert (done.success, done.errorCode) == (False, ErrorCode.CLIENT_CERTIFICATE_REJECTED)


def test_a_trusted_certificate_passes_the_handshake_server(
    client_cert_peer: ClientCertPeer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    certs = client_cert_peer.certs
    done = _get(
        make_session,
        recorder,
        client_cert_peer.handshake_url(),
        caBundle=str(certs.ca),
        clientCertificate=_forms(certs)["pkcs12"],
    )
    assert done.statusCode == 200, (done.errorCode, done.message)


def _bad_values(certs: PeerCerts, tmp: Any) -> dict[str, Any]:
    not_a_cert = tmp / "not-a-cert.pem"
    not_a_cert.write_text("hello\n")
    password = certs.client_key_password
    return {
        "missing file": {"certFile": str(tmp / "absent.pem"), "keyFile": str(certs.client_key)},
        "not a certificate": {"certFile": str(not_a_cert), "keyFile": str(certs.client_key)},
        "wrong password": {
            "certFile": str(certs.client_cert),
            "keyFile": str(certs.client_key_encrypted),
            "password": "Wr0ng-" + password,
        },
        "no password for an encrypted key": {
            "certFile": str(certs.client_cert),
            "keyFile": str(certs.client_key_encrypted),
        },
        "key of another certificate": {
            "certFile": str(certs.client_cert),
            "keyFile": str(certs.rogue_key),
        },
        "pkcs12 wrong password": {"pkcs12File": str(certs.client_p12), "password": "Wr0ng-pw"},
        "pkcs12 not pkcs12": {"pkcs12File": str(certs.client_cert), "password": password},
        "unknown key": {"certFile": str(certs.client_cert), "keyfile": str(certs.client_key)},
        "neither form": {"password": password},
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "not a certificate",
        "wrong password",
        "no password for an encrypted key",
        "key of another certificate",
        "pkcs12 wrong password",
        "pkcs12 not pkcs12",
        "unknown key",
        "neither form",
    ],
)
def test_bad_certificate_refused_at_creation_without_showing_the_password(
    case: str, peer_certs: PeerCerts, tmp_path: Any
) -> None:
    value = _bad_values(peer_certs, tmp_path)[case]
    with pytest.raises(InvalidArgumentValueError) as info:
        URLSession.createSessionConfiguration({"clientCertificate": value})
    assert info.value.argument == "clientCertificate"
    for secret in (value.get("password"), peer_certs.client_key_password):
        if secret:
            assert secret not in str(info.value) and secret not in repr(info.value)
    cfg = URLSession.createSessionConfiguration()
    with pytest.raises(InvalidArgumentValueError):
        cfg.clientCertificate = value
    assert cfg.clientCertificate is None  # nothing half-set


def test_password_not_in_a_repr(peer_certs: PeerCerts) -> None:
    value = _forms(peer_certs)["encrypted key"]
    cfg = URLSession.createSessionConfiguration({"clientCertificate": value})
    assert peer_certs.client_key_password not in repr(cfg)
    assert peer_certs.client_key_password not in repr(cfg._values)
    assert cfg.clientCertificate == value
