"""Certificates for the peers, made by trustme: a server CA, a client CA, and every client-key form.

Two CAs, kept apart on purpose: the server CA signs the peers' certificate for 127.0.0.1,
``localhost`` and ``::1`` (the file a client passes as its CA bundle); the client CA signs the client
certificate the mutual-TLS peers demand. A third, ``rogue`` CA signs a client certificate the peers
do not trust, for the "server rejected the certificate" case (URLSession's -1205). The client key is
written in every form issue 15's ``clientCertificate`` accepts: certificate and key apart, both in
one PEM, the key encrypted with a password, and PKCS#12. ``server_pin`` is the server key's pin for
``pinnedPublicKeys`` tests, ``wrong_pin`` a well-formed one that matches nothing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CLIENT_KEY_PASSWORD", "PeerCerts", "make_certs", "spki_pin"]

#: The password of ``client_key_encrypted`` and ``client_p12``.
CLIENT_KEY_PASSWORD = "peer-client-pass"


@dataclass(frozen=True)
class PeerCerts:
    """Paths of every PEM/PKCS#12 file; all under one directory that the caller owns."""

    ca: Path  #: trust this to verify the peers' server certificate
    server_cert: Path  #: leaf + chain, for the servers
    server_key: Path
    client_ca: Path  #: the CA the mutual-TLS peers verify client certificates with
    client_cert: Path  #: client leaf + chain, no key
    client_key: Path  #: its key, unencrypted, alone
    client_combined: Path  #: certificate and key in one PEM (the key "may sit in certFile")
    client_key_encrypted: Path  #: the key encrypted with CLIENT_KEY_PASSWORD (PKCS#8, AES-256)
    client_p12: Path  #: certificate + key as PKCS#12, protected by CLIENT_KEY_PASSWORD
    rogue_cert: Path  #: a client certificate from a CA no peer trusts
    rogue_key: Path
    #: ``sha256/BASE64`` of the server leaf's SubjectPublicKeyInfo (``pinnedPublicKeys``' form,
    #: OkHttp's; curl's --pinnedpubkey writes the same hash as ``sha256//BASE64``)
    server_pin: str
    #: a well-formed pin that matches no peer (the rogue certificate's key)
    wrong_pin: str
    client_key_password: str = CLIENT_KEY_PASSWORD


def make_certs(directory: Path) -> PeerCerts:
    """Write every file into ``directory`` (created) and return their paths."""
    import trustme
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509 import load_pem_x509_certificate

    directory.mkdir(parents=True, exist_ok=True)

    def path(name: str) -> Path:
        return directory / name

    server_ca = trustme.CA(organization_name="urlsession peers server CA")
    server_ca.cert_pem.write_to_path(path("ca.pem"))
    server = server_ca.issue_cert("127.0.0.1", "localhost", "::1")
    _write_chain(server.cert_chain_pems, path("server.pem"))
    server.private_key_pem.write_to_path(path("server.key"))

    client_ca = trustme.CA(organization_name="urlsession peers client CA")
    client_ca.cert_pem.write_to_path(path("client-ca.pem"))
    client = client_ca.issue_cert("peer-client@example.org", common_name="peer-client")
    _write_chain(client.cert_chain_pems, path("client.pem"))
    client.private_key_pem.write_to_path(path("client.key"))
    _write_chain(client.cert_chain_pems, path("client-combined.pem"))
    client.private_key_pem.write_to_path(path("client-combined.pem"), append=True)

    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    secret = CLIENT_KEY_PASSWORD.encode()
    path("client-encrypted.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(secret),
        )
    )
    leaf = load_pem_x509_certificate(client.cert_chain_pems[0].bytes())
    path("client.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"peer-client",
            key,  # trustme makes an EC or RSA key: both are PKCS#12-serialisable
            leaf,
            None,
            serialization.BestAvailableEncryption(secret),
        )
    )

    rogue_ca = trustme.CA(organization_name="urlsession peers rogue CA")
    rogue = rogue_ca.issue_cert("rogue@example.org", common_name="rogue-client")
    _write_chain(rogue.cert_chain_pems, path("rogue.pem"))
    rogue.private_key_pem.write_to_path(path("rogue.key"))

    return PeerCerts(
        server_pin=spki_pin(server.cert_chain_pems[0].bytes()),
        wrong_pin=spki_pin(rogue.cert_chain_pems[0].bytes()),
        ca=path("ca.pem"),
        server_cert=path("server.pem"),
        server_key=path("server.key"),
        client_ca=path("client-ca.pem"),
        client_cert=path("client.pem"),
        client_key=path("client.key"),
        client_combined=path("client-combined.pem"),
        client_key_encrypted=path("client-encrypted.key"),
        client_p12=path("client.p12"),
        rogue_cert=path("rogue.pem"),
        rogue_key=path("rogue.key"),
    )


def spki_pin(cert_pem: bytes) -> str:
    """``sha256/BASE64`` of a certificate's SubjectPublicKeyInfo, as OkHttp (and issue 15) write pins."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509 import load_pem_x509_certificate

    spki = (
        load_pem_x509_certificate(cert_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _write_chain(pems: Sequence[Any], target: Path) -> None:
    """Leaf first, then the chain: the order servers and clients expect in one file."""
    target.write_bytes(b"".join(p.bytes() for p in pems))
