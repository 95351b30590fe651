"""Proxy settings as plain values: ``proxyURL``, ``connectionProxyDictionary``, and which proxy a
URL goes through.

Sans-IO (no socket, no environment reading): the configuration checks its values here, and both
engines ask :func:`choose_proxy` the same question for every request, so they cannot disagree
about which proxy a request takes. The environment's proxies are read once, when a session is
created (``_transport._proxies.system_proxies``), and travel in the session's values as the
hidden ``systemProxies`` field, so a background session's transfer process uses the host's
proxies, not its own environment.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import attrs

from .exceptions import InvalidArgumentTypeError, InvalidArgumentValueError

__all__ = [
    "PROXY_DICTIONARY_KEYS",
    "PROXY_SCHEMES",
    "ProxyChoice",
    "check_proxy_url",
    "choose_proxy",
    "proxy_dictionary_value",
    "thaw_proxy_dictionary",
]

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}

# CFNetwork's kCFNetworkProxies* keys (the strings Apple's dictionary uses).
_ENABLE = ("HTTPEnable", "HTTPSEnable", "SOCKSEnable")
_HOSTS = ("HTTPProxy", "HTTPSProxy", "SOCKSProxy")
_PORTS = ("HTTPPort", "HTTPSPort", "SOCKSPort")
PROXY_DICTIONARY_KEYS = frozenset((*_ENABLE, *_HOSTS, *_PORTS, "ExceptionsList"))

FrozenDict = tuple[tuple[str, Any], ...]


@attrs.frozen
class ProxyChoice:
    """The proxy one request goes through: its URL without user info, and its own credential."""

    url: str
    scheme: str
    host: str
    port: int
    credential: tuple[str, str] | None = attrs.field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port``, for messages (never the credential)."""
        return f"{self.host}:{self.port}"


def _port_of(argument: str, parts: Any) -> int | None:
    try:
        return parts.port  # type: ignore[no-any-return]
    except ValueError:
        raise InvalidArgumentValueError(
            argument, f"{argument!r} has a port out of range 1-65535 ({_shown(parts)})"
        ) from None


def _shown(parts: Any) -> str:
    """A proxy URL for a message: never its password."""
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{'***@' if '@' in parts.netloc else ''}{host}"


def shown_proxy_url(value: str | None) -> str | None:
    """A proxy URL for a repr: its password (the user info) never shown."""
    if not isinstance(value, str) or "@" not in value:
        return value
    parts = urlsplit(value)
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def check_proxy_url(argument: str, value: str) -> ProxyChoice:
    """``value`` as a proxy: http, https, socks5 or socks5h, a host, a port in range.

    Messages never echo the value whole: it may hold the proxy's password."""
    inner = value.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or any(c.isspace() for c in inner):
        # urllib.parse drops tabs and newlines quietly: the URL would not be the one written.
        raise InvalidArgumentValueError(
            argument, f"{argument!r} must not contain whitespace or control characters"
        )
    parts = urlsplit(inner)
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise InvalidArgumentValueError(
            argument,
            f"{argument!r} must be an http://, https://, socks5:// or socks5h:// URL "
            f"(got scheme {parts.scheme!r})",
        )
    if not parts.hostname:
        raise InvalidArgumentValueError(argument, f"{argument!r} has no host ({_shown(parts)})")
    port = _port_of(argument, parts)
    if port == 0:
        raise InvalidArgumentValueError(
            argument, f"{argument!r} has a port out of range 1-65535 ({_shown(parts)})"
        )
    credential = None
    if parts.username is not None:
        credential = (unquote(parts.username), unquote(parts.password or ""))
    host = parts.hostname
    port = port or _DEFAULT_PORTS[scheme]
    shown_host = f"[{host}]" if ":" in host else host
    return ProxyChoice(f"{scheme}://{shown_host}:{port}", scheme, host, port, credential)


def _check_port(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentTypeError(
            "connectionProxyDictionary",
            f"'connectionProxyDictionary' {key!r} must be an int (got {value!r})",
        )
    if not 1 <= value <= 65535:
        raise InvalidArgumentValueError(
            "connectionProxyDictionary",
            f"'connectionProxyDictionary' {key!r} is out of range 1-65535 (got {value!r})",
        )
    return value


def proxy_dictionary_value(value: Any) -> FrozenDict | None:
    """Check Apple's proxy dictionary and freeze it (sorted pairs; ``ExceptionsList`` a tuple)."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and all(
        isinstance(p, (tuple, list)) and len(p) == 2 for p in value
    ):
        value = {k: v for k, v in value}  # the frozen form, back from the wire or attrs.evolve
    if not isinstance(value, Mapping):
        raise InvalidArgumentTypeError(
            "connectionProxyDictionary",
            f"'connectionProxyDictionary' must be a dict (got {type(value).__name__})",
        )
    unknown = sorted(str(k) for k in value if k not in PROXY_DICTIONARY_KEYS)
    if unknown:
        raise InvalidArgumentValueError(
            "connectionProxyDictionary",
            f"'connectionProxyDictionary' has unknown keys {unknown} "
            f"(known: {sorted(PROXY_DICTIONARY_KEYS)})",
        )
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _ENABLE:
            if item not in (0, 1, True, False):
                raise InvalidArgumentValueError(
                    "connectionProxyDictionary",
                    f"'connectionProxyDictionary' {key!r} must be true/false or 1/0 (got {item!r})",
                )
            out[key] = bool(item)
        elif key in _PORTS:
            out[key] = _check_port(key, item)
        elif key in _HOSTS:
            if not isinstance(item, str) or not item.strip() or any(c in item for c in "/@ "):
                raise InvalidArgumentValueError(
                    "connectionProxyDictionary",
                    f"'connectionProxyDictionary' {key!r} must be a host name (got {item!r})",
                )
            out[key] = item.strip()
        else:  # ExceptionsList
            if not isinstance(item, (list, tuple)) or not all(isinstance(h, str) for h in item):
                raise InvalidArgumentTypeError(
                    "connectionProxyDictionary",
                    "'connectionProxyDictionary' 'ExceptionsList' must be a list of str "
                    f"(got {item!r})",
                )
            for entry in item:
                _check_exception(entry)
            out[key] = tuple(item)
    return tuple(sorted(out.items()))


def _check_exception(entry: str) -> None:
    if "/" in entry:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise InvalidArgumentValueError(
                "connectionProxyDictionary",
                f"'connectionProxyDictionary' 'ExceptionsList' has a bad CIDR range {entry!r}",
            ) from None


def thaw_proxy_dictionary(value: FrozenDict | None) -> dict[str, Any] | None:
    """The frozen dictionary as the user sees it again (a dict, ``ExceptionsList`` a list)."""
    if value is None:
        return None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in value}


def _excepted(host: str, exceptions: tuple[str, ...]) -> bool:
    """Whether ``host`` matches Apple's ExceptionsList: names, ``*.suffix``, IPs, CIDR ranges."""
    host = host.lower().strip("[]").rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in exceptions:
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        if "/" in entry:
            if address is not None and address in ipaddress.ip_network(entry, strict=False):
                return True
        elif entry.startswith("*."):
            if host.endswith(entry[1:]) or host == entry[2:]:
                return True
        elif entry.startswith("."):
            if host.endswith(entry) or host == entry[1:]:
                return True
        elif host == entry.strip("[]"):
            return True
    return False


def _from_dictionary(d: dict[str, Any], scheme: str, host: str) -> ProxyChoice | None:
    if not d or _excepted(host, tuple(d.get("ExceptionsList", ()))):
        return None
    kind = "HTTPS" if scheme == "https" else "HTTP"
    if d.get(f"{kind}Enable") and d.get(f"{kind}Proxy"):
        port = d.get(f"{kind}Port") or (443 if kind == "HTTPS" else 80)
        return check_proxy_url("connectionProxyDictionary", f"http://{d[kind + 'Proxy']}:{port}")
    if d.get("SOCKSEnable") and d.get("SOCKSProxy"):
        port = d.get("SOCKSPort") or 1080
        return check_proxy_url("connectionProxyDictionary", f"socks5://{d['SOCKSProxy']}:{port}")
    return None


def _from_environment(env: dict[str, str], scheme: str, host: str) -> ProxyChoice | None:
    # urllib.request's own rule for no_proxy (names, suffixes, '*'), on the snapshot; imported
    # here, not at the top: only a session with an environment proxy pays for it.
    import urllib.request

    if "no" in env and urllib.request.proxy_bypass_environment(host, env):  # type: ignore[attr-defined]
        return None
    url = env.get(scheme) or env.get("all")
    if not url:
        return None
    if "://" not in url:
        url = "http://" + url  # curl and urllib read a bare host:port as an HTTP proxy
    try:
        return check_proxy_url(f"{scheme}_proxy", url)
    except (InvalidArgumentValueError, InvalidArgumentTypeError):
        return None  # an environment proxy we cannot use is ignored, as urllib and curl do


@functools.lru_cache(maxsize=64)
def _proxy_url_choice(proxy_url: str) -> ProxyChoice:
    """``proxyURL`` parsed once (it is asked for every request)."""
    return check_proxy_url("proxyURL", proxy_url)


def choose_proxy(
    url: str,
    proxy_url: str | None,
    dictionary: FrozenDict | None,
    system: tuple[tuple[str, str], ...] | None,
) -> ProxyChoice | None:
    """The proxy for ``url``: ``proxyURL``, else ``connectionProxyDictionary`` (empty: direct),
    else the environment read when the session was made; None to connect directly."""
    if proxy_url:
        return _proxy_url_choice(proxy_url)
    if dictionary is None and not system:
        return None  # (most sessions: the URL is not taken apart, twice a hop)
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if dictionary is not None:
        return _from_dictionary(dict(dictionary), scheme, host)
    if system:
        return _from_environment(dict(system), scheme, host)
    return None
