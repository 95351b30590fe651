"""The loops that move one attempt's bodies: the request's out in blocks, the response's in."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterator

import urllib3

from .._state import BodyReceived, BodySent, ResponseInfo, ResponseStarted
from ..exceptions import ErrorCode, TransferError
from ._attempt import Attempt
from ._bodies import BLOCK, READ_BLOCK, Progress, charset, decoder_finished
from ._connections import (
    BodySplice,
    SpliceUnsupported,
    raw_reader,
    shutdown,
    socket_of,
    tls_pending,
)
from ._control import CancelledSignal, LetGoSignal
from ._errors import file_error
from ._ratelimit import read_cap
from ._wire import OFF_LOOP, Steps

log = logging.getLogger(__name__)


def send_blocks(a: Attempt) -> Iterator[bytes | memoryview]:
    """The request body in blocks; each block counts once urllib3 asks for the next.

    Progress is coalesced (:class:`Progress`); what is still waiting is reported when the
    last block has gone, before the response is read.
    """
    request = a.request
    progress = Progress(a.ctl, BodySent, request.body_length)
    if request.body is not None:
        view = memoryview(request.body)
        for start in range(0, len(view), BLOCK):
            a.checkpoint()
            block = view[start : start + BLOCK]
            yield block
            progress.add(len(block))
        progress.flush()
        return
    assert request.body_path is not None
    try:
        f = open(request.body_path, "rb", buffering=0)  # noqa: SIM115 (closed in finally)
    except OSError as exc:
        raise file_error(ErrorCode.CANNOT_OPEN_FILE, exc, request.body_path) from None
    try:
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        while True:
            a.checkpoint()
            n = f.readinto(buf)
            if not n:
                break
            yield view[:n]
            progress.add(n)
        progress.flush()
    finally:
        f.close()


def _encoded(resp: urllib3.BaseHTTPResponse) -> bool:
    return resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("identity", "")


def _expected(resp: urllib3.BaseHTTPResponse) -> int:
    """The body's length as it will be counted (decoded), or -1 when not known in advance."""
    length = resp.headers.get("Content-Length")
    return int(length) if (length and length.isdigit() and not _encoded(resp)) else -1


def start_body(a: Attempt, resp: urllib3.BaseHTTPResponse, resume_at: int) -> None:
    """Report the response and make the sink ready for its body.

    A body whose announced length is already past the sink's cap fails here (-1103), before a
    byte of it is read, as Foundation does for an expected length over its maximum.
    """
    offset = 0
    if resume_at and resp.status == 206:
        if _content_range_start(resp.headers.get("Content-Range")) != resume_at:
            # Not the range we asked for: refuse rather than splice two pieces that don't meet.
            raise TransferError(ErrorCode.BAD_SERVER_RESPONSE, "unexpected Content-Range on resume")
        offset = resume_at
    a.sink.begin(offset, charset(resp.headers.get("Content-Type")))
    expected = _expected(resp)
    # After our own Range request, report the resource's status (200), not the 206.
    status = 200 if offset else resp.status
    info = ResponseInfo(a.request.url, status, tuple(resp.headers.items()), a.protocol)
    a.ctl.feed(ResponseStarted(info, expected, offset))
    if expected >= 0:
        a.sink.check_room(expected)
    sock = socket_of(resp)
    if sock is not None:
        a.ctl.set_abort(lambda: shutdown(sock))


def receive(a: Attempt, resp: urllib3.BaseHTTPResponse) -> Steps[None]:
    """Move the body to the sink as it arrives, reporting coalesced progress.

    A generator (see ``Transport.steps``): a response that can say its next read would wait
    (``body_waiter``: the curl engine's) is waited for by yielding that waiter, so a task whose
    body is slow to come holds no thread meanwhile; other responses block in their reads.

    Each read takes whatever one read of the socket gives (up to a block), not "wait until a
    block is full": bytes reach the file as they arrive, so a process killed mid-transfer
    keeps them (the .part file is what a resume continues from) and progress is as fresh as
    the wire. A body without Content-Encoding is read into one reused buffer; a download's,
    over plain HTTP, goes from the socket to its file with ``splice`` after the first read
    (:class:`BodySplice`), the same bytes at the same moments, without coming up into Python.
    An encoded body is decoded at most a block per read (urllib3 bounds what one read
    inflates), so the sink's cap stops a decompression bomb a block past its limit.
    """
    ctl, sink = a.ctl, a.sink
    encoded = _encoded(resp)
    progress = Progress(ctl, BodyReceived, _expected(resp))
    to_sink = getattr(resp, "to_sink", None)  # the curl engine writes a download's file itself
    direct = None if to_sink is None else to_sink(a, progress, encoded)
    if direct is not None:  # (before the readers below: a curl response has none of them)
        try:
            yield from direct
        finally:
            progress.flush()  # before downloadcompleted, a resume's Range or the failure
        if ctl.cancelled:
            raise CancelledSignal
        return
    raw = raw_reader(resp)
    sock = socket_of(resp)
    poller = None
    if raw is not None and raw.fp is not None:
        poller = select.poll()
        poller.register(raw.fileno(), select.POLLIN)
    view = _read_block() if raw is not None else memoryview(b"")
    splice: BodySplice | None = None
    may_splice = raw is not None and sink.path is not None
    body_waiter = getattr(resp, "body_waiter", None)
    try:
        while True:
            # Bytes wait to be reported: if the wire stays quiet past the interval, report
            # them now rather than when the next bytes come.
            if (
                progress.pending
                and poller is not None
                and not tls_pending(sock)
                and not poller.poll(progress.wait() * 1000)
            ):
                progress.flush()
            chunk: bytes | memoryview | None = None
            most = read_cap(ctl, READ_BLOCK)  # smaller while a bandwidth limit paces the task
            if splice is not None:
                try:
                    n = splice.move(sink, most)  # straight to the file
                except SpliceUnsupported:
                    splice.close()
                    splice = None
                    continue
            elif raw is not None:
                n = raw.readinto1(view if most == READ_BLOCK else view[:most])
                chunk = view[:n]
                if may_splice and n:  # http.client's buffer is empty now: the rest may splice
                    splice = BodySplice.open(raw, sock)
                    may_splice = False
            else:
                waiter = None if body_waiter is None else body_waiter()
                if waiter is not None:
                    yield waiter
                    if ctl.cancelled:
                        raise CancelledSignal
                    continue
                chunk = resp.read1(most, decode_content=True)
                n = len(chunk)
            if not n:
                break
            if ctl.cancelled:
                raise CancelledSignal
            if chunk is not None:
                sink.write(chunk)
            progress.add(n)
            a.check_deadline()
            if ctl.wait_running(0):
                continue
            yield OFF_LOOP  # the waits below block: not on an engine's network thread
            progress.flush()  # held by the driver until resumed: no progress while suspended
            if not a.await_running(a.patience):
                # Suspended past half the idle timeout: let the connection go rather than
                # have the server time us out; come back with Range when resumed.
                log.debug("suspended task lets its connection go at %d bytes", sink.size)
                resp.close()
                a.checkpoint()
                raise LetGoSignal
    finally:
        if splice is not None:
            splice.close()
        progress.flush()  # before downloadcompleted, a resume's Range or the failure
    if ctl.cancelled:
        raise CancelledSignal
    if encoded and not decoder_finished(resp):
        # urllib3 never checks that a gzip/deflate stream reached its end: a body cut short
        # under an honest Content-Length would pass as complete.
        raise TransferError(
            ErrorCode.CANNOT_DECODE_RAW_DATA, "the compressed body ended before its stream did"
        )


_blocks = threading.local()


def _read_block() -> memoryview:
    """This thread's reused read block: a fresh 1 MiB one per response (zeroed, so every page
    touched) cost more than reading a small body."""
    view: memoryview | None = getattr(_blocks, "view", None)
    if view is None:
        view = _blocks.view = memoryview(bytearray(READ_BLOCK))
    return view


def _content_range_start(value: str | None) -> int | None:
    if not value or not value.lower().startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None
