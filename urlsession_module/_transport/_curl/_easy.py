"""One transfer: its easy handle, configured from the request in one place, and its callbacks.

As in swift-corelibs-foundation's ``EasyHandle.swift``, everything libcurl is told about a
request is set in one place (:func:`._options.configure`), and libcurl's extras that would change behaviour are
switched off there: no ``Expect: 100-continue``, no cookie engine, no redirects of its own, no
default ``Accept``, no decoding (bodies come up encoded and are decoded above the engine, as for
urllib3, so the cache keeps them encoded and the sinks' caps count decoded bytes the same way).

The callbacks run on the network thread and are short (Downloads.jl's ``Easy.jl``): the head's
lines are gathered until the final head is complete; body bytes go to a queue the task's
reader takes from, and when that queue is full the write callback *pauses* the transfer instead
of growing it (the reader un-pauses it once it has drained half, so a slow reader does not cost
a pause per chunk); the read callback sends the upload's blocks as the task's thread supplies
them, pausing the upload when none is ready.
"""

from __future__ import annotations

import collections
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pycurl

from ..._state import Request
from ...exceptions import ErrorCode, TransferError
from .._metrics import Transaction
from .._proxies import ProxyAuthenticationRequired
from .._tls import alert_code, pin_mismatch, refused_certificate
from ._errors import GOT_NOTHING, RECV_ERROR, SEND_ERROR, WRITE_ERROR, Outcome, curl_error
from ._metrics import fill as fill_metrics

if TYPE_CHECKING:
    from .._bodies import Progress
    from ._direct import DirectWrite
    from ._upload import DirectRead

_PINNED_KEY_MISMATCH = 90  # CURLE_SSL_PINNEDPUBKEYNOTMATCH
HIGH_WATER = 4 << 20  # body bytes a transfer may hold for its reader before it is paused
UPLOAD_DEPTH = 2  # request body blocks the task's thread may queue ahead of libcurl
_MAX_INTERIMS = 100  # interim (1xx) responses before the final one, as the urllib3 engine

# Foundation's limits on a response head (the urllib3 engine's too), not libcurl's larger ones.
_MAX_HEAD_LINES = 1000
_MAX_HEAD_BYTES = 256 * 1024
_MAX_LINE = 65536
_BLANK = (b"\r\n", b"\n")
_monotonic = time.monotonic

_PROTOCOLS = {b"HTTP/1.1": "http/1.1", b"HTTP/1.0": "http/1.0", b"HTTP/2": "h2", b"HTTP/3": "h3"}


class Transfer:
    """One request's exchange on the network thread, and what its task's thread reads of it.

    State shared between the two threads is guarded by ``cond``; the network thread only
    appends and sets, the task's thread only takes and waits (bounded).
    """

    # What every transfer starts with, as class attributes: the first assignment makes the
    # instance's own (a transfer is made per task, on the network thread; ~30 fewer stores).
    status = 0
    protocol = "http/1.1"
    head_done = False
    metrics_read = False  # libcurl's clocks were read into ``tx``
    _interims = 0
    _lines: list[bytes] | None = None  # (network thread) the lines of the head coming in
    scanned = 0  # (network thread) the lines of ``raw`` already taken in (scan_head)
    _sends = 0
    _held_back = False  # the first send was refused before a byte went (dead conn.)
    _head_bytes = 0
    head_size = 0  # (network thread) the bytes of the heads that ended: status lines and all
    _head_error: TransferError | None = None
    buffered = 0
    recv_paused = False
    direct: DirectWrite | None = None  # the body goes straight to the sink (_direct)
    block_at = 0
    upload_done = False
    send_paused = False
    reader: DirectRead | None = None  # the body read by the network thread (_upload)
    upload_progress: Progress | None = None  # (task's thread) what it reports
    rewound = False  # libcurl asked for the body again (a retry): the feeder restarts
    done = False
    error: TransferError | None = None
    stale = False  # ended on a reused connection that was dead (see :meth:`outcome`)
    group: set[Transfer] | None = None  # the session's live transfers (network thread)
    share: pycurl.CurlShare | None = None  # the session's share it runs through
    connections: dict[int, tuple[object, ...]] | None = None  # its ends, by id (_metrics.fill)
    tx: Transaction | None = None  # the transaction it fills as it ends (see _metrics.fill)
    https = False  # its URL's scheme is https (set by ``_options.configure``)
    upload_end = 0.0

    def __init__(
        self,
        request: Request,
        idle: float,
        deadline: float,
        proxy: str | None,
        unpause: Callable[[Transfer], None],
        cond: threading.Condition | None = None,
        easy: pycurl.Curl | None = None,
    ) -> None:
        self.easy = easy if easy is not None else pycurl.Curl()
        self.request = request
        self.idle = idle
        self.deadline = deadline
        self.proxy = proxy
        self._unpause = unpause
        self.cond = cond if cond is not None else threading.Condition(threading.Lock())
        self.last = time.monotonic()  # when a byte last moved (or the transfer started)
        # the head: libcurl appends each line to ``raw`` (its header callback), scan_head reads
        self.raw: list[bytes] = []
        self.headers: list[tuple[str, str]] = []
        # the body
        self.chunks: collections.deque[bytes] = collections.deque()
        # the upload
        self.blocks: collections.deque[bytes] = collections.deque()
        self.sockets: set[int] = set()  # the session's sockets (network thread), see on_socket
        self.started = time.time()  # (metrics: see _metrics.fill)

    # -- callbacks (network thread) -------------------------------------------------------------

    def scan_head(self) -> bool:
        """(network thread, after ``socket_action``) Take in the head's lines libcurl gave
        since the last look; True when the transfer must end over a head we refuse.

        libcurl's header callback is ``raw.append`` itself (no Python frame a line, ~10 a
        task): the lines are checked against the limits and gathered here, once per
        ``socket_action``, and the head is parsed when its blank line comes
        (:meth:`_head_end`); interim (1xx) heads are dropped. libcurl bounds what it hands
        over between two looks (a line ≤ 100 KiB, a response's heads ≤ 300 KiB). Once the
        final head is in, the network thread gives libcurl :meth:`on_trailer` instead.
        """
        raw = self.raw
        i, end = self.scanned, len(raw)
        self.scanned = end
        self.last = _monotonic()  # (a head that trickles in is not idle)
        lines = self._lines
        while i < end:
            line = raw[i]
            i += 1
            if lines is None:  # a head begins (the first, or the one after an interim 1xx)
                if self._status_line(line) is not None:
                    return True
                lines = self._lines
                continue
            n = len(line)
            self._head_bytes += n
            if n > _MAX_LINE:
                self._refuse("a response header line is too long")
                return True
            if len(lines) > _MAX_HEAD_LINES or self._head_bytes > _MAX_HEAD_BYTES:
                self._refuse("response head too large")
                return True
            if n > 2 or line not in _BLANK:
                lines.append(line)
                continue
            if self._head_end(lines) is not None:
                return True
            if self.head_done:
                raw.clear()  # (what followed it in this look: trailers, dropped)
                return False
            lines = None
        return False

    def on_trailer(self, _line: bytes) -> None:
        """libcurl's header callback once the final head is in: trailers of a chunked body
        are not part of the head, only a sign of life."""
        self.last = _monotonic()

    def _status_line(self, line: bytes) -> int | None:
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not (
            version[:5] == b"HTTP/"
            and code.isdigit()
            and rest[3:4] in (b" ", b"\r", b"\n", b"")
            and code[:1] != b"0"
        ):
            return self._refuse("the response does not start with an HTTP status line")
        self.protocol = _PROTOCOLS.get(version, "http/1.1")
        self.status = int(code)
        self._lines = []
        self._head_bytes = 0
        self.head_size += len(line)
        return None

    def _head_end(self, lines: list[bytes]) -> int | None:
        """The blank line: an interim head is dropped; the final one is parsed and handed
        to the reader."""
        self._lines = None
        self.head_size += self._head_bytes  # (its lines and the blank one, as libcurl counts)
        if 100 <= self.status < 200 and self.status != 101:
            self._interims += 1
            if self._interims > _MAX_INTERIMS:
                return self._refuse("too many interim (1xx) responses")
            return None
        headers: list[tuple[str, str]] = []
        for raw in lines:
            text = raw.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and headers:  # an obsolete folded continuation
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {text.strip()}")
            elif ":" in text:
                name, _, value = text.partition(":")
                headers.append((name.strip(), value.strip()))
        self.headers = headers
        # The head is in (outside libcurl's callbacks: its clocks can be read now): its
        # metrics first, then the reader has both, with one wake-up.
        if self.tx is not None and not self.metrics_read:
            self._read_clocks(self.head_size)
        with self.cond:
            self.metrics_read = self.head_done = True
            self.cond.notify_all()
        return None

    @property
    def sent(self) -> bool:
        """Whether the request went out (one that is not idempotent may then never go again)."""
        return self._sends > 0 and not self._held_back

    def on_prereq(self, _peer_ip: str, _local_ip: str, peer_port: int, local_port: int) -> int:
        """A request that is not idempotent goes out once: a second send is libcurl retrying
        it after the reused connection died, which we refuse."""
        self._sends += 1
        if self._sends == 1:
            if self._found_dead(peer_port, local_port):
                # Nothing sent yet: the task's thread sends it once more on a fresh one.
                self.stale = self._held_back = True
                self._head_error = TransferError(
                    ErrorCode.NETWORK_CONNECTION_LOST, "the server closed the connection"
                )
                return int(pycurl.PREREQFUNC_ABORT)
            return int(pycurl.PREREQFUNC_OK)
        self._head_error = TransferError(
            ErrorCode.NETWORK_CONNECTION_LOST, "the server closed the connection without a response"
        )
        return int(pycurl.PREREQFUNC_ABORT)

    def on_seek(self, offset: int, origin: int) -> int:
        """libcurl sends an idempotent request again after a reused connection died: the body
        starts over, queued afresh by the task's thread (:meth:`CurlEngine.open`)."""
        if offset or origin:
            return int(pycurl.SEEKFUNC_CANTSEEK)
        if self.reader is not None:
            self.reader.rewind()
            return int(pycurl.SEEKFUNC_OK)
        with self.cond:
            self.blocks.clear()
            self.block_at = 0
            self.upload_done = False
            self.rewound = True
            self.send_paused = True  # un-paused once the first block is queued again
            self.cond.notify_all()
        return int(pycurl.SEEKFUNC_OK)

    def _found_dead(self, peer_port: int, local_port: int) -> bool:
        """Whether the connection this request would go on was closed by the server.

        libcurl looks before it reuses a connection only once it has been idle a second; for a
        request that must not go twice we look, as urllib3 does before each reuse: a socket
        that reads as closed (EOF or an error) is dead. The socket is found among the
        session's (recorded as libcurl made them, :meth:`on_socket`) by its two ports.
        """
        for fd in list(self.sockets):
            try:
                probe = socket.socket(fileno=os.dup(fd))
            except OSError:
                self.sockets.discard(fd)
                continue
            try:
                if probe.getsockname()[1] != local_port or probe.getpeername()[1] != peer_port:
                    continue
                readable, _, _ = select.select([probe], [], [], 0)
                return (
                    bool(readable) and probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                )
            except OSError:
                self.sockets.discard(fd)
                continue
            finally:
                probe.close()
        return False

    def on_socket(self, fd: int, _purpose: int) -> int:
        """libcurl made a socket: remember it (see :meth:`_found_dead`)."""
        self.sockets.add(fd)
        return 0

    def fail_body(self, error: TransferError) -> None:
        """(network thread) The body could not be kept (the sink's cap, the file): libcurl
        stops at the write error the callback returns, and :meth:`outcome` reports this."""
        self._head_error = error

    def resume_receiving(self) -> None:
        """(task's thread) Un-pause the receiving side on the network thread."""
        self._unpause(self)

    def _refuse(self, words: str) -> int:
        """End the transfer over a head we will not take (-1011): the network thread removes
        it (:meth:`scan_head` says so), and :meth:`outcome` reports ours."""
        self._head_error = TransferError(ErrorCode.BAD_SERVER_RESPONSE, words)
        return 0

    def on_body(self, data: bytes) -> int | None:
        """Queue a piece of the body for the reader; pause when the reader is behind (or
        write it to the task's sink, once the reader handed that over: :mod:`._direct`)."""
        self.last = _monotonic()
        direct = self.direct  # (set once, under the lock: seen set, it stays so)
        if direct is not None:
            return direct.write(data)  # (it looks for a cancel itself)
        with self.cond:
            if self.error is not None:
                return 0  # cancelled meanwhile: libcurl stops with a write error
            direct = self.direct
            if direct is None:
                if self.buffered >= HIGH_WATER:
                    self.recv_paused = True
                    return pycurl.WRITEFUNC_PAUSE  # libcurl keeps ``data`` and offers it again
                self.chunks.append(data)
                self.buffered += len(data)
                self.cond.notify_all()
                return None
        return direct.write(data)

    def on_read(self, size: int) -> bytes | int:
        """The next piece of the request body; pause the upload while none is queued."""
        self.last = time.monotonic()
        if self.reader is not None:
            return self.reader.read(size)
        with self.cond:
            if not self.blocks:
                if self.upload_done:
                    self.upload_end = time.time()
                    return b""
                self.send_paused = True
                return pycurl.READFUNC_PAUSE
            block = self.blocks[0]
            piece = block[self.block_at : self.block_at + size]
            self.block_at += len(piece)
            if self.block_at >= len(block):
                self.blocks.popleft()
                self.block_at = 0
                self.cond.notify_all()  # room for the task's thread to queue the next block
            return piece

    # -- the end (network thread) --------------------------------------------------------------

    def outcome(self, code: int, message: str) -> TransferError | None:
        """The error libcurl's ``code`` means for this transfer (None: it went well)."""
        if self._head_error is not None:
            return self._head_error
        if code == WRITE_ERROR and self.direct is not None:
            refused = self.direct.write_error()  # libcurl wrote the file itself (counted mode)
            if refused is not None:
                return refused
        if code == 0:
            if self.head_done:
                return None
            return TransferError(  # libcurl took a head cut off by the server's close
                ErrorCode.NETWORK_CONNECTION_LOST,
                "the server closed the connection without a response",
            )
        if self.proxy and _info(self.easy, pycurl.HTTP_CONNECTCODE, 0) == 407:
            return ProxyAuthenticationRequired(self.proxy)  # the proxy refused our CONNECT
        parts = urlsplit(self.request.url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        if code == _PINNED_KEY_MISMATCH:
            return pin_mismatch(host, port)
        alert = alert_code(message)  # the server's TLS alert about our client certificate
        if alert is not None:
            return refused_certificate(alert, host, port)
        os_errno = _info(self.easy, pycurl.OS_ERRNO, 0)
        connected = _info(self.easy, pycurl.CONNECT_TIME, 0.0) > 0 or self.head_done
        secure = self.request.url[:6].lower() == "https:"
        # A request that found its reused connection dead before any answer may go once more.
        self.stale = (
            code in (SEND_ERROR, RECV_ERROR, GOT_NOTHING)
            and not self.status
            and _info(self.easy, pycurl.NUM_CONNECTS, 1) == 0
        )
        return curl_error(
            Outcome(code, message, int(os_errno), bool(connected), self.proxy, secure)
        )

    def overdue(self, now: float) -> TransferError | None:
        """-1001 when the resource deadline passed, or when the wire stayed quiet past the idle
        timeout while nobody on our side held the transfer (a paused one waits for us)."""
        if now > self.deadline:
            return TransferError(ErrorCode.TIMED_OUT, "the resource timeout passed")
        if self.direct is not None:
            self.direct.tick(now)
        if self.reader is not None:
            self.reader.tick(now)  # written bytes that waited: the reader reports them
        if self.recv_paused or self.send_paused:
            self.last = now
            return None
        if now - self.last > self.idle:
            if not self.head_done and _info(self.easy, pycurl.CONNECT_TIME, 0.0) <= 0:
                return None  # still connecting: libcurl's own connect timeout says so
            return TransferError(ErrorCode.TIMED_OUT, "no data within the idle timeout")
        return None

    def ended(self, error: TransferError | None) -> None:
        """The network thread let go of the transfer: wake the reader, free the handle."""
        if self.group is not None:
            self.group.discard(self)
        if self.direct is not None:
            self.direct.finish()  # (the last count of what libcurl wrote itself, counted mode)
        if not self.done and not self.metrics_read and self.tx is not None:
            self._read_clocks()  # what happened until now (before a head, or just after one)
        with self.cond:
            if not self.done:
                self.done = True
                if self.error is None:
                    self.error = error
                self.cond.notify_all()
        self.easy.close()
        if self.reader is not None:
            self.reader.close()
        # No callback comes now: drop what points back at this transfer (its direct writer,
        # its transaction's wait), so refcounting frees it as its task lets go. A cycle left
        # here made each task's transfer, handle, signal and sink garbage for the cyclic
        # collector: 50 % more collections with metrics on, ~8 % of scenario b's CPU.
        self.direct = None
        self.tx = None

    def _read_clocks(self, header: int | None = None) -> None:
        """(network thread, outside libcurl's callbacks) Fill the transaction from libcurl's
        clocks (``header``: the heads' bytes, when they were all counted here); the caller then
        sets ``metrics_read`` (or ``done``) under ``cond``, which releases a task's thread
        waiting in :meth:`settle_metrics`."""
        tx, request = self.tx, self.request
        assert tx is not None
        fill_metrics(
            tx,
            self.easy,
            self.started,
            self.https,
            self.upload_end,
            # (a body? as plain loads: a property call was part of issue 16's budget)
            request.body is not None or request.body_path is not None,
            self.connections,
            header,
        )
        tx.settle = None  # filled: nothing to wait for (and no cycle through it)

    def settle_metrics(self, patience: float = 0.5) -> None:
        """(task's thread) Wait, bounded, until the metrics were read: at most the rest of
        the ``socket_action`` that brought the head, usually no wait at all."""
        with self.cond:
            self.cond.wait_for(lambda: self.metrics_read or self.done, patience)

    # -- the task's thread -----------------------------------------------------------------------

    def cancel(self, error: TransferError) -> bool:
        """Mark the transfer failed for its reader (the network thread removes it); False if it
        had already ended."""
        with self.cond:
            if self.done:
                return False
            if self.error is None:
                self.error = error
            self.cond.notify_all()
            return True

    def take_chunk(self, most: int) -> bytes:
        """The next queued piece of the body (at most ``most`` bytes), as libcurl gave it: no
        copy. Some must be queued. Un-pauses the transfer once the queue is half drained."""
        with self.cond:
            chunk = self.chunks.popleft()
            if len(chunk) > most:
                self.chunks.appendleft(chunk[most:])
                chunk = chunk[:most]
            self.buffered -= len(chunk)
            wake = self.recv_paused and self.buffered <= HIGH_WATER // 2
            if wake:
                self.recv_paused = False
        if wake:
            self._unpause(self)
        return chunk

    def take(self, view: memoryview) -> int:
        """Copy queued body bytes into ``view`` (some are queued); un-pause at half drained."""
        n = 0
        with self.cond:
            while self.chunks and n < len(view):
                chunk = self.chunks[0]
                room = len(view) - n
                if len(chunk) <= room:
                    view[n : n + len(chunk)] = chunk
                    n += len(chunk)
                    self.chunks.popleft()
                else:
                    view[n:] = chunk[:room]
                    self.chunks[0] = chunk[room:]
                    n += room
            self.buffered -= n
            wake = self.recv_paused and self.buffered <= HIGH_WATER // 2
            if wake:
                self.recv_paused = False
        if wake:
            self._unpause(self)
        return n

    def finish_upload(self) -> None:
        with self.cond:
            self.upload_done = True
            wake, self.send_paused = self.send_paused, False
        if wake:
            self._unpause(self)

    def pause_mask(self) -> int:
        """What stays paused when the network thread un-pauses (the other direction may not)."""
        with self.cond:
            return (pycurl.PAUSE_RECV if self.recv_paused else 0) | (
                pycurl.PAUSE_SEND if self.send_paused else 0
            )


def _info(easy: pycurl.Curl, what: int, default: float) -> float:
    try:
        value = easy.getinfo(what)
    except pycurl.error:
        return default
    return float(value) if isinstance(value, (int, float)) else default
