"""The curl engine: one session's share of libcurl, and one request sent through the multi.

Each session gets a ``CurlShare`` holding its connections, DNS cache and TLS sessions, so two
sessions never reuse each other's connections (as URLSession keeps them apart), while every
transfer of every session runs in the process's one network thread (:mod:`._multi`).

A task waits for its response head without a thread: :meth:`CurlEngine.open_steps` yields a
:class:`~._signal.SignalWaiter` that the network thread wakes (through the transfer's :class:`Signal`) when
the head, the end, an error or a rewind comes, and the task's runner resumes it on a shared
worker then (:meth:`CurlEngine.open` blocks instead, for the background transfer process). A
request body's blocks are still queued from the task's thread as libcurl asks for them, and the
body is read from the transfer's queue.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pycurl
import urllib3

from ..._config_values import ConfigValues
from ..._state import BodySent
from ...exceptions import ErrorCode, TransferError
from .._bodies import BLOCK, Progress
from .._control import CancelledSignal
from .._headerlists import pairs_of
from .._ratelimit import paced, read_cap
from .._requests import IDEMPOTENT
from .._streams import send_blocks
from .._wire import OFF_LOOP, Steps, drive
from . import _multi as _multi_module
from ._easy import UPLOAD_DEPTH, Transfer
from ._multi import Multi
from ._options import configure, session_template
from ._response import CurlResponse
from ._signal import Signal, SignalWaiter
from ._upload import DirectRead

if TYPE_CHECKING:
    from .._attempt import Attempt

log = logging.getLogger(__name__)

_STEP = 0.25  # the longest one wait lasts before the task's state is looked at again

_lock = threading.Lock()
_multi: Multi | None = None
_users = 0


def _acquire() -> Multi:
    """The process's network thread, started by its first user."""
    global _multi, _users
    with _lock:
        if _multi is None:
            _multi = Multi()
        _users += 1
        return _multi


def _release() -> None:
    """The last user gone: stop the network thread (an idle process keeps no thread)."""
    global _multi, _users
    with _lock:
        _users -= 1
        if _users or _multi is None:
            return
        multi, _multi = _multi, None
    multi.stop()


def network_thread() -> threading.Thread | None:
    """The network thread while one runs (for tests that count threads)."""
    multi = _multi
    return None if multi is None else multi.thread


def _versions() -> dict[str, int]:
    return {
        "auto": pycurl.CURL_HTTP_VERSION_2TLS,
        "1.1": pycurl.CURL_HTTP_VERSION_1_1,
        "2": pycurl.CURL_HTTP_VERSION_2_0,
        "3": pycurl.CURL_HTTP_VERSION_3ONLY,
    }


def _new_share() -> pycurl.CurlShare:
    """A session's share: its connections, DNS cache and TLS sessions, apart from other
    sessions'. It carries ``connections``: what the metrics know of each of its connections
    by libcurl's id (see ``_metrics.fill``), so they go when the share does."""
    share = pycurl.CurlShare()
    for data in (pycurl.LOCK_DATA_CONNECT, pycurl.LOCK_DATA_DNS, pycurl.LOCK_DATA_SSL_SESSION):
        share.setopt(pycurl.SH_SHARE, data)
    share.connections = {}  # type: ignore[attr-defined]
    return share


class CurlEngine:
    """One per session: its libcurl share, on the process's network thread."""

    name = "curl"

    def __init__(self, config: ConfigValues) -> None:
        self.config = config
        self._share = _new_share()
        self._version = _versions()[getattr(config, "httpVersion", "auto")]
        self._proxy = _proxy_address(config.proxyURL)
        self._live: set[Transfer] = set()  # (network thread only)
        self._sockets: set[int] = set()  # the descriptors libcurl opened for this session
        self._retired: list[pycurl.CurlShare] = []  # shares a flush replaced, still in use
        self._closed = False
        self._template = session_template(config)  # each transfer's handle is a copy
        self._multi = _acquire()

    def open(
        self,
        a: Attempt,
        url: str,
        headers: urllib3.HTTPHeaderDict,
        body: Iterator[bytes | memoryview] | None,
    ) -> urllib3.BaseHTTPResponse:
        """:meth:`open_steps`, blocking on this thread while it waits."""
        return drive(self.open_steps(a, url, headers, body))

    def open_steps(
        self,
        a: Attempt,
        url: str,
        headers: urllib3.HTTPHeaderDict,
        body: Iterator[bytes | memoryview] | None,
    ) -> Steps[urllib3.BaseHTTPResponse]:
        """Start the transfer, feed its body, and return once its final head has come.

        As on the urllib3 engine, an idempotent request that found its reused connection dead
        before any answer goes once more, on a fresh connection; and when libcurl itself sends
        the request again (it rewinds the body), the body is queued afresh.
        """
        if self._closed:
            raise TransferError(ErrorCode.CANCELLED, "the session was closed")
        # A body that needs no pacing is read by the network thread itself (_upload).
        direct = body is not None and not paced(a.ctl)
        if direct and body is not None:
            close = getattr(body, "close", None)
            if close is not None:
                close()  # (never started: nothing was opened)
            body = None
        for attempt in (0, 1):
            if attempt:
                yield OFF_LOOP  # (configure may read files: certificates)
            a.check_deadline()
            t, stop = self._start(a, url, headers, fresh=bool(attempt), direct=direct)
            try:
                while True:
                    if body is not None:
                        yield OFF_LOOP  # the feeder waits for libcurl to take the blocks
                        self._feed(a, t, body)
                    if (yield from self._await_head(a, t)):
                        return CurlResponse(t, a.request.method, stop)
                    body = send_blocks(a)  # libcurl rewound the body: queue it again
            except TransferError:
                if attempt or not t.stale or (a.request.method not in IDEMPOTENT and t.sent):
                    raise
                if a.ctl.cancelled:
                    raise CancelledSignal from None
                log.debug("retrying %s once on a fresh connection", a.request.method)
                body = send_blocks(a) if a.request.has_body and not direct else None
            except BaseException:
                stop(TransferError(ErrorCode.CANCELLED, "cancelled"))
                raise
        raise AssertionError("unreachable")

    def _start(
        self, a: Attempt, url: str, headers: urllib3.HTTPHeaderDict, fresh: bool, direct: bool
    ) -> tuple[Transfer, Callable[[TransferError], None]]:
        """A transfer for ``a.request``, handed to the network thread, and its way to stop."""
        version = self._version
        if version == pycurl.CURL_HTTP_VERSION_2_0 and url[:5].lower() == "http:":
            version = pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE  # h2c, as asked
        # Its changes can wake a task that waits threadless, or go on with it on the network
        # thread (``run_on_wake``).
        signal = Signal(threading.Lock(), self._multi.call, self._multi.ident)
        try:
            easy = self._template.duphandle()
        except pycurl.error:  # the session closed meanwhile (its template with it)
            raise TransferError(ErrorCode.CANCELLED, "the session was closed") from None
        t = Transfer(a.request, a.idle, a.deadline, self._proxy, self._unpause, signal, easy)
        t.group = self._live
        t.share = share = self._share
        t.connections = share.connections  # type: ignore[attr-defined]
        t.sockets = self._sockets
        t.tx = a.metrics.current if a.metrics is not None else None  # (metrics, see _metrics)
        if t.tx is not None:
            t.tx.settle = t.settle_metrics
        if direct and a.request.has_body:
            progress = Progress(a.ctl, BodySent, a.request.body_length)
            t.reader = DirectRead(t, a.request, a.ctl, progress.step)
            t.upload_progress = progress
        configure(t, self.config, self._share, url, pairs_of(headers._container), version)
        if fresh:
            t.easy.setopt(pycurl.FRESH_CONNECT, 1)
        multi = self._multi

        def start() -> None:
            if t.error is not None:  # cancelled before it started
                t.ended(None)
                return
            self._live.add(t)
            multi.add(t)
            if self._retired:
                self._sweep()

        def stop(error: TransferError) -> None:
            if t.cancel(error):
                multi.call(lambda: self._remove(t, error))

        a.ctl.set_abort(lambda: stop(TransferError(ErrorCode.CANCELLED, "cancelled")))
        multi.call(start)
        return t, stop

    def _remove(self, t: Transfer, error: TransferError) -> None:
        self._multi.remove(t, error)

    def _feed(self, a: Attempt, t: Transfer, body: Iterator[bytes | memoryview]) -> None:
        """Queue the request body's blocks, a few ahead of libcurl; stop if a head, the end or
        a rewind comes first (a server may answer before it has read the body)."""
        try:
            for block in body:
                if a.ctl.cancelled:
                    raise CancelledSignal
                with t.cond:
                    while len(t.blocks) >= UPLOAD_DEPTH and not (t.head_done or t.done):
                        if t.error is not None or t.rewound or a.ctl.cancelled:
                            break
                        t.cond.wait(_STEP)
                    if t.head_done or t.done or t.error is not None or t.rewound:
                        return
                    t.blocks.append(bytes(block))
                    wake, t.send_paused = t.send_paused, False
                if wake:
                    self._unpause(t)
            with t.cond:
                if t.rewound:
                    return
            t.finish_upload()
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def _await_head(self, a: Attempt, t: Transfer) -> Steps[bool]:
        """True once the final head is in; False when libcurl rewound the body meanwhile.

        Yields a :class:`~._signal.SignalWaiter` while none of those has happened: a cancel, the clocks and
        the session's close all end the transfer, which wakes it.
        """
        signal = t.cond
        assert isinstance(signal, Signal)
        reader, progress, told = t.reader, t.upload_progress, 0
        while True:
            if a.ctl.cancelled:
                raise CancelledSignal
            most = BLOCK
            if reader is not None and paced(a.ctl):
                yield OFF_LOOP  # its reports wait out the pacing: not on the network thread
                most = read_cap(a.ctl, BLOCK)  # (small ones, each paced: steady progress)
            with signal:
                over = t.head_done or t.error is not None or t.done or t.rewound
                seen = signal.generation
                sent, paused = (0, False) if reader is None else (reader.sent, t.send_paused)
            while progress is not None and sent > told:  # the network thread read the body
                n = min(sent - told, most)  # counted a block at most at a time, as queued
                progress.add(n)
                told += n
            if reader is not None:
                reader.reported = told
            if over:
                break
            if paused:  # suspended while the network thread reads the body: wait here
                yield OFF_LOOP
                progress_flush(progress)
                a.checkpoint()
                with signal:
                    t.send_paused = False
                self._unpause(t)
                continue
            yield SignalWaiter(signal, seen)
        progress_flush(progress)  # the body went (or the answer came first): before the head
        with signal:
            if t.head_done:
                return True
            if t.rewound and t.error is None and not t.done:
                t.rewound = False
                return False
            error = t.error
        if a.ctl.cancelled:
            raise CancelledSignal
        if error is None:  # pragma: no cover (libcurl ended well without a head)
            error = TransferError(ErrorCode.BAD_SERVER_RESPONSE, "no response head")
        raise TransferError(error.code, error.message)

    def _unpause(self, t: Transfer) -> None:
        def run() -> None:
            if t.done:
                return
            try:
                t.easy.pause(t.pause_mask())
            except pycurl.error as exc:
                self._remove(t, TransferError(ErrorCode.UNKNOWN, str(exc.args[-1]).lower()))

        self._multi.call(run)

    def gather_turns(self, hold: Callable[[], _multi_module.WakeupHold]) -> None:
        """Hold the delivery wake-ups the network thread causes (where tasks go on, see
        ``_wire.Waiter``) in what ``hold`` makes there: the runner's ``HeldWakeups``."""
        _multi_module.hold_wakeups = hold

    def protocol(self, resp: urllib3.BaseHTTPResponse) -> str:
        return resp.transfer.protocol if isinstance(resp, CurlResponse) else "http/1.1"

    def clear_idle(self) -> None:
        """New tasks get fresh connections: a new share; the old one goes with its last task."""
        old = self._share
        self._share = _new_share()
        self._multi.call_and_wait(lambda: self._close_share(old))

    def _close_share(self, share: pycurl.CurlShare) -> None:
        """Close ``share`` now, or once no live transfer uses it (network thread): libcurl
        must not free a share an easy handle still works through."""
        if any(t.share is share for t in self._live):
            self._retired.append(share)
            return
        with contextlib.suppress(pycurl.error):
            share.close()

    def _sweep(self) -> None:
        """Close the replaced shares whose last transfer has ended (network thread)."""
        retired, self._retired = self._retired, []
        for share in retired:
            self._close_share(share)

    def close(self) -> None:
        """End every transfer of this session and close its connections; bounded."""
        if self._closed:
            return
        self._closed = True
        error = TransferError(ErrorCode.CANCELLED, "the session was closed")

        def run() -> None:
            for t in list(self._live):
                self._remove(t, error)
            self._sweep()
            self._close_share(self._share)

        self._multi.call_and_wait(run)
        self._template.close()
        _release()


def progress_flush(progress: Progress | None) -> None:
    if progress is not None:
        progress.flush()


def _proxy_address(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"
