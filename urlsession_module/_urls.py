"""URL facts every layer agrees on: a URL's origin, and the headers that carry a credential.

Sans-IO and import-free (no pyee, no urllib3): the scheduler, the stores, the transport and the
background transfer process all key by origin, and a second copy of either rule is how a
credential ends up sent where it should not go.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit, urlunsplit

__all__ = ["CREDENTIAL_HEADERS", "Origin", "origin", "without_userinfo"]

Origin = tuple[str, str, int]

# Headers that carry a credential: never sent to another origin, never stored by the cache.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@functools.lru_cache(maxsize=1024)
def origin(url: str) -> Origin:
    """(scheme, host, port) in lower case with the default port filled in, as RFC 6454 compares.

    Cached by the URL's text: the scheduler, the transport and the stores ask it of the same
    few URLs for every task."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def without_userinfo(url: str) -> str:
    """``url`` without its user info: a credential, never sent on the wire nor shown as is."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
