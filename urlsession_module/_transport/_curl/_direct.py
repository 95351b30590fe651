"""A body written to its sink from libcurl's write callback, on the network thread: a
download's ``.part`` file, or a data task's text.

The queue path (write callback -> the transfer's queue -> urllib3's ``read1`` -> the sink, on
the task's worker) costs a hand-off and a copy per 256 KiB. A download whose body needs no
decoding and no pacing skips it: :class:`DirectWrite` takes each piece libcurl gives straight
into the task's :class:`~.._bodies.Sink` (``os.write`` to the ``.part`` file, the cap checked
first), counts it, and wakes the task only once a progress step (or the progress interval) has
gathered, so the task reports coalesced progress from the count without touching a byte.

What the queue path does per block is kept: the sink's cap fails the transfer with -1103
before a byte past it is written; a suspended task pauses the transfer (libcurl keeps the
piece and offers it again on resume); a cancel stops it at the next piece; a paced task never
takes this path (its blocks are paced on its own thread).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pycurl

from ...exceptions import ErrorCode, TransferError
from .._bodies import BLOCK, PROGRESS_INTERVAL, Progress, Sink
from .._control import CancelledSignal, LetGoSignal, TransferControl
from .._ratelimit import look_for_limit, paced
from .._wire import OFF_LOOP, Steps
from ._signal import Signal, SignalWaiter

if TYPE_CHECKING:
    from .._attempt import Attempt
    from ._easy import Transfer

log = logging.getLogger(__name__)


class DirectWrite:
    """The network thread's side: each piece into the sink, the task woken per step.

    A piece is written without the transfer's lock: the lock held across each ``os.write``
    made the task's thread, woken per step, wait for it and wake again (ten or more context
    switches a step, measured). What the lock gave, that no write
    is under way once the task has let go of the file, :meth:`close` gives by waiting for
    the one under way (``busy``); both sides set their flag before they look at the other's,
    and the GIL orders the two, so one of them always sees the other.
    """

    __slots__ = (
        "_ctl",
        "_idle",
        "_last",
        "_pace_at",
        "_sink",
        "_step",
        "_t",
        "_ticked",
        "_told",
        "busy",
        "closed",
        "reported",
        "written",
    )

    def __init__(self, t: Transfer, sink: Sink, ctl: TransferControl, step: int) -> None:
        self._t = t
        self._sink = sink
        self._ctl = ctl
        self._step = step
        self._last = time.monotonic()
        self._told = 0  # bytes the task was woken for
        self._ticked = 0  # bytes written at the last tick of the clock
        self._pace_at = 0  # when ``written`` passes this, look for a limit again
        self._idle: threading.Event | None = None  # set by a write that ends after close()
        self.written = 0  # bytes in the sink (read by the task under the transfer's lock)
        self.reported = 0  # bytes the task has reported (and paced, when a limit applies)
        self.busy = False  # (network thread) a piece is being written
        self.closed = False  # the task let go of the sink: write no more

    def write(self, data: bytes) -> int | None:
        """libcurl's write callback for this transfer (network thread).

        It runs for every 16 KiB piece (libcurl's most per call, whatever its buffer), so what
        is rare is looked at rarely: a bandwidth limit once per window, not per piece.
        """
        t = self._t
        if not self._ctl.wait_running(0):  # suspended: libcurl keeps the piece for the resume
            return self._pause()
        if self.written >= self._pace_at:
            hold, self._pace_at = look_for_limit(self._ctl, self.written, self.reported)
            if hold:
                # A bandwidth limit came to apply (the session's rate was set while this
                # ran): the task's thread paces what it reports; the wire waits until it
                # has caught up.
                return self._pause()
        self.busy = True  # (before ``closed`` is looked at: see the class)
        try:
            if self.closed or t.error is not None:
                return 0  # libcurl stops with a write error (a cancel, or the task let go)
            self._sink.write(data)
        except TransferError as exc:  # past the cap (-1103) or the file refused it
            t.fail_body(exc)
            return 0  # libcurl stops with a write error; the transfer reports ours
        finally:
            self.busy = False
            if self.closed:  # close() may be waiting for this piece
                idle = self._idle
                if idle is not None:
                    idle.set()
        self.written += len(data)
        if self.written - self._told >= self._step:
            with t.cond:  # (the condition's notify wants its lock held)
                self._tell()
        return None

    def close(self) -> None:
        """(task's thread) Let go of the sink: no write starts after this, and the one under
        way, if any, has ended when this returns, so the file is the task's own again."""
        if self._t.done:  # libcurl let go of the transfer: no callback comes any more
            self.closed = True
            return
        idle = self._idle = threading.Event()  # (before ``closed``: a write that sees it sets it)
        self.closed = True
        if self.busy and not idle.wait(_CLOSE_WAIT):  # pragma: no cover (a write stuck in the OS)
            log.warning(
                "a download's write did not end within %s s of its task letting go", _CLOSE_WAIT
            )

    def _pause(self) -> int:
        t = self._t
        with t.cond:
            t.recv_paused = True
            t.cond.notify_all()
        return pycurl.WRITEFUNC_PAUSE

    def tick(self, now: float) -> None:
        """(network thread, on the clock) Bytes that waited a progress interval are told; bytes
        written since the last tick keep the transfer alive for its idle timeout (libcurl
        calls :meth:`write` itself, not ``Transfer.on_body``, which notes each piece's time)."""
        if self.written != self._ticked:
            self._ticked = self.written
            self._t.last = now
        if self.written != self._told and now - self._last >= PROGRESS_INTERVAL:
            with self._t.cond:
                self._tell()

    def _tell(self) -> None:
        self._told = self.written
        self._last = time.monotonic()
        self._t.cond.notify_all()


#: How long a task letting go of its file waits for the piece being written (one ``os.write``).
_CLOSE_WAIT = 30.0


def direct_steps(
    a: Attempt, t: Transfer, progress: Progress, stop: Callable[[TransferError], None]
) -> Steps[None]:
    """The task's side: hand the body to the network thread and report what it wrote.

    Bytes already queued since the head are written here first, under the transfer's lock, so
    none is reordered; from then on the write callback writes. Returns at the body's end;
    raises the transfer's error, :class:`CancelledSignal`, or :class:`LetGoSignal` when a task
    suspended past its patience lets its connection go (resumed later with Range).
    """
    signal = t.cond
    assert isinstance(signal, Signal)
    d = DirectWrite(t, a.sink, a.ctl, progress.step)
    with signal:
        while t.chunks:
            chunk = t.chunks.popleft()
            a.sink.write(chunk)
            d.written += len(chunk)
        t.buffered = 0
        going = not t.done
        if going:  # (once it ended no write comes, and ``ended`` no longer clears it)
            t.direct = d
        wake, t.recv_paused = t.recv_paused, False
    if wake:
        t.resume_receiving()
    if going:
        signal.loop(functools.partial(_write_directly, t, d))
    try:
        yield from _report(a, t, d, progress, stop)
    finally:
        d.close()


def _write_directly(t: Transfer, d: DirectWrite) -> None:
    """(network thread, between libcurl's calls) libcurl calls the writer itself from now on:
    a Python call a piece fewer (65,536 a GiB; ~3 % of a download's CPU, measured with
    ``perform``), as ``Transfer.on_body`` only passed the piece on. (A transfer that ended
    meanwhile has no handle left to tell.)"""
    if not t.done and t.direct is d:
        t.easy.setopt(pycurl.WRITEFUNCTION, d.write)


def _report(
    a: Attempt,
    t: Transfer,
    d: DirectWrite,
    progress: Progress,
    stop: Callable[[TransferError], None],
) -> Steps[None]:
    """Report what the network thread wrote until the body's end, a failure or a let-go."""
    signal = t.cond
    assert isinstance(signal, Signal)
    seen = 0
    while True:
        if paced(a.ctl):
            # Its reports wait out the pacing (a limit set while it ran): on a worker, not on
            # the network thread that may have woken it (``light``).
            yield OFF_LOOP
        with signal:
            written, paused, done, error = d.written, t.recv_paused, t.done, t.error
            generation = signal.generation
        while written > seen:  # counted a piece at most at a time, as libcurl gives them
            n = min(written - seen, BLOCK)
            progress.add(n)  # (paced here when a bandwidth limit applies: see _unreliable)
            seen += n
        d.reported = seen
        if a.ctl.cancelled or error is not None or done:
            if a.sink.path is not None:
                # What follows a download's body closes, moves or syncs its file (or keeps it
                # for a resume): not on the network thread, where the waits below may run. (A
                # data task's end goes on there, as it did before its body came.)
                yield OFF_LOOP
            if a.ctl.cancelled:
                raise CancelledSignal
            if error is not None:
                raise TransferError(error.code, error.message)
            return
        if paused:
            yield OFF_LOOP  # the wait below blocks: not on the network thread
            progress.flush()  # held by the driver until resumed: no progress while suspended
            if not a.await_running(a.patience):
                log.debug("suspended task lets its connection go at %d bytes", a.sink.size)
                stop(TransferError(ErrorCode.CANCELLED, "the response was dropped"))
                a.checkpoint()
                raise LetGoSignal
            with signal:
                t.recv_paused = False
            t.resume_receiving()
            continue
        # Until one of the above, a step only counts and reports bytes: it may go on on the
        # network thread that wakes it, even for a download (``light``), instead of waking a
        # worker per progress step (a thread hand-off each, ~1,000 a GiB).
        yield SignalWaiter(signal, generation, light=True)
