"""urllib3's connections, made interruptible, and the response class that reads heads our way.

A cancel must break a blocking send or read: the connection offers the task's owner a way to
shut its socket. The attempt reaches the connection explicitly: the transport wraps urlopen's
``body`` in an :class:`Outgoing` that carries it (urllib3 hands that argument unchanged to the
pool's ``_make_request``, the one place that knows both the request and its connection).
Response heads, interim ones included, are read by us under Foundation's limits and the
attempt's deadline, then parsed by http.client.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import http.client
import os
import select
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..exceptions import ErrorCode, TransferError
from ._bodies import Sink
from ._timing import TimedConnection
from ._tls import check_pins

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

    from ._attempt import Attempt


class _RawResponse(http.client.HTTPResponse):
    """http.client's response with ``readinto1``: one read of the socket into a reused buffer.

    urllib3's ``read1``/``stream`` hand out a new bytes object per read (and ``read1`` copies
    through a BytesIO when a read comes up short); a body without Content-Encoding is read here
    instead, with http.client's own bookkeeping (``length``, closing at the end), as its
    ``readinto`` does, so the connection goes back to the pool as usual.
    """

    def __init__(
        self, sock: socket.socket, *args: Any, deadline: float | None = None, **kw: Any
    ) -> None:
        """``deadline``: the attempt's resource deadline (time.monotonic()), held while the
        head is read, interim responses included."""
        super().__init__(sock, *args, **kw)
        self._deadline = deadline
        self._interims = 0

    def begin(self) -> None:
        super().begin()
        if isinstance(self.fp, _HeadReplay):
            self.fp = self.fp.real  # the head is parsed: the body comes from the socket again

    def _read_status(self) -> tuple[str, int, str]:
        # http.client skips only 100 Continue; Foundation skips every interim 1xx response
        # (102 Processing, 103 Early Hints) and reports the final one. 101 is final for us.
        # The status line is read under the deadline too, and interims are counted: a server
        # sending 1xx forever never goes idle, so only these bound it.
        while True:
            line = _read_line(self.fp, self._deadline)
            real, self.fp = self.fp, _HeadReplay(line, self.fp, end=False)  # type: ignore[assignment]
            try:
                version, status, reason = super()._read_status()  # type: ignore[misc]
            finally:
                if self.fp is not None:  # (None: http.client closed it, refusing the line)
                    self.fp = real
            if status >= 200 or status == 101:
                self.fp = _HeadReplay(_read_head(self.fp, self._deadline), self.fp)  # type: ignore[assignment]
                return version, status, reason
            self._interims += 1
            if self._interims > _MAX_INTERIMS:
                raise http.client.HTTPException("too many interim (1xx) responses")
            if status == 100:  # begin() skips a 100's headers itself and comes back here
                return version, status, reason
            _read_head(self.fp, self._deadline)  # the interim response's headers, dropped

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
_MAX_LINE = 65536
# Interim (1xx) responses before the final one: real servers send one or two (103 Early Hints).
_MAX_INTERIMS = 100


def _read_line(fp: Any, deadline: float | None) -> bytes:
    """One line of a response head, read one socket read at a time (``peek``), so the resource
    deadline is checked however slowly the server trickles it (slow-loris). At the server's
    close, what came of the line (b"" for nothing)."""
    line: bytes = b""
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise TransferError(ErrorCode.TIMED_OUT, "the resource timeout passed (response head)")
        data = fp.peek(1)
        if not data:
            return line  # cut short by the server closing: the parser says what it makes of it
        end = data.find(b"\n")
        line += bytes(fp.read(len(data) if end < 0 else end + 1))
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        if end >= 0:
            return line


def _read_head(fp: Any, deadline: float | None) -> bytes:
    """The header lines of a response, up to and excluding the blank line that ends them.

    A head cut off by the server closing is the connection lost (-1005), not an empty success
    as http.client would have it.
    """
    lines: list[bytes] = []
    size = 0
    while True:
        line = _read_line(fp, deadline)
        if not line:
            raise http.client.RemoteDisconnected("the connection closed inside the response head")
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)
        lines.append(line)
        size += len(line)
        if len(lines) > _MAX_HEAD_LINES or size > _MAX_HEAD_BYTES:
            raise http.client.HTTPException("response head too large")


class _HeadReplay:
    """Hands lines already read (and checked) to http.client's parser.

    A head goes as one "line" and then the blank line that ends it: ``parse_headers`` joins the
    lines it reads and parses the whole, and one line keeps its per-line count (100) out of the
    way. A status line goes alone (``end=False``). Everything else goes to the socket.
    """

    def __init__(self, head: bytes, real: Any, end: bool = True) -> None:
        self.real = real
        if not end:
            self._lines = [head]
        else:
            self._lines = [head, b"\r\n"] if head else [b"\r\n"]

    def readline(self, limit: int = -1) -> bytes:
        if self._lines:
            return self._lines.pop(0)
        return bytes(self.real.readline(limit))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def raw_reader(resp: urllib3.BaseHTTPResponse) -> _RawResponse | None:
    """The http.client response under ``resp`` when its body can be read as is (no decoding)."""
    if type(resp) is not urllib3.HTTPResponse:
        return None
    raw = getattr(resp, "_fp", None)
    if not isinstance(raw, _RawResponse):
        return None
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    return raw if encoding in ("identity", "") else None


# -- connections that a cancel can interrupt -------------------------------------------------------


class Outgoing:
    """urlopen's ``body`` argument as the transport passes it: the body and the attempt it is
    sent for. The pool takes it apart where it gets the connection (:meth:`_Pool._make_request`).
    """

    __slots__ = ("attempt", "content")

    def __init__(self, attempt: Attempt, content: Any) -> None:
        self.attempt = attempt
        self.content = content


class _AbortableHTTPConnection(TimedConnection, HTTPConnection):
    """A connection a cancel can interrupt, wherever the task waits on it.

    ``attempt`` is the one it sends for now (set by the pool for each request, cleared once the
    response head is read, so an idle pooled connection holds no task).
    """

    response_class = _RawResponse
    attempt: Attempt | None = None
    _served = 0

    def _offer_abort(self) -> None:
        sock, attempt = self.sock, self.attempt
        if attempt is not None and sock is not None:
            attempt.ctl.set_abort(lambda: shutdown(sock))

    def send(self, data: Any) -> None:
        self._offer_abort()  # a body block blocked in sendall (server not reading) is cancellable
        super().send(data)

    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override]
        attempt = self.attempt
        self._offer_abort()
        if attempt is not None:
            attempt.reused = self._served > 0
        self._served += 1
        # http.client makes the response itself, from ``response_class``: this one reads its
        # head under the attempt's deadline.
        deadline = None if attempt is None else attempt.deadline
        self.response_class = functools.partial(_RawResponse, deadline=deadline)  # type: ignore[assignment]
        try:
            return super().getresponse()
        finally:
            self.attempt = None


class _AbortableHTTPSConnection(_AbortableHTTPConnection, HTTPSConnection):
    """The same over TLS (the method resolution order puts our hooks before HTTPSConnection's)."""


class _Pool(HTTPConnectionPool):
    def _make_request(  # type: ignore[override]
        self, conn: BaseHTTPConnection, method: str, url: str, body: Any = None, **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        """Hand the attempt to the connection that sends it, and the body to urllib3."""
        if isinstance(body, Outgoing):
            if isinstance(conn, _AbortableHTTPConnection):
                conn.attempt = body.attempt
            body = body.content
        return super()._make_request(conn, method, url, body, **kw)


class HTTPPool(_Pool):
    ConnectionCls = _AbortableHTTPConnection


class HTTPSPool(_Pool, HTTPSConnectionPool):
    ConnectionCls = _AbortableHTTPSConnection

    tls_pins: tuple[str, ...] = ()  # this host's pinnedPublicKeys (set by PinningPools)

    def _validate_conn(self, conn: BaseHTTPConnection) -> None:
        if self.cert_reqs != "CERT_NONE":
            super()._validate_conn(conn)
        # tlsVerify=False is the session's explicit choice (logged once when the session is
        # made): connect as urllib3 does, without its InsecureRequestWarning on every request,
        # which a warnings filter set to "error" would turn into a failed task.
        elif conn.is_closed:
            conn.connect()
        self._check_pins(conn)

    def _check_pins(self, conn: BaseHTTPConnection) -> None:
        """The leaf's key against this host's pins, once per socket, before a request byte."""
        sock = getattr(conn, "sock", None)
        if not self.tls_pins or sock is None or getattr(conn, "_pinned_sock", None) is sock:
            return
        try:
            der = sock.getpeercert(binary_form=True)
            check_pins(self.host, self.port or 443, der, self.tls_pins)
        except TransferError:
            conn.close()
            raise
        conn._pinned_sock = sock  # type: ignore[attr-defined]


def tls_pending(sock: socket.socket | None) -> bool:
    """Whether decrypted bytes already wait in the TLS layer (a poll of the socket misses them).

    http.client's own buffer needs no such check: after the head, ``readinto1`` into a buffer
    larger than it always empties it.
    """
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def socket_of(resp: urllib3.BaseHTTPResponse) -> socket.socket | None:
    conn = getattr(resp, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:
        # A "Connection: close" response: http.client handed the socket over to the response
        # (the connection's ``sock`` is None); it is under the response's file object.
        # (read from the instance: a curl response makes its body reader only when read)
        fp = getattr(vars(resp).get("_fp"), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, (socket.socket, ssl.SSLSocket)) else None


def shutdown(sock: socket.socket) -> None:
    # socket.socket's shutdown also for an SSLSocket: kick the descriptor, leave the TLS state to
    # the reading thread (SSLSocket.shutdown would drop it under that thread's feet).
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# -- a plain-HTTP body straight from the socket to the file ----------------------------------------

PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; the constant is in fcntl from 3.10


class SpliceUnsupported(Exception):
    """The kernel will not splice from this socket: read it the ordinary way."""


class BodySplice:
    """A download body moved from the socket to its file through a pipe with Linux ``splice``.

    The bytes never come up into Python: one copy and most of the per-read work fewer than a
    read and a write (2.0 → 2.35 GB/s for a 1 GiB body from nginx to tmpfs, on the benchmark
    machine). Only for what http.client would read as is — no TLS, no chunks, a known length —
    and only once http.client's own buffer is empty, which the first read into the transport's
    1 MiB block guarantees (it is larger than that buffer). http.client's bookkeeping is kept as
    in :meth:`_RawResponse.readinto1` (``length``, closing at the end), so the connection goes
    back to the pool as usual, and a body cut short is the same ``IncompleteRead``.
    """

    def __init__(self, raw: _RawResponse, sock: socket.socket, pipe: tuple[int, int]) -> None:
        self._raw = raw
        self._sock = sock
        self._read_end, self._write_end = pipe
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)

    @classmethod
    def open(cls, raw: _RawResponse, sock: socket.socket | None) -> BodySplice | None:
        """A splice for this response's body, or None when it cannot have one."""
        eligible = (
            hasattr(os, "splice")
            and type(sock) is socket.socket  # not an SSLSocket: TLS bytes must be decrypted
            and raw.fp is not None
            and not raw.chunked
            and raw.length  # known, and not all read yet
            and raw._method != "HEAD"  # type: ignore[attr-defined]
        )
        if not eligible or sock is None:
            return None
        try:
            pipe = os.pipe()
        except OSError:  # out of descriptors: the ordinary read does without
            return None
        with contextlib.suppress(OSError):  # a smaller pipe only means more calls
            fcntl.fcntl(pipe[1], _F_SETPIPE_SZ, PIPE_SIZE)
        return cls(raw, sock, pipe)

    def move(self, sink: Sink, most: int = PIPE_SIZE) -> int:
        """Move what the socket has (up to ``most``, at most the pipe's size) into ``sink``; 0
        at the body's end.

        Waits for bytes as long as the socket's own timeout (urllib3's read timeout) and raises
        ``TimeoutError`` after, as a read would.
        """
        raw = self._raw
        if not raw.length:
            return 0
        timeout = self._sock.gettimeout()
        while True:
            try:
                n = os.splice(
                    self._sock.fileno(),
                    self._write_end,
                    min(raw.length, most, PIPE_SIZE),
                    flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK,
                )
                break
            except BlockingIOError:
                if not self._poll.poll(None if timeout is None else timeout * 1000):
                    raise TimeoutError("timed out") from None
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise SpliceUnsupported from exc
                raise
        if not n:  # the server closed before Content-Length bytes came (or a cancel shut it)
            raw._close_conn()  # type: ignore[attr-defined]
            raise http.client.IncompleteRead(b"", raw.length)
        sink.write_from_pipe(self._read_end, n)
        raw.length -= n
        if not raw.length:
            raw._close_conn()  # type: ignore[attr-defined]
        return n

    def close(self) -> None:
        for fd in (self._read_end, self._write_end):
            with contextlib.suppress(OSError):
                os.close(fd)
