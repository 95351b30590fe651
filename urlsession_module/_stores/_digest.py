"""HTTP Digest (RFC 7616) answers, and which offered scheme a credential answers.

Written here, not taken from a library: the transport answers challenges itself on both engines
(libcurl's own auth is never switched on, so the rules for whose credential goes where are ours
alone), and the libraries that compute Digest (requests' ``HTTPDigestAuth``, httpx's
``DigestAuth``) are tied to their own request objects and flows. The computation follows
requests' ``HTTPDigestAuth.build_digest_header``, with RFC 7616's unquoted ``algorithm``,
``qop`` and ``nc``, SHA-256, and ``auth-int`` for bodies held in memory.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ._userinfo import Credential

__all__ = ["DigestAnswer", "ranked"]

_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "md5": hashlib.md5,
    "md5-sess": hashlib.md5,
    "sha-256": hashlib.sha256,
    "sha-256-sess": hashlib.sha256,
}
# Strongest first: what a credential answers when a server offers several.
_STRENGTH = {"sha-256": 0, "sha-256-sess": 0, "md5": 1, "md5-sess": 1}
_BASIC = 2


def ranked(challenges: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
    """The challenges we can answer, strongest first (Digest SHA-256, Digest MD5, Basic)."""

    def strength(challenge: tuple[str, dict[str, str]]) -> int | None:
        scheme, params = challenge
        if scheme == "basic":
            return _BASIC
        if scheme != "digest" or "nonce" not in params:
            return None
        if params.get("algorithm", "MD5").lower() not in _HASHES:
            return None  # (SHA-512-256 and the like: not offered by the servers we meet)
        qops = _qops(params)
        if qops and not qops & {"auth", "auth-int"}:
            return None
        return _STRENGTH[params.get("algorithm", "MD5").lower()]

    usable = [(strength(c), i, c) for i, c in enumerate(challenges)]
    return [c for s, _, c in sorted((s, i, c) for s, i, c in usable if s is not None)]


def _qops(params: dict[str, str]) -> set[str]:
    return {q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestAnswer:
    """Answers one Digest challenge, request after request (``nc`` counts up for its nonce).

    Never in a repr: it holds the credential.
    """

    def __init__(self, params: dict[str, str], credential: Credential) -> None:
        self._params = params
        self._credential = credential
        self._algorithm = params.get("algorithm", "MD5")
        self._hash = _HASHES[self._algorithm.lower()]
        self._count = 0

    def __repr__(self) -> str:
        return f"<DigestAnswer {self._algorithm} realm={self._params.get('realm', '')!r}>"

    def renewed(self, params: dict[str, str]) -> DigestAnswer:
        """The same credential for the server's new nonce (``stale=true``)."""
        return DigestAnswer(params, self._credential)

    def _h(self, text: str | bytes) -> str:
        data = text.encode("utf-8") if isinstance(text, str) else text
        return self._hash(data).hexdigest()

    def header(self, method: str, url: str, body: bytes | None, cnonce: str = "") -> str:
        """The ``Authorization`` value for ``method`` on ``url`` (``body``: for ``auth-int``;
        None when the body is not in memory, which then uses ``auth`` only). ``cnonce``: a
        fixed client nonce (RFC 7616's worked examples); a random one when empty."""
        p = self._params
        user, password = self._credential
        realm, nonce = p.get("realm", ""), p["nonce"]
        parts = urlsplit(url)
        uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        qops = _qops(p)
        qop = ""
        if "auth" in qops:
            qop = "auth"
        elif "auth-int" in qops and body is not None:
            qop = "auth-int"
        cnonce = (
            cnonce or hashlib.sha256(os.urandom(16) + str(time.time()).encode()).hexdigest()[:32]
        )
        self._count += 1
        nc = f"{self._count:08x}"
        ha1 = self._h(f"{user}:{realm}:{password}")
        if self._algorithm.lower().endswith("-sess"):
            ha1 = self._h(f"{ha1}:{nonce}:{cnonce}")
        a2 = f"{method}:{uri}"
        if qop == "auth-int":
            a2 += ":" + self._h(body or b"")
        ha2 = self._h(a2)
        if qop:
            response = self._h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
        else:
            response = self._h(f"{ha1}:{nonce}:{ha2}")
        fields = [
            f"username={_quote(user)}",
            f"realm={_quote(realm)}",
            f"nonce={_quote(nonce)}",
            f"uri={_quote(uri)}",
            f"algorithm={self._algorithm}",
            f"response={_quote(response)}",
        ]
        if "opaque" in p:
            fields.append(f"opaque={_quote(p['opaque'])}")
        if qop:
            fields += [f"qop={qop}", f"nc={nc}", f"cnonce={_quote(cnonce)}"]
        return "Digest " + ", ".join(fields)
