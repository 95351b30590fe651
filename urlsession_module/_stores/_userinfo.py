"""User info in URLs: a credential, so never sent on the wire as is, never logged.

Also the one domain rule cookies need (``onlyFromMainDocumentDomain``).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, unquote, urlsplit, urlunsplit

Credential = tuple[str, str]  # (user, password)


def redact(url: str) -> str:
    """``url`` fit for a log line: user info (a credential) is never written out."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _userinfo(url: str) -> Credential | None:
    parts = urlsplit(url)
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


def userinfo_of(url: str) -> Credential | None:
    """The credential written in ``url``'s user info (percent-decoded), or None."""
    return _userinfo(url)


def with_userinfo(url: str, credential: Credential | None) -> str:
    """``url`` carrying ``credential`` as its user info (how a task's credential travels)."""
    if credential is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user, password = (quote(c, safe="") for c in credential)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _same_domain(host: str, main: str) -> bool:
    """``onlyFromMainDocumentDomain``: the host is the main document's, or one domain holds the other."""
    host, main = host.lower(), main.lower()
    if host == main:
        return True
    if _is_ip(host) or _is_ip(main):
        return False
    return host.endswith("." + main) or main.endswith("." + host)
