"""The transport: one pool per session, and one task's run: redirects, 401s and the cache, hop by hop."""

from __future__ import annotations

import functools
import logging
import mimetypes
import os
import time
from collections.abc import Iterable

import urllib3

from .._config_values import ConfigValues
from .._state import (
    DownloadFinished,
    Failed,
    Finished,
    Redirected,
    Request,
    ResponseInfo,
    TaskKind,
    resume_validator,
)
from .._storage import part_name, safe_name
from .._stores import (
    CacheLookup,
    Exchange,
    Stored,
    Stores,
    memory_stores,
    reads_storage,
    with_userinfo,
    without_userinfo,
)
from .._urls import origin
from ..exceptions import ErrorCode, TransferError
from ._attempt import Attempt
from ._bodies import Sink, filename_for, raw_chunks
from ._cached import CachedResponse
from ._control import CancelledSignal, LetGoSignal, TransferControl
from ._errors import map_exception
from ._headerlists import add_pairs
from ._metrics import TaskMetrics
from ._proxies import check_proxy_answer, proxy_for
from ._requests import MAX_REDIRECTS, REDIRECT_CODES, redirect_request
from ._streams import receive, send_blocks, start_body
from ._wire import OFF_LOOP, Engine, Steps, drive, make_engine

log = logging.getLogger(__name__)


class Transport:
    """One per session: its connection pool and the loops that move a task's bytes."""

    def __init__(self, config: ConfigValues, stores: Stores | None = None) -> None:
        """``stores``: the session's cookies, cache and credentials (taken over: ``close``
        releases them); private in-memory ones when not given."""
        self.config = config
        self.stores = stores if stores is not None else memory_stores()
        self._released = False
        if not config.tlsVerify:
            log.warning("TLS certificate verification is off for this session (tlsVerify=False)")
        self.engine: Engine = make_engine(config)

    def close(self) -> None:
        """The session is gone (no task runs): close every connection now, release the stores."""
        self.engine.close()
        self.stores.cache.flush_writes()  # what the session refreshed is on disk when it ends
        if not self._released:
            self._released = True
            self.stores.release()

    def clear_idle(self) -> None:
        """Forget idle connections (flush/reset): running tasks keep theirs until they end."""
        self.engine.clear_idle()

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
        metrics: TaskMetrics | None = None,
        deadline: float | None = None,
    ) -> None:
        """:meth:`steps` on the calling thread, blocking while it waits (the background
        transfer process, and tools)."""
        drive(
            self.steps(
                ctl,
                kind,
                request,
                download_dir,
                identifier,
                durable=durable,
                resume=resume,
                keep_partial=keep_partial,
                metrics=metrics,
                deadline=deadline,
            )
        )

    def steps(
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
        metrics: TaskMetrics | None = None,
        deadline: float | None = None,
    ) -> Steps[None]:
        """Move one task's bytes, feeding its machine; always ends with Finished or Failed.

        A generator: where the engine would wait for the network (the curl engine, until a
        response head comes) it yields a :class:`~._wire.Waiter` instead, so the caller may
        give its thread back and resume this when the waiter wakes (:func:`~._wire.drive`
        blocks instead). The hop rules are written once, here, for both ways.

        ``resume=(size, validator)`` continues a download whose ``.part`` file holds ``size``
        bytes of an earlier attempt (Range + If-Range; the machine must already count them).
        ``keep_partial`` keeps that file when the transfer fails (not when it is cancelled,
        nor when it ran past its size limit), so the owner can resume it later.
        ``metrics`` and ``deadline`` (time.monotonic()) carry over from an earlier run of the
        same task (a retry): its transactions go on, its resource timeout keeps running.
        """
        cfg = self.config
        if deadline is None:
            deadline = time.monotonic() + cfg.timeoutIntervalForResource
        sink: Sink | None = None
        attempt: Attempt | None = None
        keep, validator = resume if resume is not None and resume[0] > 0 else (0, None)
        if metrics is None:
            metrics = TaskMetrics(proxy_for(cfg, request.url) is not None)  # (positional: cheaper)
        try:
            if kind is TaskKind.DOWNLOAD:
                assert download_dir is not None
                path = os.path.join(download_dir, part_name(identifier))
                limit, name = cfg.maximumDownloadLength, "maximumDownloadLength"
                sink = Sink(path, keep, limit, name)
            else:
                limit, name = cfg.maximumResponseDataLength, "maximumResponseDataLength"
                sink = Sink(None, 0, limit, name)
            attempt = Attempt(
                ctl=ctl,
                kind=kind,
                request=request,
                sink=sink,
                deadline=deadline,
                idle=cfg.timeoutIntervalForRequest,
                identifier=identifier,
                download_dir=download_dir,
                durable=durable,
                validator=validator,
                metrics=metrics,
            )
            text = yield from self._transfer(attempt)
        except BaseException as exc:
            cancelled = ctl.cancelled or isinstance(exc, CancelledSignal)
            if sink is not None:
                too_big = getattr(exc, "code", None) == ErrorCode.DATA_LENGTH_EXCEEDS_MAXIMUM
                keep_cancelled = getattr(ctl, "keeps_partial_on_cancel", False)  # resume data
                if keep_partial and (not cancelled or keep_cancelled) and not too_big:
                    sink.close()
                else:
                    sink.discard()
            if cancelled:
                ctl.feed(Failed(ErrorCode.CANCELLED, metrics=metrics.to_dict()))
            elif isinstance(exc, Exception):
                where = origin(request.url if attempt is None else attempt.request.url)
                err = map_exception(exc, where)
                log.debug("task %s failed: %s", identifier, err, exc_info=exc)
                ctl.feed(Failed(err.code, err.message, metrics=metrics.to_dict()))
            else:
                ctl.feed(Failed(ErrorCode.CANCELLED, "interrupted", metrics=metrics.to_dict()))
                raise
        else:
            ctl.feed(Finished(text, metrics=metrics.to_dict()))
        finally:
            ctl.set_abort(None)

    def _transfer(self, a: Attempt) -> Steps[str | None]:
        if not a.ctl.wait_running(0):
            yield OFF_LOOP  # the wait below blocks
        a.checkpoint()  # a task suspended before it started waits here
        while True:  # one pass per connection; a suspended task that let go comes round again
            resume_at = a.sink.size if (a.sink.size and a.validator) else 0
            resp = yield from self._open_following_redirects(a, resume_at)
            if resume_at and resp.status not in (200, 206):
                # e.g. 416: the resource changed size under us; ask again for all of it.
                yield OFF_LOOP
                _let_go(a, resp)
                a.validator = None
                a.sink.truncate(0)
                continue
            clean = False
            try:
                start_body(a, resp, resume_at)
                a.validator = _validator(resp)
                yield from receive(a, resp)
                clean = True
            except LetGoSignal:
                continue
            except BaseException:
                if a.metrics is not None:  # cut short (a reset, a retry): what came counts
                    a.metrics.received(a.metrics.current, _body_bytes(a, resp, resume_at))
                raise
            finally:
                a.ctl.set_abort(None)
                if not clean:  # never hand a half-read connection back to the pool
                    resp.close()
                resp.release_conn()
            break
        if a.metrics is not None:
            a.metrics.ended(a.metrics.current, _body_bytes(a, resp, resume_at))
        if a.kind is not TaskKind.DOWNLOAD:
            return a.sink.text()
        info = ResponseInfo(a.request.url, resp.status, tuple(resp.headers.items()), a.protocol)
        assert a.download_dir is not None and a.sink.path is not None
        if a.ctl.cancelled:
            raise CancelledSignal
        yield OFF_LOOP  # the file is moved (and synced, if durable)
        name = filename_for(info.url, info.header("content-disposition"))
        final = os.path.join(
            a.download_dir, f"{safe_name(a.identifier)}-{safe_name(name, 'download')}"
        )
        a.sink.finish(final, a.durable)
        mime = (info.header("content-type") or "").split(";")[0].strip()
        mime = mime or mimetypes.guess_type(final)[0] or "application/octet-stream"
        a.ctl.feed(DownloadFinished(final, mime))
        return None

    def _open_following_redirects(
        self, a: Attempt, resume_at: int
    ) -> Steps[urllib3.BaseHTTPResponse]:
        """The final response (``a.request`` becomes the request that got it), each hop through
        the stores.

        Cookies go and come on every hop by the cookie rules (never by the Authorization rule);
        a data task's GET may be answered by the cache without the network.
        """
        # The exchange reads the task's credential as the first URL's user info (only there).
        exchange = self.stores.exchange(
            with_userinfo(a.request.url, a.request.credential), self.config
        )
        cacheable = a.kind is TaskKind.DATA and not resume_at
        redirects = 0
        while True:
            if a.ctl.cancelled:
                raise CancelledSignal
            resp = yield from self._open_hop(a, resume_at, exchange, cacheable)
            location = resp.headers.get("Location")
            if resp.status not in REDIRECT_CODES or location is None:
                return resp
            yield OFF_LOOP  # draining the body waits, and the next hop reads the stores
            _let_go(a, resp)  # the connection goes back to the pool: no longer this task's
            redirects += 1
            if a.metrics is not None:
                a.metrics.redirects = redirects
            if redirects > MAX_REDIRECTS:
                raise TransferError(ErrorCode.HTTP_TOO_MANY_REDIRECTS)
            a.request = redirect_request(a.request, resp.status, location)
            a.ctl.feed(Redirected(a.request))

    def _open_hop(
        self, a: Attempt, resume_at: int, exchange: Exchange, cacheable: bool
    ) -> Steps[urllib3.BaseHTTPResponse]:
        """One hop: the cache may answer it; a 401 a credential can answer is retried once."""
        request = a.request
        if cacheable and reads_storage(request.method, self.config.requestCachePolicy):
            yield OFF_LOOP
        lookup: CacheLookup | None = exchange.cache_lookup(request) if cacheable else None
        if lookup is not None:
            if lookup.hit is not None:
                # No protocol carried it: Apple's metrics say nil for a local cache load.
                a.protocol = ""
                if a.metrics is not None:
                    a.metrics.begin()
                    a.metrics.local_cache()
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
            resp = yield from self._open(a, resume_at, extra)
            if "Set-Cookie" in resp.headers:
                yield OFF_LOOP  # the cookie store may be a shared file
            exchange.response_received(request.url, resp.headers.items())
            if resp.status == 401 and (authorization is None or exchange.digest_pending()):
                yield OFF_LOOP  # the credential store; the body is drained
                challenges = resp.headers.getlist("WWW-Authenticate")
                authorization = (
                    exchange.authorization(request, challenges)
                    if authorization is None
                    else exchange.renew_stale(request, challenges)  # Digest, stale=true: once
                )
                if authorization is not None:
                    _let_go(a, resp)
                    if request.has_body:
                        a.ctl.feed(Redirected(request))  # the body goes again: count it afresh
                    continue
            elif authorization is not None:
                exchange.authenticated(resp.status)
            if lookup is None or (resp.status in REDIRECT_CODES and "Location" in resp.headers):
                return resp
            pairs = list(resp.headers.items())
            if lookup.touches_storage(resp.status, pairs):
                yield OFF_LOOP  # telling the cache reads (or writes) SQLite
            outcome = lookup.response(resp.status, pairs, functools.partial(raw_chunks, resp))
            if outcome.stored is not None:  # a 304 freshened what the cache holds: serve that
                yield OFF_LOOP
                _let_go(a, resp)
                return CachedResponse(outcome.stored, request.method)
            if outcome.chunks is not None:  # stored as it is read
                yield OFF_LOOP  # (into SQLite)
                return CachedResponse(
                    Stored(resp.status, list(resp.headers.items()), outcome.chunks),
                    request.method,
                    upstream=resp,
                )
            if outcome.resend and not resent:
                resent = True
                yield OFF_LOOP
                _let_go(a, resp)
                continue
            return resp

    def _open(
        self, a: Attempt, resume_at: int, extra: list[tuple[str, str]]
    ) -> Steps[urllib3.BaseHTTPResponse]:
        """Send the request through the engine and read the response head.

        ``extra`` (the stores' Cookie, Authorization, validators) replaces the request's headers of
        the same name on the wire.
        """
        request = a.request
        headers = _wire_headers(request.headers, extra)
        if resume_at:
            headers["Range"] = f"bytes={resume_at}-"
            if a.validator:
                headers["If-Range"] = a.validator
        body = send_blocks(a) if request.has_body else None
        url = without_userinfo(request.url)
        tx = a.metrics.begin() if a.metrics is not None else None
        # An engine that can wait without a thread says so with open_steps (curl); the others
        # block in open (urllib3: http.client reads the head on this thread).
        open_steps = getattr(self.engine, "open_steps", None)
        try:
            if open_steps is not None:
                resp: urllib3.BaseHTTPResponse = yield from open_steps(a, url, headers, body)
            else:
                resp = self.engine.open(a, url, headers, body)
        except TransferError as exc:  # (an engine may hand on the code in a plain TransferError)
            if exc.code == ErrorCode.USER_AUTHENTICATION_REQUIRED:
                check_proxy_answer(a, None, proxy_for(self.config, url))
            raise
        if resp.status == 407:  # from our proxy: the task ends (-1013)
            yield OFF_LOOP  # its body is drained
            check_proxy_answer(a, resp, proxy_for(self.config, url))
        a.protocol = self.engine.protocol(resp)
        if tx is not None and a.metrics is not None:
            if tx.filled:  # (the engine read it all: only the protocol, without a call)
                tx.fields["networkProtocolName"] = a.protocol or None
            else:
                fields = tx.fields
                fields["isReusedConnection"] = bool(a.reused)
                fields["countOfRequestBodyBytesSent"] = (
                    request.body_length if request.has_body else 0
                )
                a.metrics.head(tx, a.protocol, 12 + len(resp.reason or ""), resp.headers)
        return resp


def _wire_headers(
    pairs: Iterable[tuple[str, str]], extra: list[tuple[str, str]]
) -> urllib3.HTTPHeaderDict:
    """The request's headers with ``extra`` replacing those of the same name: urllib3's type
    (what both engines take), its lists filled in directly. ``HTTPHeaderDict(pairs)`` and a
    ``__setitem__`` per extra walked urllib3's ``extend``/``add`` per header, a few µs a task."""
    headers = urllib3.HTTPHeaderDict()
    container = headers._container
    add_pairs(container, pairs)
    for name, value in extra:
        container[name.lower()] = [name, value]
    return headers


def _body_bytes(a: Attempt, resp: urllib3.BaseHTTPResponse, resume_at: int) -> int:
    """The body bytes this response carried: as read off the wire, else (an engine that wrote
    them straight to the sink) what the sink gained past the resumed part."""
    return resp.tell() or max(0, a.sink.size - resume_at)


def _let_go(a: Attempt, resp: urllib3.BaseHTTPResponse) -> None:
    """Done with a response we will not hand on (a redirect, a 401 retried, a 304): pool it."""
    a.ctl.set_abort(None)
    resp.drain_conn()
    resp.release_conn()
    if a.metrics is not None:
        a.metrics.ended(a.metrics.current, resp.tell())


def _validator(resp: urllib3.BaseHTTPResponse) -> str | None:
    return resume_validator(resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
