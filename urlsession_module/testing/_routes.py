"""The routes of LocalServer: what each path answers (the plumbing is in :mod:`._http`).

Every endpoint is deterministic (see :mod:`._content`); the misbehaving ones (``/stall``,
``/drop``, ``/drop-before-headers``, ``/redirect-loop``) reproduce failures a URLSession client
has to survive. ``RouteHandler._route`` is the table of paths; one method per endpoint follows.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import http.cookies
import itertools
import logging
import socket
import struct
import time

from ._conditional import (
    LAST_MODIFIED,
    LAST_MODIFIED_DT,
    UnsatisfiableRangeError,
    compressed,
    etag_matches,
    iter_source,
    parse_range,
    same_date,
)
from ._content import PATTERN_SIZE, iter_views
from ._http import NO_BODY_STATUSES, BadRequestError, Body, HTTPHandler

__all__ = ["RouteHandler"]

logger = logging.getLogger(__name__)

_DEFAULT_WRITE = PATTERN_SIZE
_THROTTLE_WRITE = 16 * 1024
_MAX_STALL = 60.0
_CACHE_SERIAL = itertools.count(1)  # /cache: every full response a new number


class RouteHandler(HTTPHandler):
    """Answers LocalServer's endpoints; one instance per connection (keep-alive loop)."""

    def _route(self, path: str, qs: str, query: dict[str, list[str]], body: Body) -> None:
        """The table of paths: one branch per endpoint, 404 for the rest."""
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
            raise BadRequestError(f"expected a number in the path, got {text!r}") from None
        if value < 0:
            raise BadRequestError("negative number in the path")
        return value

    # ----------------------------------------------------------------- endpoints

    def _bytes(self, n: int, query: dict[str, list[str]]) -> None:
        """Deterministic content with ranges, validators, encodings and framing options."""
        encoding = "gzip" if self._qflag(query, "gzip") else None
        if encoding is None and self._qflag(query, "deflate"):
            encoding = "deflate"
        data = compressed(n, encoding) if encoding else None
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
            raise BadRequestError("rate must be > 0")
        if rate:
            chunk = min(chunk, _THROTTLE_WRITE)
        status_override = self._qint(query, "status")
        if status_override is not None and not 200 <= status_override <= 599:
            raise BadRequestError("status must be within 200..599")

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
                parsed = parse_range(range_header, total)
            except UnsatisfiableRangeError:
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
            self._write_views(iter_source(data, start, end, chunk), chunked, rate)

    def _not_modified(self, etag: str) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return etag_matches(inm, etag)
        ims = self.headers.get("If-Modified-Since")
        if ims is None:
            return False
        try:
            return email.utils.parsedate_to_datetime(ims) >= LAST_MODIFIED_DT
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
        return same_date(value, LAST_MODIFIED_DT)

    def _echo(self, path: str, query: dict[str, list[str]], body: Body) -> None:
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

    def _upload(self, body: Body) -> None:
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
                raise BadRequestError(f"header must be Name:Value, got {item!r}")
            extra.append((name.strip(), value.strip()))
        text = self._q(query, "body")
        body = (text if text is not None else f"status {code_text}").encode("utf-8")
        self._respond(code, body if code not in NO_BODY_STATUSES else b"", headers=extra)

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
            raise BadRequestError("code must be a 3xx status")
        return code

    def _redirect(
        self, n: int, path: str, qs: str, query: dict[str, list[str]], body: Body
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
            raise BadRequestError("missing ?url=")
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
        self._auth_reply(self._basic_credentials() == f"{user}:{password}", user, realm)

    def _basic_credentials(self) -> str:
        """The decoded ``user:password`` of a Basic Authorization header; "" for anything else."""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return ""
        try:
            return base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""

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
        if (etag is not None and inm is not None and etag_matches(inm, etag)) or (
            inm is None and last_modified and ims is not None and same_date(ims, LAST_MODIFIED_DT)
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
        name, _, password = self._basic_credentials().partition(":")
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
            raise BadRequestError(f"cannot encode in {charset!r}: {exc}") from None
        self._respond(200, body, f"text/plain; charset={charset}")
