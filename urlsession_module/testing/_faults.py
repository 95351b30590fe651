"""A raw-socket HTTP server that misbehaves on purpose: one named fault scenario per path.

:class:`~urlsession_module.testing.LocalServer` is a well-behaved server with a few faults;
this one exists for the failures a real HTTP server library will not produce: a reset before
the headers, a body shorter than its ``Content-Length``, broken chunk framing, a status line
that is not HTTP, headers that never end, corrupt gzip, an interim ``103`` response, and so on.
It speaks HTTP/1.1 by hand over plain sockets (optionally TLS), on loopback only::

    from urlsession_module.testing import FaultServer

    with FaultServer() as faults:
        url = faults.url("reset-mid-body", length=100_000, after=10_000)

The first path segment names the scenario (:data:`SCENARIOS` lists them with a description);
query parameters tune it. Every scenario reads the whole request first (head and body), so a
client's failure is about the response, never about a request it could not send.

Threading model: one accept thread and one thread per connection. Every wait inside a scenario
wakes up when the server stops, and :meth:`FaultServer.stop` shuts the sockets down and joins
every thread within a bounded time, so a test never leaves a thread behind.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs, urlencode, urlsplit

from ._content import content_bytes, iter_views

__all__ = ["SCENARIOS", "FaultConnection", "FaultRequest", "FaultServer"]

logger = logging.getLogger(__name__)

_STOP_TIMEOUT = 5.0
_IO_TIMEOUT = 10.0  # a client that stops reading does not pin a thread for longer
_MAX_HANG = 60.0
_MAX_HEAD = 256 * 1024
_POLL = 0.05
_ACCEPT_FAULTS = (None, "reset", "close", "stall", "garbage")


@dataclass(frozen=True)
class FaultRequest:
    """One request as the fault server read it, so tests can assert what the client sent."""

    scenario: str
    method: str
    target: str  # path and query, as received
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body_length: int
    connection: int  # the number of the connection it came on (1 for the first accepted)


class _Disconnected(Exception):
    """The client went away (or the server is stopping): the scenario ends here."""


class _Query:
    """Typed access to a scenario's query parameters, with defaults."""

    def __init__(self, query: str) -> None:
        self._q = parse_qs(query, keep_blank_values=True)

    def text(self, name: str, default: str) -> str:
        values = self._q.get(name)
        return values[-1] if values else default

    def integer(self, name: str, default: int) -> int:
        try:
            return int(self.text(name, str(default)))
        except ValueError:
            return default

    def seconds(self, name: str, default: float) -> float:
        try:
            return float(self.text(name, str(default)))
        except ValueError:
            return default


class FaultConnection:
    """One accepted connection as a scenario sees it: read a request, send, wait, reset."""

    def __init__(self, server: FaultServer, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self._server = server
        self._buf = b""

    # -- reading ---------------------------------------------------------------------------------

    def _recv(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except (OSError, ValueError) as exc:
            raise _Disconnected(repr(exc)) from None
        if not data:
            raise _Disconnected("client closed")
        return data

    def read_request(self) -> tuple[str, str, dict[str, str], int] | None:
        """Read one request (head and body); None when the client closed between requests."""
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > _MAX_HEAD:
                raise _Disconnected("request head too long")
            try:
                self._buf += self._recv()
            except _Disconnected:
                if self._buf:
                    raise
                return None
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 2:
            raise _Disconnected(f"not an HTTP request: {lines[0]!r}")
        method, target = parts[0], parts[1]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        length = 0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            length = self._drain_chunked()
        elif headers.get("content-length", "").isdigit():
            length = int(headers["content-length"])
            self._drain(length)
        return method, target, headers, length

    def _drain(self, n: int) -> None:
        """Skip ``n`` body bytes without keeping them (uploads may be large)."""
        while len(self._buf) < n:
            n -= len(self._buf)
            self._buf = self._recv()
        self._buf = self._buf[n:]

    def _drain_chunked(self) -> int:
        total = 0
        while True:
            while b"\r\n" not in self._buf:
                self._buf += self._recv()
            line, _, self._buf = self._buf.partition(b"\r\n")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while b"\r\n" not in self._buf:  # trailers end with an empty line
                    self._buf += self._recv()
                self._buf = self._buf.partition(b"\r\n")[2]
                return total
            self._drain(size + 2)
            total += size

    # -- writing ---------------------------------------------------------------------------------

    @property
    def server_base_url(self) -> str:
        return self._server.base_url

    def send(self, data: bytes | memoryview) -> None:
        if self._server.stopping:
            raise _Disconnected("server stopping")
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:
            raise _Disconnected(repr(exc)) from None

    def send_head(self, status: int, reason: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send_content(self, n: int, offset: int = 0) -> None:
        """``n`` bytes of the deterministic content (what ``LocalServer``'s /bytes serves)."""
        for view in iter_views(n, offset, 64 * 1024):
            self.send(view)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds`` (at most 60 s); raise once the server stops or the client left.

        A stalled scenario must not outlive its client: a client that gave up (timed out,
        cancelled) ends the wait, so the connection's thread ends with it.
        """
        deadline = time.monotonic() + min(seconds, _MAX_HANG)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._server._stop.wait(min(remaining, _POLL)):
                raise _Disconnected("server stopping")
            if self._peer_closed():
                raise _Disconnected("client closed while the server stalled")

    def _peer_closed(self) -> bool:
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            # The plain socket's recv, also under TLS: peek at the wire without TLS state.
            return bool(readable) and not socket.socket.recv(self.sock, 1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

    def reset(self) -> None:
        """Close with an RST instead of a FIN: the client sees ECONNRESET."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.sock.close()


# A scenario answers one request; True keeps the connection open for the next one.
Scenario = Callable[[FaultConnection, FaultRequest, _Query], bool]
SCENARIOS: dict[str, tuple[Scenario, str]] = {}


def _scenario(name: str, description: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[name] = (fn, description)
        return fn

    return register


def _length_headers(n: int, ctype: str = "application/octet-stream") -> list[tuple[str, str]]:
    return [("Content-Type", ctype), ("Content-Length", str(n))]


def _keep_alive(req: FaultRequest) -> bool:
    return "close" not in req.headers.get("connection", "").lower()


def _gzip(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


@_scenario("ok", "200 with `length` bytes of the deterministic content; keep-alive honoured")
def _ok(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    n = q.integer("length", 1000)
    conn.send_head(200, "OK", _length_headers(n))
    if req.method != "HEAD":
        conn.send_content(n)
    return _keep_alive(req)


@_scenario("status", "status `code` (503) with an optional `retry_after`; keep-alive honoured")
def _status(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    code = q.integer("code", 503)
    body = f"status {code}\n".encode()
    headers = _length_headers(len(body), "text/plain")
    retry_after = q.text("retry_after", "")
    if retry_after:
        headers.append(("Retry-After", retry_after))
    conn.send_head(code, "Fault", headers)
    conn.send(body)
    return _keep_alive(req)


@_scenario("close-after-response", "200 and a body, then a close without `Connection: close`")
def _close_after(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    _ok(conn, req, q)
    return False


@_scenario("reset-before-headers", "read the request, then RST without a byte of response")
def _reset_before(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.reset()
    return False


@_scenario("close-before-headers", "read the request, then FIN without a byte of response")
def _close_before(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    return False


@_scenario("stall-before-headers", "read the request, then say nothing for `hang` s (60)")
def _stall_before(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.wait(q.seconds("hang", _MAX_HANG))
    return False


@_scenario("reset-mid-body", "promise `length` bytes, send `after`, then RST")
def _reset_mid(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    n = q.integer("length", 200_000)
    conn.send_head(200, "OK", _length_headers(n))
    conn.send_content(min(n, q.integer("after", n // 2)))
    time.sleep(0.05)  # let the bytes leave before the RST discards the send queue
    conn.reset()
    return False


@_scenario("short-body", "promise `length` bytes, send `after`, then a clean FIN")
def _short_body(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    n = q.integer("length", 200_000)
    conn.send_head(200, "OK", _length_headers(n))
    conn.send_content(min(n, q.integer("after", n // 2)))
    return False


@_scenario("stall-mid-body", "promise `length` bytes, send `after`, then hang for `hang` s")
def _stall_mid(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    n = q.integer("length", 200_000)
    conn.send_head(200, "OK", _length_headers(n))
    conn.send_content(min(n, q.integer("after", n // 2)))
    conn.wait(q.seconds("hang", _MAX_HANG))
    return False


@_scenario("trickle-headers", "slow-loris: a status line, then one header byte per `interval` s")
def _trickle_headers(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    interval = q.seconds("interval", 0.5)
    deadline = time.monotonic() + q.seconds("hang", _MAX_HANG)
    conn.send(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while time.monotonic() < deadline:  # the header line never ends
        conn.wait(interval)
        conn.send(b"a")
    return False


@_scenario("trickle-body", "promise `length` bytes, then send one per `interval` s")
def _trickle_body(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    n = q.integer("length", 1000)
    interval = q.seconds("interval", 0.5)
    conn.send_head(200, "OK", _length_headers(n))
    for view in iter_views(n, 0, 1):
        conn.wait(interval)
        conn.send(view)
    return False


@_scenario("bad-chunked", "chunked framing with a chunk-size line that is not hexadecimal")
def _bad_chunked(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.send_head(200, "OK", [("Transfer-Encoding", "chunked")])
    conn.send(b"5\r\nhello\r\nzz-not-hex\r\nworld\r\n0\r\n\r\n")
    return False


@_scenario("truncated-chunked", "chunked framing cut off (FIN) before the terminating chunk")
def _truncated_chunked(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.send_head(200, "OK", [("Transfer-Encoding", "chunked")])
    data = content_bytes(q.integer("length", 100_000))
    conn.send(f"{len(data):x}\r\n".encode() + data + b"\r\n" + b"400\r\npartial")
    return False


@_scenario("cl-and-chunked", "both `Content-Length` (wrong) and chunked: the chunked framing wins")
def _cl_and_chunked(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
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
def _conflicting_lengths(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.send_head(200, "OK", [("Content-Length", "10"), ("Content-Length", "20")])
    conn.send(content_bytes(20))
    return False


@_scenario("invalid-status-line", "a status line that is not HTTP (`line`, default `ICY 200 OK`)")
def _invalid_status(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    line = q.text("line", "ICY 200 OK")
    conn.send(line.encode("latin-1") + b"\r\nContent-Length: 2\r\n\r\nok")
    return False


@_scenario("http09", "an HTTP/0.9-style answer: a bare body, no status line, then close")
def _http09(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.send(b"<html><body>It works (1991)</body></html>\n")
    return False


@_scenario("garbage", "binary noise instead of a response, then close")
def _garbage(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.send(bytes(range(256)) * 4)
    return False


@_scenario("huge-header-line", "a single header line of `size` bytes (1 MiB)")
def _huge_header_line(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    size = q.integer("size", 1 << 20)
    conn.send(b"HTTP/1.1 200 OK\r\nX-Huge: ")
    block = b"a" * 65536
    for _ in range(size // len(block)):
        conn.send(block)
    conn.send(b"\r\nContent-Length: 2\r\n\r\nok")
    return False


@_scenario("many-headers", "`count` header lines (10000) before the body")
def _many_headers(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    count = q.integer("count", 10_000)
    lines = b"".join(b"X-Header-%d: value\r\n" % i for i in range(count))
    conn.send(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 2\r\n\r\nok")
    return False


@_scenario(
    "corrupt-gzip", "`Content-Encoding: gzip` whose body is not (mode=garbage|mid|truncated)"
)
def _corrupt_gzip(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
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
        [*_length_headers(len(body)), ("Content-Encoding", "gzip")],
    )
    conn.send(body)
    return False


@_scenario("early-hints", "an interim `103 Early Hints`, then the real 200; keep-alive")
def _early_hints(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
    body = b"final answer"
    conn.send_head(200, "OK", _length_headers(len(body), "text/plain"))
    conn.send(body)
    return _keep_alive(req)


@_scenario("unasked-continue", "an unrequested `100 Continue`, then the real 200")
def _unasked_continue(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = b"after continue"
    conn.send_head(200, "OK", _length_headers(len(body), "text/plain"))
    conn.send(body)
    return False


@_scenario("redirect", "a `code` (302) redirect to `to` (default: this same URL, a loop)")
def _redirect(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    body = b"redirect\n"
    code = q.integer("code", 302)
    location = q.text("to", req.target)
    conn.send_head(code, "Redirect", [("Location", location), *_length_headers(len(body))])
    conn.send(body)
    return _keep_alive(req)


@_scenario("ping-pong", "a `code` (302) redirect to `peer`/ping-pong?peer=<this server>: a loop")
def _ping_pong(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    me = conn.server_base_url
    location = f"{q.text('peer', me)}/ping-pong?" + urlencode(
        {"peer": me, "code": q.text("code", "302")}
    )
    body = b"redirect\n"
    conn.send_head(
        q.integer("code", 302), "Redirect", [("Location", location), *_length_headers(len(body))]
    )
    conn.send(body)
    return _keep_alive(req)


@_scenario("truncated-headers", "a status line and half a header section, then FIN (no blank line)")
def _truncated_headers(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Cut-Here: hal")
    return False


@_scenario("echo-headers", "200 with the request's headers as `name: value` lines")
def _echo_headers(conn: FaultConnection, req: FaultRequest, q: _Query) -> bool:
    body = "".join(f"{k}: {v}\n" for k, v in sorted(req.headers.items())).encode("latin-1")
    conn.send_head(200, "OK", _length_headers(len(body), "text/plain"))
    conn.send(body)
    return _keep_alive(req)


class FaultServer:
    """A raw-socket HTTP/1.1 server on 127.0.0.1 whose every path is a fault scenario.

    ``ssl_context`` serves TLS (handshake in the connection thread); ``url_host`` is the host
    name URLs use (``localhost`` by default with TLS, to match a certificate). ``on_accept``
    misbehaves before any byte is read, TLS handshake included: ``'reset'``, ``'close'``,
    ``'stall'`` or ``'garbage'``. ``start()`` and ``stop()`` are bounded (5 s); ``stop()``
    leaves no thread or socket behind.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        url_host: str | None = None,
        on_accept: str | None = None,
    ) -> None:
        if on_accept not in _ACCEPT_FAULTS:
            raise ValueError(f"on_accept must be one of {_ACCEPT_FAULTS} (got {on_accept!r})")
        self._ssl_context = ssl_context
        self._url_host = url_host or ("localhost" if ssl_context is not None else "127.0.0.1")
        self._on_accept = on_accept
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[int, tuple[socket.socket, threading.Thread]] = {}
        self._accepted = 0
        self._requests: list[FaultRequest] = []
        self._accept_thread: threading.Thread | None = None
        self._port: int | None = None

    # -- properties ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FaultServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self._url_host}:{self.port}"

    def url(self, scenario: str, path: str = "", **params: object) -> str:
        """The URL of ``scenario`` (a key of :data:`SCENARIOS`) with query ``params``."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown fault scenario {scenario!r} (known: {sorted(SCENARIOS)})")
        query = urlencode({k: str(v) for k, v in params.items()})
        return f"{self.base_url}/{scenario}{path}" + (f"?{query}" if query else "")

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def open_connections(self) -> int:
        """How many connections are still being served."""
        with self._lock:
            return len(self._conns)

    @property
    def requests(self) -> list[FaultRequest]:
        """The requests read so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def hits(self, scenario: str) -> int:
        """How many requests named ``scenario``."""
        return sum(1 for r in self.requests if r.scenario == scenario)

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> FaultServer:
        if self._sock is not None:
            raise RuntimeError("FaultServer can only be started once")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.settimeout(0.05)
        self._sock = sock
        self._port = int(sock.getsockname()[1])
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"FaultServer-accept-{self._port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, shut every connection down and join all threads (<= 5 s)."""
        if self._stop.is_set():
            return
        self._stop.set()
        deadline = time.monotonic() + _STOP_TIMEOUT
        if self._accept_thread is not None:
            self._accept_thread.join(_STOP_TIMEOUT)
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            conns = list(self._conns.values())
        for sock, _ in conns:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for _, thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("FaultServer: %s did not exit in time", thread.name)

    # -- threads ---------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self._accepted += 1
                number = self._accepted
                thread = threading.Thread(
                    target=self._serve,
                    args=(conn, number),
                    name=f"FaultServer-conn-{self._port}-{number}",
                    daemon=True,
                )
                self._conns[number] = (conn, thread)
            thread.start()

    def _serve(self, raw: socket.socket, number: int) -> None:
        sock: socket.socket = raw
        try:
            sock.settimeout(_IO_TIMEOUT)
            if self._accept_fault(sock):
                return
            if self._ssl_context is not None:
                sock = self._ssl_context.wrap_socket(raw, server_side=True)
                with self._lock:
                    self._conns[number] = (sock, self._conns[number][1])
            conn = FaultConnection(self, sock, number)
            while not self._stop.is_set():
                head = conn.read_request()
                if head is None:
                    return
                method, target, headers, length = head
                path, _, query = target.partition("?")
                name = urlsplit(path).path.lstrip("/").split("/", 1)[0]
                req = FaultRequest(name, method, target, headers, length, number)
                with self._lock:
                    self._requests.append(req)
                if name not in SCENARIOS:
                    conn.send_head(404, "Not Found", _length_headers(0))
                    return
                if not SCENARIOS[name][0](conn, req, _Query(query)):
                    return
        except (_Disconnected, OSError, ValueError) as exc:
            logger.debug("FaultServer: connection %d ended: %r", number, exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._conns.pop(number, None)

    def _accept_fault(self, sock: socket.socket) -> bool:
        """Misbehave before reading anything, as ``on_accept`` says; True if the scenario ended."""
        fault = self._on_accept
        if fault is None:
            return False
        if fault == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault == "stall":
            self._stop.wait(_MAX_HANG)
        elif fault == "garbage":
            with contextlib.suppress(OSError):
                sock.sendall(bytes(range(256)))
        return True
