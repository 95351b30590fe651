"""A curl transfer's metrics, from libcurl's own clocks (``curl_easy_getinfo``).

Read once, on the network thread, right after the ``socket_action`` that completed the final
response head (pycurl refuses ``getinfo`` inside libcurl's callbacks), or as the transfer ends
when no head came. The reader has the head at once; the task's thread waits for the metrics
only if it reports them before that ``socket_action`` has returned (bounded: see
``Transfer.settle_metrics``). The body's end and its bytes are stamped by the transport as it
reads them, as for every engine. libcurl
measures every phase from the transfer's start in microseconds (``*_TIME_T``); the dates are
that start (taken as the transfer is made) plus each offset. A transfer that made no connection
(``NUM_CONNECTS`` 0) reused one: lookup, connect and handshake are then ``None``, as Apple's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pycurl

from .._metrics import Transaction

if TYPE_CHECKING:
    from ._easy import Transfer

_US = 1e-6

# Transfers whose final head came during the current ``socket_action`` (network thread only):
# pycurl refuses ``getinfo`` inside libcurl's callbacks, so the head callback queues the
# transfer here and the network thread reads its clocks as soon as ``socket_action`` returns.
HEADS: list[Transfer] = []


def complete_heads() -> None:
    """Read the metrics of the transfers whose head just came."""
    while HEADS:
        HEADS.pop(0).head_complete()


def _get(easy: pycurl.Curl, what: int) -> object:
    try:
        return easy.getinfo(what)
    except pycurl.error:
        return None


def _offset(easy: pycurl.Curl, what: int) -> float:
    value = _get(easy, what)
    return float(value) * _US if isinstance(value, (int, float)) and value > 0 else 0.0


def fill(
    tx: Transaction, easy: pycurl.Curl, started: float, secure: bool, upload_end: float
) -> None:
    """Fill ``tx`` from ``easy``'s clocks and counters (network thread, before ``close``)."""
    lookup = _offset(easy, pycurl.NAMELOOKUP_TIME_T)
    connect = _offset(easy, pycurl.CONNECT_TIME_T)
    tls = _offset(easy, pycurl.APPCONNECT_TIME_T)
    pretransfer = _offset(easy, pycurl.PRETRANSFER_TIME_T)
    first_byte = _offset(easy, pycurl.STARTTRANSFER_TIME_T)
    connects = _get(easy, pycurl.NUM_CONNECTS)
    tx.fetchStartDate = started
    reused = connects == 0 and pretransfer > 0
    tx.isReusedConnection = reused
    if not reused and connect > 0:
        tx.domainLookupStartDate = started
        tx.domainLookupEndDate = started + lookup
        tx.connectStartDate = started + lookup
        if secure and tls > 0:
            tx.secureConnectionStartDate = started + connect
            tx.secureConnectionEndDate = started + tls
        tx.connectEndDate = started + max(connect, tls)
    if pretransfer > 0:
        tx.requestStartDate = started + pretransfer
        tx.requestEndDate = max(tx.requestStartDate, upload_end)
    if first_byte > 0:
        tx.responseStartDate = started + first_byte
    header = _get(easy, pycurl.HEADER_SIZE)
    request = _get(easy, pycurl.REQUEST_SIZE)
    sent = _get(easy, pycurl.SIZE_UPLOAD_T)
    body_sent = int(sent) if isinstance(sent, (int, float)) else 0
    tx.countOfRequestBodyBytesSent = body_sent
    if isinstance(request, int):
        tx.countOfRequestHeaderBytesSent = max(0, request - body_sent)
    if isinstance(header, int):
        tx.countOfResponseHeaderBytesReceived = header
    for field, what in (("remoteAddress", pycurl.PRIMARY_IP), ("localAddress", pycurl.LOCAL_IP)):
        value = _get(easy, what)
        if isinstance(value, str) and value:
            setattr(tx, field, value)
    for field, what in (("remotePort", pycurl.PRIMARY_PORT), ("localPort", pycurl.LOCAL_PORT)):
        value = _get(easy, what)
        if isinstance(value, int) and value > 0:
            setattr(tx, field, value)
    tx.engine_filled = True
