"""The urllib3 engine: one pool manager per session, connections a cancel can interrupt.

The engine that works wherever Python does (no libcurl wheel needed). Its responses keep
http.client's file underneath, which lets :mod:`._streams` read plain bodies into a reused
buffer and splice a plain-HTTP download from the socket straight to its file.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import urllib3
from urllib3.exceptions import ProtocolError

from .._config_values import ConfigValues
from .._proxy_values import ProxyChoice
from .._stores import redact
from ._connections import HTTPPool, HTTPSPool, Outgoing
from ._errors import dead_connection
from ._proxied import PinningPools, proxy_manager, refused_connect
from ._proxies import ProxyAuthenticationRequired, proxy_for
from ._requests import IDEMPOTENT
from ._tls import pem_identity

if TYPE_CHECKING:
    from ._attempt import Attempt

log = logging.getLogger(__name__)


class Urllib3Engine:
    """One per session: its urllib3 pool manager (or proxy manager)."""

    name = "urllib3"

    def __init__(self, config: ConfigValues) -> None:
        kw: dict[str, object] = {
            "num_pools": 32,
            "maxsize": config.httpMaximumConnectionsPerHost,
            "block": False,
            "retries": False,
        }
        if config.tlsVerify:
            kw["cert_reqs"] = "CERT_REQUIRED"
            if config.caBundle:
                kw["ca_certs"] = config.caBundle
        else:
            kw["cert_reqs"] = "CERT_NONE"
            kw["assert_hostname"] = False
        if config.tlsMinimumSupportedProtocolVersion == "TLSv1.3":
            kw["ssl_minimum_version"] = ssl.TLSVersion.TLSv1_3
        else:
            kw["ssl_minimum_version"] = ssl.TLSVersion.TLSv1_2
        identity, self._made_identity = pem_identity(config)  # the client certificate
        kw.update(identity)
        self._config = config
        self._kw = kw
        self._pool = urllib3.PoolManager(**kw)  # type: ignore[arg-type]
        self._pool.pool_classes_by_scheme = {
            "http": HTTPPool,
            "https": PinningPools(HTTPSPool, config.pinnedPublicKeys),  # type: ignore[dict-item]
        }
        # One manager per proxy a request of this session went through (proxy_for decides).
        self._proxied: dict[ProxyChoice, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def _manager(self, proxy: ProxyChoice | None) -> urllib3.PoolManager:
        if proxy is None:
            return self._pool
        with self._lock:
            manager = self._proxied.get(proxy)
            if manager is None:
                manager = self._proxied[proxy] = proxy_manager(proxy, self._config, self._kw)
            return manager

    def open(
        self,
        a: Attempt,
        url: str,
        headers: urllib3.HTTPHeaderDict,
        body: Iterator[bytes | memoryview] | None,
    ) -> urllib3.BaseHTTPResponse:
        """Send the request and read the response head; retry once on a dead reused connection.

        A server may close an idle keep-alive connection without saying so; an idempotent
        request that finds the pooled connection dead goes out once more on a fresh one
        (``body`` is made again from the attempt for that second try).
        """
        from ._streams import send_blocks  # (a body for the second try)

        request = a.request
        proxy = proxy_for(self._config, url)
        manager = self._manager(proxy)
        for attempt in (0, 1):
            timeout = a.timeout()
            a.reused = None
            if attempt and request.has_body:
                body = send_blocks(a)
            try:
                return manager.urlopen(
                    request.method,
                    url,
                    body=Outgoing(a, body),
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=True,
                    timeout=timeout,
                    assert_same_host=False,
                )
            except BaseException as exc:
                a.ctl.set_abort(None)
                if proxy is not None and refused_connect(exc):
                    raise ProxyAuthenticationRequired(proxy.address) from exc
                if (
                    not isinstance(exc, ProtocolError)
                    or attempt
                    or request.method not in IDEMPOTENT
                    or not dead_connection(exc)
                    or a.reused is False  # a fresh connection that failed is no stale one
                    or a.ctl.cancelled
                ):
                    raise
                log.debug(
                    "retrying %s %s once on a fresh connection: %s",
                    request.method,
                    redact(request.url),
                    exc,
                )
        raise AssertionError("unreachable")

    def protocol(self, resp: urllib3.BaseHTTPResponse) -> str:
        return "http/1.1"

    def clear_idle(self) -> None:
        """Drop the pools without closing them under a task that just took one: tasks running
        keep theirs until they end; new ones get fresh pools."""
        with self._lock:
            managers = [self._pool, *self._proxied.values()]
        for manager in managers:
            manager.clear()

    def close(self) -> None:
        """Close every pooled connection now.

        ``PoolManager.clear()`` alone only forgets the pools (their sockets close when the
        garbage collector gets to them), so each pool is closed first.
        """
        with self._lock:
            managers = [self._pool, *self._proxied.values()]
        for manager in managers:
            pools = manager.pools
            for key in list(pools.keys()):
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
            manager.clear()
        if self._made_identity is not None:
            self._made_identity.remove()
