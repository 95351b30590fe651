"""The HTTP/1.1 plumbing of LocalServer: request parsing, body reading, response writing.

:class:`HTTPHandler` is one connection's keep-alive loop over the stdlib
``BaseHTTPRequestHandler``: it accepts any method, drains every request body (Content-Length
or chunked) through one reused buffer so keep-alive stays in sync, records each request for
the tests, and answers ``400``/``500`` itself when a route raises. What each path answers is
in :mod:`._routes` (``RouteHandler._route``); nothing here knows a path.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from ._server import LocalServer

__all__ = ["AbortError", "BadRequestError", "Body", "HTTPHandler", "RequestRecord"]

logger = logging.getLogger(__name__)

IDLE_TIMEOUT = 120.0
_BODY_BUFFER = 1 << 20  # reused per connection for request bodies
_ECHO_TEXT_LIMIT = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})

_T = TypeVar("_T")
_D = TypeVar("_D")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it, so tests can assert what the client really sent."""

    method: str
    path: str  # path + query, exactly as received
    headers: dict[str, str]  # lower-cased names, repeated headers joined with ", "
    body_length: int
    body_sha256: str


@dataclass(frozen=True)
class Body:
    """A drained request body: size and digest always, text only when small."""

    length: int
    sha256: str
    data: bytes | None  # None when longer than _ECHO_TEXT_LIMIT


class BadRequestError(Exception):
    """Raised by endpoint code for invalid parameters; answered with 400."""


class AbortError(Exception):
    """Drop the connection without (further) response, e.g. because the server stops."""


class HTTPHandler(http.server.BaseHTTPRequestHandler):
    """One connection's keep-alive loop; subclasses answer each request in ``_route``."""

    protocol_version = "HTTP/1.1"
    server_version = "urlsession-testing/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    rbufsize = 64 * 1024
    timeout = IDLE_TIMEOUT

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
        except AbortError as exc:
            logger.debug("%s: connection aborted: %s", self.address_string(), exc)
            self.close_connection = True
        except OSError as exc:  # BrokenPipe, ConnectionReset, SSL errors, shutdown by stop()
            logger.debug("%s: client went away: %r", self.address_string(), exc)
            self.close_connection = True

    @property
    def _owner(self) -> LocalServer:
        """The LocalServer (handed to the stdlib handler as its ``server``)."""
        return cast("LocalServer", self.server)

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake up (and abort the connection) as soon as the server stops."""
        if seconds > 0 and self._owner.wait_stop(seconds):
            raise AbortError("server stopping")

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

    def _read_body(self) -> Body:
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
                raise BadRequestError("conflicting Content-Length headers")
            if lengths:
                try:
                    length = int(lengths.pop())
                except ValueError:
                    raise BadRequestError("invalid Content-Length") from None
                if length < 0:
                    raise BadRequestError("invalid Content-Length")
                self._read_exact(length, feed)
        return Body(total, digest.hexdigest(), bytes(kept) if keep else None)

    def _read_exact(self, n: int, feed: Callable[[memoryview], None]) -> None:
        buf = self._body_buffer()
        size = len(buf)
        while n > 0:
            got = self.rfile.readinto(buf[: min(n, size)])
            if not got:
                raise AbortError("EOF inside request body")
            feed(buf[:got])
            n -= got

    def _read_chunked(self, feed: Callable[[memoryview], None]) -> None:
        while True:
            line = self.rfile.readline(1025)
            if not line:
                raise AbortError("EOF inside chunked request body")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequestError("invalid chunk size") from None
            if size < 0:
                raise BadRequestError("invalid chunk size")
            if size == 0:
                break
            self._read_exact(size, feed)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequestError("missing CRLF after chunk")
        while True:  # trailer section
            line = self.rfile.readline(65537)
            if not line:
                raise AbortError("EOF inside chunked trailers")
            if line in (b"\r\n", b"\n"):
                return

    # ----------------------------------------------------------------- responses

    def _begin(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send status line and headers (``?close=1`` adds ``Connection: close``)."""
        headers = list(headers)
        for name, value in headers:  # validate first: a half-buffered header block can't be undone
            if any(c in name or c in value for c in "\r\n\0"):
                raise BadRequestError("header injection refused")
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self._force_close:
            self.send_header("Connection", "close")
        self.end_headers()
        self._headers_sent = True

    def _has_body(self, status: int) -> bool:
        return self.command != "HEAD" and status not in NO_BODY_STATUSES

    def _respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain; charset=utf-8",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send a complete small response (HEAD/204/304 get headers only)."""
        hdrs = list(headers)
        if status not in NO_BODY_STATUSES:
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
        owner = self._owner
        started = time.monotonic()
        sent = 0
        for view in views:
            if owner.stopping:
                raise AbortError("server stopping")
            if chunked:
                write(b"%x\r\n" % len(view))
                write(view)
                write(b"\r\n")
            else:
                write(view)
            owner._count_body_bytes(len(view))
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
        return self._qparse(query, name, default, int, "an integer")

    def _qfloat(self, query: dict[str, list[str]], name: str, default: float) -> float:
        return self._qparse(query, name, default, float, "a number")

    def _qparse(
        self,
        query: dict[str, list[str]],
        name: str,
        default: _D,
        parse: Callable[[str], _T],
        what: str,
    ) -> _T | _D:
        """``parse`` of the parameter, ``default`` when absent or empty; 400 if it won't parse."""
        value = self._q(query, name)
        if value is None or value == "":
            return default
        try:
            return parse(value)
        except ValueError:
            raise BadRequestError(f"query parameter {name!r} must be {what}") from None

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
        except BadRequestError as exc:
            if self._headers_sent:
                raise AbortError(f"bad request after headers: {exc}") from None
            self._force_close = True  # the request stream may be out of sync
            self._respond(400, f"bad request: {exc}\n".encode())
        except AbortError:
            raise
        except OSError:
            raise
        except Exception:
            logger.exception("LocalServer: handler error for %s %s", self.command, target)
            if self._headers_sent:
                raise AbortError("handler error after headers") from None
            self._force_close = True
            self._respond(500, b"internal server error\n")

    def _route(self, path: str, qs: str, query: dict[str, list[str]], body: Body) -> None:
        """Answer one request whose body is already read (``qs``: the raw query string)."""
        raise NotImplementedError
