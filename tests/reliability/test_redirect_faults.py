"""Hostile redirects: loops across origins, other schemes, bad Locations, https → http."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from urlsession_module import ErrorCode
from urlsession_module.testing import FaultServer, LocalServer

from ._checks import check_end
from .conftest import MakeRecorder, MakeSession

E = ErrorCode
CREDENTIALS = {
    "Authorization": "Bearer top-secret",
    "Cookie": "sid=42",
    "Proxy-Authorization": "Basic cHJveHk6cHc=",
}


@pytest.fixture(scope="module")
def other_faults() -> Iterator[FaultServer]:
    """A second fault server: another port, so another origin."""
    with FaultServer() as srv:
        yield srv


@pytest.mark.parametrize("kind", ["data", "download"])
def test_cross_origin_ping_pong_loop_reports_minus_1007(
    faults: FaultServer,
    other_faults: FaultServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    kind: str,
) -> None:
    """Two origins redirecting to each other: -1007 after 20 redirects (21 requests in all)."""
    session = make_session()
    rec = recorder(session)
    first, second = len(faults.requests), len(other_faults.requests)
    url = faults.url("ping-pong", peer=other_faults.base_url)
    tid = (
        session.downloadTask(url=url, requestHeaders=CREDENTIALS)
        if kind == "download"
        else session.dataTask(url=url, method="GET", requestHeaders=CREDENTIALS)
    )
    check_end(rec, session, tid, E.HTTP_TOO_MANY_REDIRECTS, status=0)
    hops = faults.requests[first:] + other_faults.requests[second:]
    assert (len(faults.requests) - first, len(other_faults.requests) - second) == (11, 10)
    with_credentials = [r for r in hops if set(r.headers) & {"authorization", "cookie"}]
    assert with_credentials == [hops[0]]  # only the first request, on the first origin


def test_307_self_loop_resends_the_body_each_time_then_fails(
    faults: FaultServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A 307 loop keeps method and body on every hop, then fails with -1007."""
    session = make_session()
    rec = recorder(session)
    before = len(faults.requests)
    tid = session.dataTask(url=faults.url("redirect", code=307), method="PUT", data=b"x" * 1000)
    check_end(rec, session, tid, E.HTTP_TOO_MANY_REDIRECTS, status=0)
    hops = faults.requests[before:]
    assert [(r.method, r.body_length) for r in hops] == [("PUT", 1000)] * 21


@pytest.mark.parametrize(
    "location",
    [
        "file:///etc/passwd",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "gopher://127.0.0.1/1",
        "ws://127.0.0.1/socket",
    ],
)
@pytest.mark.parametrize("kind", ["data", "download"])
def test_redirect_to_another_scheme_reports_minus_1002(
    faults: FaultServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    location: str,
    kind: str,
) -> None:
    """A redirect to a scheme URLSession does not fetch fails with -1002, nothing fetched."""
    session = make_session()
    rec = recorder(session)
    url = faults.url("redirect", to=location)
    tid = session.downloadTask(url=url) if kind == "download" else session.dataTask(url=url)
    done = check_end(rec, session, tid, E.UNSUPPORTED_URL, status=0)
    assert location in done.message


@pytest.mark.parametrize(
    "location", ["http://[::1", "http://127.0.0.1:99999/"], ids=["bad-ipv6", "bad-port"]
)
def test_redirect_to_an_unparsable_location_reports_minus_1000(
    faults: FaultServer, make_session: MakeSession, recorder: MakeRecorder, location: str
) -> None:
    """A Location that is not a URL fails with -1000 (bad URL), not an unknown error."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=faults.url("redirect", to=location))
    check_end(rec, session, tid, E.BAD_URL, status=0)


def test_redirect_to_a_closed_port_reports_minus_1004(
    faults: FaultServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A redirect to where nothing listens fails with -1004, like a first request would."""
    from tests.with_server._util import closed_port

    session = make_session()
    rec = recorder(session)
    target = f"http://127.0.0.1:{closed_port()}/gone"
    tid = session.downloadTask(url=faults.url("redirect", to=target))
    check_end(rec, session, tid, E.CANNOT_CONNECT_TO_HOST, status=0)


def test_https_to_http_downgrade_is_followed_without_credentials(
    server: LocalServer,
    tls_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """https → http is followed (as Foundation does) but no credential goes along."""
    session = make_session(
        caBundle=tls_server.ca_bundle, HTTPHeaderFields={"Authorization": "Bearer from-config"}
    )
    rec = recorder(session)
    target = f"http://localhost:{server.port}/echo"
    tid = session.dataTask(
        url=tls_server.url(f"/redirect-to?url={quote(target)}&code=302"),
        method="GET",
        requestHeaders={"Cookie": CREDENTIALS["Cookie"], "X-Plain": "kept"},
    )
    done = check_end(rec, session, tid, E.OK, status=200)
    echo = json.loads(done.responseText)
    for name in CREDENTIALS:
        assert name.lower() not in echo["headers"], name
    assert echo["headers"]["x-plain"] == "kept"
    assert echo["headers"]["host"] == f"localhost:{server.port}"
    assert done.source.currentRequest.url == target


def test_redirect_to_an_untrusted_https_origin_is_verified(
    server: LocalServer,
    tls_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """http → https with an untrusted certificate fails with -1202: redirects are verified too."""
    session = make_session()  # the test CA is not trusted
    rec = recorder(session)
    target = tls_server.url("/bytes/1000")
    tid = session.downloadTask(url=server.url(f"/redirect-to?url={quote(target)}&code=301"))
    check_end(rec, session, tid, E.SERVER_CERTIFICATE_UNTRUSTED, status=0)
