"""The edge where bytes meet urllib3: one pool per session, the streaming loops, error mapping.

This is the only module that imports urllib3. It drives a task's sans-IO machine through a
:class:`TransferControl` (the in-process session and the background transfer process each supply
one), following Foundation's redirect rules itself (urllib3 is called with ``redirect=False`` and
``retries=False`` so the real error surfaces), streaming bodies in blocks, and resuming with
``Range``/``If-Range`` when a connection had to be dropped. Every urllib3 or OS error is mapped to
a URLSession code in one table, most specific first (:func:`map_exception`).
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import http.client
import io
import logging
import mimetypes
import os
import select
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from email.message import Message
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    InvalidChunkLength,
    InvalidHeader,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from ._configuration import ConfigValues
from ._state import (
    BodyReceived,
    BodySent,
    DownloadFinished,
    Failed,
    Finished,
    Input,
    Redirected,
    Request,
    ResponseInfo,
    ResponseStarted,
    TaskKind,
    resume_validator,
)
from ._storage import part_name, safe_name
from ._stores import (
    CacheLookup,
    Exchange,
    Stored,
    Stores,
    memory_stores,
    redact,
    with_userinfo,
    without_userinfo,
)
from .exceptions import ErrorCode, TransferError

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

__all__ = ["TransferControl", "Transport", "build_request", "map_exception"]

log = logging.getLogger(__name__)

USER_AGENT = "urlsession_module/0.1 (com.appcelerator.urlSession)"
BLOCK = 256 * 1024  # request body blocks: what one uploadprogress can report at most
READ_BLOCK = 1024 * 1024  # the reused buffer a response body is read into
# Progress is coalesced: a block is reported once PROGRESS_STEP bytes (or 1 % of the expected
# total, if less) or PROGRESS_INTERVAL seconds have gathered since the last report; bytes that
# wait are reported within PROGRESS_INTERVAL even if the wire stalls, and the last bytes always
# are, before the transfer's end, so totals are exact.
PROGRESS_INTERVAL = 0.003
PROGRESS_STEP = 1 << 20
MAX_REDIRECTS = 20
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")
BODY_HEADERS = ("content-type", "content-length", "transfer-encoding", "content-encoding")


class TransferControl(Protocol):
    """What the transport needs from whoever owns the task: a machine to feed, user control."""

    def feed(self, event: Input) -> None:
        """Send one input to the task's machine and deliver what it answers.

        May come while the task is suspended (a block, a response head or the end was already
        on its way): the owner holds such inputs and feeds them on resume, since the machine
        takes nothing from the wire while suspended.
        """

    @property
    def cancelled(self) -> bool:
        """The user asked to cancel; stop at the next block."""

    def wait_running(self, timeout: float) -> bool:
        """Block while suspended, at most ``timeout`` s; True once running (or cancelled)."""

    def set_abort(self, abort: Callable[[], None] | None) -> None:
        """Give the owner a way to break a blocking send or read when the user cancels.

        Called from the sending thread while a request goes out and its response is read; if
        the task is already cancelled the owner calls ``abort`` at once.
        """


class _CancelledSignal(Exception):
    """Unwinds the transfer when the user cancelled."""


class _LetGoSignal(Exception):
    """A suspended transfer let go of its connection; resume with Range when resumed."""


# -- request building -------------------------------------------------------------------------------


def build_request(
    method: str,
    url: str,
    config_headers: dict[str, str],
    request_headers: dict[str, str],
    *,
    body: bytes | None = None,
    body_path: str | None = None,
    content_type: str | None = None,
    accept_encoding: bool = True,
    credential: tuple[str, str] | None = None,
) -> Request:
    """Merge headers the Foundation way and describe the body; the call's headers win.

    A ``requestHeaders`` entry replaces a configuration header of the same name whatever its
    case, so each header goes out once. A bodiless request gets no default Content-Type.
    A ``credential`` travels as the URL's user info (to the transfer process too): it answers a
    401 from that origin only, and never goes on the wire by itself.
    """
    url = with_userinfo(url, credential)
    merged: dict[str, tuple[str, str]] = {}
    defaults = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if accept_encoding:
        defaults["Accept-Encoding"] = "gzip, deflate"
    for source in (defaults, config_headers, request_headers):
        for name, value in source.items():
            merged[name.lower()] = (name, value)
    length = 0
    if body is not None:
        length = len(body)
    elif body_path is not None:
        length = os.path.getsize(body_path)
    has_body = body is not None or body_path is not None
    if has_body:
        merged.pop("transfer-encoding", None)
        merged["content-length"] = ("Content-Length", str(length))
        if "content-type" not in merged and content_type:
            merged["content-type"] = ("Content-Type", content_type)
    else:
        merged.pop("content-length", None)
    return Request(
        method=method,
        url=url,
        headers=tuple(merged.values()),
        body=body,
        body_path=body_path,
        body_length=length,
    )


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def redirect_request(request: Request, status: int, location: str) -> Request:
    """The request Foundation makes for a redirect (its rules, not urllib3's).

    301/302 turn POST into GET; 303 turns any method but HEAD into GET; both drop the body.
    307/308 keep method and body. Credentials never go to another origin.
    """
    target = urljoin(request.url, location.strip())
    scheme = urlsplit(target).scheme.lower()
    if scheme not in ("http", "https") or not urlsplit(target).hostname:
        raise TransferError(ErrorCode.UNSUPPORTED_URL, f"redirect to an unsupported URL: {target}")
    method = request.method
    keep_body = request.has_body
    if (status in (301, 302) and method == "POST") or (status == 303 and method != "HEAD"):
        method, keep_body = "GET", False
    drop = set() if keep_body else set(BODY_HEADERS)
    if origin(target) != origin(request.url):
        drop.update(CREDENTIAL_HEADERS)
    headers = tuple((k, v) for k, v in request.headers if k.lower() not in drop)
    if keep_body:
        return Request(
            method, target, headers, request.body, request.body_path, request.body_length
        )
    return Request(method, target, headers)


# -- error mapping ----------------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (urllib3 puts causes in args and ``reason``)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for inner in (*e.args, getattr(e, "reason", None), e.__cause__, e.__context__):
            if isinstance(inner, BaseException):
                todo.append(inner)


def _ssl_code(exc: BaseException) -> ErrorCode:
    for e in _causes(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            if e.verify_code in (9, 10):  # X509_V_ERR_CERT_NOT_YET_VALID / _HAS_EXPIRED
                return ErrorCode.SERVER_CERTIFICATE_HAS_BAD_DATE
            return ErrorCode.SERVER_CERTIFICATE_UNTRUSTED
        if isinstance(e, ssl.CertificateError):
            return ErrorCode.SERVER_CERTIFICATE_UNTRUSTED
    return ErrorCode.SECURE_CONNECTION_FAILED


def _raised_in(exc: BaseException, modules: tuple[str, ...], functions: tuple[str, ...]) -> bool:
    """Whether ``exc`` was raised inside one of ``functions`` of a file ending in ``modules``."""
    return any(
        frame.f_code.co_name in functions
        and frame.f_code.co_filename.replace(os.sep, "/").endswith(modules)
        for frame, _line in traceback.walk_tb(exc.__traceback__)
    )


def _in_tls_handshake(exc: BaseException) -> bool:
    """A connection that broke while the TLS handshake ran (Foundation says -1200 for that)."""
    return any(
        isinstance(e, OSError)
        and _raised_in(e, ("/ssl.py",), ("do_handshake", "_create", "wrap_socket"))
        for e in _causes(exc)
    )


def _protocol_code(exc: BaseException) -> ErrorCode:
    if _in_tls_handshake(exc):
        return ErrorCode.SECURE_CONNECTION_FAILED
    for e in _causes(exc):
        if isinstance(e, InvalidChunkLength) or _bad_chunk_size(e):
            return ErrorCode.BAD_SERVER_RESPONSE  # a chunk-size line that is not hex: framing
        if isinstance(e, http.client.IncompleteRead):
            return ErrorCode.NETWORK_CONNECTION_LOST
        if isinstance(e, (http.client.BadStatusLine, http.client.LineTooLong)):
            if isinstance(e, http.client.RemoteDisconnected):
                return ErrorCode.NETWORK_CONNECTION_LOST
            return ErrorCode.BAD_SERVER_RESPONSE
        if isinstance(e, http.client.HTTPException) and not isinstance(
            e, http.client.IncompleteRead
        ):
            return ErrorCode.BAD_SERVER_RESPONSE
    return ErrorCode.NETWORK_CONNECTION_LOST


def _bad_chunk_size(exc: BaseException) -> bool:
    """http.client's IncompleteRead for a chunk-size line that is there but not hexadecimal.

    http.client raises ``IncompleteRead(b'')`` both when the connection ends where a chunk-size
    line should be (lost: -1005) and when that line is garbage (bad framing: -1011); only the
    ``int(line, 16)`` error it was raised from tells them apart.
    """
    context = exc.__context__
    return (
        isinstance(exc, http.client.IncompleteRead)
        and not exc.partial
        and isinstance(context, ValueError)
        and "base 16" in str(context)
        and not str(context).endswith("b''")
    )


def _connection_code(exc: BaseException) -> ErrorCode:
    if _in_tls_handshake(exc):
        return ErrorCode.SECURE_CONNECTION_FAILED
    return ErrorCode.NETWORK_CONNECTION_LOST


# Where a ValueError means "this URL cannot be used": a redirect's Location that does not parse
# (``http://[::1``, a port out of range) or that http.client refuses to put on the wire.
_URL_PARSERS = ("/urllib/parse.py", "/urllib3/util/url.py", "/http/client.py")
_URL_FUNCTIONS = (
    "urlsplit",
    "urlparse",
    "urljoin",
    "port",
    "_check_bracketed_host",
    "_checknetloc",
    "parse_url",
    "_validate_path",
    "_validate_host",
)


def _value_code(exc: BaseException) -> ErrorCode:
    if not isinstance(exc, UnicodeError) and _raised_in(exc, _URL_PARSERS, _URL_FUNCTIONS):
        return ErrorCode.BAD_URL
    return ErrorCode.UNKNOWN


# Most specific first: NameResolutionError < NewConnectionError < ConnectTimeoutError.
_ERROR_TABLE: tuple[
    tuple[type[BaseException], ErrorCode | Callable[[BaseException], ErrorCode]], ...
] = (
    (
        TransferError,
        lambda e: ErrorCode(e.code) if isinstance(e, TransferError) else ErrorCode.UNKNOWN,
    ),
    (NameResolutionError, ErrorCode.CANNOT_FIND_HOST),
    (NewConnectionError, ErrorCode.CANNOT_CONNECT_TO_HOST),
    (ConnectTimeoutError, ErrorCode.TIMED_OUT),
    (ReadTimeoutError, ErrorCode.TIMED_OUT),
    (SSLError, _ssl_code),
    (ssl.SSLError, _ssl_code),
    (ProxyError, ErrorCode.CANNOT_CONNECT_TO_HOST),
    # A known encoding (gzip, deflate) whose data does not decode: Foundation's -1015;
    # -1016 is for an encoding it does not know, which urllib3 passes through undecoded.
    (DecodeError, ErrorCode.CANNOT_DECODE_RAW_DATA),
    (InvalidHeader, ErrorCode.BAD_SERVER_RESPONSE),  # e.g. two Content-Lengths that disagree
    (LocationValueError, ErrorCode.BAD_URL),
    (ProtocolError, _protocol_code),
    (http.client.HTTPException, _protocol_code),
    (socket.gaierror, ErrorCode.CANNOT_FIND_HOST),
    (ConnectionRefusedError, ErrorCode.CANNOT_CONNECT_TO_HOST),
    (TimeoutError, ErrorCode.TIMED_OUT),
    (ConnectionError, _connection_code),
    (ValueError, _value_code),
    (HTTPError, ErrorCode.UNKNOWN),
)


def map_exception(exc: BaseException) -> TransferError:
    """The URLSession error for an exception raised while transferring.

    Always a fresh exception without a traceback: the caught one holds the transfer's frames
    (its response, hence its connection pool), and a caller that keeps the answer in a local
    would otherwise make a reference cycle that keeps the connection open until the garbage
    collector runs, past the session's invalidation.
    """
    if isinstance(exc, TransferError):
        return TransferError(exc.code, exc.message)
    for kind, code in _ERROR_TABLE:
        if isinstance(exc, kind):
            resolved = code(exc) if callable(code) else code
            return TransferError(resolved, f"{resolved.description} ({_describe(exc)})")
    return TransferError(ErrorCode.UNKNOWN, f"unexpected error: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def _file_error(code: ErrorCode, exc: OSError, path: str) -> TransferError:
    return TransferError(code, f"{code.description} ({exc.strerror or exc}: {path})")


# -- bodies -----------------------------------------------------------------------------------------


class _Progress:
    """Coalesced byte counts for one direction of one transfer: BodyReceived or BodySent.

    ``add`` reports at once when the gathered bytes reach 1 % of ``total`` (when known) or
    ``PROGRESS_INTERVAL`` has passed since the last report; otherwise the bytes wait for the next
    block, ``overdue`` or ``flush``. One input per report, never more than one per block.
    """

    __slots__ = ("_ctl", "_kind", "_last", "_step", "pending")

    def __init__(
        self, ctl: TransferControl, kind: type[BodyReceived] | type[BodySent], total: int
    ) -> None:
        self._ctl = ctl
        self._kind = kind
        self._step = max(1, min(PROGRESS_STEP, total // 100)) if total > 0 else PROGRESS_STEP
        self._last = time.monotonic()
        self.pending = 0

    def add(self, n: int) -> None:
        self.pending += n
        now = time.monotonic()
        if self.pending >= self._step or now - self._last >= PROGRESS_INTERVAL:
            self._report(now)

    def wait(self) -> float:
        """How long the waiting bytes may still wait (0: report them now)."""
        return max(0.0, self._last + PROGRESS_INTERVAL - time.monotonic())

    def flush(self) -> None:
        if self.pending:
            self._report(time.monotonic())

    def _report(self, now: float) -> None:
        n, self.pending, self._last = self.pending, 0, now
        self._ctl.feed(self._kind(n))


class _RawResponse(http.client.HTTPResponse):
    """http.client's response with ``readinto1``: one read of the socket into a reused buffer.

    urllib3's ``read1``/``stream`` hand out a new bytes object per read (and ``read1`` copies
    through a BytesIO when a read comes up short); a body without Content-Encoding is read here
    instead, with http.client's own bookkeeping (``length``, closing at the end), as its
    ``readinto`` does, so the connection goes back to the pool as usual.
    """

    def begin(self) -> None:
        super().begin()
        if isinstance(self.fp, _HeadReplay):
            self.fp = self.fp.real  # the head is parsed: the body comes from the socket again

    def _read_status(self) -> tuple[str, int, str]:
        # http.client skips only 100 Continue; Foundation skips every interim 1xx response
        # (102 Processing, 103 Early Hints) and reports the final one. 101 is final for us.
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if 100 < status < 200 and status != 101:
                http.client.parse_headers(self.fp)  # the interim response's headers, dropped
                continue
            if status != 100:  # begin() skips a 100 itself and comes back here
                self.fp = _HeadReplay(_read_head(self.fp), self.fp)  # type: ignore[assignment]
            return version, status, reason

    def readinto1(self, buffer: Any) -> int:
        b = buffer if isinstance(buffer, memoryview) else memoryview(buffer)
        if self.fp is None:
            return 0
        if self.chunked or self._method == "HEAD":  # type: ignore[attr-defined]
            data = self.read1(len(b))  # http.client's chunk framing
            b[: len(data)] = data
            return len(data)
        if self.length is not None and len(b) > self.length:
            b = b[: self.length]
        n = self.fp.readinto1(b)
        if not n and b:
            self._close_conn()  # type: ignore[attr-defined]
            if self.length:  # the server closed before Content-Length bytes came
                raise http.client.IncompleteRead(b"", self.length)
        elif self.length is not None:
            self.length -= n
            if not self.length:
                self._close_conn()  # type: ignore[attr-defined]
        return n


# Foundation's limits on a response head, not http.client's (which refuses a 101st header line).
_MAX_HEAD_LINES = 1000
_MAX_HEAD_BYTES = 256 * 1024


def _read_head(fp: Any) -> bytes:
    """The header lines of a response, up to and excluding the blank line that ends them.

    A head cut off by the server closing is the connection lost (-1005), not an empty success
    as http.client would have it. The head is read one socket read at a time (``peek``), so the
    task's resource deadline is checked however slowly the server trickles it (slow-loris).
    """
    deadline: float | None = getattr(_sending, "deadline", None)
    lines: list[bytes] = []
    line = b""
    size = 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise TransferError(ErrorCode.TIMED_OUT, "the resource timeout passed (response head)")
        data = fp.peek(1)
        if not data:
            raise http.client.RemoteDisconnected("the connection closed inside the response head")
        end = data.find(b"\n")
        line += fp.read(len(data) if end < 0 else end + 1)
        if len(line) > 65536:
            raise http.client.LineTooLong("header line")
        if end < 0:
            continue
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)
        lines.append(line)
        size += len(line)
        line = b""
        if len(lines) > _MAX_HEAD_LINES or size > _MAX_HEAD_BYTES:
            raise http.client.HTTPException("response head too large")


class _HeadReplay:
    """Hands a head already read (and checked) to http.client's parser as one line.

    ``parse_headers`` joins the lines it reads and parses the whole; giving it the head as one
    "line" keeps its per-line count (100) out of the way. Everything else goes to the socket.
    """

    def __init__(self, head: bytes, real: Any) -> None:
        self.real = real
        self._lines = [head, b"\r\n"] if head else [b"\r\n"]

    def readline(self, limit: int = -1) -> bytes:
        if self._lines:
            return self._lines.pop(0)
        return bytes(self.real.readline(limit))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _raw_reader(resp: urllib3.BaseHTTPResponse) -> _RawResponse | None:
    """The http.client response under ``resp`` when its body can be read as is (no decoding)."""
    raw = getattr(resp, "_fp", None)
    if not isinstance(raw, _RawResponse) or type(resp) is not urllib3.HTTPResponse:
        return None
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    return raw if encoding in ("identity", "") else None


class _Sink:
    """Where a response body goes: memory for data tasks, a private file for downloads."""

    def __init__(self, path: str | None, keep: int = 0) -> None:
        """``keep``: bytes of an earlier attempt's file to continue after (the rest is cut)."""
        self.path = path
        self.size = 0
        self._buf = bytearray()
        self._fd: int | None = None
        if path is not None:
            flags = os.O_WRONLY | os.O_CREAT | (0 if keep else os.O_TRUNC)
            try:
                self._fd = os.open(path, flags, 0o600)
            except OSError as exc:
                raise _file_error(ErrorCode.CANNOT_CREATE_FILE, exc, path) from None
            if keep:
                self.truncate(keep)

    def write(self, data: bytes | memoryview) -> None:
        if self._fd is None:
            self._buf += data
        else:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._fd, view)
                except OSError as exc:
                    raise _file_error(
                        ErrorCode.CANNOT_WRITE_TO_FILE, exc, self.path or ""
                    ) from None
                view = view[n:]
        self.size += len(data)

    def truncate(self, offset: int) -> None:
        """Keep the first ``offset`` bytes (a 206 continues there; a 200 starts over at 0)."""
        if self._fd is None:
            del self._buf[offset:]
        else:
            os.ftruncate(self._fd, offset)
            os.lseek(self._fd, offset, os.SEEK_SET)
        self.size = offset

    def text(self, charset: str) -> str:
        try:
            return self._buf.decode(charset, errors="replace")
        except LookupError:
            return self._buf.decode("utf-8", errors="replace")

    def finish(self, final_path: str, durable: bool) -> None:
        assert self._fd is not None and self.path is not None
        try:
            if durable:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            os.replace(self.path, final_path)
            if durable:  # the rename itself must survive a crash too: sync the directory entry
                dir_fd = os.open(os.path.dirname(final_path) or ".", os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            raise _file_error(ErrorCode.CANNOT_MOVE_FILE, exc, final_path) from None

    def close(self) -> None:
        """Let go of the file but keep what it holds (a later attempt may continue it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self._buf = bytearray()


def _charset(content_type: str | None) -> str:
    if not content_type:
        return "utf-8"
    msg = Message()
    msg["content-type"] = content_type
    charset = msg.get_param("charset")
    if isinstance(charset, str):
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


def _filename(url: str, disposition: str | None) -> str:
    if disposition:
        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_filename()
        if name:
            return os.path.basename(name)
    name = os.path.basename(unquote(urlsplit(url).path))
    return name or "download"


# -- connections that a cancel can interrupt -------------------------------------------------------

# What this thread is sending (urllib3 gives no handle on the connection until urlopen returns):
# ``ctl``, the task, so its connection can hand it a way to break the wait for the response head;
# ``reused``, whether that connection had served a request before (None: not known yet).
_sending = threading.local()


def _offer_abort(conn: HTTPConnection) -> None:
    ctl: TransferControl | None = getattr(_sending, "ctl", None)
    sock = conn.sock
    if ctl is not None and sock is not None:
        ctl.set_abort(lambda: _shutdown(sock))


def _response_awaited(conn: HTTPConnection) -> None:
    _offer_abort(conn)
    served = getattr(conn, "_urlsession_served", 0)
    _sending.reused = served > 0
    conn._urlsession_served = served + 1  # type: ignore[attr-defined]


class _AbortableHTTPConnection(HTTPConnection):
    """A connection a cancel can interrupt, wherever the task waits on it."""

    response_class = _RawResponse

    def send(self, data: Any) -> None:
        _offer_abort(self)  # a body block blocked in sendall (server not reading) is cancellable
        super().send(data)

    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override]
        _response_awaited(self)
        return super().getresponse()


class _AbortableHTTPSConnection(_AbortableHTTPConnection, HTTPSConnection):
    """The same over TLS (the method resolution order puts our hooks before HTTPSConnection's)."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _AbortableHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _AbortableHTTPSConnection

    def _validate_conn(self, conn: BaseHTTPConnection) -> None:
        if self.cert_reqs != "CERT_NONE":
            super()._validate_conn(conn)
            return
        # tlsVerify=False is the session's explicit choice (logged once when the session is
        # made): connect as urllib3 does, without its InsecureRequestWarning on every request,
        # which a warnings filter set to "error" would turn into a failed task.
        if conn.is_closed:
            conn.connect()


# -- the transport ----------------------------------------------------------------------------------


class Transport:
    """One per session: its connection pool and the loops that move a task's bytes."""

    def __init__(self, config: ConfigValues, stores: Stores | None = None) -> None:
        """``stores``: the session's cookies, cache and credentials (taken over: ``close``
        releases them); private in-memory ones when not given."""
        self.config = config
        self.stores = stores if stores is not None else memory_stores()
        self._released = False
        kw: dict[str, object] = {
            "num_pools": 32,
            "maxsize": config.httpMaximumConnectionsPerHost,
            "block": False,
            "retries": False,
        }
        if config.tlsVerify:
            kw["cert_reqs"] = "CERT_REQUIRED"
            if config.caBundle:
                kw["ca_certs"] = config.caBundle
        else:
            log.warning("TLS certificate verification is off for this session (tlsVerify=False)")
            kw["cert_reqs"] = "CERT_NONE"
            kw["assert_hostname"] = False
        self._pool: urllib3.PoolManager
        if config.proxyURL:
            self._pool = urllib3.ProxyManager(config.proxyURL, **kw)  # type: ignore[arg-type]
        else:
            self._pool = urllib3.PoolManager(**kw)  # type: ignore[arg-type]
        self._pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def close(self) -> None:
        """The session is gone (no task runs): close every pooled connection now.

        ``PoolManager.clear()`` alone only forgets the pools (their sockets close when the
        garbage collector gets to them), so each pool is closed first.
        """
        pools = self._pool.pools
        for key in list(pools.keys()):
            pool = pools.get(key)
            if pool is not None:
                pool.close()
        self._pool.clear()
        if not self._released:
            self._released = True
            self.stores.release()

    def clear_idle(self) -> None:
        """Drop the pools (flush/reset) without closing them under a task that just took one:
        tasks running keep theirs until they end; new ones get fresh pools."""
        self._pool.clear()

    # -- one task -----------------------------------------------------------------------------

    def run(
        self,
        ctl: TransferControl,
        kind: TaskKind,
        request: Request,
        download_dir: str | None,
        identifier: str,
        *,
        durable: bool = False,
        resume: tuple[int, str] | None = None,
        keep_partial: bool = False,
    ) -> None:
        """Move one task's bytes, feeding its machine; always ends with Finished or Failed.

        ``resume=(size, validator)`` continues a download whose ``.part`` file holds ``size``
        bytes of an earlier attempt (Range + If-Range; the machine must already count them).
        ``keep_partial`` keeps that file when the transfer fails (not when it is cancelled),
        so the owner can resume it later.
        """
        sink: _Sink | None = None
        keep, validator = resume if resume is not None and resume[0] > 0 else (0, None)
        try:
            if kind is TaskKind.DOWNLOAD:
                assert download_dir is not None
                sink = _Sink(os.path.join(download_dir, part_name(identifier)), keep)
            else:
                sink = _Sink(None)
            text = self._transfer(
                ctl, kind, request, sink, download_dir, identifier, durable, validator
            )
        except BaseException as exc:
            if sink is not None:
                cancelled = ctl.cancelled or isinstance(exc, _CancelledSignal)
                if keep_partial and not cancelled:
                    sink.close()
                else:
                    sink.discard()
            if ctl.cancelled or isinstance(exc, _CancelledSignal):
                ctl.feed(Failed(ErrorCode.CANCELLED))
            elif isinstance(exc, Exception):
                err = map_exception(exc)
                log.debug("task %s failed: %s", identifier, err, exc_info=exc)
                ctl.feed(Failed(err.code, err.message))
            else:
                ctl.feed(Failed(ErrorCode.CANCELLED, "interrupted"))
                raise
        else:
            ctl.feed(Finished(text))
        finally:
            ctl.set_abort(None)

    def _transfer(
        self,
        ctl: TransferControl,
        kind: TaskKind,
        request: Request,
        sink: _Sink,
        download_dir: str | None,
        identifier: str,
        durable: bool,
        validator: str | None = None,
    ) -> str | None:
        cfg = self.config
        deadline = time.monotonic() + cfg.timeoutIntervalForResource
        self._checkpoint(ctl, deadline)  # a task suspended before it started waits here
        while True:  # one pass per connection; a suspended task that let go comes round again
            resume_at = sink.size if (sink.size and validator) else 0
            resp, request = self._open_following_redirects(
                ctl, request, resume_at, validator, deadline, kind
            )
            if resume_at and resp.status not in (200, 206):
                # e.g. 416: the resource changed size under us; ask again for all of it.
                ctl.set_abort(None)
                resp.drain_conn()
                resp.release_conn()
                validator = None
                sink.truncate(0)
                continue
            clean = False
            try:
                self._start_body(ctl, resp, request, sink, resume_at)
                validator = _validator(resp)
                self._stream(ctl, resp, sink, deadline)
                clean = True
            except _LetGoSignal:
                continue
            finally:
                ctl.set_abort(None)
                if not clean:  # never hand a half-read connection back to the pool
                    resp.close()
                resp.release_conn()
            break
        info = ResponseInfo(request.url, resp.status, tuple(resp.headers.items()))
        if kind is TaskKind.DOWNLOAD:
            assert download_dir is not None and sink.path is not None
            if ctl.cancelled:
                raise _CancelledSignal
            final = os.path.join(
                download_dir,
                f"{safe_name(identifier)}-"
                f"{safe_name(_filename(info.url, info.header('content-disposition')), 'download')}",
            )
            sink.finish(final, durable)
            mime = (info.header("content-type") or "").split(";")[0].strip()
            mime = mime or mimetypes.guess_type(final)[0] or "application/octet-stream"
            ctl.feed(DownloadFinished(final, mime))
            return None
        return sink.text(_charset(info.header("content-type")))

    def _open_following_redirects(
        self,
        ctl: TransferControl,
        request: Request,
        resume_at: int,
        validator: str | None,
        deadline: float,
        kind: TaskKind | None = None,
    ) -> tuple[urllib3.BaseHTTPResponse, Request]:
        """The final response and the request that got it, each hop through the stores.

        Cookies go and come on every hop by the cookie rules (never by the Authorization rule);
        a data task's GET may be answered by the cache without the network.
        """
        exchange = self.stores.exchange(request.url, self.config)
        cacheable = kind is TaskKind.DATA and not resume_at
        redirects = 0
        while True:
            if ctl.cancelled:
                raise _CancelledSignal
            resp = self._open_hop(ctl, request, resume_at, validator, deadline, exchange, cacheable)
            location = resp.headers.get("Location")
            if resp.status not in REDIRECT_CODES or location is None:
                return resp, request
            _let_go(ctl, resp)  # the connection goes back to the pool: no longer this task's
            redirects += 1
            if redirects > MAX_REDIRECTS:
                raise TransferError(ErrorCode.HTTP_TOO_MANY_REDIRECTS)
            request = redirect_request(request, resp.status, location)
            ctl.feed(Redirected(request))

    def _open_hop(
        self,
        ctl: TransferControl,
        request: Request,
        resume_at: int,
        validator: str | None,
        deadline: float,
        exchange: Exchange,
        cacheable: bool,
    ) -> urllib3.BaseHTTPResponse:
        """One hop: the cache may answer it; a 401 a credential can answer is retried once."""
        lookup: CacheLookup | None = exchange.cache_lookup(request) if cacheable else None
        if lookup is not None:
            if lookup.hit is not None:
                return _CachedResponse(lookup.hit, request.method)
            if lookup.unavailable:
                raise TransferError(
                    ErrorCode.RESOURCE_UNAVAILABLE,
                    "no cached response and the cache policy forbids loading "
                    "(returnCacheDataDontLoad)",
                )
        authorization: str | None = None
        resent = False
        while True:
            extra = exchange.request_headers(request)
            if lookup is not None:
                extra += lookup.send_headers
            if authorization is not None:
                extra.append(("Authorization", authorization))
            resp = self._open(ctl, request, resume_at, validator, deadline, extra)
            exchange.response_received(request.url, resp.headers.items())
            if authorization is None and resp.status == 401:
                authorization = exchange.authorization(
                    request, resp.headers.getlist("WWW-Authenticate")
                )
                if authorization is not None:
                    _let_go(ctl, resp)
                    if request.has_body:
                        ctl.feed(Redirected(request))  # the body goes again: count it afresh
                    continue
            elif authorization is not None:
                exchange.authenticated(resp.status)
            if lookup is None or (resp.status in REDIRECT_CODES and "Location" in resp.headers):
                return resp
            outcome = lookup.response(
                resp.status,
                list(resp.headers.items()),
                functools.partial(_raw_chunks, resp),
            )
            if outcome.stored is not None:  # a 304 freshened what the cache holds: serve that
                _let_go(ctl, resp)
                return _CachedResponse(outcome.stored, request.method)
            if outcome.chunks is not None:  # stored as it is read
                return _CachedResponse(
                    Stored(resp.status, list(resp.headers.items()), outcome.chunks),
                    request.method,
                    upstream=resp,
                )
            if outcome.resend and not resent:
                resent = True
                _let_go(ctl, resp)
                continue
            return resp

    def _open(
        self,
        ctl: TransferControl,
        request: Request,
        resume_at: int,
        validator: str | None,
        deadline: float,
        extra: list[tuple[str, str]] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send the request and read the response head; retry once on a dead reused connection.

        ``extra`` (the stores' Cookie, Authorization, validators) replaces the request's headers of
        the same name on the wire. A server may close an idle keep-alive connection without
        saying so; an idempotent request that finds the pooled connection dead goes out once
        more on a fresh one.
        """
        headers = urllib3.HTTPHeaderDict(list(request.headers))
        for name, value in extra or ():
            headers[name] = value
        url = without_userinfo(request.url)
        if resume_at:
            headers["Range"] = f"bytes={resume_at}-"
            if validator:
                headers["If-Range"] = validator
        idle = self.config.timeoutIntervalForRequest
        for attempt in (0, 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransferError(ErrorCode.TIMED_OUT, "the resource timeout passed")
            timeout = urllib3.Timeout(connect=min(idle, remaining), read=min(idle, remaining))
            _sending.ctl, _sending.reused, _sending.deadline = ctl, None, deadline
            try:
                return self._pool.urlopen(
                    request.method,
                    url,
                    body=self._body(ctl, request, deadline) if request.has_body else None,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=True,
                    timeout=timeout,
                    assert_same_host=False,
                )
            except BaseException as exc:
                ctl.set_abort(None)
                if (
                    not isinstance(exc, ProtocolError)
                    or attempt
                    or request.method not in IDEMPOTENT
                    or not _dead_connection(exc)
                    or _sending.reused is False  # a fresh connection that failed is no stale one
                    or ctl.cancelled
                ):
                    raise
                log.debug(
                    "retrying %s %s once on a fresh connection: %s",
                    request.method,
                    redact(request.url),
                    exc,
                )
            finally:
                _sending.ctl = _sending.deadline = None
        raise AssertionError("unreachable")

    def _body(
        self, ctl: TransferControl, request: Request, deadline: float
    ) -> Iterator[bytes | memoryview]:
        """The request body in blocks; each block counts once urllib3 asks for the next.

        Progress is coalesced (:class:`_Progress`); what is still waiting is reported when the
        last block has gone, before the response is read.
        """
        progress = _Progress(ctl, BodySent, request.body_length)
        if request.body is not None:
            view = memoryview(request.body)
            for start in range(0, len(view), BLOCK):
                self._checkpoint(ctl, deadline)
                block = view[start : start + BLOCK]
                yield block
                progress.add(len(block))
            progress.flush()
            return
        assert request.body_path is not None
        try:
            f = open(request.body_path, "rb", buffering=0)  # noqa: SIM115 (closed in finally)
        except OSError as exc:
            raise _file_error(ErrorCode.CANNOT_OPEN_FILE, exc, request.body_path) from None
        try:
            buf = bytearray(BLOCK)
            view = memoryview(buf)
            while True:
                self._checkpoint(ctl, deadline)
                n = f.readinto(buf)
                if not n:
                    break
                yield view[:n]
                progress.add(n)
            progress.flush()
        finally:
            f.close()

    def _checkpoint(self, ctl: TransferControl, deadline: float) -> None:
        """Stop here while suspended; raise if cancelled or the resource deadline passed."""
        if ctl.cancelled:
            raise _CancelledSignal
        self._await_running(ctl, deadline)
        if ctl.cancelled:
            raise _CancelledSignal

    @staticmethod
    def _await_running(
        ctl: TransferControl, deadline: float, patience: float | None = None
    ) -> bool:
        """True once running (or cancelled); False if still suspended after ``patience`` s.

        The resource deadline keeps running while a task is suspended: passing it raises -1001.
        """
        give_up = None if patience is None else time.monotonic() + patience
        while True:
            now = time.monotonic()
            if now > deadline:
                raise TransferError(ErrorCode.TIMED_OUT, "the resource timeout passed")
            step = min(1.0, deadline - now)
            if give_up is not None:
                if now >= give_up:
                    return False
                step = min(step, give_up - now)
            if ctl.wait_running(step):
                return True

    def _start_body(
        self,
        ctl: TransferControl,
        resp: urllib3.BaseHTTPResponse,
        request: Request,
        sink: _Sink,
        resume_at: int,
    ) -> None:
        offset = 0
        if resume_at and resp.status == 206:
            if _content_range_start(resp.headers.get("Content-Range")) != resume_at:
                # Not the range we asked for: refuse rather than splice two pieces that don't meet.
                raise TransferError(
                    ErrorCode.BAD_SERVER_RESPONSE, "unexpected Content-Range on resume"
                )
            offset = resume_at
        sink.truncate(offset)
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
        length = resp.headers.get("Content-Length")
        expected = int(length) if (length and length.isdigit() and not encoded) else -1
        # After our own Range request, report the resource's status (200), not the 206.
        status = 200 if offset else resp.status
        info = ResponseInfo(request.url, status, tuple(resp.headers.items()))
        ctl.feed(ResponseStarted(info, expected, offset))
        sock = _socket_of(resp)
        if sock is not None:
            ctl.set_abort(lambda: _shutdown(sock))

    def _stream(
        self, ctl: TransferControl, resp: urllib3.BaseHTTPResponse, sink: _Sink, deadline: float
    ) -> None:
        """Move the body to the sink as it arrives, reporting coalesced progress.

        Each read takes whatever one read of the socket gives (up to a block), not "wait until a
        block is full": bytes reach the file as they arrive, so a process killed mid-transfer
        keeps them (the .part file is what a resume continues from) and progress is as fresh as
        the wire. A body without Content-Encoding is read into one reused buffer.
        """
        length = resp.headers.get("Content-Length")
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
        total = int(length) if (length and length.isdigit() and not encoded) else -1
        progress = _Progress(ctl, BodyReceived, total)
        raw = _raw_reader(resp)
        sock = _socket_of(resp)
        poller = None
        if raw is not None and raw.fp is not None:
            poller = select.poll()
            poller.register(raw.fileno(), select.POLLIN)
        buf = bytearray(READ_BLOCK if raw is not None else 0)
        view = memoryview(buf)
        try:
            while True:
                # Bytes wait to be reported: if the wire stays quiet past the interval, report
                # them now rather than when the next bytes come.
                if (
                    progress.pending
                    and poller is not None
                    and not _tls_pending(sock)
                    and not poller.poll(progress.wait() * 1000)
                ):
                    progress.flush()
                if raw is not None:
                    n = raw.readinto1(view)
                    chunk: bytes | memoryview = view[:n]
                else:
                    chunk = resp.read1(READ_BLOCK, decode_content=True)
                    n = len(chunk)
                if not n:
                    break
                if ctl.cancelled:
                    raise _CancelledSignal
                sink.write(chunk)
                progress.add(n)
                if time.monotonic() > deadline:
                    raise TransferError(ErrorCode.TIMED_OUT, "the resource timeout passed")
                if ctl.wait_running(0):
                    continue
                progress.flush()  # held by the driver until resumed: no progress while suspended
                if not self._await_running(ctl, deadline, self._patience()):
                    # Suspended past half the idle timeout: let the connection go rather than
                    # have the server time us out; come back with Range when resumed.
                    log.debug("suspended task lets its connection go at %d bytes", sink.size)
                    resp.close()
                    self._checkpoint(ctl, deadline)
                    raise _LetGoSignal
        finally:
            progress.flush()  # before downloadcompleted, a resume's Range or the failure
        if ctl.cancelled:
            raise _CancelledSignal
        if encoded and not _decoder_finished(resp):
            # urllib3 never checks that a gzip/deflate stream reached its end: a body cut short
            # under an honest Content-Length would pass as complete.
            raise TransferError(
                ErrorCode.CANNOT_DECODE_RAW_DATA, "the compressed body ended before its stream did"
            )

    def _patience(self) -> float:
        return max(0.5, self.config.timeoutIntervalForRequest / 2)


def _decoder_finished(resp: urllib3.BaseHTTPResponse) -> bool:
    """Whether the response's gzip/deflate stream reached its end marker (True if unknowable)."""
    decoder = getattr(resp, "_decoder", None)
    decoders = getattr(decoder, "_decoders", None) or [decoder]  # urllib3's MultiDecoder
    for d in decoders:
        obj = getattr(d, "_obj", None)
        if obj is not None and hasattr(obj, "eof") and not obj.eof:
            return False
    return True


def _tls_pending(sock: socket.socket | None) -> bool:
    """Whether decrypted bytes already wait in the TLS layer (a poll of the socket misses them).

    http.client's own buffer needs no such check: after the head, ``readinto1`` into a buffer
    larger than it always empties it.
    """
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def _raw_chunks(resp: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The body as it comes off the wire, still encoded (what the cache keeps), read by read."""
    while chunk := resp.read1(BLOCK, decode_content=False):
        yield chunk


def _let_go(ctl: TransferControl, resp: urllib3.BaseHTTPResponse) -> None:
    """Done with a response we will not hand on (a redirect, a 401 retried, a 304): pool it."""
    ctl.set_abort(None)
    resp.drain_conn()
    resp.release_conn()


class _ChunkReader(io.RawIOBase):
    """An iterator of byte chunks read like a file, which is what urllib3 wants as a body.

    ``expected`` is the body's length when known: urllib3 stops reading once it has that many
    bytes, before the iterator says it is done, so :meth:`finish` runs it to its end (that is
    when a cache write completes). An iterator closed before its end drops its cache write.
    """

    def __init__(self, chunks: Iterator[bytes], expected: int | None) -> None:
        super().__init__()
        self._chunks = chunks
        self._expected = expected
        self._given = 0
        self._done = False
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                self._done = True
                return 0
        n = min(len(view), len(self._left))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        self._given += n
        return n

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def finish(self) -> None:
        """The consumer has the whole body: let the iterator reach its end."""
        if self._done or self._expected is None or self._given < self._expected:
            return
        for _ in self._chunks:  # nothing is left but the iterator's own ending
            pass
        self._done = True

    def close(self) -> None:
        if not self.closed:
            self.finish()
            close = getattr(self._chunks, "close", None)
            if not self._done and close is not None:
                close()  # a cache write that did not reach the end is dropped
        super().close()


class _CachedResponse(urllib3.HTTPResponse):
    """A response the cache serves (``upstream`` None) or one it stores while it is read.

    Stored bodies keep their Content-Encoding, so this decodes them as a response from the
    wire would be. With an ``upstream``, its connection is the one a cancel shuts and the one
    that goes back to the pool.
    """

    def __init__(
        self, stored: Stored, method: str, upstream: urllib3.BaseHTTPResponse | None = None
    ) -> None:
        headers = [(k, v) for k, v in stored.headers if k.lower() != "transfer-encoding"]
        length = urllib3.HTTPHeaderDict(headers).get("Content-Length", "")
        expected = 0 if method == "HEAD" else int(length) if length.isdigit() else None
        self._reader = _ChunkReader(stored.chunks, expected)
        super().__init__(
            body=self._reader,
            headers=urllib3.HTTPHeaderDict(headers),
            status=stored.status,
            reason=http.client.responses.get(stored.status),
            preload_content=False,
            decode_content=True,
            request_method=method,
        )
        self._upstream = upstream

    @property
    def connection(self) -> HTTPConnection | None:
        upstream = self._upstream
        return None if upstream is None else getattr(upstream, "connection", None)

    def release_conn(self) -> None:
        self._reader.finish()
        if self._upstream is not None:
            self._upstream.release_conn()

    def drain_conn(self) -> None:
        super().drain_conn()
        if self._upstream is not None:
            self._upstream.drain_conn()

    def close(self) -> None:
        super().close()
        if self._upstream is not None:
            self._upstream.close()


def _validator(resp: urllib3.BaseHTTPResponse) -> str | None:
    return resume_validator(resp.headers.get("ETag"), resp.headers.get("Last-Modified"))


def _content_range_start(value: str | None) -> int | None:
    if not value or not value.lower().startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def _dead_connection(exc: ProtocolError) -> bool:
    return any(
        isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
        for e in _causes(exc)
    )


def _socket_of(resp: urllib3.BaseHTTPResponse) -> socket.socket | None:
    conn = getattr(resp, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:
        # A "Connection: close" response: http.client handed the socket over to the response
        # (the connection's ``sock`` is None); it is under the response's file object.
        fp = getattr(getattr(resp, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, (socket.socket, ssl.SSLSocket)) else None


def _shutdown(sock: socket.socket) -> None:
    # socket.socket's shutdown also for an SSLSocket: kick the descriptor, leave the TLS state to
    # the reading thread (SSLSocket.shutdown would drop it under that thread's feet).
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
