"""What libcurl is told about proxies (and, later, client certificates and pins) for one request.

Kept out of :func:`._options.configure` so that the security options live in one place. Which proxy
a request takes is decided above the engine (:func:`.._proxies.proxy_for`), the same for both
engines; libcurl is only told the answer, and never reads the environment itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pycurl

from ..._config_values import ConfigValues
from ..._tls_values import pins_for
from .._proxies import proxy_for
from .._tls import client_identity, curl_pins
from ._metrics import watch_tls

if TYPE_CHECKING:
    from ._easy import Transfer

_TLS_MIN = {"TLSv1.2": pycurl.SSLVERSION_TLSv1_2, "TLSv1.3": pycurl.SSLVERSION_TLSv1_3}
# CURLOPT_SUPPRESS_CONNECT_HEADERS (7.54): the proxy's CONNECT answer is not the response head.
_SUPPRESS_CONNECT_HEADERS = getattr(pycurl, "SUPPRESS_CONNECT_HEADERS", 265)


def apply_session(e: pycurl.Curl, config: ConfigValues) -> None:
    """What every request of a session is told alike (the session's template handle): the
    TLS floor and the client certificate."""
    e.setopt(pycurl.SSLVERSION, _TLS_MIN[config.tlsMinimumSupportedProtocolVersion])
    identity = client_identity(config)
    if identity is not None:
        e.setopt(pycurl.SSLCERT, identity.cert_file)
        if identity.pkcs12:
            e.setopt(pycurl.SSLCERTTYPE, "P12")
        elif identity.key_file:
            e.setopt(pycurl.SSLKEY, identity.key_file)
        if identity.password:
            e.setopt(pycurl.KEYPASSWD, identity.password)


def apply(t: Transfer, config: ConfigValues, url: str) -> None:
    """Set the proxy (or none: libcurl would take ``http_proxy`` from the environment) and the
    host's pins (the rest is the session's: :func:`apply_session`)."""
    e = t.easy
    secure = t.https  # (configure looked)
    if secure and t.tx is not None:
        watch_tls(e)  # negotiatedTLSProtocolVersion (see _metrics)
    pins: tuple[str, ...] = ()
    if secure and config.pinnedPublicKeys:  # (no URL taken apart per request without pins)
        pins = pins_for(config.pinnedPublicKeys, urlsplit(url).hostname or "")
    if pins:
        e.setopt(pycurl.PINNEDPUBLICKEY, curl_pins(pins))
    proxy = proxy_for(config, url)
    if proxy is None:
        e.setopt(pycurl.PROXY, "")
        t.proxy = None
        return
    t.proxy = proxy.address  # for messages: the proxy, never its credential
    e.setopt(pycurl.PROXY, proxy.url)
    e.setopt(_SUPPRESS_CONNECT_HEADERS, 1)
    if proxy.credential is not None:
        # Basic with the request (or the CONNECT) and SOCKS5's user/password: a proxy the user
        # gave a credential for gets it at once, as curl -x user:pass@ does.
        e.setopt(pycurl.PROXYUSERNAME, proxy.credential[0])
        e.setopt(pycurl.PROXYPASSWORD, proxy.credential[1])
        if proxy.scheme in ("http", "https"):
            e.setopt(pycurl.PROXYAUTH, pycurl.HTTPAUTH_BASIC)
    if proxy.scheme == "https":  # the proxy's own TLS: the session's trust settings
        if not config.tlsVerify:
            e.setopt(pycurl.PROXY_SSL_VERIFYPEER, 0)
            e.setopt(pycurl.PROXY_SSL_VERIFYHOST, 0)
        elif config.caBundle:
            e.setopt(pycurl.PROXY_CAINFO, config.caBundle)
