"""A small, fast, local HTTP/1.1 (+TLS) server for demos, tests and benchmarks.

It exists so the package can be exercised end to end without the network: every
endpoint is deterministic (see :mod:`._content`) and the misbehaving ones
(``/stall``, ``/drop``, ``/drop-before-headers``, ``/redirect-loop``) reproduce the
failures a URLSession client has to survive. Only loopback traffic is intended.

Threading model: one accept thread plus one thread per connection. Every open
connection is tracked so :meth:`LocalServer.stop` can shut the sockets down and
join all threads within a bounded time, also when handlers sleep or stall.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import hashlib
import http.cookies
import http.server
import itertools
import json
import logging
import selectors
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ._content import PATTERN_SIZE, iter_views

if TYPE_CHECKING:
    import trustme

__all__ = ["LocalServer", "RequestRecord"]

logger = logging.getLogger(__name__)

#: Fixed ``Last-Modified`` of ``/bytes``: the content never changes (use ``?etag=`` to fake it).
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
_LAST_MODIFIED_DT = email.utils.parsedate_to_datetime(LAST_MODIFIED)

_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0
_HANDSHAKE_TIMEOUT = 10.0
_IDLE_TIMEOUT = 120.0
_ACCEPT_POLL = 0.05
_BODY_BUFFER = 1 << 20  # reused per connection for request bodies
_ECHO_TEXT_LIMIT = 64 * 1024
_DEFAULT_WRITE = PATTERN_SIZE
_THROTTLE_WRITE = 16 * 1024
_MAX_STALL = 60.0
_NO_BODY_STATUSES = frozenset({204, 304})
_CACHE_SERIAL = itertools.count(1)  # /cache: every full response a new number


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it, so tests can assert what the client really sent."""

    method: str
    path: str  # path + query, exactly as received
    headers: dict[str, str]  # lower-cased names, repeated headers joined with ", "
    body_length: int
    body_sha256: str


@dataclass(frozen=True)
class _Body:
    """A drained request body: size and digest always, text only when small."""

    length: int
    sha256: str
    data: bytes | None  # None when longer than _ECHO_TEXT_LIMIT


class _BadRequestError(Exception):
    """Raised by endpoint code for invalid parameters; answered with 400."""


class _AbortError(Exception):
    """Drop the connection without (further) response, e.g. because the server stops."""


class _UnsatisfiableRangeError(Exception):
    """The Range header cannot be satisfied: answered with 416."""


@lru_cache(maxsize=8)
def _compressed(n: int, kind: str) -> bytes:
    """Compress content once per (size, kind): gzip/deflate responses are replayed often."""
    wbits = 31 if kind == "gzip" else 15  # 16+15: gzip container, 15: zlib-wrapped deflate
    comp = zlib.compressobj(6, zlib.DEFLATED, wbits)
    parts = [comp.compress(view) for view in iter_views(n)]
    parts.append(comp.flush())
    return b"".join(parts)


def _iter_source(data: bytes | None, start: int, end: int, chunk: int) -> Iterator[memoryview]:
    """Zero-copy slices of either the deterministic content (``data is None``) or ``data``."""
    if data is None:
        yield from iter_views(end - start, start, chunk)
        return
    view = memoryview(data)
    for pos in range(start, end, chunk):
        yield view[pos : min(pos + chunk, end)]


def _parse_range(header: str, total: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range into ``(start, end_exclusive)``.

    Returns None when the header should be ignored (syntax error, multiple ranges,
    other unit), as RFC 9110 allows; raises _UnsatisfiableRangeError for a valid but
    unsatisfiable range.
    """
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    try:
        if not first:
            suffix = int(last)
            if suffix < 0:
                return None
            if suffix == 0 or total == 0:
                raise _UnsatisfiableRangeError
            return max(0, total - suffix), total
        start = int(first)
        last_pos = int(last) if last else None
    except ValueError:
        return None
    if start < 0 or (last_pos is not None and last_pos < start):
        return None
    if start >= total:
        raise _UnsatisfiableRangeError
    return start, total if last_pos is None else min(last_pos + 1, total)


def _same_date(value: str, reference: datetime) -> bool:
    """Compare an HTTP date with the reference; unparsable dates never match."""
    try:
        return email.utils.parsedate_to_datetime(value) == reference
    except (TypeError, ValueError, IndexError):
        return False


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match semantics: ``*`` or any listed tag, weak comparison."""
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


class _TCPServer(socketserver.TCPServer):
    """Binds and listens; the accept loop and connection threads belong to LocalServer."""

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, owner: LocalServer, address: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(address, _Handler, bind_and_activate=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Request handler for all endpoints; one instance per connection (keep-alive loop)."""

    protocol_version = "HTTP/1.1"
    server_version = "urlsession-testing/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    rbufsize = 64 * 1024
    timeout = _IDLE_TIMEOUT
    server: _TCPServer

    _buffer: bytearray | None = None
    _force_close = False
    _headers_sent = False

    # ----------------------------------------------------------------- plumbing

    def version_string(self) -> str:
        """No trailing Python version: the Server header is just our name."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's stderr chatter to DEBUG logging."""
        logger.debug("%s - " + format, self.address_string(), *args)

    def handle_one_request(self) -> None:
        """Like the stdlib version, but any method name is dispatched and I/O errors are quiet."""
        self._force_close = False
        self._headers_sent = False
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._dispatch()
            self.wfile.flush()
        except TimeoutError as exc:
            logger.debug("%s: connection timed out: %r", self.address_string(), exc)
            self.close_connection = True
        except _AbortError as exc:
            logger.debug("%s: connection aborted: %s", self.address_string(), exc)
            self.close_connection = True
        except OSError as exc:  # BrokenPipe, ConnectionReset, SSL errors, shutdown by stop()
            logger.debug("%s: client went away: %r", self.address_string(), exc)
            self.close_connection = True

    @property
    def _owner(self) -> LocalServer:
        return self.server.owner

    @property
    def _stopping(self) -> threading.Event:
        return self.server.owner._stopping

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake up (and abort the connection) as soon as the server stops."""
        if seconds > 0 and self._stopping.wait(seconds):
            raise _AbortError("server stopping")

    def _body_buffer(self) -> memoryview:
        """A 1 MiB buffer reused for every body read on this connection."""
        if self._buffer is None:
            self._buffer = bytearray(_BODY_BUFFER)
        return memoryview(self._buffer)

    def _header_items(self) -> list[tuple[str, str]]:
        return [(str(k), str(v)) for k, v in self.headers.items()]

    def _header_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self._header_items():
            key = name.lower()
            out[key] = f"{out[key]}, {value}" if key in out else value
        return out

    # ----------------------------------------------------------------- request body

    def _read_body(self) -> _Body:
        """Drain the request body (Content-Length or chunked) so keep-alive stays in sync."""
        digest = hashlib.sha256()
        kept = bytearray()
        total = 0
        keep = True

        def feed(view: memoryview) -> None:
            nonlocal total, keep
            digest.update(view)
            total += len(view)
            if keep:
                if total > _ECHO_TEXT_LIMIT:
                    keep = False
                    kept.clear()
                else:
                    kept.extend(view)

        te = self.headers.get("Transfer-Encoding", "")
        if te and te.split(",")[-1].strip().lower() == "chunked":
            self._read_chunked(feed)
        else:
            lengths = {v.strip() for v in self.headers.get_all("Content-Length", [])}
            if len(lengths) > 1:
                raise _BadRequestError("conflicting Content-Length headers")
            if lengths:
                try:
                    length = int(lengths.pop())
                except ValueError:
                    raise _BadRequestError("invalid Content-Length") from None
                if length < 0:
                    raise _BadRequestError("invalid Content-Length")
                self._read_exact(length, feed)
        return _Body(total, digest.hexdigest(), bytes(kept) if keep else None)

    def _read_exact(self, n: int, feed: Callable[[memoryview], None]) -> None:
        buf = self._body_buffer()
        size = len(buf)
        while n > 0:
            got = self.rfile.readinto(buf[: min(n, size)])
            if not got:
                raise _AbortError("EOF inside request body")
            feed(buf[:got])
            n -= got

    def _read_chunked(self, feed: Callable[[memoryview], None]) -> None:
        while True:
            line = self.rfile.readline(1025)
            if not line:
                raise _AbortError("EOF inside chunked request body")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequestError("invalid chunk size") from None
            if size < 0:
                raise _BadRequestError("invalid chunk size")
            if size == 0:
                break
            self._read_exact(size, feed)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadRequestError("missing CRLF after chunk")
        while True:  # trailer section
            line = self.rfile.readline(65537)
            if not line:
                raise _AbortError("EOF inside chunked trailers")
            if line in (b"\r\n", b"\n"):
                return

    # ----------------------------------------------------------------- responses

    def _begin(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send status line and headers (``?close=1`` adds ``Connection: close``)."""
        headers = list(headers)
        for name, value in headers:  # validate first: a half-buffered header block can't be undone
            if any(c in name or c in value for c in "\r\n\0"):
                raise _BadRequestError("header injection refused")
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self._force_close:
            self.send_header("Connection", "close")
        self.end_headers()
        self._headers_sent = True

    def _has_body(self, status: int) -> bool:
        return self.command != "HEAD" and status not in _NO_BODY_STATUSES

    def _respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain; charset=utf-8",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send a complete small response (HEAD/204/304 get headers only)."""
        hdrs = list(headers)
        if status not in _NO_BODY_STATUSES:
            hdrs.append(("Content-Type", content_type))
        if status != 204:
            hdrs.append(("Content-Length", str(len(body))))
        self._begin(status, hdrs)
        if body and self._has_body(status):
            self.wfile.write(body)

    def _json(self, status: int, obj: object, headers: Iterable[tuple[str, str]] = ()) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._respond(status, body, "application/json; charset=utf-8", headers)

    def _write_views(self, views: Iterable[memoryview], chunked: bool, rate: int | None) -> None:
        """Write body pieces with large sendall calls; optionally chunk-encode and throttle."""
        write = self.wfile.write
        stopping = self._stopping
        started = time.monotonic()
        sent = 0
        for view in views:
            if stopping.is_set():
                raise _AbortError("server stopping")
            if chunked:
                write(b"%x\r\n" % len(view))
                write(view)
                write(b"\r\n")
            else:
                write(view)
            self._owner._count_body_bytes(len(view))
            if rate:
                sent += len(view)
                self._wait(sent / rate - (time.monotonic() - started))
        if chunked:
            write(b"0\r\n\r\n")

    # ----------------------------------------------------------------- query helpers

    def _q(self, query: dict[str, list[str]], name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    def _qint(
        self, query: dict[str, list[str]], name: str, default: int | None = None
    ) -> int | None:
        value = self._q(query, name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise _BadRequestError(f"query parameter {name!r} must be an integer") from None

    def _qfloat(self, query: dict[str, list[str]], name: str, default: float) -> float:
        value = self._q(query, name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except ValueError:
            raise _BadRequestError(f"query parameter {name!r} must be a number") from None

    def _qflag(self, query: dict[str, list[str]], name: str) -> bool:
        value = self._q(query, name)
        return value is not None and value.lower() not in ("", "0", "false", "no")

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self) -> None:
        target = self.path
        if target.startswith(("http://", "https://")):  # absolute-form (proxy style)
            parts = urlsplit(target)
            path, query_string = parts.path or "/", parts.query
        else:
            path, _, query_string = target.partition("?")
            path = path.split("#", 1)[0]
        query = parse_qs(query_string, keep_blank_values=True)
        self._force_close = self._qflag(query, "close")
        try:
            body = self._read_body()
            self._owner._record(
                RequestRecord(self.command, target, self._header_dict(), body.length, body.sha256)
            )
            self._route(path, query_string, query, body)
        except _BadRequestError as exc:
            if self._headers_sent:
                raise _AbortError(f"bad request after headers: {exc}") from None
            self._force_close = True  # the request stream may be out of sync
            self._respond(400, f"bad request: {exc}\n".encode())
        except _AbortError:
            raise
        except OSError:
            raise
        except Exception:
            logger.exception("LocalServer: handler error for %s %s", self.command, target)
            if self._headers_sent:
                raise _AbortError("handler error after headers") from None
            self._force_close = True
            self._respond(500, b"internal server error\n")

    def _route(self, path: str, qs: str, query: dict[str, list[str]], body: _Body) -> None:
        head, _, rest = path.lstrip("/").partition("/")
        if head == "bytes" and rest:
            self._bytes(self._path_int(rest), query)
        elif head == "echo":
            self._echo(path, query, body)
        elif head == "upload" and not rest:
            self._upload(body)
        elif head == "status" and rest:
            self._status(self._path_int(rest), query)
        elif head == "redirect" and rest:
            self._redirect(self._path_int(rest), path, qs, query, body)
        elif path == "/redirect-to":
            self._redirect_to(query)
        elif path == "/redirect-loop":
            location = path + (f"?{qs}" if qs else "")
            self._respond(302, b"redirect loop\n", headers=[("Location", location)])
        elif path == "/cookies/set":
            self._cookies_set(query)
        elif path == "/cookies":
            self._cookies()
        elif path == "/slow":
            self._wait(self._qfloat(query, "delay", 1.0))
            self._echo(path, query, body)
        elif path in ("/stall", "/drop"):
            self._stall_or_drop(path == "/drop", query)
        elif path == "/drop-before-headers":
            self.close_connection = True
        elif path == "/headers":
            hdrs = [(k, v) for k, vs in query.items() if k != "close" for v in vs]
            self._respond(200, b"ok", headers=hdrs)
        elif path == "/auth/basic":
            self._auth_basic(query)
        elif path == "/charset":
            self._charset(query)
        elif path == "/cache":
            self._cache(query)
        elif path == "/auth/basic-hashed":
            self._auth_basic_hashed(query)
        else:
            self._respond(404, f"not found: {path}\n".encode())

    @staticmethod
    def _path_int(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _BadRequestError(f"expected a number in the path, got {text!r}") from None
        if value < 0:
            raise _BadRequestError("negative number in the path")
        return value

    # ----------------------------------------------------------------- endpoints

    def _bytes(self, n: int, query: dict[str, list[str]]) -> None:
        """Deterministic content with ranges, validators, encodings and framing options."""
        encoding = "gzip" if self._qflag(query, "gzip") else None
        if encoding is None and self._qflag(query, "deflate"):
            encoding = "deflate"
        data = _compressed(n, encoding) if encoding else None
        total = len(data) if data is not None else n
        etag_opt = self._q(query, "etag")
        if etag_opt is not None:
            etag = f'"{etag_opt}"'
        else:
            etag = f'"bytes-{n}-{encoding}"' if encoding else f'"bytes-{n}"'
        norange = self._qflag(query, "norange")
        chunked = self._qflag(query, "chunked")
        nolength = self._qflag(query, "nolength") and not chunked
        rate = self._qint(query, "rate")
        chunk = self._qint(query, "chunk", _DEFAULT_WRITE) or _DEFAULT_WRITE
        chunk = max(1, min(chunk, PATTERN_SIZE))
        if rate is not None and rate <= 0:
            raise _BadRequestError("rate must be > 0")
        if rate:
            chunk = min(chunk, _THROTTLE_WRITE)
        status_override = self._qint(query, "status")
        if status_override is not None and not 200 <= status_override <= 599:
            raise _BadRequestError("status must be within 200..599")

        headers: list[tuple[str, str]] = [
            ("Content-Type", self._q(query, "type") or "application/octet-stream"),
            ("ETag", etag),
            ("Last-Modified", LAST_MODIFIED),
        ]
        if not norange:
            headers.append(("Accept-Ranges", "bytes"))
        if encoding:
            headers.append(("Content-Encoding", encoding))
        retry_after = self._q(query, "retry_after")
        if retry_after is not None:
            headers.append(("Retry-After", retry_after))

        status = 200 if status_override is None else status_override
        start, end = 0, total
        conditional = self.command in ("GET", "HEAD") and status_override is None
        if conditional and self._not_modified(etag):
            self._respond(304, headers=[h for h in headers if h[0] != "Content-Type"])
            return
        range_header = self.headers.get("Range")
        if conditional and not norange and range_header and self._if_range_ok(etag):
            try:
                parsed = _parse_range(range_header, total)
            except _UnsatisfiableRangeError:
                self._respond(416, b"", headers=[*headers, ("Content-Range", f"bytes */{total}")])
                return
            if parsed is not None:
                start, end = parsed
                status = 206
                headers.append(("Content-Range", f"bytes {start}-{end - 1}/{total}"))

        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif nolength:
            headers.append(("Connection", "close"))
        elif status != 204:
            headers.append(("Content-Length", str(end - start)))
        self._begin(status, headers)
        if self._has_body(status):
            self._write_views(_iter_source(data, start, end, chunk), chunked, rate)

    def _not_modified(self, etag: str) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return _etag_matches(inm, etag)
        ims = self.headers.get("If-Modified-Since")
        if ims is None:
            return False
        try:
            return email.utils.parsedate_to_datetime(ims) >= _LAST_MODIFIED_DT
        except (TypeError, ValueError, IndexError):
            return False

    def _if_range_ok(self, etag: str) -> bool:
        """If-Range: the range applies only if the validator still matches (strongly)."""
        value = self.headers.get("If-Range")
        if value is None:
            return True
        value = value.strip()
        if value.startswith(("W/", '"')):
            return value == etag
        return _same_date(value, _LAST_MODIFIED_DT)

    def _echo(self, path: str, query: dict[str, list[str]], body: _Body) -> None:
        """Reflect the request so clients can assert method, headers and body end to end."""
        text = body.data.decode("utf-8", errors="replace") if body.data is not None else None
        self._json(
            200,
            {
                "method": self.command,
                "path": path,
                "query": query,
                "headers": self._header_dict(),
                "header_list": [[k, v] for k, v in self._header_items()],
                "body_length": body.length,
                "body_sha256": body.sha256,
                "body_text": text,
            },
        )

    def _upload(self, body: _Body) -> None:
        self._json(
            200,
            {
                "method": self.command,
                "body_length": body.length,
                "body_sha256": body.sha256,
                "content_type": self.headers.get("Content-Type"),
            },
        )

    def _status(self, code: int, query: dict[str, list[str]]) -> None:
        if code == 100:  # an unsolicited interim response, then a normal final one
            self.send_response_only(100)
            self.end_headers()
            code_text, code = "100", 200
        else:
            code_text = str(code)
            if 100 <= code < 200 or not 100 <= code <= 599:
                code = 500
        extra: list[tuple[str, str]] = []
        for item in query.get("header", []):
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                raise _BadRequestError(f"header must be Name:Value, got {item!r}")
            extra.append((name.strip(), value.strip()))
        text = self._q(query, "body")
        body = (text if text is not None else f"status {code_text}").encode("utf-8")
        self._respond(code, body if code not in _NO_BODY_STATUSES else b"", headers=extra)

    def _redirect_headers(
        self, location: str, query: dict[str, list[str]]
    ) -> list[tuple[str, str]]:
        headers = [("Location", location)]
        for cookie in query.get("set_cookie", []):
            headers.append(("Set-Cookie", f"{cookie}; Path=/"))
        return headers

    def _redirect_code(self, query: dict[str, list[str]]) -> int:
        code = self._qint(query, "code", 302) or 302
        if not 300 <= code <= 399:
            raise _BadRequestError("code must be a 3xx status")
        return code

    def _redirect(
        self, n: int, path: str, qs: str, query: dict[str, list[str]], body: _Body
    ) -> None:
        if n == 0:
            self._echo(path, query, body)
            return
        location = f"/redirect/{n - 1}" + (f"?{qs}" if qs else "")
        if self._qflag(query, "absolute"):
            location = self._owner.base_url + location
        code = self._redirect_code(query)
        self._respond(
            code,
            f"redirect to {location}\n".encode(),
            headers=self._redirect_headers(location, query),
        )

    def _redirect_to(self, query: dict[str, list[str]]) -> None:
        url = self._q(query, "url")
        if url is None:
            raise _BadRequestError("missing ?url=")
        code = self._redirect_code(query)
        self._respond(
            code, f"redirect to {url}\n".encode(), headers=self._redirect_headers(url, query)
        )

    def _cookies_set(self, query: dict[str, list[str]]) -> None:
        max_age = self._qint(query, "max_age")
        suffix = f"; Max-Age={max_age}" if max_age is not None else ""
        cookies: dict[str, str] = {}
        headers: list[tuple[str, str]] = []
        for name, values in query.items():
            if name in ("max_age", "close"):
                continue
            for value in values:
                cookies[name] = value
                headers.append(("Set-Cookie", f"{name}={value}; Path=/{suffix}"))
        self._json(200, {"cookies": cookies}, headers)

    def _cookies(self) -> None:
        jar = http.cookies.SimpleCookie()
        for header in self.headers.get_all("Cookie", []):
            try:
                jar.load(header)
            except http.cookies.CookieError:
                logger.debug("unparsable Cookie header %r", header)
        self._json(200, {"cookies": {name: morsel.value for name, morsel in jar.items()}})

    def _stall_or_drop(self, drop: bool, query: dict[str, list[str]]) -> None:
        """Promise ``length`` bytes, send ``after``, then hang (stall) or close (drop)."""
        length = self._qint(query, "length", PATTERN_SIZE) or 0
        after = self._qint(query, "after", length // 2)
        after = max(0, min(length, after if after is not None else length // 2))
        self._begin(
            200,
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(length))],
        )
        if self.command != "HEAD":
            self._write_views(iter_views(after), chunked=False, rate=None)
        self.close_connection = True
        if not drop:
            self._wait(min(self._qfloat(query, "hang", _MAX_STALL), _MAX_STALL))
            return
        if self._qflag(query, "rst"):  # RST instead of FIN: the client sees ECONNRESET
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _auth_basic(self, query: dict[str, list[str]]) -> None:
        user = self._q(query, "user") or "user"
        password = self._q(query, "password") or "passwd"
        realm = self._q(query, "realm") or "test"
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        ok = False
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            ok = decoded == f"{user}:{password}"
        self._auth_reply(ok, user, realm)

    def _auth_reply(self, ok: bool, user: str, realm: str) -> None:
        if ok:
            self._json(200, {"authenticated": True, "user": user})
        else:
            self._json(
                401,
                {"authenticated": False},
                [("WWW-Authenticate", f'Basic realm="{realm}"')],
            )

    def _cache(self, query: dict[str, list[str]]) -> None:
        """Caching headers on demand; the body names this response (``response N``).

        ``max_age``, ``no_store``, ``no_cache``, ``private``, ``must_revalidate`` make the
        Cache-Control; ``expires=S`` an Expires S seconds ahead (negative: past); ``etag=X`` and
        ``last_modified=1`` validators (a matching If-None-Match / If-Modified-Since answers 304);
        ``vary=Name`` a Vary on that request header, whose value the body then names too.
        Every full response takes the next N, so a test tells a cached body from a fresh one.
        """
        directives = []
        max_age = self._qint(query, "max_age")
        if max_age is not None:
            directives.append(f"max-age={max_age}")
        for flag in ("no_store", "no_cache", "private", "must_revalidate"):
            if self._qflag(query, flag):
                directives.append(flag.replace("_", "-"))
        headers: list[tuple[str, str]] = []
        if directives:
            headers.append(("Cache-Control", ", ".join(directives)))
        expires = self._qint(query, "expires")
        if expires is not None:
            headers.append(("Expires", email.utils.formatdate(time.time() + expires, usegmt=True)))
        etag_opt = self._q(query, "etag")
        etag = f'"{etag_opt}"' if etag_opt else None
        if etag is not None:
            headers.append(("ETag", etag))
        last_modified = self._qflag(query, "last_modified")
        if last_modified:
            headers.append(("Last-Modified", LAST_MODIFIED))
        vary = self._q(query, "vary")
        if vary:
            headers.append(("Vary", vary))
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if (etag is not None and inm is not None and _etag_matches(inm, etag)) or (
            inm is None and last_modified and ims is not None and _same_date(ims, _LAST_MODIFIED_DT)
        ):
            self._respond(304, headers=headers)
            return
        text = f"response {next(_CACHE_SERIAL)}"
        if vary:
            text += f" {vary}={self.headers.get(vary, '')}"
        self._respond(200, text.encode(), headers=headers)

    def _auth_basic_hashed(self, query: dict[str, list[str]]) -> None:
        """/auth/basic, but the URL holds the password's SHA-256 (hex), never the password.

        For tests that must show a password appears nowhere, URLs and their logs included.
        """
        user = self._q(query, "user") or "user"
        digest = (self._q(query, "password_sha256") or "").lower()
        realm = self._q(query, "realm") or "test"
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        ok = False
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            name, _, password = decoded.partition(":")
            ok = name == user and hashlib.sha256(password.encode()).hexdigest() == digest
        self._auth_reply(ok, user, realm)

    def _charset(self, query: dict[str, list[str]]) -> None:
        charset = self._q(query, "charset") or "utf-8"
        text = self._q(query, "text")
        if text is None:
            text = "h\u00e9llo w\u00f6rld"
        try:
            body = text.encode(charset)
        except (LookupError, UnicodeEncodeError) as exc:
            raise _BadRequestError(f"cannot encode in {charset!r}: {exc}") from None
        self._respond(200, body, f"text/plain; charset={charset}")


class LocalServer:
    """Local HTTP/1.1 server (optionally TLS) with deterministic test endpoints.

    ``start()``/``stop()`` are bounded (5 s) so a broken test cannot hang the run,
    and ``stop()`` leaves no thread or socket behind.
    """

    def __init__(self, tls: bool = False, host: str = "127.0.0.1", port: int = 0) -> None:
        self.tls = tls
        self._bind_host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: _TCPServer | None = None
        self._listener: socket.socket | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._body_bytes = 0
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[int, tuple[socket.socket, threading.Thread]] = {}
        self._conn_counter = 0
        self._requests: list[RequestRecord] = []
        self._tmpdir: Path | None = None
        self._ca_bundle: str | None = None
        self._started = False
        self._stopped = False
        self.tls_ca: trustme.CA | None = None
        if tls:
            import trustme

            self.tls_ca = trustme.CA()

    # ----------------------------------------------------------------- properties

    @property
    def host(self) -> str:
        """The address the listener is bound to."""
        return self._bind_host

    @property
    def port(self) -> int:
        """The listening port (the ephemeral one once started with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("LocalServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` or, with TLS, ``https://localhost:PORT`` (the cert name)."""
        if self.tls:
            host = (
                "localhost"
                if self._bind_host in ("127.0.0.1", "localhost", "")
                else self._bind_host
            )
            return f"https://{host}:{self.port}"
        host = self._bind_host or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL for ``path`` (which must start with ``/``)."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        return self.base_url + path

    @property
    def ca_bundle(self) -> str | None:
        """PEM file of the test CA in TLS mode (exists between start and stop), else None."""
        return self._ca_bundle

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the requests seen so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget recorded requests (e.g. between tests sharing one server)."""
        with self._lock:
            self._requests.clear()

    @property
    def connections_accepted(self) -> int:
        """Number of TCP connections accepted so far (lets tests observe keep-alive reuse)."""
        with self._lock:
            return self._conn_counter

    @property
    def body_bytes_sent(self) -> int:
        """Response body bytes written so far by content endpoints (lets tests measure refetches)."""
        with self._lock:
            return self._body_bytes

    def _count_body_bytes(self, n: int) -> None:
        with self._lock:
            self._body_bytes += n

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalServer:
        """Bind, listen and start accepting; raises RuntimeError if not ready within 5 s."""
        if self._started:
            raise RuntimeError("LocalServer can only be started once")
        self._started = True
        try:
            self._server = _TCPServer(self, (self._bind_host, self._requested_port))
            self._port = int(self._server.server_address[1])
            listener: socket.socket = self._server.socket
            if self.tls:
                listener = self._make_ssl_context().wrap_socket(
                    listener, server_side=True, do_handshake_on_connect=False
                )
            self._listener = listener
            self._accept_thread = threading.Thread(
                target=self._accept_loop, name=f"LocalServer-accept-{self._port}", daemon=True
            )
            self._accept_thread.start()
            if not self._ready.wait(_START_TIMEOUT):
                raise RuntimeError("LocalServer did not start listening within 5 s")
        except BaseException as exc:
            self.stop()
            if isinstance(exc, OSError):
                raise RuntimeError(f"LocalServer could not listen: {exc}") from exc
            raise
        logger.debug("LocalServer listening on %s", self.base_url)
        return self

    def _make_ssl_context(self) -> ssl.SSLContext:
        assert self.tls_ca is not None
        cert = self.tls_ca.issue_cert("localhost", "127.0.0.1")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        ctx.set_alpn_protocols(["http/1.1"])
        self._ssl_context = ctx
        self._tmpdir = Path(tempfile.mkdtemp(prefix="urlsession-testing-"))
        bundle = self._tmpdir / "ca.pem"
        self.tls_ca.cert_pem.write_to_path(str(bundle))
        self._ca_bundle = str(bundle)
        return ctx

    def stop(self) -> None:
        """Stop accepting, shut down open connections and join all threads (<= 5 s)."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + _STOP_TIMEOUT
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
            if self._accept_thread.is_alive():
                logger.warning("LocalServer: accept thread did not exit in time")
        if self._listener is not None:
            self._listener.close()
        if self._server is not None:
            self._server.server_close()  # the raw socket (already closed if it was wrapped)
        with self._lock:
            conns = list(self._conns.values())
        for sock, _ in conns:
            # socket.socket.shutdown also for SSLSocket: keep its state, just kick the fd
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for _, thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("LocalServer: %s did not exit in time", thread.name)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self._ca_bundle = None
        logger.debug("LocalServer on port %s stopped", self._port)

    # ----------------------------------------------------------------- threads

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            self._ready.set()
            while not self._stopping.is_set():
                if not sel.select(_ACCEPT_POLL):
                    continue
                try:
                    conn, addr = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if self._stopping.is_set():
                        break
                    logger.warning("LocalServer: accept failed: %r", exc)
                    self._stopping.wait(_ACCEPT_POLL)
                    continue
                self._spawn(conn, addr)

    def _spawn(self, conn: socket.socket, addr: Any) -> None:
        with self._lock:
            if self._stopping.is_set():
                conn.close()
                return
            self._conn_counter += 1
            conn_id = self._conn_counter
            thread = threading.Thread(
                target=self._serve_connection,
                args=(conn_id, conn, addr),
                name=f"LocalServer-conn-{self._port}-{conn_id}",
                daemon=True,
            )
            self._conns[conn_id] = (conn, thread)
        thread.start()

    def _serve_connection(self, conn_id: int, conn: socket.socket, addr: Any) -> None:
        """Per-connection thread: TLS handshake (here, not in accept) then the keep-alive loop."""
        try:
            if isinstance(conn, ssl.SSLSocket):
                conn.settimeout(_HANDSHAKE_TIMEOUT)
                conn.do_handshake()
            assert self._server is not None
            _Handler(conn, addr, self._server)
        except OSError as exc:
            logger.debug("LocalServer: connection %s from %s ended: %r", conn_id, addr, exc)
        except Exception:
            logger.exception("LocalServer: connection %s from %s crashed", conn_id, addr)
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._lock:
                self._conns.pop(conn_id, None)
