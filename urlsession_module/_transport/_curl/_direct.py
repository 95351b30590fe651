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

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pycurl

from ...exceptions import ErrorCode, TransferError
from .._bodies import BLOCK, PROGRESS_INTERVAL, Progress, Sink
from .._control import CancelledSignal, LetGoSignal, TransferControl
from .._ratelimit import paced
from .._wire import OFF_LOOP, Steps
from ._signal import Signal, SignalWaiter

if TYPE_CHECKING:
    from .._attempt import Attempt
    from ._easy import Transfer

log = logging.getLogger(__name__)


class DirectWrite:
    """The network thread's side: each piece into the sink, the task woken per step."""

    __slots__ = (
        "_ctl",
        "_last",
        "_sink",
        "_step",
        "_t",
        "_told",
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
        self.written = 0  # bytes in the sink (read by the task under the transfer's lock)
        self.reported = 0  # bytes the task has reported (and paced, when a limit applies)
        self.closed = False  # the task let go of the sink: write no more

    def write(self, data: bytes) -> int | None:
        """libcurl's write callback for this transfer (network thread)."""
        t = self._t
        if not self._ctl.wait_running(0):  # suspended: libcurl keeps the piece for the resume
            with t.cond:
                t.recv_paused = True
                t.cond.notify_all()
            return pycurl.WRITEFUNC_PAUSE
        if self.written - self.reported >= _PACED_WINDOW and paced(self._ctl):
            # A bandwidth limit came to apply (the session's rate was set while this ran): the
            # task's thread paces what it reports; the wire waits until it has caught up.
            with t.cond:
                t.recv_paused = True
                t.cond.notify_all()
            return pycurl.WRITEFUNC_PAUSE
        # Under the transfer's lock: once the task has let go (``closed``, see
        # direct_steps), no write is under way and none starts, so its file is its own again.
        with t.cond:
            if self.closed:
                return 0  # libcurl stops with a write error
            try:
                self._sink.write(data)
            except TransferError as exc:  # past the cap (-1103) or the file refused it
                t.fail_body(exc)
                return 0  # libcurl stops with a write error; the transfer reports ours
            self.written += len(data)
            if self.written - self._told >= self._step:
                self._tell()
        return None

    def tick(self, now: float) -> None:
        """(network thread, on the clock) Bytes that waited a progress interval are told."""
        if self.written != self._told and now - self._last >= PROGRESS_INTERVAL:
            with self._t.cond:
                self._tell()

    def _tell(self) -> None:
        self._told = self.written
        self._last = time.monotonic()
        self._t.cond.notify_all()


#: How far the wire may run ahead of a paced task's reports before libcurl is paused.
_PACED_WINDOW = 256 * 1024


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
        if not t.done:  # (once it ended no write comes, and ``ended`` no longer clears it)
            t.direct = d
        wake, t.recv_paused = t.recv_paused, False
    if wake:
        t.resume_receiving()
    try:
        yield from _report(a, t, d, progress, stop)
    finally:
        with signal:
            d.closed = True


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
        with signal:
            written, paused, done, error = d.written, t.recv_paused, t.done, t.error
            generation = signal.generation
        while written > seen:  # counted a piece at most at a time, as libcurl gives them
            n = min(written - seen, BLOCK)
            progress.add(n)  # (paced here when a bandwidth limit applies: see _unreliable)
            seen += n
        d.reported = seen
        if a.ctl.cancelled:
            raise CancelledSignal
        if error is not None:
            raise TransferError(error.code, error.message)
        if done:
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
        yield SignalWaiter(signal, generation)
