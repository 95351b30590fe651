"""A curl transfer's metrics, from libcurl's own clocks (``curl_easy_getinfo``).

Read once, on the network thread, right after the ``socket_action`` that completed the final
response head (pycurl refuses ``getinfo`` inside libcurl's callbacks; the head's lines are
taken in there too, ``Transfer.scan_head``), before the reader is told of the head; or as the
transfer ends when no head came. A task's thread that reports them first waits, bounded
(``Transfer.settle_metrics``). The body's end and its bytes are stamped by the transport as it
reads them, as for every engine. libcurl
measures every phase from the transfer's start in microseconds (``*_TIME_T``); the dates are
that start (taken as the transfer is made) plus each offset. A transfer that made no connection
(``NUM_CONNECTS`` 0) reused one: lookup, connect and handshake are then ``None``, as Apple's.

``negotiatedTLSProtocolVersion``: libcurl has no ``CURLINFO`` for it that pycurl reads (its
``TLS_SSL_PTR`` is a pointer to OpenSSL's object). The one place libcurl says it is its verbose
output: ``SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384 / ...`` as the handshake ends.
So an https transfer is verbose, with a small debug callback (:func:`watch_tls`), only until
its head came (:func:`fill` switches it off: the body's blocks never reach Python twice); a
transfer on a reused connection takes the version its connection's handshake gave
(:data:`_BY_CONNECTION`, keyed by both ends). The value is OpenSSL's name, as
``ssl.SSLSocket.version()`` gives it on the urllib3 engine (``'TLSv1.3'``, ``'TLSv1.2'``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pycurl

from .._metrics import Transaction

_US = 1e-6

_TLS_LINE = b"SSL connection using "
_HTTP3 = getattr(pycurl, "CURL_HTTP_VERSION_3", 30)
# The TLS version of each connection whose handshake a transfer saw: (remote address, remote
# port, local port) -> version, for the transfers that reuse it (bounded: oldest go first).
_BY_CONNECTION: dict[tuple[object, object, object], str] = {}
_CONNECTIONS_KEPT = 4096


def watch_tls(easy: pycurl.Curl) -> None:
    """Make ``easy`` say its TLS version (https transfers that collect metrics only).

    Its debug callback is called for every line libcurl would print until the head came
    (about twenty on a reused connection: header lines, TLS records); a line that is not the
    one costs a comparison. A plain closure, not an object's ``__call__``: half the cost a
    call (the watch was about 1 % of scenario b over https as an object). What it finds rides
    on the handle (pycurl handles take attributes), which the transfer owns.
    """
    seen: list[bytes] = []
    keep = seen.append

    def debug(kind: int, data: bytes) -> None:
        if kind == 0 and data.startswith(_TLS_LINE):  # CURLINFO_TEXT
            keep(data)

    easy.setopt(pycurl.VERBOSE, 1)
    easy.setopt(pycurl.DEBUGFUNCTION, debug)
    easy.tls_seen = seen  # type: ignore[attr-defined]


def _tls_version(easy: pycurl.Curl, seen: list[bytes], tx: Transaction) -> str | None:
    """The version this transfer's handshake gave (its last, the target's behind an https
    proxy), or its reused connection's."""
    with contextlib.suppress(pycurl.error):
        easy.setopt(pycurl.VERBOSE, 0)  # the head is in: the body needs no more lines
    f = tx.fields
    key = (f["remoteAddress"], f["remotePort"], f["localPort"])
    version = None
    if seen:
        version = seen[-1][len(_TLS_LINE) :].split(b" ", 1)[0].decode("ascii", "replace")
    if version is not None:
        if len(_BY_CONNECTION) >= _CONNECTIONS_KEPT:
            del _BY_CONNECTION[next(iter(_BY_CONNECTION))]
        _BY_CONNECTION[key] = version
        return version
    if f["isReusedConnection"]:
        version = _BY_CONNECTION.get(key)
    if version is None and _get(easy, pycurl.INFO_HTTP_VERSION) == _HTTP3:
        version = "TLSv1.3"  # QUIC is TLS 1.3, always
    return version


def _get(easy: pycurl.Curl, what: int) -> object:
    try:
        return easy.getinfo(what)
    except pycurl.error:
        return None


def _offset(easy: pycurl.Curl, what: int) -> float:
    value = _get(easy, what)
    return float(value) * _US if isinstance(value, (int, float)) and value > 0 else 0.0


# libcurl's info codes as module names: ``pycurl.X`` is two lookups a read, ``_X`` one (cached).
_NUM_CONNECTS = pycurl.NUM_CONNECTS
_PRETRANSFER = pycurl.PRETRANSFER_TIME_T
_STARTTRANSFER = pycurl.STARTTRANSFER_TIME_T
_HEADER_SIZE = pycurl.HEADER_SIZE
_REQUEST_SIZE = pycurl.REQUEST_SIZE
_PRIMARY_IP = pycurl.PRIMARY_IP
_PRIMARY_PORT = pycurl.PRIMARY_PORT
_LOCAL_IP = pycurl.LOCAL_IP
_LOCAL_PORT = pycurl.LOCAL_PORT
_SIZE_UPLOAD = pycurl.SIZE_UPLOAD_T
_CONN_ID = getattr(pycurl, "CONN_ID", None)  # libcurl 8.2
_CONNECTIONS_NAMED = 1024  # a session's connections whose ends are kept (then forgotten at once)
_NAMELOOKUP = pycurl.NAMELOOKUP_TIME_T
_CONNECT = pycurl.CONNECT_TIME_T
_APPCONNECT = pycurl.APPCONNECT_TIME_T


def fill(
    tx: Transaction,
    easy: pycurl.Curl,
    started: float,
    secure: bool,
    upload_end: float,
    body: bool = True,
    connections: dict[int, tuple[Any, ...]] | None = None,
    header: int | None = None,
) -> None:
    """Fill ``tx`` from ``easy``'s clocks and counters (network thread, before ``close``).

    Only what the record shows is asked (a transfer's metrics are part of issue 16's 2 %
    budget on scenario b, and a ``getinfo`` costs about as much as the Python around it): a
    reused connection's lookup, connect and handshake clocks are not read (they are ``None``
    in the record), nor the bytes uploaded when the request had no ``body``, nor the TLS line
    of a transfer that is not ``secure`` (a pycurl handle's missing attribute costs a raised
    error, ~1 µs). A libcurl that refuses a value is asked value by value (:func:`_fill_each`).

    A connection's two ends never change: ``connections`` (the session's, by libcurl's
    ``CONN_ID``, unique within the share's pool) keeps them from its first transfer, so a
    transfer on a reused connection asks one value instead of five (a ``getinfo`` is ~1,300
    instructions, most of them pycurl parsing its argument): its ends, and that it made no
    connection, are known. ``header``: the response heads' bytes when the caller counted them
    itself (the transfer's head scan does: libcurl's ``HEADER_SIZE`` counts the same lines),
    else asked. Numbers are read with ``getinfo_raw`` (the same values, ~15 % cheaper a call).
    """
    get = easy.getinfo_raw
    try:
        pretransfer = get(_PRETRANSFER) * _US
        first_byte = get(_STARTTRANSFER) * _US
        # (one by one: a list made per transfer is one more object for the collector)
        if header is None:
            header = get(_HEADER_SIZE)
        request = get(_REQUEST_SIZE)
        conn = -1  # (also libcurl's answer when no connection was made)
        if connections is not None and _CONN_ID is not None:
            conn = get(_CONN_ID)
        ends = connections.get(conn) if connections is not None and conn >= 0 else None
        # A connection an earlier transfer named was not made by this one (its ids are never
        # used twice in a pool): no count to ask libcurl for.
        connects = 0 if ends is not None else get(_NUM_CONNECTS)
        if ends is None:
            text = easy.getinfo  # (the addresses as str: getinfo_raw gives bytes)
            ends = (text(_PRIMARY_IP), get(_PRIMARY_PORT), text(_LOCAL_IP), get(_LOCAL_PORT))
            if connections is not None and conn >= 0 and ends[3] > 0:
                if len(connections) >= _CONNECTIONS_NAMED:
                    connections.clear()
                connections[conn] = ends
        remote, rport, local, lport = ends
        sent = int(get(_SIZE_UPLOAD)) if body else 0
        # (a connect that failed reads a pretransfer and first-byte time too, with nothing
        # sent: no request, no response, and no connection reused)
        went = request > 0
        reused = connects == 0 and pretransfer > 0 and went
        if not reused:
            lookup = get(_NAMELOOKUP) * _US
            connect = get(_CONNECT) * _US
            tls = get(_APPCONNECT) * _US
    except pycurl.error:
        _fill_each(tx, easy, started, secure, upload_end)
        return
    f = tx.fields
    f["fetchStartDate"] = started
    f["isReusedConnection"] = reused
    if not reused and connect > 0:
        f["domainLookupStartDate"] = started
        f["domainLookupEndDate"] = f["connectStartDate"] = started + max(lookup, 0.0)
        if secure and tls > 0:
            f["secureConnectionStartDate"] = started + connect
            f["secureConnectionEndDate"] = started + tls
        f["connectEndDate"] = started + max(connect, tls)
    if pretransfer > 0 and went:
        f["requestStartDate"] = start = started + pretransfer
        f["requestEndDate"] = start if start > upload_end else upload_end
    if first_byte > 0 and header > 0:
        f["responseStartDate"] = started + first_byte
    f["countOfRequestBodyBytesSent"] = sent
    f["countOfRequestHeaderBytesSent"] = request - sent if request > sent else 0
    f["countOfResponseHeaderBytesReceived"] = header
    if remote:
        f["remoteAddress"] = remote
    if local:
        f["localAddress"] = local
    if rport > 0:
        f["remotePort"] = rport
    if lport > 0:
        f["localPort"] = lport
    if secure:
        seen = getattr(easy, "tls_seen", None)
        if seen is not None:
            f["negotiatedTLSProtocolVersion"] = _tls_version(easy, seen, tx)
    tx.filled = True


def _fill_each(
    tx: Transaction, easy: pycurl.Curl, started: float, secure: bool, upload_end: float
) -> None:
    """:func:`fill`, asking libcurl value by value (what it refuses stays unknown)."""
    lookup = _offset(easy, pycurl.NAMELOOKUP_TIME_T)
    connect = _offset(easy, pycurl.CONNECT_TIME_T)
    tls = _offset(easy, pycurl.APPCONNECT_TIME_T)
    pretransfer = _offset(easy, pycurl.PRETRANSFER_TIME_T)
    first_byte = _offset(easy, pycurl.STARTTRANSFER_TIME_T)
    connects = _get(easy, pycurl.NUM_CONNECTS)
    header = _get(easy, pycurl.HEADER_SIZE)
    request = _get(easy, pycurl.REQUEST_SIZE)
    went = not isinstance(request, int) or request > 0  # (as in fill; unknown: as it reads)
    answered = not isinstance(header, int) or header > 0
    f = tx.fields
    f["fetchStartDate"] = started
    reused = connects == 0 and pretransfer > 0 and went
    f["isReusedConnection"] = reused
    if not reused and connect > 0:
        f["domainLookupStartDate"] = started
        f["domainLookupEndDate"] = started + lookup
        f["connectStartDate"] = started + lookup
        if secure and tls > 0:
            f["secureConnectionStartDate"] = started + connect
            f["secureConnectionEndDate"] = started + tls
        f["connectEndDate"] = started + max(connect, tls)
    if pretransfer > 0 and went:
        f["requestStartDate"] = started + pretransfer
        f["requestEndDate"] = max(f["requestStartDate"], upload_end)
    if first_byte > 0 and answered:
        f["responseStartDate"] = started + first_byte
    sent = _get(easy, pycurl.SIZE_UPLOAD_T)
    body_sent = int(sent) if isinstance(sent, (int, float)) else 0
    f["countOfRequestBodyBytesSent"] = body_sent
    if isinstance(request, int):
        f["countOfRequestHeaderBytesSent"] = max(0, request - body_sent)
    if isinstance(header, int):
        f["countOfResponseHeaderBytesReceived"] = header
    for field, what in (("remoteAddress", pycurl.PRIMARY_IP), ("localAddress", pycurl.LOCAL_IP)):
        value = _get(easy, what)
        if isinstance(value, str) and value:
            f[field] = value
    for field, what in (("remotePort", pycurl.PRIMARY_PORT), ("localPort", pycurl.LOCAL_PORT)):
        value = _get(easy, what)
        if isinstance(value, int) and value > 0:
            f[field] = value
    seen = getattr(easy, "tls_seen", None)
    if seen is not None:
        f["negotiatedTLSProtocolVersion"] = _tls_version(easy, seen, tx)
    tx.filled = True
