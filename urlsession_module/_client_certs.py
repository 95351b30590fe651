"""``clientCertificate``: checked when the configuration is made, with ``cryptography``.

A certificate that cannot work (a missing file, a file that is not a certificate, a wrong
password, a key that is not the certificate's) is refused at ``createSessionConfiguration``
with :class:`InvalidArgumentValueError` naming ``clientCertificate``, not found out at the first
handshake as an opaque -1200. No message or repr shows the password.

The value is kept frozen (sorted pairs, as the wire carries it); the engines read the files
themselves (libcurl takes PEM and PKCS#12; the urllib3 engine's ``ssl`` takes PEM, so a PKCS#12
bundle is turned into PEM for it, see ``_transport._tls``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .exceptions import InvalidArgumentTypeError, InvalidArgumentValueError

__all__ = ["ClientCertificate", "client_certificate_value", "load_pkcs12"]

ClientCertificate = tuple[tuple[str, str], ...]
_PEM_KEYS = frozenset({"certFile", "keyFile", "password"})
_P12_KEYS = frozenset({"pkcs12File", "password"})
_KEY_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.DOTALL
)
_ARG = "clientCertificate"


def _bad(message: str) -> InvalidArgumentValueError:
    return InvalidArgumentValueError(_ARG, f"{_ARG!r} {message}")


def _read(key: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20)
    except OSError as exc:
        raise _bad(f"{key} {path!r} cannot be read ({exc.strerror or 'error'})") from None


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _password_bytes(password: str | None) -> bytes | None:
    return password.encode("utf-8") if password else None


def load_pkcs12(path: str, password: str | None) -> tuple[Any, Any, list[Any]]:
    """(key, certificate, chain) of a PKCS#12 file; ``InvalidArgumentValueError`` if unusable."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = _read("pkcs12File", path)
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(data, _password_bytes(password))
    except (ValueError, TypeError):
        raise _bad(
            f"pkcs12File {path!r} is not a PKCS#12 file this password opens "
            "(a wrong password, or not PKCS#12)"
        ) from None
    if key is None or cert is None:
        raise _bad(f"pkcs12File {path!r} must hold a certificate and its private key")
    return key, cert, list(chain)


def _check_pem(cert_file: str, key_file: str | None, password: str | None) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    data = _read("certFile", cert_file)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise _bad(f"certFile {cert_file!r} is not a PEM certificate")
    key_data = _read("keyFile", key_file) if key_file else data
    block = _KEY_BLOCK.search(key_data)
    if block is None:
        where = f"keyFile {key_file!r}" if key_file else f"certFile {cert_file!r} (no keyFile)"
        raise _bad(f"{where} holds no PEM private key")
    try:
        key = serialization.load_pem_private_key(block[0], _password_bytes(password))
    except TypeError:
        raise _bad(
            "has a wrong password: the key is encrypted and needs one"
            if not password
            else "has a password but the key is not encrypted"
        ) from None
    except ValueError:
        raise _bad("has a wrong password, or the key cannot be read") from None
    if _spki(key.public_key()) != _spki(certs[0].public_key()):
        raise _bad("has a key that does not match the certificate")


def client_certificate_value(value: Any) -> ClientCertificate | None:
    """Check ``clientCertificate`` and freeze it; every file is read and checked now."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and all(
        isinstance(p, (tuple, list)) and len(p) == 2 for p in value
    ):
        value = {k: v for k, v in value}  # the frozen form, back from the wire or attrs.evolve
    if not isinstance(value, Mapping):
        raise InvalidArgumentTypeError(
            _ARG,
            f"{_ARG!r} must be a dict: {{'certFile', 'keyFile', 'password'}} or "
            f"{{'pkcs12File', 'password'}} (got {type(value).__name__})",
        )
    keys = set(value)
    if not all(isinstance(value[k], str) for k in keys):
        raise InvalidArgumentTypeError(_ARG, f"{_ARG!r} values must be str")
    if "pkcs12File" in keys:
        if keys - _P12_KEYS:
            raise _bad(f"with pkcs12File takes only 'password' too (got {sorted(keys)})")
        load_pkcs12(value["pkcs12File"], value.get("password"))
    elif "certFile" in keys:
        if keys - _PEM_KEYS:
            raise _bad(f"takes 'certFile', 'keyFile' and 'password' (got {sorted(keys)})")
        _check_pem(value["certFile"], value.get("keyFile"), value.get("password"))
    else:
        raise _bad("needs 'certFile' (PEM) or 'pkcs12File'")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))
