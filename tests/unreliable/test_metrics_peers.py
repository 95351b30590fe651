"""Metrics against servers we did not write: over HTTP/2 (nginx, curl engine) and through an
HTTP proxy (pproxy), on both engines where the engine speaks it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.peers._certs import PeerCerts
from tests.peers.fixtures import ProxyView
from tests.peers.nginx import Nginx

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def test_metrics_over_h2(
    nginx_peer: Nginx, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """h2 by ALPN: the transaction says h2, has TLS dates and the TLS connection's peer."""
    session = make_session(engine="curl", caBundle=str(peer_certs.ca))
    rec = recorder(session)
    done = rec.completed(
        session.dataTask(url=nginx_peer.url("https", "/files/1k.bin"), method="GET"), 30
    )
    assert done.success, done.message
    (tx,) = done.metrics["transactionMetrics"]
    print(json.dumps(done.metrics, indent=1))  # the breakdown, for the record (-s)
    assert tx["networkProtocolName"] == "h2"
    assert tx["secureConnectionStartDate"] is not None
    assert tx["secureConnectionStartDate"] <= tx["secureConnectionEndDate"]
    assert tx["remotePort"] == nginx_peer.ports["https"]
    assert tx["countOfResponseBodyBytesReceived"] == 1024
    assert tx["isProxyConnection"] is False


@pytest.mark.parametrize("eng", ["curl", "urllib3"])
def test_metrics_through_an_http_proxy(
    eng: str,
    http_proxy: ProxyView,
    nginx_peer: Nginx,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """Through pproxy: isProxyConnection, and the connection's far end is the proxy."""
    session = make_session(engine=eng, proxyURL=http_proxy.url)
    rec = recorder(session)
    done = rec.completed(
        session.dataTask(url=nginx_peer.url("http", "/files/1k.bin"), method="GET"), 30
    )
    assert done.success, done.message
    (tx,) = done.metrics["transactionMetrics"]
    print(json.dumps(done.metrics, indent=1))
    assert tx["isProxyConnection"] is True
    assert tx["remotePort"] == int(http_proxy.url.rsplit(":", 1)[1].strip("/"))
    assert tx["countOfResponseBodyBytesReceived"] == 1024
