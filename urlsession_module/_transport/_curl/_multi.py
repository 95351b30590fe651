"""The one libcurl multi handle of the process, and the network thread that drives it.

Every curl transfer of every session runs here, in one thread (1,000 sessions are not 1,000
threads): libcurl tells us which sockets it wants watched (``SOCKETFUNCTION``) and when it
next needs a call (``TIMERFUNCTION``); the thread waits on epoll (a selector where there is none) for either,
never longer than ``_TICK``, and hands each ready socket to ``socket_action``. Other threads
never touch the multi or an easy handle that is in it: they post a command (add, remove,
un-pause, close a session's share) and wake the thread through a pipe, as Downloads.jl's
``Multi.jl`` and swift-corelibs-foundation's ``MultiHandle.swift`` do. The delivery wake-ups
its tasks cause (their events) are held while it is busy and go when it would sleep, or after
``_LINGER``: a queue is woken once for a burst of payloads, not once for each.

The thread lives while some session uses the curl engine: the first engine starts it, the last
one's ``close`` stops and joins it, so an invalidated session leaves no thread behind.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import selectors
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import pycurl

from ...exceptions import ErrorCode, TransferError
from .._wire import mark_network_thread
from ._direct import count_written
from ._errors import WRITE_ERROR

if TYPE_CHECKING:
    from ._easy import Transfer

log = logging.getLogger(__name__)


class WakeupHold(Protocol):
    """The delivery wake-ups the network thread causes, held (``_dispatch.HeldWakeups``)."""

    since: float | None

    @property
    def held(self) -> bool: ...

    def flush(self) -> None: ...

    def release(self) -> None: ...


#: Set from above the transport (the runner): makes, on the network thread, the hold of the
#: delivery wake-ups its tasks cause (see :meth:`Multi._run`); None: each wakes at once.
hold_wakeups: Callable[[], WakeupHold] | None = None

_TICK = 0.05  # the longest the thread sleeps: how late an idle timeout or deadline may fire
#: The longest a held delivery wake-up waits while the thread stays busy (it goes at once
#: when the thread would sleep): under the progress interval, so progress stays as steady.
_LINGER = 0.002
_JOIN = 5.0  # how long the last session's close waits for the thread to end


class _Epoll:
    """The sockets libcurl asks us to watch, on ``epoll`` directly (Linux).

    libcurl changes what it watches on a socket a few times per request (write until the
    request went, then read; dropped and watched again between requests on a kept-alive
    connection): ``selectors``' bookkeeping (a key object per change, its lookups) cost ~10 %
    of a small task's CPU on the network thread, where ``epoll.modify`` is one system call.
    What is watched is kept here (fd -> libcurl's ``POLL_*`` bits) so a change to the same
    bits costs nothing.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._watched: dict[int, int] = {}

    def watch(self, fd: int, what: int) -> None:
        """Watch ``fd`` for libcurl's ``what`` (``POLL_IN``, ``POLL_OUT`` or both)."""
        old = self._watched.get(fd)
        if old == what:
            return
        self._watched[fd] = what
        events = _EPOLL_EVENTS.get(what, 0)
        if old is not None:
            try:
                self._epoll.modify(fd, events)
                return
            except FileNotFoundError:  # closed and its number reused: epoll forgot it
                pass
        try:
            self._epoll.register(fd, events)
        except FileExistsError:
            self._epoll.modify(fd, events)

    def forget(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            with contextlib.suppress(OSError):  # (already closed: epoll forgot it)
                self._epoll.unregister(fd)

    def wait(self, timeout: float) -> list[tuple[int, int]]:
        """The ready descriptors with libcurl's ``CSELECT_*`` bits (an error or a hang-up
        wakes both directions that are watched, as ``selectors`` reports them)."""
        ready = []
        watched = self._watched
        for fd, event in self._epoll.poll(timeout):
            flags = 0
            what = watched.get(fd, 0)
            if event & ~select.EPOLLOUT and what & pycurl.POLL_IN:
                flags |= pycurl.CSELECT_IN
            if event & ~select.EPOLLIN and what & pycurl.POLL_OUT:
                flags |= pycurl.CSELECT_OUT
            ready.append((fd, flags))
        return ready

    def close(self) -> None:
        self._epoll.close()


class _Selector:
    """The same on ``selectors`` (kqueue on macOS), where there is no ``epoll``."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._watched: dict[int, int] = {}

    def watch(self, fd: int, what: int) -> None:
        old = self._watched.get(fd)
        if old == what:
            return
        self._watched[fd] = what
        events = 0
        if what & pycurl.POLL_IN:
            events |= selectors.EVENT_READ
        if what & pycurl.POLL_OUT:
            events |= selectors.EVENT_WRITE
        try:
            self._selector.modify(fd, events)
        except KeyError:
            self._selector.register(fd, events)

    def forget(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fd)

    def wait(self, timeout: float) -> list[tuple[int, int]]:
        ready = []
        for key, mask in self._selector.select(timeout):
            flags = 0
            if mask & selectors.EVENT_READ:
                flags |= pycurl.CSELECT_IN
            if mask & selectors.EVENT_WRITE:
                flags |= pycurl.CSELECT_OUT
            ready.append((key.fd, flags))
        return ready

    def close(self) -> None:
        self._selector.close()


_EPOLL_EVENTS = {
    pycurl.POLL_IN: select.EPOLLIN if hasattr(select, "epoll") else 0,
    pycurl.POLL_OUT: select.EPOLLOUT if hasattr(select, "epoll") else 0,
    pycurl.POLL_INOUT: (select.EPOLLIN | select.EPOLLOUT) if hasattr(select, "epoll") else 0,
}


class Multi:
    """The multi handle, the sockets it watches and the thread that owns both."""

    def __init__(self) -> None:
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._poller: _Epoll | _Selector = _Epoll() if hasattr(select, "epoll") else _Selector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller.watch(self._wake_r, pycurl.POLL_IN)
        self._commands: collections.deque[Callable[[], None]] = collections.deque()
        self._woken = False
        self._timer: float | None = None  # when libcurl next wants socket_action(TIMEOUT)
        self._transfers: dict[pycurl.Curl, Transfer] = {}
        self._heading: set[Transfer] = set()  # transfers whose final head has not come yet
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="urlsession-curl", daemon=True)
        self._thread.start()
        self._ident = self._thread.ident

    # -- from any thread ------------------------------------------------------------------------

    def call(self, command: Callable[[], None]) -> None:
        """Run ``command`` on the network thread, soon (the only way to touch the multi)."""
        self._commands.append(command)
        # On the network thread itself no wake-up is needed: it runs its commands before it
        # waits again.
        if not self._woken and threading.get_ident() != self._ident:
            self._woken = True
            with contextlib.suppress(BlockingIOError):  # a full pipe is already a wake-up
                os.write(self._wake_w, b"x")

    def call_and_wait(self, command: Callable[[], None], timeout: float = _JOIN) -> None:
        """Run ``command`` on the network thread and wait (bounded) until it has run."""
        if threading.current_thread() is self._thread:
            command()
            return
        done = threading.Event()

        def run() -> None:
            try:
                command()
            finally:
                done.set()

        self.call(run)
        done.wait(timeout)

    def stop(self) -> None:
        """End the thread (no session uses it any more) and free the multi: bounded."""
        self.call(self._begin_stop)
        self._thread.join(_JOIN)
        if self._thread.is_alive():  # pragma: no cover (a callback stuck in user code)
            log.warning("the curl network thread did not end within %s s", _JOIN)
            return
        self._poller.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._multi.close()

    @property
    def ident(self) -> int | None:
        return self._ident

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    # -- on the network thread --------------------------------------------------------------------

    def add(self, t: Transfer) -> None:
        """Start ``t`` (network thread only)."""
        self._transfers[t.easy] = t
        self._heading.add(t)
        self._multi.add_handle(t.easy)

    def remove(self, t: Transfer, error: TransferError | None = None) -> None:
        """Take ``t`` out of the multi at once (cancelled, failed or done); libcurl drops its
        connection if the exchange was not complete. Network thread only."""
        if self._transfers.pop(t.easy, None) is None:
            return
        self._heading.discard(t)
        with contextlib.suppress(pycurl.error):
            self._multi.remove_handle(t.easy)
        t.ended(error)

    def transfers(self) -> list[Transfer]:
        return list(self._transfers.values())

    def _begin_stop(self) -> None:
        self._stopping = True
        for t in list(self._transfers.values()):
            self.remove(t, TransferError(ErrorCode.CANCELLED, "the session was closed"))

    def _on_socket(self, what: int, fd: int, _multi: object, _data: object) -> None:
        """libcurl says which sockets to watch, and for what: keep the poller in step."""
        if what == pycurl.POLL_REMOVE:
            self._poller.forget(fd)
        else:
            self._poller.watch(fd, what)

    def _on_timer(self, timeout_ms: int) -> None:
        """libcurl wants a call after ``timeout_ms`` (-1: no timer; 0: at once)."""
        self._timer = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    def _run(self) -> None:
        mark_network_thread()
        next_check = 0.0
        held: WakeupHold | None = None
        try:
            while True:
                if held is None and hold_wakeups is not None:
                    held = hold_wakeups()  # (on this thread: the first turn after a runner set it)
                self._run_commands()
                if self._stopping and not self._transfers:
                    return
                now = time.monotonic()
                wait = _TICK
                if self._timer is not None:
                    wait = max(0.0, min(wait, self._timer - now))
                ready = self._poller.wait(0.0 if held is not None and held.held else wait)
                if not ready and wait > 0 and held is not None and held.held:
                    # Nothing to do now: the thread would sleep, so the held wake-ups go first.
                    held.flush()
                    ready = self._poller.wait(wait)
                for fd, flags in ready:
                    if fd == self._wake_r:
                        self._drain_wake()
                        continue
                    self._action(fd, flags)
                now = time.monotonic()
                if self._timer is not None and now >= self._timer:
                    self._timer = None
                    self._action(pycurl.SOCKET_TIMEOUT, 0)
                self._collect()
                if now >= next_check:
                    next_check = now + _TICK
                    self._check_clocks(now)
                if held is not None and held.held:
                    if held.since is None:
                        held.since = now
                    elif now - held.since >= _LINGER:
                        held.flush()
        except BaseException:  # pragma: no cover (a bug here must not strand the tasks)
            log.exception("the curl network thread failed")
            for t in list(self._transfers.values()):
                self.remove(t, TransferError(ErrorCode.UNKNOWN, "the network thread failed"))
            raise
        finally:
            if held is not None:
                held.release()

    def _run_commands(self) -> None:
        commands = self._commands
        while commands:
            command = commands.popleft()
            try:
                command()
            except Exception:
                log.exception("a curl network command failed")

    def _drain_wake(self) -> None:
        self._woken = False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass

    def _action(self, fd: int, flags: int) -> None:
        try:
            self._multi.socket_action(fd, flags)
        except pycurl.error as exc:  # pragma: no cover (a socket libcurl already forgot)
            log.debug("socket_action(%s): %s", fd, exc)
        if self._heading:
            self._scan_heads()
        count_written()  # bodies libcurl wrote itself: their counts, steps, suspends

    def _scan_heads(self) -> None:
        """Take in the head lines libcurl gave in the ``socket_action`` that just returned
        (:meth:`Transfer.scan_head`): heads that are complete go to their readers, with their
        metrics; a head we refuse ends its transfer (-1011) before its ``done`` is read."""
        for t in [t for t in self._heading if len(t.raw) != t.scanned]:
            if t.scan_head():
                self.remove(t, t.outcome(WRITE_ERROR, ""))  # (leaves ``_heading`` too)
            elif t.head_done:
                self._heading.discard(t)
                t.easy.setopt(pycurl.HEADERFUNCTION, t.on_trailer)

    def _collect(self) -> None:
        """Finish every transfer libcurl says is done, with its outcome."""
        while True:
            _queued, ok, failed = self._multi.info_read()
            for easy in ok:
                t = self._transfers.get(easy)
                if t is not None:
                    self.remove(t, t.outcome(0, ""))
            for easy, code, message in failed:
                t = self._transfers.get(easy)
                if t is not None:
                    self.remove(t, t.outcome(code, message))
            if not _queued:
                return

    def _check_clocks(self, now: float) -> None:
        """The idle timeout and the resource deadline, in the same terms as the urllib3 engine:
        a transfer that moved no byte for its idle interval (while no one but the server held it
        up) or that passed its deadline ends with -1001."""
        for t in list(self._transfers.values()):
            error = t.overdue(now)
            if error is not None:
                self.remove(t, error)
