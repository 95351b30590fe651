"""The fault scenarios of FaultServer: one named misbehaviour per path (:data:`SCENARIOS`).

Each scenario answers one request on a :class:`~._fault_conn.FaultConnection` and returns
True to keep the connection open for the next request. The first path segment of a URL names
the scenario; its query parameters (read through :class:`~._fault_conn.Query`, with defaults)
tune it. The table's descriptions are what ``SCENARIOS`` shows to a reader.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from urllib.parse import urlencode

from ._content import content_bytes, iter_views
from ._fault_conn import MAX_HANG, FaultConnection, FaultRequest, Query

__all__ = ["SCENARIOS", "Scenario", "length_headers"]


# A scenario answers one request; True keeps the connection open for the next one.
Scenario = Callable[[FaultConnection, FaultRequest, Query], bool]
SCENARIOS: dict[str, tuple[Scenario, str]] = {}


def _scenario(name: str, description: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[name] = (fn, description)
        return fn

    return register


def length_headers(n: int, ctype: str = "application/octet-stream") -> list[tuple[str, str]]:
    return [("Content-Type", ctype), ("Content-Length", str(n))]


def _keep_alive(req: FaultRequest) -> bool:
    return "close" not in req.headers.get("connection", "").lower()


def _gzip(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def _send_part(conn: FaultConnection, q: Query) -> None:
    """Promise ``length`` bytes (200 000) in the head, then send the first ``after`` (half)."""
    n = q.integer("length", 200_000)
    conn.send_head(200, "OK", length_headers(n))
    conn.send_content(min(n, q.integer("after", n // 2)))


@_scenario("ok", "200 with `length` bytes of the deterministic content; keep-alive honoured")
def _ok(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    n = q.integer("length", 1000)
    conn.send_head(200, "OK", length_headers(n))
    if req.method != "HEAD":
        conn.send_content(n)
    return _keep_alive(req)


@_scenario("status", "status `code` (503) with an optional `retry_after`; keep-alive honoured")
def _status(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    code = q.integer("code", 503)
    body = f"status {code}\n".encode()
    headers = length_headers(len(body), "text/plain")
    retry_after = q.text("retry_after", "")
    if retry_after:
        headers.append(("Retry-After", retry_after))
    conn.send_head(code, "Fault", headers)
    conn.send(body)
    return _keep_alive(req)


@_scenario("close-after-response", "200 and a body, then a close without `Connection: close`")
def _close_after(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    _ok(conn, req, q)
    return False


@_scenario("reset-before-headers", "read the request, then RST without a byte of response")
def _reset_before(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.reset()
    return False


@_scenario("close-before-headers", "read the request, then FIN without a byte of response")
def _close_before(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    return False


@_scenario("stall-before-headers", "read the request, then say nothing for `hang` s (60)")
def _stall_before(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.wait(q.seconds("hang", MAX_HANG))
    return False


@_scenario("reset-mid-body", "promise `length` bytes, send `after`, then RST")
def _reset_mid(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    _send_part(conn, q)
    time.sleep(0.05)  # let the bytes leave before the RST discards the send queue
    conn.reset()
    return False


@_scenario("short-body", "promise `length` bytes, send `after`, then a clean FIN")
def _short_body(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    _send_part(conn, q)
    return False


@_scenario("stall-mid-body", "promise `length` bytes, send `after`, then hang for `hang` s")
def _stall_mid(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    _send_part(conn, q)
    conn.wait(q.seconds("hang", MAX_HANG))
    return False


@_scenario("trickle-headers", "slow-loris: a status line, then one header byte per `interval` s")
def _trickle_headers(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    interval = q.seconds("interval", 0.5)
    deadline = time.monotonic() + q.seconds("hang", MAX_HANG)
    conn.send(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while time.monotonic() < deadline:  # the header line never ends
        conn.wait(interval)
        conn.send(b"a")
    return False


@_scenario("trickle-body", "promise `length` bytes, then send one per `interval` s")
def _trickle_body(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    n = q.integer("length", 1000)
    interval = q.seconds("interval", 0.5)
    conn.send_head(200, "OK", length_headers(n))
    for view in iter_views(n, 0, 1):
        conn.wait(interval)
        conn.send(view)
    return False


@_scenario("bad-chunked", "chunked framing with a chunk-size line that is not hexadecimal")
def _bad_chunked(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.send_head(200, "OK", [("Transfer-Encoding", "chunked")])
    conn.send(b"5\r\nhello\r\nzz-not-hex\r\nworld\r\n0\r\n\r\n")
    return False


@_scenario("truncated-chunked", "chunked framing cut off (FIN) before the terminating chunk")
def _truncated_chunked(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.send_head(200, "OK", [("Transfer-Encoding", "chunked")])
    data = content_bytes(q.integer("length", 100_000))
    conn.send(f"{len(data):x}\r\n".encode() + data + b"\r\n" + b"400\r\npartial")
    return False


@_scenario("cl-and-chunked", "both `Content-Length` (wrong) and chunked: the chunked framing wins")
def _cl_and_chunked(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    data = content_bytes(q.integer("length", 10_000))
    conn.send_head(
        200,
        "OK",
        [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(q.integer("claimed", 3))),
            ("Transfer-Encoding", "chunked"),
        ],
    )
    half = len(data) // 2
    for piece in (data[:half], data[half:]):
        if piece:
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    conn.send(b"0\r\n\r\n")
    return False


@_scenario("conflicting-lengths", "two `Content-Length` headers that disagree")
def _conflicting_lengths(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.send_head(200, "OK", [("Content-Length", "10"), ("Content-Length", "20")])
    conn.send(content_bytes(20))
    return False


@_scenario("invalid-status-line", "a status line that is not HTTP (`line`, default `ICY 200 OK`)")
def _invalid_status(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    line = q.text("line", "ICY 200 OK")
    conn.send(line.encode("latin-1") + b"\r\nContent-Length: 2\r\n\r\nok")
    return False


@_scenario("http09", "an HTTP/0.9-style answer: a bare body, no status line, then close")
def _http09(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.send(b"<html><body>It works (1991)</body></html>\n")
    return False


@_scenario("garbage", "binary noise instead of a response, then close")
def _garbage(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.send(bytes(range(256)) * 4)
    return False


@_scenario("huge-header-line", "a single header line of `size` bytes (1 MiB)")
def _huge_header_line(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    size = q.integer("size", 1 << 20)
    conn.send(b"HTTP/1.1 200 OK\r\nX-Huge: ")
    block = b"a" * 65536
    for _ in range(size // len(block)):
        conn.send(block)
    conn.send(b"\r\nContent-Length: 2\r\n\r\nok")
    return False


@_scenario("many-headers", "`count` header lines (10000) before the body")
def _many_headers(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    count = q.integer("count", 10_000)
    lines = b"".join(b"X-Header-%d: value\r\n" % i for i in range(count))
    conn.send(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 2\r\n\r\nok")
    return False


@_scenario(
    "corrupt-gzip", "`Content-Encoding: gzip` whose body is not (mode=garbage|mid|truncated)"
)
def _corrupt_gzip(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    mode = q.text("mode", "garbage")
    good = _gzip(content_bytes(q.integer("length", 200_000)))
    if mode == "garbage":
        body = b"this is not gzip at all " * 40
    elif mode == "mid":  # a valid start, then flipped bytes inside the deflate stream
        cut = len(good) // 2
        body = good[:cut] + bytes(b ^ 0xFF for b in good[cut : cut + 64]) + good[cut + 64 :]
    else:  # truncated: an honest Content-Length for a gzip stream that stops half way
        body = good[: len(good) // 2]
    conn.send_head(
        200,
        "OK",
        [*length_headers(len(body)), ("Content-Encoding", "gzip")],
    )
    conn.send(body)
    return False


@_scenario("early-hints", "an interim `103 Early Hints`, then the real 200; keep-alive")
def _early_hints(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
    body = b"final answer"
    conn.send_head(200, "OK", length_headers(len(body), "text/plain"))
    conn.send(body)
    return _keep_alive(req)


@_scenario("unasked-continue", "an unrequested `100 Continue`, then the real 200")
def _unasked_continue(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = b"after continue"
    conn.send_head(200, "OK", length_headers(len(body), "text/plain"))
    conn.send(body)
    return False


@_scenario("redirect", "a `code` (302) redirect to `to` (default: this same URL, a loop)")
def _redirect(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    body = b"redirect\n"
    code = q.integer("code", 302)
    location = q.text("to", req.target)
    conn.send_head(code, "Redirect", [("Location", location), *length_headers(len(body))])
    conn.send(body)
    return _keep_alive(req)


@_scenario("ping-pong", "a `code` (302) redirect to `peer`/ping-pong?peer=<this server>: a loop")
def _ping_pong(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    me = conn.server_base_url
    location = f"{q.text('peer', me)}/ping-pong?" + urlencode(
        {"peer": me, "code": q.text("code", "302")}
    )
    body = b"redirect\n"
    conn.send_head(
        q.integer("code", 302), "Redirect", [("Location", location), *length_headers(len(body))]
    )
    conn.send(body)
    return _keep_alive(req)


@_scenario("truncated-headers", "a status line and half a header section, then FIN (no blank line)")
def _truncated_headers(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Cut-Here: hal")
    return False


@_scenario("echo-headers", "200 with the request's headers as `name: value` lines")
def _echo_headers(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    body = "".join(f"{k}: {v}\n" for k, v in sorted(req.headers.items())).encode("latin-1")
    conn.send_head(200, "OK", length_headers(len(body), "text/plain"))
    conn.send(body)
    return _keep_alive(req)


# flaky-download's answers so far, per `key` (a test's own): the resource's history.
_FLAKY: dict[str, int] = {}
_FLAKY_LOCK = threading.Lock()
FLAKY_SHIFT = 7  # version v of a flaky-download is the content from offset v * FLAKY_SHIFT


@_scenario(
    "flaky-download",
    "`length` bytes with an ETag and ranges (Range + If-Range honoured); the first `fail` (1) "
    "answers for `key` send `after` bytes of the body, then RST; `changes=1`: the resource "
    "(and its ETag) changes after the first answer (version v is the content from v * 7)",
)
def _flaky_download(conn: FaultConnection, req: FaultRequest, q: Query) -> bool:
    key = q.text("key", "")
    with _FLAKY_LOCK:
        served = _FLAKY.get(key, 0)
        _FLAKY[key] = served + 1
    n = q.integer("length", 200_000)
    version = min(served, 1) if q.integer("changes", 0) else 0
    etag = f'"v{version}"'
    start = 0
    wanted = req.headers.get("range", "")
    if_range = req.headers.get("if-range")
    if wanted.startswith("bytes=") and wanted.endswith("-") and if_range in (None, etag):
        first = wanted[6:-1]
        if first.isdigit() and int(first) < n:
            start = int(first)
    headers = [("ETag", etag), ("Accept-Ranges", "bytes"), *length_headers(n - start)]
    if start:
        headers.append(("Content-Range", f"bytes {start}-{n - 1}/{n}"))
        conn.send_head(206, "Partial Content", headers)
    else:
        conn.send_head(200, "OK", headers)
    if req.method == "HEAD":
        return _keep_alive(req)
    shift = version * FLAKY_SHIFT
    if served < q.integer("fail", 1):
        conn.send_content(min(n - start, q.integer("after", n // 2)), start + shift)
        time.sleep(0.05)  # let the bytes leave before the RST discards the send queue
        conn.reset()
        return False
    conn.send_content(n - start, start + shift)
    return _keep_alive(req)
