"""The curl engine: one session's share of libcurl, and one request sent through the multi.

Each session gets a ``CurlShare`` holding its connections, DNS cache and TLS sessions, so two
sessions never reuse each other's connections (as URLSession keeps them apart), while every
transfer of every session runs in the process's one network thread (:mod:`._multi`).

A task's thread still waits for its transfer here (a blocking facade over the network thread):
it queues the request body's blocks as libcurl asks for them and waits, a bounded step at a
time, for the response head; the body is then read from the transfer's queue.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pycurl
import urllib3

from ..._config_values import ConfigValues
from ...exceptions import ErrorCode, TransferError
from .._control import CancelledSignal
from ._easy import UPLOAD_DEPTH, Transfer, configure
from ._multi import Multi
from ._response import CurlResponse

if TYPE_CHECKING:
    from .._attempt import Attempt

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


class CurlEngine:
    """One per session: its libcurl share, on the process's network thread."""

    name = "curl"

    def __init__(self, config: ConfigValues) -> None:
        self.config = config
        self._share = pycurl.CurlShare()
        for data in (pycurl.LOCK_DATA_CONNECT, pycurl.LOCK_DATA_DNS, pycurl.LOCK_DATA_SSL_SESSION):
            self._share.setopt(pycurl.SH_SHARE, data)
        self._version = _versions()[getattr(config, "httpVersion", "auto")]
        self._proxy = _proxy_address(config.proxyURL)
        self._live: set[Transfer] = set()  # (network thread only)
        self._retired: list[pycurl.CurlShare] = []  # shares a flush replaced, still in use
        self._closed = False
        self._multi = _acquire()

    def open(
        self,
        a: Attempt,
        url: str,
        headers: urllib3.HTTPHeaderDict,
        body: Iterator[bytes | memoryview] | None,
    ) -> urllib3.BaseHTTPResponse:
        """Start the transfer, feed its body, and return once its final head has come."""
        if self._closed:
            raise TransferError(ErrorCode.CANCELLED, "the session was closed")
        a.check_deadline()
        version = self._version
        if version == pycurl.CURL_HTTP_VERSION_2_0 and url[:5].lower() == "http:":
            version = pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE  # h2c, as asked
        t = Transfer(a.request, a.idle, a.deadline, self._proxy, self._unpause)
        t.group = self._live
        t.share = self._share
        configure(t, self.config, self._share, url, list(headers.items()), version)
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
        try:
            if body is not None:
                self._feed(a, t, body)
            self._await_head(a, t)
        except BaseException:
            stop(TransferError(ErrorCode.CANCELLED, "cancelled"))
            raise
        return CurlResponse(t, a.request.method, stop)

    def _remove(self, t: Transfer, error: TransferError) -> None:
        self._multi.remove(t, error)

    def _feed(self, a: Attempt, t: Transfer, body: Iterator[bytes | memoryview]) -> None:
        """Queue the request body's blocks, a few ahead of libcurl; stop if a head or the end
        comes first (a server may answer before it has read the body)."""
        try:
            for block in body:
                with t.cond:
                    while len(t.blocks) >= UPLOAD_DEPTH and not (t.head_done or t.done):
                        if t.error is not None or a.ctl.cancelled:
                            break
                        t.cond.wait(_STEP)
                    if t.head_done or t.done or t.error is not None:
                        return
                if a.ctl.cancelled:
                    raise CancelledSignal
                t.push(bytes(block))
            t.finish_upload()
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def _await_head(self, a: Attempt, t: Transfer) -> None:
        with t.cond:
            while not t.head_done and t.error is None and not t.done:
                if a.ctl.cancelled:
                    raise CancelledSignal
                t.cond.wait(_STEP)
            if t.head_done:
                return
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

    def protocol(self, resp: urllib3.BaseHTTPResponse) -> str:
        return resp.transfer.protocol if isinstance(resp, CurlResponse) else "http/1.1"

    def clear_idle(self) -> None:
        """New tasks get fresh connections: a new share; the old one goes with its last task."""
        old = self._share
        share = pycurl.CurlShare()
        for data in (pycurl.LOCK_DATA_CONNECT, pycurl.LOCK_DATA_DNS, pycurl.LOCK_DATA_SSL_SESSION):
            share.setopt(pycurl.SH_SHARE, data)
        self._share = share
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
        _release()


def _proxy_address(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"
