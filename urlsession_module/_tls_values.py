"""``pinnedPublicKeys`` and ``tlsMinimumSupportedProtocolVersion`` as plain values.

Sans-IO: the configuration checks and freezes them here, and both engines ask :func:`pins_for`
which pins a host has, so they cannot disagree about which hosts are pinned. A pin is the
SHA-256 of a certificate's SubjectPublicKeyInfo, ``sha256/BASE64`` (OkHttp's
``CertificatePinner`` form; curl's ``--pinnedpubkey`` writes the same hash ``sha256//BASE64``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from .exceptions import InvalidArgumentTypeError, InvalidArgumentValueError

__all__ = [
    "TLS_VERSIONS",
    "Pins",
    "check_pin",
    "pins_for",
    "pins_value",
    "thaw_pins",
]

TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
Pins = tuple[tuple[str, tuple[str, ...]], ...]
_ARG = "pinnedPublicKeys"


def check_pin(argument: str, pin: Any) -> str:
    """``pin`` as ``sha256/BASE64`` of 32 bytes; ``sha256//BASE64`` (curl's form) is accepted."""
    if not isinstance(pin, str):
        raise InvalidArgumentTypeError(argument, f"{argument!r} pins must be str (got {pin!r})")
    text = pin.strip()
    if not text.startswith("sha256/"):
        raise InvalidArgumentValueError(
            argument, f"{argument!r} pins must read 'sha256/BASE64' (got {pin!r})"
        )
    # The base64 itself may begin with '/', so 'sha256//...' is ours when what follows
    # 'sha256/' is 32 bytes, and curl's form ('sha256//' then the base64) otherwise.
    raw = _b64(text[len("sha256/") :])
    if len(raw) != 32 and text.startswith("sha256//"):
        raw = _b64(text[len("sha256//") :])
    if len(raw) != 32:
        raise InvalidArgumentValueError(
            argument,
            f"{argument!r} pins must be 'sha256/' and the base64 of a 32-byte SHA-256 (got {pin!r})",
        )
    return "sha256/" + base64.b64encode(raw).decode("ascii")


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _check_host(host: Any) -> str:
    if not isinstance(host, str) or not host.strip():
        raise InvalidArgumentTypeError(_ARG, f"{_ARG!r} keys must be host names (got {host!r})")
    name = host.strip().lower().rstrip(".")
    label = name[2:] if name.startswith("*.") else name
    odd = any(c in label for c in "/@ ") or (":" in label and not label.startswith("["))
    if not label or "*" in label or odd:
        raise InvalidArgumentValueError(
            _ARG, f"{_ARG!r} keys must be 'host' or '*.suffix' (got {host!r})"
        )
    return name


def pins_value(value: Any) -> Pins | None:
    """Check ``pinnedPublicKeys`` and freeze it: sorted (host, pins) pairs."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and all(
        isinstance(p, (tuple, list)) and len(p) == 2 for p in value
    ):
        value = {k: v for k, v in value}  # the frozen form, back from the wire or attrs.evolve
    if not isinstance(value, Mapping):
        raise InvalidArgumentTypeError(
            _ARG, f"{_ARG!r} must be a dict of host: ['sha256/...'] (got {type(value).__name__})"
        )
    out: dict[str, tuple[str, ...]] = {}
    for host, pins in value.items():
        name = _check_host(host)
        if isinstance(pins, str) or not isinstance(pins, (list, tuple)) or not pins:
            raise InvalidArgumentTypeError(
                _ARG, f"{_ARG!r} [{host!r}] must be a non-empty list of 'sha256/...' pins"
            )
        out[name] = tuple(check_pin(_ARG, p) for p in pins)
    return tuple(sorted(out.items()))


def thaw_pins(value: Pins | None) -> dict[str, list[str]] | None:
    return None if value is None else {h: list(p) for h, p in value}


def pins_for(pins: Pins | None, host: str) -> tuple[str, ...]:
    """The pins ``host`` must match (every pattern that names it: OkHttp's union), or ()."""
    if not pins:
        return ()
    name = host.lower().strip("[]").rstrip(".")
    found: list[str] = []
    for pattern, values in pins:
        if pattern == name:
            found += values
        elif pattern.startswith("*."):
            head, _, rest = name.partition(".")
            if head and rest == pattern[2:]:  # one label, as OkHttp's '*'
                found += values
    return tuple(dict.fromkeys(found))
