"""The transport: one pool per session, and the loops that move one task's bytes."""

from __future__ import annotations

import functools
import logging
import mimetypes
import os
import select
import threading
import time
from collections.abc import Iterator

import urllib3
from urllib3.exceptions import ProtocolError

from .._configuration import ConfigValues
from .._state import (
    BodyReceived,
    BodySent,
    DownloadFinished,
    Failed,
    Finished,
    Redirected,
    Request,
    ResponseInfo,
    ResponseStarted,
    TaskKind,
    resume_validator,
)
from .._storage import part_name, safe_name
from .._stores import CacheLookup, Exchange, Stored, Stores, memory_stores, redact, without_userinfo
from ..exceptions import ErrorCode, TransferError
from ._bodies import (
    BLOCK,
    READ_BLOCK,
    Progress,
    Sink,
    charset,
    decoder_finished,
    filename_for,
    raw_chunks,
)
from ._cached import CachedResponse
from ._connections import (
    BodySplice,
    HTTPPool,
    HTTPSPool,
    SpliceUnsupported,
    raw_reader,
    sending,
    shutdown,
    socket_of,
    tls_pending,
)
from ._control import CancelledSignal, LetGoSignal, TransferControl
from ._errors import dead_connection, file_error, map_exception
from ._requests import IDEMPOTENT, MAX_REDIRECTS, REDIRECT_CODES, redirect_request

log = logging.getLogger(__name__)


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
        self._pool.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}

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
        sink: Sink | None = None
        keep, validator = resume if resume is not None and resume[0] > 0 else (0, None)
        try:
            if kind is TaskKind.DOWNLOAD:
                assert download_dir is not None
                sink = Sink(os.path.join(download_dir, part_name(identifier)), keep)
            else:
                sink = Sink(None)
            text = self._transfer(
                ctl, kind, request, sink, download_dir, identifier, durable, validator
            )
        except BaseException as exc:
            if sink is not None:
                cancelled = ctl.cancelled or isinstance(exc, CancelledSignal)
                if keep_partial and not cancelled:
                    sink.close()
                else:
                    sink.discard()
            if ctl.cancelled or isinstance(exc, CancelledSignal):
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
        sink: Sink,
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
            except LetGoSignal:
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
                raise CancelledSignal
            final = os.path.join(
                download_dir,
                f"{safe_name(identifier)}-"
                f"{safe_name(filename_for(info.url, info.header('content-disposition')), 'download')}",
            )
            sink.finish(final, durable)
            mime = (info.header("content-type") or "").split(";")[0].strip()
            mime = mime or mimetypes.guess_type(final)[0] or "application/octet-stream"
            ctl.feed(DownloadFinished(final, mime))
            return None
        return sink.text(charset(info.header("content-type")))

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
                raise CancelledSignal
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
                return CachedResponse(lookup.hit, request.method)
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
                functools.partial(raw_chunks, resp),
            )
            if outcome.stored is not None:  # a 304 freshened what the cache holds: serve that
                _let_go(ctl, resp)
                return CachedResponse(outcome.stored, request.method)
            if outcome.chunks is not None:  # stored as it is read
                return CachedResponse(
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
            sending.ctl, sending.reused, sending.deadline = ctl, None, deadline
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
                    or not dead_connection(exc)
                    or sending.reused is False  # a fresh connection that failed is no stale one
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
                sending.ctl = sending.deadline = None
        raise AssertionError("unreachable")

    def _body(
        self, ctl: TransferControl, request: Request, deadline: float
    ) -> Iterator[bytes | memoryview]:
        """The request body in blocks; each block counts once urllib3 asks for the next.

        Progress is coalesced (:class:`Progress`); what is still waiting is reported when the
        last block has gone, before the response is read.
        """
        progress = Progress(ctl, BodySent, request.body_length)
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
            raise file_error(ErrorCode.CANNOT_OPEN_FILE, exc, request.body_path) from None
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
            raise CancelledSignal
        self._await_running(ctl, deadline)
        if ctl.cancelled:
            raise CancelledSignal

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
        sink: Sink,
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
        sock = socket_of(resp)
        if sock is not None:
            ctl.set_abort(lambda: shutdown(sock))

    def _stream(
        self, ctl: TransferControl, resp: urllib3.BaseHTTPResponse, sink: Sink, deadline: float
    ) -> None:
        """Move the body to the sink as it arrives, reporting coalesced progress.

        Each read takes whatever one read of the socket gives (up to a block), not "wait until a
        block is full": bytes reach the file as they arrive, so a process killed mid-transfer
        keeps them (the .part file is what a resume continues from) and progress is as fresh as
        the wire. A body without Content-Encoding is read into one reused buffer; a download's,
        over plain HTTP, goes from the socket to its file with ``splice`` after the first read
        (:class:`BodySplice`), the same bytes at the same moments, without coming up into Python.
        """
        length = resp.headers.get("Content-Length")
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
        total = int(length) if (length and length.isdigit() and not encoded) else -1
        progress = Progress(ctl, BodyReceived, total)
        raw = raw_reader(resp)
        sock = socket_of(resp)
        poller = None
        if raw is not None and raw.fp is not None:
            poller = select.poll()
            poller.register(raw.fileno(), select.POLLIN)
        view = _read_block() if raw is not None else memoryview(b"")
        splice: BodySplice | None = None
        may_splice = raw is not None and sink.path is not None
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
                if splice is not None:
                    try:
                        n = splice.move(sink)  # straight to the file
                    except SpliceUnsupported:
                        splice.close()
                        splice = None
                        continue
                elif raw is not None:
                    n = raw.readinto1(view)
                    chunk = view[:n]
                    if may_splice and n:  # http.client's buffer is empty now: the rest may splice
                        assert raw is not None
                        splice = BodySplice.open(raw, sock)
                        may_splice = False
                else:
                    chunk = resp.read1(READ_BLOCK, decode_content=True)
                    n = len(chunk)
                if not n:
                    break
                if ctl.cancelled:
                    raise CancelledSignal
                if chunk is not None:
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

    def _patience(self) -> float:
        return max(0.5, self.config.timeoutIntervalForRequest / 2)


_blocks = threading.local()


def _read_block() -> memoryview:
    """This thread's reused read block: a fresh 1 MiB one per response (zeroed, so every page
    touched) cost more than reading a small body."""
    view: memoryview | None = getattr(_blocks, "view", None)
    if view is None:
        view = _blocks.view = memoryview(bytearray(READ_BLOCK))
    return view


def _let_go(ctl: TransferControl, resp: urllib3.BaseHTTPResponse) -> None:
    """Done with a response we will not hand on (a redirect, a 401 retried, a 304): pool it."""
    ctl.set_abort(None)
    resp.drain_conn()
    resp.release_conn()


def _validator(resp: urllib3.BaseHTTPResponse) -> str | None:
    return resume_validator(resp.headers.get("ETag"), resp.headers.get("Last-Modified"))


def _content_range_start(value: str | None) -> int | None:
    if not value or not value.lower().startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None
