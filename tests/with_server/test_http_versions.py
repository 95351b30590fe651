"""HTTP/2 and HTTP/3 through a session, against real servers (nginx, hypercorn + aioquic).

Only the curl engine speaks them (the urllib3 engine refuses httpVersion '2' and '3' at the
configuration, see test_engines.py); each test names its engine, so it runs in every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.peers._certs import PeerCerts
from tests.peers._content import pattern_bytes
from tests.peers.asgi import Hypercorn
from tests.peers.nginx import Nginx

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def _get(session: Any, rec: Any, url: str) -> Any:
    tid = session.dataTask(url=url, method="GET")
    return rec.completed(tid, 30)


def test_auto_negotiates_h2_by_alpn(
    nginx_peer: Nginx, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """httpVersion 'auto' over TLS takes h2 when the server offers it, and says 'h2'."""
    session = make_session(engine="curl", caBundle=str(peer_certs.ca))
    rec = recorder(session)
    done = _get(session, rec, nginx_peer.url("https", "/files/1k.bin"))
    assert done.success, done.message
    assert done.networkProtocolName == "h2"
    assert len(done.responseText) == 1024


def test_http_1_1_when_asked_over_tls(
    nginx_peer: Nginx, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """httpVersion '1.1' stays on HTTP/1.1 even where h2 is offered."""
    session = make_session(engine="curl", caBundle=str(peer_certs.ca), httpVersion="1.1")
    rec = recorder(session)
    done = _get(session, rec, nginx_peer.url("https", "/files/1k.bin"))
    assert done.success and done.networkProtocolName == "http/1.1"


def test_h2c_prior_knowledge(
    nginx_peer: Nginx, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """httpVersion '2' on http:// speaks h2c from the first byte."""
    session = make_session(engine="curl", httpVersion="2")
    rec = recorder(session)
    done = _get(session, rec, nginx_peer.url("h2c", "/files/1k.bin"))
    assert done.success, done.message
    assert done.networkProtocolName == "h2"


def test_h2_download_is_intact(
    nginx_peer: Nginx,
    peer_certs: PeerCerts,
    make_session: MakeSession,
    recorder: MakeRecorder,
    tmp_path: Any,
) -> None:
    """A 1 MiB download over h2 reaches its file byte for byte."""
    session = make_session(engine="curl", caBundle=str(peer_certs.ca))
    rec = recorder(session)
    tid = session.downloadTask(url=nginx_peer.url("https", "/files/1m.bin"))
    done = rec.completed(tid, 30)
    assert done.success, done.message
    [finished] = rec.of(tid, "downloadcompleted")
    assert finished.data.read() == pattern_bytes(1 << 20)
    assert done.networkProtocolName == "h2"


def test_many_h2_tasks_share_one_connection(
    nginx_peer: Nginx, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Twenty tasks to one h2 host all succeed (streams on shared connections)."""
    # Every task on the wire: a file the session-wide nginx made minutes ago is heuristically
    # fresh, so the cache would answer the tasks that start after the first ones end.
    session = make_session(
        engine="curl",
        caBundle=str(peer_certs.ca),
        requestCachePolicy="reloadIgnoringLocalCacheData",
    )
    rec = recorder(session)
    url = nginx_peer.url("https", "/files/64k.bin")
    ids = [session.dataTask(url=url, method="GET") for _ in range(20)]
    ends = [rec.completed(tid, 30) for tid in ids]
    assert all(done.success for done in ends), [done.message for done in ends]
    protocols = [done.networkProtocolName for done in ends]
    assert protocols == ["h2"] * 20, protocols


def test_http3_over_quic(
    h3_peer: Hypercorn, peer_certs: PeerCerts, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """httpVersion '3' speaks HTTP/3 over QUIC and says 'h3'; a download is intact."""
    session = make_session(engine="curl", caBundle=str(peer_certs.ca), httpVersion="3")
    rec = recorder(session)
    tid = session.downloadTask(url=h3_peer.url("/bytes/300000"))
    done = rec.completed(tid, 30)
    assert done.success, done.message
    assert done.networkProtocolName == "h3"
    [finished] = rec.of(tid, "downloadcompleted")
    assert finished.data.read() == pattern_bytes(300000)


@pytest.mark.parametrize("engine", ["curl", "urllib3"])
def test_tls_h1_and_h2_agree_on_a_post(
    engine: str,
    nginx_peer: Nginx,
    peer_certs: PeerCerts,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """A redirect by 302 from nginx is followed on either engine, whatever protocol."""
    session = make_session(engine=engine, caBundle=str(peer_certs.ca))
    rec = recorder(session)
    done = _get(session, rec, nginx_peer.url("https", "/redirect/302"))
    assert done.success and done.statusCode == 200
    assert done.networkProtocolName == ("h2" if engine == "curl" else "http/1.1")


def test_an_http_1_1_task_never_waits_for_anothers_connection(
    server: Any, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Two tasks to one http:// host at once from a new session, the first answered 0.5 s
    late: the second gets a connection of its own and ends first. (libcurl's PIPEWAIT, set for an HTTP/1.1 request,
    kept the second waiting for the first's connection to be free in some of the pairs: a
    paced download started seconds late.)"""
    for i in range(12):  # (a fresh session each: the race is with the first connection made)
        session = make_session(engine="curl")
        rec = recorder(session)
        slow = session.dataTask(url=server.url(f"/slow?delay=0.5&pair={i}"), method="GET")
        quick = session.dataTask(url=server.url(f"/bytes/100?pair={i}"), method="GET")
        done_quick, done_slow = rec.completed(quick, 10), rec.completed(slow, 10)
        assert done_quick.success and done_slow.success
        first_quick = done_quick.metrics["transactionMetrics"][0]
        assert (
            first_quick["responseEndDate"]
            < done_slow.metrics["transactionMetrics"][0]["responseStartDate"]
        ), f"pair {i}: the quick task waited for the slow one"


def _heads_counted_as_libcurl_does(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Spy on the curl transfers' metrics: (the heads' bytes the transfer counted itself,
    libcurl's ``HEADER_SIZE``) for each transfer whose head came."""
    import pycurl

    from urlsession_module._transport._curl import _easy

    seen: list[tuple[int, int]] = []
    real = _easy.fill_metrics

    def fill(tx: Any, easy: Any, *args: Any) -> None:
        header = args[-1]
        if header is not None:
            seen.append((header, easy.getinfo(pycurl.HEADER_SIZE)))
        real(tx, easy, *args)

    monkeypatch.setattr(_easy, "fill_metrics", fill)
    return seen


@pytest.mark.parametrize("where", ["http/1.1", "h2", "h2c"])
def test_curl_counts_the_heads_bytes_as_libcurl_does(
    where: str,
    nginx_peer: Nginx,
    peer_certs: PeerCerts,
    make_session: MakeSession,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """countOfResponseHeaderBytesReceived on the curl engine is the transfer's own count of
    the head's lines (one ``getinfo`` fewer a task): libcurl's count, on each version."""
    seen = _heads_counted_as_libcurl_does(monkeypatch)
    options: dict[str, Any] = {
        "engine": "curl",
        "caBundle": str(peer_certs.ca),
        "requestCachePolicy": "reloadIgnoringLocalCacheData",  # (both to the server)
    }
    scheme = "https"
    if where == "http/1.1":
        options["httpVersion"] = "1.1"
    elif where == "h2c":
        options["httpVersion"], scheme = "2", "h2c"
    session = make_session(**options)
    rec = recorder(session)
    for _ in range(2):  # a new connection, then a reused one
        done = _get(session, rec, nginx_peer.url(scheme, "/files/1k.bin"))
        assert done.success, done.message
        assert done.networkProtocolName == ("http/1.1" if where == "http/1.1" else "h2")
        counted = done.metrics["transactionMetrics"][-1]["countOfResponseHeaderBytesReceived"]
        assert counted == seen[-1][0] > 20
    assert len(seen) >= 2 and all(ours == libcurls for ours, libcurls in seen), seen


def test_curl_counts_interim_heads_as_libcurl_does(
    make_session: MakeSession, recorder: MakeRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interim 100 before the final head counts too, as libcurl counts it."""
    from urlsession_module.testing import LocalServer

    seen = _heads_counted_as_libcurl_does(monkeypatch)
    with LocalServer() as server:
        session = make_session(engine="curl")
        rec = recorder(session)
        done = _get(session, rec, server.url("/status/100"))
        assert done.success and done.statusCode == 200, done.message
    assert len(seen) == 1 and seen[0][0] == seen[0][1], seen
    assert seen[0][0] > len("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")


def test_curl_counts_an_h3_head_as_libcurl_does(
    h3_peer: Hypercorn,
    peer_certs: PeerCerts,
    make_session: MakeSession,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _heads_counted_as_libcurl_does(monkeypatch)
    session = make_session(engine="curl", caBundle=str(peer_certs.ca), httpVersion="3")
    rec = recorder(session)
    done = _get(session, rec, h3_peer.url("/bytes/1000"))
    assert done.success and done.networkProtocolName == "h3", done.message
    assert len(seen) == 1 and seen[0][0] == seen[0][1], seen
