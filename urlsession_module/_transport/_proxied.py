"""urllib3's pool managers for a session: through a proxy (HTTP, HTTPS, SOCKS5), and pools that
know their host's pinned keys.

Our pools (:mod:`._connections`) stay the ones every manager makes, so a request through a proxy
is as cancellable, and its head read as carefully, as a direct one.
"""

from __future__ import annotations

import base64
import functools
import re
import ssl
from typing import Any

import urllib3
from urllib3.connectionpool import HTTPConnectionPool

from .._config_values import ConfigValues
from .._proxy_values import ProxyChoice
from .._tls_values import Pins, pins_for
from ._connections import HTTPPool, HTTPSPool, _AbortableHTTPConnection

__all__ = ["PinningPools", "proxy_manager", "refused_connect"]


_TUNNEL_407 = re.compile(r"Tunnel connection failed: 407\b")


def refused_connect(exc: BaseException) -> bool:
    """Whether ``exc`` is an HTTP proxy's 407 to our ``CONNECT`` (http.client's tunnel error,
    wrapped by urllib3 in a ProxyError)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if _TUNNEL_407.search(str(e)):
            return True
        todo += [a for a in e.args if isinstance(a, BaseException)]
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return False


def proxy_manager(
    proxy: ProxyChoice, config: ConfigValues, kw: dict[str, object]
) -> urllib3.PoolManager:
    """A pool manager that sends every request through ``proxy``, with our pools."""
    if proxy.scheme.startswith("socks"):
        from urllib3.contrib.socks import SOCKSProxyManager  # needs PySocks

        user, password = proxy.credential or (None, None)
        manager: urllib3.PoolManager = SOCKSProxyManager(
            proxy.url,
            username=user,
            password=password,
            **kw,  # type: ignore[arg-type]
        )
        socks: dict[str, Any] = {
            "http": _SocksHTTPPool,
            "https": PinningPools(_SocksHTTPSPool, config.pinnedPublicKeys),
        }
        manager.pool_classes_by_scheme = socks
        return manager
    headers = None
    if proxy.credential is not None:
        # Spelled as curl and browsers send it: some proxies (pproxy) match the name's case.
        token = base64.b64encode(":".join(proxy.credential).encode()).decode("ascii")
        headers = {"Proxy-Authorization": f"Basic {token}"}
    extra: dict[str, Any] = dict(kw)
    if proxy.scheme == "https":  # the proxy's own TLS: the session's trust settings
        context = ssl.create_default_context(cafile=config.caBundle if config.tlsVerify else None)
        if not config.tlsVerify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        extra["proxy_ssl_context"] = context
    manager = urllib3.ProxyManager(
        proxy.url,
        proxy_headers=headers,
        **extra,
    )
    pools: dict[str, Any] = {
        "http": HTTPPool,
        "https": PinningPools(HTTPSPool, config.pinnedPublicKeys),
    }
    manager.pool_classes_by_scheme = pools
    return manager


def _socks_pools() -> tuple[type[HTTPConnectionPool], type[HTTPConnectionPool]]:
    from urllib3.contrib.socks import SOCKSConnection, SOCKSHTTPSConnection

    class SocksHTTPConnection(_AbortableHTTPConnection, SOCKSConnection):
        """Through a SOCKS proxy, and cancellable as our other connections."""

    class SocksHTTPSConnection(_AbortableHTTPConnection, SOCKSHTTPSConnection):
        """The same over TLS."""

    class SocksHTTPPool(HTTPPool):
        ConnectionCls = SocksHTTPConnection  # type: ignore[assignment]

    class SocksHTTPSPool(HTTPSPool):
        ConnectionCls = SocksHTTPSConnection  # type: ignore[assignment]

    return SocksHTTPPool, SocksHTTPSPool


class _LazySocksPool:
    """A pool class made on first use: PySocks is imported only by a session with a SOCKS proxy."""

    def __init__(self, index: int) -> None:
        self._index = index

    def __call__(self, *args: Any, **kw: Any) -> HTTPConnectionPool:
        return _socks_pools_cached()[self._index](*args, **kw)


@functools.cache
def _socks_pools_cached() -> tuple[type[HTTPConnectionPool], type[HTTPConnectionPool]]:
    return _socks_pools()


_SocksHTTPPool: Any = _LazySocksPool(0)
_SocksHTTPSPool: Any = _LazySocksPool(1)


class PinningPools:
    """A pool class for a manager's ``pool_classes_by_scheme`` whose pools know their host's
    pins (urllib3 keys pools by a fixed set of fields, so the pins cannot ride in its kwargs)."""

    def __init__(self, cls: Any, pins: Pins | None) -> None:
        self._cls = cls
        self._pins = pins

    def __call__(self, host: str, port: int | None = None, **kw: Any) -> HTTPConnectionPool:
        pool = self._cls(host, port, **kw)
        pool.tls_pins = pins_for(self._pins, host)
        return pool  # type: ignore[no-any-return]
