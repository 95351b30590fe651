"""Proxies at the transport's edge: the environment read once, the choice per request, a 407.

Both engines ask :func:`proxy_for` which proxy a request takes (``proxyURL``, then
``connectionProxyDictionary``, then the environment the session was created in), and both end a
task the proxy refused the same way: the proxy's 407 as the task's ``statusCode`` and -1013
(user authentication required), whether the 407 came as a response (a plain-HTTP request the
proxy forwards) or as the answer to ``CONNECT`` (an https:// request, where the engine never
gets a response to hand on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import urllib3

from .._config_values import ConfigValues
from .._proxy_values import ProxyChoice, choose_proxy
from .._state import ResponseInfo, ResponseStarted
from ..exceptions import ErrorCode, TransferError

if TYPE_CHECKING:
    from ._attempt import Attempt

__all__ = [
    "ProxyAuthenticationRequired",
    "check_proxy_answer",
    "proxy_for",
    "with_system_proxies",
]


def with_system_proxies(config: ConfigValues) -> ConfigValues:
    """``config`` carrying the environment's proxies as they are now (``urllib.request``'s
    reading of ``http_proxy``/``https_proxy``/``all_proxy``/``no_proxy``, with its CGI caveat:
    ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set)."""
    if config.systemProxies is not None:
        return config  # read already (a background session's values, back from the wire)
    import urllib.request  # (here: the rest of the package does not need it)

    found = urllib.request.getproxies()
    return attrs.evolve(config, systemProxies=tuple(sorted(found.items())))


def proxy_for(config: ConfigValues, url: str) -> ProxyChoice | None:
    """The proxy ``url`` goes through under ``config``, or None for a direct connection."""
    return choose_proxy(
        url, config.proxyURL, config.connectionProxyDictionary, config.systemProxies
    )


class ProxyAuthenticationRequired(TransferError):
    """The proxy answered 407: it wants a credential we do not have, or refused ours."""

    def __init__(self, proxy: str) -> None:
        super().__init__(
            ErrorCode.USER_AUTHENTICATION_REQUIRED,
            f"the proxy {proxy}: authentication required (407); give proxyURL a user:password@",
        )


def check_proxy_answer(
    a: Attempt, resp: urllib3.BaseHTTPResponse | None, proxy: ProxyChoice | None
) -> None:
    """End the task when the proxy answered 407 (``resp`` None: to ``CONNECT``).

    The proxy credential went with the request already (Basic, with the request or the
    CONNECT), so a 407 is that credential refused or missing: it is not tried again. The task
    reports the 407 as its response, then fails with -1013.
    """
    if proxy is None or (resp is not None and resp.status != 407):
        return
    headers = () if resp is None else tuple(resp.headers.items())
    if resp is not None:
        a.ctl.set_abort(None)
        resp.drain_conn()
        resp.release_conn()
    a.ctl.feed(ResponseStarted(ResponseInfo(a.request.url, 407, headers, ""), -1, 0))
    raise ProxyAuthenticationRequired(proxy.address)
