"""TLS the session asks for beyond verification: its client certificate, and what a server's
refusal of it means (-1206 none sent, -1205 not accepted), the same on both engines.

OpenSSL's alert names are what both engines see: libcurl puts them in its error message
(``tlsv13 alert certificate required``), Python's ``ssl`` in the error's reason
(``TLSV13_ALERT_CERTIFICATE_REQUIRED``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import attrs

from .._client_certs import load_pkcs12
from .._config_values import ConfigValues
from ..exceptions import ErrorCode, TransferError

__all__ = [
    "ClientIdentity",
    "alert_code",
    "check_pins",
    "client_identity",
    "curl_pins",
    "pem_identity",
    "pin_mismatch",
    "refused_certificate",
    "spki_pin",
]

# An alert a server sends about the client's certificate, by the words OpenSSL names it with.
_REQUIRED = ("alert certificate required", "alert_certificate_required")
_REJECTED = (
    "alert unknown ca",
    "alert_unknown_ca",
    "alert bad certificate",
    "alert_bad_certificate",
    "alert certificate unknown",
    "alert_certificate_unknown",
    "alert certificate revoked",
    "alert_certificate_revoked",
    "alert certificate expired",
    "alert_certificate_expired",
    "alert access denied",
    "alert_access_denied",
)


@attrs.frozen
class ClientIdentity:
    """Where the engine finds the client certificate: PEM files, or a PKCS#12 file (curl)."""

    cert_file: str
    key_file: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    pkcs12: bool = False


def client_identity(config: ConfigValues) -> ClientIdentity | None:
    if config.clientCertificate is None:
        return None
    d = dict(config.clientCertificate)
    if "pkcs12File" in d:
        return ClientIdentity(d["pkcs12File"], None, d.get("password") or None, pkcs12=True)
    return ClientIdentity(d["certFile"], d.get("keyFile"), d.get("password") or None)


class PemIdentity:
    """A PKCS#12 identity as PEM files for Python's ``ssl`` (which reads only PEM): a private
    directory (0700) the session removes when it closes; the key in it stays encrypted with the
    bundle's password (unencrypted only when the bundle had none)."""

    def __init__(self, identity: ClientIdentity) -> None:
        from cryptography.hazmat.primitives import serialization

        key, cert, chain = load_pkcs12(identity.cert_file, identity.password)
        self.directory = tempfile.mkdtemp(prefix="urlsession-cert-")
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if identity.password:
            encryption = serialization.BestAvailableEncryption(identity.password.encode())
        pem = serialization.Encoding.PEM
        key_bytes = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, encryption)
        chain_bytes = b"".join(c.public_bytes(pem) for c in [cert, *chain])
        self.cert_file = self._write("cert.pem", chain_bytes)
        self.key_file = self._write("key.pem", key_bytes)
        self.password = identity.password

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)


def pem_identity(config: ConfigValues) -> tuple[dict[str, object], PemIdentity | None]:
    """urllib3's keywords for the session's client certificate (and the PEM files made for a
    PKCS#12 one, to remove at close)."""
    identity = client_identity(config)
    if identity is None:
        return {}, None
    made = None
    cert, key, password = identity.cert_file, identity.key_file, identity.password
    if identity.pkcs12:
        made = PemIdentity(identity)
        cert, key = made.cert_file, made.key_file
    kw: dict[str, object] = {"cert_file": cert, "key_file": key or cert}
    if password:
        kw["key_password"] = password
    return kw, made


def alert_code(text: str) -> ErrorCode | None:
    """-1206 or -1205 when ``text`` (an error's words) names a server's alert about the client
    certificate; None otherwise."""
    low = text.lower()
    if any(words in low for words in _REQUIRED):
        return ErrorCode.CLIENT_CERTIFICATE_REQUIRED
    if any(words in low for words in _REJECTED):
        return ErrorCode.CLIENT_CERTIFICATE_REJECTED
    return None


def exception_alert_code(exc: BaseException) -> ErrorCode | None:
    """:func:`alert_code` for an exception and what it wraps (urllib3 wraps ``ssl`` errors)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        code = alert_code(f"{getattr(e, 'reason', '')} {e}")
        if code is not None:
            return code
        todo += [a for a in e.args if isinstance(a, BaseException)]
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return None


# -- pinning ---------------------------------------------------------------------------------------


def spki_pin(der_certificate: bytes) -> str:
    """``sha256/BASE64`` of a DER certificate's SubjectPublicKeyInfo."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_der_x509_certificate(der_certificate).public_key()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def pin_mismatch(host: str, port: int) -> TransferError:
    """-1202 for a pinned host whose certificate's key matches none of its pins."""
    code = ErrorCode.SERVER_CERTIFICATE_UNTRUSTED
    return TransferError(
        code,
        f"{code.description} ({host}:{port}: the server's public key matches none of "
        f"pinnedPublicKeys for {host}, nothing was sent)",
    )


def refused_certificate(code: ErrorCode, host: str, port: int) -> TransferError:
    """-1206/-1205: the server's alert about our client certificate (or its absence)."""
    return TransferError(
        code, f"{code.description} ({host}:{port}: the server refused the TLS handshake)"
    )


def check_pins(host: str, port: int, der_certificate: bytes | None, pins: tuple[str, ...]) -> None:
    """Raise :func:`pin_mismatch` unless the leaf's key is one of ``pins`` (none: no check)."""
    if not pins:
        return
    if der_certificate is None or spki_pin(der_certificate) not in pins:
        raise pin_mismatch(host, port)


def curl_pins(pins: tuple[str, ...]) -> str:
    """libcurl's PINNEDPUBLICKEY form: ``sha256//A;sha256//B``."""
    return ";".join("sha256//" + p[len("sha256/") :] for p in pins)
