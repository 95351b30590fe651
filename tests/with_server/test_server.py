"""Tests of the shipped local test server (urlsession_module.testing), urllib3 as the client."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError, SSLError

from urlsession_module.testing import (
    LocalServer,
    RequestRecord,
    content_bytes,
    content_sha256,
    iter_content,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
N = 300_000  # crosses no pattern boundary: ranges below pick offsets that do
BIG = (1 << 20) + 12_345  # crosses the 1 MiB pattern boundary


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def tls_server() -> Iterator[LocalServer]:
    with LocalServer(tls=True) as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(10)) as pm:
        yield pm


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def jget(resp: urllib3.BaseHTTPResponse) -> Any:
    return json.loads(resp.data.decode("utf-8"))


# --------------------------------------------------------------------------- content


def test_content_is_deterministic_and_position_based() -> None:
    """Content depends only on the absolute position, also across the pattern boundary."""
    whole = content_bytes(BIG)
    assert len(whole) == BIG
    assert content_bytes(1000, (1 << 20) - 500) == whole[(1 << 20) - 500 : (1 << 20) + 500]
    assert content_bytes(100, 5 << 20) == whole[:100]  # period is the 1 MiB pattern
    assert b"".join(iter_content(BIG, chunk=77_777)) == whole
    assert b"".join(iter_content(BIG - 10, offset=10, chunk=3 << 20)) == whole[10:]
    assert len(set(whole[:4096])) > 200  # pseudo-random, not one repeated byte
    assert content_sha256(BIG) == sha(whole)
    assert content_sha256(0) == sha(b"")


def test_content_rejects_negative_sizes() -> None:
    """Negative sizes are caller bugs and must not silently yield nothing."""
    with pytest.raises(ValueError):
        content_bytes(-1)
    with pytest.raises(ValueError):
        content_bytes(1, -1)


# --------------------------------------------------------------------------- /bytes


def test_bytes_full_body_and_headers(server: LocalServer, http: urllib3.PoolManager) -> None:
    """GET /bytes/<n> serves the deterministic content with validators and range support."""
    r = http.request("GET", server.url(f"/bytes/{BIG}"))
    assert r.status == 200
    assert r.data == content_bytes(BIG)
    assert r.headers["Content-Length"] == str(BIG)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"] == f'"bytes-{BIG}"'
    assert r.headers["Last-Modified"] == "Wed, 21 Oct 2015 07:28:00 GMT"


def test_bytes_head_has_length_but_no_body(server: LocalServer, http: urllib3.PoolManager) -> None:
    """HEAD gives the GET headers without a body."""
    r = http.request("HEAD", server.url(f"/bytes/{N}"))
    assert r.status == 200
    assert r.headers["Content-Length"] == str(N)
    assert r.data == b""


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=10-19", 10, 20),
        (f"bytes={N - 100}-", N - 100, N),
        ("bytes=-50", N - 50, N),
        ("bytes=-999999999", 0, N),
        ("bytes=5-999999999", 5, N),
        (f"bytes={N - 1}-{N - 1}", N - 1, N),
    ],
)
def test_bytes_range(
    server: LocalServer, http: urllib3.PoolManager, spec: str, start: int, end: int
) -> None:
    """Single byte ranges answer 206 with the right slice and Content-Range."""
    r = http.request("GET", server.url(f"/bytes/{N}"), headers={"Range": spec})
    assert r.status == 206
    assert r.headers["Content-Range"] == f"bytes {start}-{end - 1}/{N}"
    assert r.headers["Content-Length"] == str(end - start)
    assert r.data == content_bytes(end - start, start)


@pytest.mark.parametrize("spec", [f"bytes={N}-", f"bytes={N + 5}-{N + 10}", "bytes=-0"])
def test_bytes_range_unsatisfiable(
    server: LocalServer, http: urllib3.PoolManager, spec: str
) -> None:
    """Ranges past the end answer 416 with ``bytes */<n>``."""
    r = http.request("GET", server.url(f"/bytes/{N}"), headers={"Range": spec})
    assert r.status == 416
    assert r.headers["Content-Range"] == f"bytes */{N}"


def test_bytes_malformed_range_is_ignored(server: LocalServer, http: urllib3.PoolManager) -> None:
    """Unparsable or multi-ranges are ignored (full 200), as RFC 9110 allows."""
    for spec in ("bytes=abc", "bytes=0-1,5-6", "items=0-1", "bytes=9-3"):
        r = http.request("GET", server.url("/bytes/1000"), headers={"Range": spec})
        assert r.status == 200, spec
        assert r.data == content_bytes(1000)


def test_bytes_if_range(server: LocalServer, http: urllib3.PoolManager) -> None:
    """If-Range with a matching ETag/date resumes (206); a changed validator gets a full 200."""
    url = server.url(f"/bytes/{N}")
    cases = [
        (url, f'"bytes-{N}"', 206),
        (url, "Wed, 21 Oct 2015 07:28:00 GMT", 206),
        (url, '"stale"', 200),
        (url, f'W/"bytes-{N}"', 200),  # weak validators never match If-Range
        (url, "Thu, 22 Oct 2015 07:28:00 GMT", 200),
        (url + "?etag=v2", f'"bytes-{N}"', 200),  # the "file" changed on the server
        (url + "?etag=v2", '"v2"', 206),
    ]
    for target, validator, status in cases:
        r = http.request("GET", target, headers={"Range": "bytes=100-", "If-Range": validator})
        assert r.status == status, (target, validator)
        if status == 206:
            assert r.data == content_bytes(N - 100, 100)
        else:
            assert r.data == content_bytes(N)


def test_bytes_etag_override_and_conditional_get(
    server: LocalServer, http: urllib3.PoolManager
) -> None:
    """``?etag=`` replaces the ETag; If-None-Match with it answers 304."""
    r = http.request("GET", server.url("/bytes/10?etag=abc"))
    assert r.headers["ETag"] == '"abc"'
    r = http.request("GET", server.url("/bytes/10?etag=abc"), headers={"If-None-Match": '"abc"'})
    assert r.status == 304
    assert r.data == b""


def test_bytes_norange(server: LocalServer, http: urllib3.PoolManager) -> None:
    """``norange=1`` ignores Range and does not advertise Accept-Ranges."""
    r = http.request("GET", server.url(f"/bytes/{N}?norange=1"), headers={"Range": "bytes=0-9"})
    assert r.status == 200
    assert "Accept-Ranges" not in r.headers
    assert r.data == content_bytes(N)


def test_bytes_chunked(server: LocalServer, http: urllib3.PoolManager) -> None:
    """``chunked=1`` uses Transfer-Encoding: chunked without Content-Length."""
    r = http.request("GET", server.url(f"/bytes/{BIG}?chunked=1&chunk=65536"))
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in r.headers
    assert r.data == content_bytes(BIG)


def test_bytes_nolength_closes(server: LocalServer, http: urllib3.PoolManager) -> None:
    """``nolength=1`` delimits the body by closing the connection."""
    r = http.request("GET", server.url(f"/bytes/{N}?nolength=1"))
    assert "Content-Length" not in r.headers
    assert r.headers["Connection"] == "close"
    assert r.data == content_bytes(N)


@pytest.mark.parametrize("kind", ["gzip", "deflate"])
def test_bytes_compressed(server: LocalServer, http: urllib3.PoolManager, kind: str) -> None:
    """gzip/deflate bodies carry Content-Encoding and decode to the content."""
    r = http.request("GET", server.url(f"/bytes/{N}?{kind}=1"), decode_content=False)
    assert r.headers["Content-Encoding"] == kind
    assert r.headers["Content-Length"] == str(len(r.data))
    raw = gzip.decompress(r.data) if kind == "gzip" else zlib.decompress(r.data)
    assert raw == content_bytes(N)
    r = http.request("GET", server.url(f"/bytes/{N}?{kind}=1"))  # urllib3 decodes
    assert r.data == content_bytes(N)


def test_bytes_status_type_and_retry_after(server: LocalServer, http: urllib3.PoolManager) -> None:
    """``status``, ``type`` and ``retry_after`` shape an error-like response."""
    r = http.request("GET", server.url("/bytes/10?status=503&retry_after=7&type=text/x-test"))
    assert r.status == 503
    assert r.headers["Retry-After"] == "7"
    assert r.headers["Content-Type"] == "text/x-test"
    assert r.data == content_bytes(10)


def test_bytes_rate_limit(server: LocalServer, http: urllib3.PoolManager) -> None:
    """``rate`` throttles the body (64 KiB at 256 KiB/s takes about 0.25 s)."""
    t0 = time.monotonic()
    r = http.request("GET", server.url("/bytes/65536?rate=262144"))
    elapsed = time.monotonic() - t0
    assert r.data == content_bytes(65536)
    assert 0.15 < elapsed < 5


def test_bytes_bad_size(server: LocalServer, http: urllib3.PoolManager) -> None:
    """A non-numeric size is a 400, an unknown path a 404."""
    assert http.request("GET", server.url("/bytes/abc")).status == 400
    r = http.request("GET", server.url("/nope"))
    assert r.status == 404
    assert r.data.startswith(b"not found")


# --------------------------------------------------------------------------- echo/upload


def test_echo_reflects_request(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/echo reports method, path, query, headers (both forms) and the body digest."""
    body = "héllo wörld".encode()
    r = http.request(
        "PATCH",
        server.url("/echo/sub/path?a=1&a=2&b="),
        body=body,
        headers={"X-Custom": "One", "Content-Type": "text/plain"},
    )
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    echo = jget(r)
    assert echo["method"] == "PATCH"
    assert echo["path"] == "/echo/sub/path"
    assert echo["query"] == {"a": ["1", "2"], "b": [""]}
    assert echo["headers"]["x-custom"] == "One"
    assert ["X-Custom", "One"] in echo["header_list"]
    assert echo["body_length"] == len(body)
    assert echo["body_sha256"] == sha(body)
    assert echo["body_text"] == "héllo wörld"


def test_echo_custom_method_and_repeated_headers(server: LocalServer) -> None:
    """Custom methods work and repeated headers are joined with ', ' (order kept in list)."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"PURGE /echo HTTP/1.1\r\nHost: x\r\nX-Rep: a\r\nx-rep: b\r\n"
            b"Content-Length: 3\r\nConnection: close\r\n\r\nabc"
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    echo = json.loads(payload)
    assert echo["method"] == "PURGE"
    assert echo["headers"]["x-rep"] == "a, b"
    assert [h for h in echo["header_list"] if h[0].lower() == "x-rep"] == [
        ["X-Rep", "a"],
        ["x-rep", "b"],
    ]
    assert echo["body_text"] == "abc"


def test_echo_chunked_request_body(server: LocalServer, http: urllib3.PoolManager) -> None:
    """Chunked request bodies are decoded by the server."""
    parts = [b"a" * 1000, b"b" * 70_000, b"c"]
    r = http.request("POST", server.url("/echo"), body=iter(parts), chunked=True)
    echo = jget(r)
    assert echo["headers"]["transfer-encoding"] == "chunked"
    assert echo["body_length"] == 71_001
    assert echo["body_sha256"] == sha(b"".join(parts))
    assert echo["body_text"] is None  # > 64 KiB


def test_upload_32_mib_digest(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/upload streams a 32 MiB body and reports its size and sha256."""
    size = 32 << 20
    r = http.request(
        "PUT",
        server.url("/upload"),
        body=iter_content(size, chunk=1 << 20),
        headers={"Content-Length": str(size), "Content-Type": "application/x-test"},
    )
    assert jget(r) == {
        "method": "PUT",
        "body_length": size,
        "body_sha256": content_sha256(size),
        "content_type": "application/x-test",
    }


def test_keep_alive_reuses_connection(server: LocalServer) -> None:
    """Responses are keep-alive by default; ``close=1`` closes after the response."""
    with urllib3.HTTPConnectionPool(server.host, server.port, maxsize=1, retries=False) as pool:
        before = server.connections_accepted
        for _ in range(3):
            assert pool.request("POST", "/echo", body=b"x" * 10).status == 200
        assert server.connections_accepted == before + 1
        r = pool.request("GET", "/echo?close=1")
        assert r.headers["Connection"] == "close"
        assert pool.request("GET", "/echo").status == 200
        assert server.connections_accepted == before + 2


# --------------------------------------------------------------------------- redirects/cookies


def test_redirect_chain_ends_in_echo(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/redirect/<n> hops n times with relative Locations, then echoes."""
    r = http.request("GET", server.url("/redirect/3?x=1"), retries=urllib3.Retry(redirect=5))
    assert r.status == 200
    echo = jget(r)
    assert echo["path"] == "/redirect/0"
    assert echo["query"] == {"x": ["1"]}
    assert r.retries is not None
    assert [h.redirect_location for h in r.retries.history] == [
        "/redirect/2?x=1",
        "/redirect/1?x=1",
        "/redirect/0?x=1",
    ]


def test_redirect_single_hop_options(server: LocalServer, http: urllib3.PoolManager) -> None:
    """``code``, ``absolute`` and ``set_cookie`` shape each redirect hop."""
    r = http.request(
        "GET",
        server.url("/redirect/2?code=307&absolute=1&set_cookie=k=v"),
        redirect=False,
    )
    assert r.status == 307
    assert r.headers["Location"] == server.url("/redirect/1?code=307&absolute=1&set_cookie=k=v")
    assert r.headers["Set-Cookie"] == "k=v; Path=/"


def test_redirect_307_keeps_method_and_body(server: LocalServer, http: urllib3.PoolManager) -> None:
    """A 307 chain lets the final echo assert the re-sent method and body."""
    r = http.request(
        "PUT", server.url("/redirect/2?code=307"), body=b"payload", retries=urllib3.Retry(3)
    )
    echo = jget(r)
    assert (echo["method"], echo["body_text"]) == ("PUT", "payload")


def test_redirect_to_and_loop(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/redirect-to points anywhere; /redirect-loop never ends."""
    r = http.request("GET", server.url("/redirect-to?url=ftp://x/y&code=301"), redirect=False)
    assert (r.status, r.headers["Location"]) == (301, "ftp://x/y")
    r = http.request("GET", server.url("/redirect-loop"), redirect=False)
    assert (r.status, r.headers["Location"]) == (302, "/redirect-loop")
    with pytest.raises(MaxRetryError):
        http.request("GET", server.url("/redirect-loop"), retries=urllib3.Retry(redirect=3))


def test_cookies_set_and_read(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/cookies/set sets one cookie per pair; /cookies parses the Cookie header."""
    r = http.request("GET", server.url("/cookies/set?a=1&b=two&max_age=60"))
    assert jget(r) == {"cookies": {"a": "1", "b": "two"}}
    assert r.headers.getlist("Set-Cookie") == [
        "a=1; Path=/; Max-Age=60",
        "b=two; Path=/; Max-Age=60",
    ]
    r = http.request("GET", server.url("/cookies"), headers={"Cookie": "a=1; b=two"})
    assert jget(r) == {"cookies": {"a": "1", "b": "two"}}


# --------------------------------------------------------------------------- misc endpoints


def test_status_endpoint(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/status/<code> answers that code with a body and extra headers."""
    r = http.request("GET", server.url("/status/418?header=X-A:1&header=X-B:%20two"))
    assert (r.status, r.data) == (418, b"status 418")
    assert (r.headers["X-A"], r.headers["X-B"]) == ("1", "two")
    r = http.request("POST", server.url("/status/500?body=boom"), body=b"ignored")
    assert (r.status, r.data) == (500, b"boom")
    r = http.request("GET", server.url("/status/204"))
    assert (r.status, r.data) == (204, b"")
    assert "Content-Length" not in r.headers


def test_headers_auth_and_charset(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/headers, /auth/basic and /charset produce the requested responses."""
    r = http.request("GET", server.url("/headers?X-One=1&Cache-Control=no-store"))
    assert (r.data, r.headers["X-One"], r.headers["Cache-Control"]) == (b"ok", "1", "no-store")

    url = server.url("/auth/basic?user=u&password=p&realm=R")
    r = http.request("GET", url)
    assert (r.status, r.headers["WWW-Authenticate"]) == (401, 'Basic realm="R"')
    token = base64.b64encode(b"u:p").decode()
    r = http.request("GET", url, headers={"Authorization": f"Basic {token}"})
    assert (r.status, jget(r)) == (200, {"authenticated": True, "user": "u"})

    r = http.request("GET", server.url("/charset?charset=latin-1&text=%C3%A9t%C3%A9"))
    assert r.headers["Content-Type"] == "text/plain; charset=latin-1"
    assert r.data == "été".encode("latin-1")


def test_slow_delays_headers(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/slow waits before answering like /echo."""
    t0 = time.monotonic()
    r = http.request("GET", server.url("/slow?delay=0.3"))
    assert time.monotonic() - t0 >= 0.25
    assert jget(r)["path"] == "/slow"


def test_drop_truncates_body(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/drop promises more than it sends: urllib3 reports a broken (incomplete) body."""
    with pytest.raises(ProtocolError):
        http.request("GET", server.url("/drop?after=1000&length=100000"))
    r = http.request("GET", server.url("/drop?after=1000&length=100000"), preload_content=False)
    try:
        got = bytearray()
        with pytest.raises(ProtocolError):
            for chunk in r.stream(100):  # small reads: a short read would drop the partial data
                got += chunk
        assert bytes(got) == content_bytes(1000)
    finally:
        r.release_conn()


def test_drop_before_headers(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/drop-before-headers closes without a response."""
    with pytest.raises(ProtocolError):
        http.request("POST", server.url("/drop-before-headers"), body=b"x")


def test_stall_times_out(server: LocalServer, http: urllib3.PoolManager) -> None:
    """/stall sends part of the body then hangs: the client's read timeout fires."""
    with pytest.raises(ReadTimeoutError):
        http.request(
            "GET", server.url("/stall?after=100&length=1000&hang=5"), timeout=urllib3.Timeout(0.3)
        )


def test_requests_are_recorded(server: LocalServer, http: urllib3.PoolManager) -> None:
    """Each request is recorded with method, raw path, lower-cased headers and body digest."""
    server.clear_requests()
    http.request("POST", server.url("/echo?q=1"), body=b"abc", headers={"X-T": "v"})
    http.request("GET", server.url("/bytes/5"))
    records = server.requests
    assert [(r.method, r.path) for r in records] == [("POST", "/echo?q=1"), ("GET", "/bytes/5")]
    first = records[0]
    assert isinstance(first, RequestRecord)
    assert first.headers["x-t"] == "v"
    assert (first.body_length, first.body_sha256) == (3, sha(b"abc"))
    server.clear_requests()
    assert server.requests == []


# --------------------------------------------------------------------------- TLS


def test_tls_verifies_with_ca_bundle(tls_server: LocalServer) -> None:
    """The TLS server is trusted through ca_bundle, for both 'localhost' and 127.0.0.1."""
    assert tls_server.base_url.startswith("https://localhost:")
    assert tls_server.ca_bundle is not None
    assert tls_server.tls_ca is not None
    with urllib3.PoolManager(ca_certs=tls_server.ca_bundle, retries=False) as pm:
        r = pm.request("GET", tls_server.url(f"/bytes/{BIG}"))
        assert r.data == content_bytes(BIG)
        r = pm.request("GET", f"https://127.0.0.1:{tls_server.port}/echo", body=b"hi")
        assert jget(r)["body_text"] == "hi"


def test_tls_rejected_without_ca(tls_server: LocalServer) -> None:
    """Without the test CA the certificate does not verify (and the server survives it)."""
    with urllib3.PoolManager(retries=False) as pm, pytest.raises(SSLError):
        pm.request("GET", tls_server.url("/echo"))
    with urllib3.PoolManager(ca_certs=tls_server.ca_bundle, retries=False) as pm:
        assert pm.request("GET", tls_server.url("/echo")).status == 200


def test_tls_bad_client_does_not_block_accept(tls_server: LocalServer) -> None:
    """A client that never handshakes does not stop others (handshake is per connection)."""
    with (
        socket.create_connection((tls_server.host, tls_server.port), timeout=10),
        urllib3.PoolManager(ca_certs=tls_server.ca_bundle, retries=False) as pm,
    ):
        assert pm.request("GET", tls_server.url("/echo")).status == 200


# --------------------------------------------------------------------------- lifecycle


def _raw_request(srv: LocalServer, target: str) -> socket.socket:
    sock = socket.create_connection((srv.host, srv.port), timeout=10)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_stop_is_bounded_and_joins_threads() -> None:
    """stop() closes busy/idle connections promptly and leaves no thread behind."""
    before = threading.active_count()
    srv = LocalServer().start()
    port = srv.port
    socks = [
        _raw_request(srv, "/slow?delay=30"),
        _raw_request(srv, "/stall?after=10&length=100"),
        _raw_request(srv, "/bytes/1073741824?rate=1000"),
        socket.create_connection((srv.host, srv.port), timeout=10),  # idle keep-alive
    ]
    try:
        deadline = time.monotonic() + 5
        while len(srv.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(srv.requests) == 3
        t0 = time.monotonic()
        srv.stop()
        assert time.monotonic() - t0 < 2
    finally:
        for sock in socks:
            sock.close()
    assert not [t for t in threading.enumerate() if f"-{port}" in t.name]
    assert threading.active_count() <= before
    srv.stop()  # idempotent
    with pytest.raises(RuntimeError):
        srv.start()


def test_tls_stop_removes_ca_bundle() -> None:
    """The CA bundle lives in a temp dir removed on stop."""
    with LocalServer(tls=True) as srv:
        bundle = srv.ca_bundle
        assert bundle is not None and Path(bundle).is_file()
    assert not Path(bundle).exists()
    assert srv.ca_bundle is None


def test_not_started_and_url_validation() -> None:
    """Unstarted servers have no port; url() needs an absolute path."""
    srv = LocalServer()
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    srv.stop()
    with LocalServer() as started:
        assert started.base_url == f"http://127.0.0.1:{started.port}"
        with pytest.raises(ValueError):
            started.url("relative")


def test_main_runs_until_sigterm() -> None:
    """``python -m urlsession_module.testing`` prints its URL and exits cleanly on SIGTERM."""
    with subprocess.Popen(
        [sys.executable, "-m", "urlsession_module.testing", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            base = proc.stdout.readline().strip()
            assert base.startswith("http://127.0.0.1:")
            with urllib3.PoolManager(retries=False) as pm:
                assert pm.request("GET", base + "/bytes/10").data == content_bytes(10)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
