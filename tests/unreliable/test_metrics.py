"""Task metrics (Apple's URLSessionTaskMetrics) on both engines, against the local servers."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from tests.with_server._util import closed_port
from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
ENGINES = pytest.mark.parametrize("eng", ["curl", "urllib3"])

FIELDS = {
    "fetchStartDate",
    "domainLookupStartDate",
    "domainLookupEndDate",
    "connectStartDate",
    "secureConnectionStartDate",
    "secureConnectionEndDate",
    "connectEndDate",
    "requestStartDate",
    "requestEndDate",
    "responseStartDate",
    "responseEndDate",
    "networkProtocolName",
    "isReusedConnection",
    "isProxyConnection",
    "resourceFetchType",
    "countOfRequestHeaderBytesSent",
    "countOfRequestBodyBytesSent",
    "countOfResponseHeaderBytesReceived",
    "countOfResponseBodyBytesReceived",
    "remoteAddress",
    "remotePort",
    "localAddress",
    "localPort",
    "negotiatedTLSProtocolVersion",
}


def _ordered(tx: dict[str, Any]) -> None:
    """The phases of a network load come in order, each where it happened."""
    dates = [
        tx[k]
        for k in (
            "fetchStartDate",
            "connectStartDate",
            "connectEndDate",
            "requestStartDate",
            "responseStartDate",
            "responseEndDate",
        )
        if tx[k] is not None
    ]
    assert dates == sorted(dates), tx


@ENGINES
def test_metrics_of_a_fresh_then_a_reused_connection(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """sessioncompleted and Task.metrics carry one transaction with every phase on a new
    connection; the next task on the same connection has no lookup/connect dates."""
    session = make_session(engine=eng, httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    first = session.dataTask(url=server.url("/bytes/5000"), method="GET")
    done = rec.completed(first)
    assert done.success, done.message
    m = done.metrics
    json.dumps(m)  # plain data
    assert m["redirectCount"] == 0
    assert m["taskInterval"]["duration"] > 0
    (tx,) = m["transactionMetrics"]
    assert set(tx) == FIELDS
    assert tx["resourceFetchType"] == "networkLoad"
    assert tx["networkProtocolName"] == "http/1.1"
    assert tx["connectStartDate"] is not None and tx["connectEndDate"] is not None
    assert tx["secureConnectionStartDate"] is None  # plain HTTP: no handshake
    assert tx["isReusedConnection"] is False
    assert tx["isProxyConnection"] is False
    assert tx["countOfResponseBodyBytesReceived"] == 5000
    assert tx["countOfResponseHeaderBytesReceived"] > 20
    assert tx["countOfRequestHeaderBytesSent"] > 20
    assert tx["remoteAddress"] == "127.0.0.1" and tx["remotePort"] == server.port
    assert tx["localAddress"] == "127.0.0.1" and tx["localPort"] > 0
    _ordered(tx)
    assert m["taskInterval"]["start"] <= tx["fetchStartDate"]
    task = session.getTask(first) if hasattr(session, "getTask") else None
    if task is not None:
        assert task.metrics == m

    second = session.dataTask(url=server.url("/bytes/10"), method="GET")
    done2 = rec.completed(second)
    (tx2,) = done2.metrics["transactionMetrics"]
    assert tx2["isReusedConnection"] is True
    assert tx2["connectStartDate"] is None and tx2["domainLookupStartDate"] is None
    assert tx2["localPort"] == tx["localPort"]  # the same connection
    _ordered(tx2)


@ENGINES
def test_one_transaction_per_redirect_hop(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Two redirects then the answer: three transactions, redirectCount 2."""
    session = make_session(engine=eng)
    rec = recorder(session)
    done = rec.completed(session.dataTask(url=server.url("/redirect/2")))
    assert done.success, done.message
    m = done.metrics
    assert m["redirectCount"] == 2
    assert len(m["transactionMetrics"]) == 3
    for tx in m["transactionMetrics"]:
        assert tx["resourceFetchType"] == "networkLoad"
        assert tx["responseEndDate"] is not None
        _ordered(tx)
    starts = [tx["fetchStartDate"] for tx in m["transactionMetrics"]]
    assert starts == sorted(starts)


@ENGINES
def test_upload_counts_the_body_sent(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    session = make_session(engine=eng)
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/upload"), method="PUT", data="x" * 70000)
    done = rec.completed(tid)
    assert done.success, done.message
    (tx,) = done.metrics["transactionMetrics"]
    assert tx["countOfRequestBodyBytesSent"] == 70000
    assert tx["requestEndDate"] >= tx["requestStartDate"]


@ENGINES
def test_tls_phases_and_version(
    eng: str, tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Over TLS the handshake has its dates, between connect start and connect end."""
    session = make_session(engine=eng, tlsVerify=False, httpVersion="1.1")
    rec = recorder(session)
    done = rec.completed(session.dataTask(url=tls_server.url("/bytes/100"), method="GET"))
    assert done.success, done.message
    (tx,) = done.metrics["transactionMetrics"]
    assert tx["secureConnectionStartDate"] is not None
    assert tx["connectStartDate"] <= tx["secureConnectionStartDate"]
    assert tx["secureConnectionStartDate"] <= tx["secureConnectionEndDate"]
    assert tx["secureConnectionEndDate"] <= tx["connectEndDate"] + 1e-3
    assert tx["negotiatedTLSProtocolVersion"] in ("TLSv1.2", "TLSv1.3")


@ENGINES
@pytest.mark.parametrize("cap", [None, "TLSv1.2"], ids=["best", "capped"])
def test_tls_version_on_new_and_reused_connections(
    eng: str, cap: str | None, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """negotiatedTLSProtocolVersion says what the handshake agreed, in the urllib3 engine's
    words (ssl's 'TLSv1.3'), on both engines: TLS 1.2 from a server that speaks no more, and
    for a task that reuses the connection (no handshake of its own) its connection's."""
    srv = LocalServer(tls=True).start()
    try:
        if cap is not None:
            assert srv._ssl_context is not None
            srv._ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        session = make_session(engine=eng, tlsVerify=False, httpVersion="1.1")
        rec = recorder(session)
        first = rec.completed(session.dataTask(url=srv.url("/bytes/100"), method="GET"))
        second = rec.completed(session.dataTask(url=srv.url("/bytes/200"), method="GET"))
    finally:
        srv.stop()
    (tx1,) = first.metrics["transactionMetrics"]
    (tx2,) = second.metrics["transactionMetrics"]
    assert tx1["isReusedConnection"] is False and tx2["isReusedConnection"] is True
    assert tx2["localPort"] == tx1["localPort"]
    want = cap or "TLSv1.3"
    assert tx1["negotiatedTLSProtocolVersion"] == want
    assert tx2["negotiatedTLSProtocolVersion"] == want


@ENGINES
def test_failed_task_has_metrics_too(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A task that fails mid-body still reports what it did."""
    session = make_session(engine=eng, timeoutIntervalForRequest=1)
    rec = recorder(session)
    done = rec.completed(session.dataTask(url=server.url("/drop?length=5000&after=1000")))
    assert not done.success
    m = done.metrics
    assert len(m["transactionMetrics"]) == 1
    assert m["transactionMetrics"][0]["fetchStartDate"] >= m["taskInterval"]["start"]


@ENGINES
def test_a_refused_connection_sent_no_request_and_reused_nothing(
    eng: str, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Attempts refused by a port nobody listens on (waiting for connectivity until the
    resource timeout): each is a transaction, and none of them sent a request, got a response
    or reused a connection (libcurl reads a request time even so; http.client had counted the
    request's head before connecting)."""
    port = closed_port()
    session = make_session(engine=eng, waitsForConnectivity=True, timeoutIntervalForResource=1.5)
    rec = recorder(session)
    done = rec.completed(session.dataTask(url=f"http://127.0.0.1:{port}/x", method="GET"))
    assert done.errorCode == -1001
    txs = done.metrics["transactionMetrics"]
    assert len(txs) >= 2
    for tx in txs:
        assert tx["fetchStartDate"] is not None
        assert (tx["requestStartDate"], tx["requestEndDate"]) == (None, None), tx
        assert (tx["responseStartDate"], tx["connectEndDate"]) == (None, None), tx
        assert tx["isReusedConnection"] is False
        assert tx["countOfRequestHeaderBytesSent"] == 0
        assert tx["countOfResponseHeaderBytesReceived"] == 0


@ENGINES
def test_a_cache_answer_is_a_local_cache_load(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A fresh cached response: one transaction, resourceFetchType 'localCache', no network."""
    session = make_session(engine=eng)
    rec = recorder(session)
    url = server.url(f"/cache?m=metrics-{eng}&max_age=600")
    first = rec.completed(session.dataTask(url=url, method="GET"))
    assert first.metrics["transactionMetrics"][0]["resourceFetchType"] == "networkLoad"
    second = rec.completed(session.dataTask(url=url, method="GET"))
    assert second.success, second.message
    (tx,) = second.metrics["transactionMetrics"]
    assert tx["resourceFetchType"] == "localCache"
    assert tx["connectStartDate"] is None and tx["requestStartDate"] is None
    assert tx["remoteAddress"] is None


@ENGINES
def test_a_401_answered_is_two_transactions(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The 401 and the request sent again with the credential: two transactions."""
    session = make_session(engine=eng)
    rec = recorder(session)
    url = server.url("/auth/basic?user=u&password=p").replace("://", "://u:p@")
    done = rec.completed(session.dataTask(url=url, method="GET"))
    assert done.success and done.statusCode == 200, done.message
    txs = done.metrics["transactionMetrics"]
    assert len(txs) == 2
    assert done.metrics["redirectCount"] == 0


def test_head_size_counts_each_line_whatever_the_headers_form() -> None:
    """The head's bytes are the same from urllib3's HTTPHeaderDict (read through its lists),
    its items() view, or plain pairs: a line per value, repeated names included."""
    import urllib3

    from urlsession_module._transport._metrics import head_size

    pairs = [("Server", "nginx"), ("Set-Cookie", "a=1"), ("set-cookie", "b=22")]
    d = urllib3.HTTPHeaderDict(pairs)
    want = 10 + 4 + sum(len(k) + len(v) + 4 for k, v in pairs)
    assert head_size(10, d) == head_size(10, d.items()) == head_size(10, pairs) == want


def test_curl_fill_in_one_go_matches_value_by_value(server: LocalServer) -> None:
    """The curl engine's one-go reading of libcurl's clocks and counters gives what asking
    value by value (the fallback) gives."""
    import io

    import pycurl

    from urlsession_module._transport._curl import _metrics as cm
    from urlsession_module._transport._metrics import Transaction

    easy = pycurl.Curl()
    try:
        easy.setopt(pycurl.URL, server.url("/bytes/2000"))
        easy.setopt(pycurl.WRITEDATA, io.BytesIO())
        easy.perform()
        one, each = Transaction(1.0), Transaction(1.0)
        cm.fill(one, easy, 1000.0, False, 0.0)
        cm._fill_each(each, easy, 1000.0, False, 0.0)
    finally:
        easy.close()
    assert one.fields == each.fields
    assert (
        one.fields["remotePort"] == server.port
        and one.fields["countOfResponseHeaderBytesReceived"] > 0
    )


def test_curl_fill_on_a_reused_connection_matches_value_by_value(server: LocalServer) -> None:
    """On a reused connection the one-go reading skips the connect clocks (and, with no
    request body, the upload count): the record is still what asking value by value gives,
    with no lookup, connect or handshake dates."""
    import io

    import pycurl

    from urlsession_module._transport._curl import _metrics as cm
    from urlsession_module._transport._metrics import Transaction

    easy = pycurl.Curl()
    try:
        easy.setopt(pycurl.URL, server.url("/bytes/2000"))
        easy.setopt(pycurl.WRITEDATA, io.BytesIO())
        easy.perform()
        easy.perform()  # the same connection again
        assert easy.getinfo(pycurl.NUM_CONNECTS) == 0
        one, each = Transaction(1.0), Transaction(1.0)
        cm.fill(one, easy, 1000.0, False, 0.0, body=False)
        cm._fill_each(each, easy, 1000.0, False, 0.0)
    finally:
        easy.close()
    assert one.fields == each.fields
    assert one.fields["isReusedConnection"] is True
    assert one.fields["connectStartDate"] is None and one.fields["domainLookupStartDate"] is None
    assert (
        one.fields["requestStartDate"] is not None
        and one.fields["countOfRequestBodyBytesSent"] == 0
    )


def test_curl_fill_knows_a_reused_connection_by_its_id(server: LocalServer) -> None:
    """With the session's ``connections`` (by libcurl's connection id), a transfer on a
    connection an earlier transfer named is read as reused without asking libcurl for its
    count of new connections: the record is still what asking value by value gives, and the
    first transfer's (which made the connection) is not reused."""
    import io

    import pycurl

    from urlsession_module._transport._curl import _metrics as cm
    from urlsession_module._transport._metrics import Transaction

    if cm._CONN_ID is None:
        pytest.skip("libcurl before 8.2 has no connection id")
    connections: dict[int, tuple[object, ...]] = {}
    easy = pycurl.Curl()
    try:
        easy.setopt(pycurl.URL, server.url("/bytes/2000"))
        easy.setopt(pycurl.WRITEDATA, io.BytesIO())
        easy.perform()
        first = Transaction(1.0)
        cm.fill(first, easy, 1000.0, False, 0.0, False, connections)
        easy.perform()  # the same connection again
        one, each = Transaction(1.0), Transaction(1.0)
        cm.fill(one, easy, 1000.0, False, 0.0, False, connections)
        cm._fill_each(each, easy, 1000.0, False, 0.0)
    finally:
        easy.close()
    assert first.fields["isReusedConnection"] is False
    assert first.fields["connectStartDate"] is not None
    assert len(connections) == 1
    assert one.fields == each.fields
    assert one.fields["isReusedConnection"] is True
    assert one.fields["localPort"] == first.fields["localPort"]


def test_curl_response_fields_are_urllib3s() -> None:
    """The curl response sets urllib3's fields itself (cheaper than urllib3's ``__init__``)
    only because they came out identical for the installed urllib3, name for name."""
    from urlsession_module._transport._curl import _response

    assert _response._same_as_urllib3()
    assert _response._FAST_INIT


@ENGINES
def test_kept_transaction_records_are_not_tracked_by_the_collector(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A finished task's transactions and interval (kept for getTask) are plain dicts of atoms
    the cyclic garbage collector does not track, through a redirect and over a reused
    connection alike."""
    import gc

    session = make_session(engine=eng, httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    for url in (server.url("/bytes/100"), server.url("/redirect/1")):
        done = rec.completed(session.dataTask(url=url, method="GET"))
        assert done.success, done.message
        m = done.metrics
        assert m["transactionMetrics"]
        for tx in m["transactionMetrics"]:
            assert set(tx) == FIELDS
            assert not gc.is_tracked(tx), tx
        assert not gc.is_tracked(m["taskInterval"])
