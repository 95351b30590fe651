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

A download to a file with no cap and no limit goes one step further once its body has started
(*counted mode*, :meth:`DirectWrite.hand_to_libcurl`): libcurl's write callback is ``os.write``
on the file itself, no Python frame per piece, and what the Python writer did per piece is
done once per ``socket_action`` (:func:`count_written`): the count (the file's offset), a
progress step, a suspend (the transfer paused), a limit that came to apply (back to the
Python writer). Letting go of the file first stops that on the network thread.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pycurl

from ...exceptions import ErrorCode, TransferError
from .._bodies import BLOCK, PROGRESS_INTERVAL, Progress, Sink
from .._control import CancelledSignal, LetGoSignal, TransferControl
from .._errors import file_error
from .._ratelimit import look_for_limit, paced, read_cap
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
        "_base",
        "_counted",
        "_ctl",
        "_idle",
        "_last",
        "_offset",
        "_pace_at",
        "_roomy_at",
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
        # Counted mode (:meth:`hand_to_libcurl`): libcurl writes each piece with ``os.write``
        # itself and ``written`` is read from the file's offset after each ``socket_action``.
        self._counted = False
        self._base = 0  # ``written`` when counting began
        self._offset = 0  # the file's offset then
        self._roomy_at = 0  # ``written`` when the disk's free space was last looked at

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
        t = self._t
        if t.done:  # libcurl let go of the transfer: no callback comes any more
            self.closed = True
            return
        if self._counted:  # libcurl writes the file itself: that stops on the network thread
            signal = t.cond
            assert isinstance(signal, Signal)
            if signal.loop_thread == threading.get_ident():
                self.stop_counting()
            else:
                stopped = threading.Event()

                def stop() -> None:
                    self.stop_counting()
                    stopped.set()

                signal.loop(stop)
                deadline = time.monotonic() + _CLOSE_WAIT
                # (a transfer that ended meanwhile calls no writer any more, and the thread
                # that would run ``stop`` may be gone with the session)
                while not stopped.wait(0.05) and not t.done:
                    if time.monotonic() > deadline:  # pragma: no cover (the thread is stuck)
                        log.warning("a download's writer was not stopped in %s s", _CLOSE_WAIT)
                        break
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
        if self._counted:
            self.count()
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

    # -- counted mode (network thread) ------------------------------------------------------------

    def hand_to_libcurl(self) -> None:
        """(network thread, between libcurl's calls) libcurl calls a writer itself from now on.

        For a download to a file with no cap and no bandwidth limit, that writer is
        ``os.write`` on the file, with no Python frame around it (pycurl takes the count it
        returns; a short one stops the transfer with a write error): the least a piece can
        cost, 65,536 times a GiB. What the Python writer does per piece is then done per
        ``socket_action`` (:func:`count_written`): the count, a progress step, a suspend (the
        transfer paused), a limit that came to apply (back to :meth:`write`). Otherwise it is
        :meth:`write` (``Transfer.on_body`` only passed each piece on to it).
        """
        t = self._t
        if t.done or t.direct is not self:
            return  # (a transfer that ended meanwhile has no handle left to tell)
        self.busy = True  # (before ``closed`` is looked at, as :meth:`write` does)
        try:
            if self.closed:
                return  # the task let go of the file already
            fd = self._sink.file_descriptor
            if (
                fd is None
                or self._sink.limit is not None
                or paced(self._ctl)
                or _file_size_limited()
                or not _room_for(fd)
            ):
                t.easy.setopt(pycurl.WRITEFUNCTION, self.write)
                return
            self._offset = os.lseek(fd, 0, os.SEEK_CUR)
            self._base = self.written
            t.easy.setopt(pycurl.WRITEFUNCTION, functools.partial(os.write, fd))
            self._counted = True
            _COUNTED.add(self)
            if self.closed:  # the task let go meanwhile (it waits for ``busy``): undo it
                self.stop_counting()
        finally:
            self.busy = False
            if self.closed and self._idle is not None:
                self._idle.set()

    def count(self) -> None:
        """(network thread, outside libcurl's calls) Count what libcurl wrote: the file's
        offset moved by it, exactly (libcurl's own byte count also takes in what it holds
        back while the transfer is paused)."""
        t = self._t
        fd = self._sink.file_descriptor
        if fd is None:
            return
        written = self._base + os.lseek(fd, 0, os.SEEK_CUR) - self._offset
        more = written - self.written
        if more > 0:
            self._sink.size += more
            self.written = written
            if written - self._told >= self._step:
                with t.cond:
                    self._tell()

    def _after_action(self) -> None:
        """What :meth:`write` looks at per piece, looked at once a ``socket_action``."""
        self.count()
        t = self._t
        if t.error is not None or self.closed:
            return  # a cancel: the transfer is being removed
        if self.written - self._roomy_at >= _ROOM_LOOK:
            fd = self._sink.file_descriptor
            if fd is None or not _room_for(fd):  # a disk filling up: the Python writer
                self.stop_counting()
                return
            self._roomy_at = self.written
        if paced(self._ctl):  # a limit came to apply: the Python writer paces the wire
            self.stop_counting()
        elif not self._ctl.wait_running(0) and not t.recv_paused:
            self._pause()  # suspended: as the Python writer marks it, and libcurl is told
            t.easy.pause(t.pause_mask())  # (it keeps the rest for the resume)

    def stop_counting(self) -> None:
        """(network thread) libcurl calls :meth:`write` again (a limit, a disk filling up, the
        task letting go): the count is taken first."""
        if self._counted:
            self.finish()
            if not self._t.done:  # (an ended transfer's handle is closed: nothing to tell)
                self._t.easy.setopt(pycurl.WRITEFUNCTION, self.write)

    def finish(self) -> None:
        """(network thread) Counted mode ends (the transfer ends, or :meth:`stop_counting`):
        the last count, while the file is still the transfer's."""
        if self._counted:
            _COUNTED.discard(self)
            self._counted = False
            self.count()

    def write_error(self) -> TransferError | None:
        """The error behind libcurl's write error in counted mode (None: not counted): the
        file refused a piece, found by asking it for one byte more, since ``os.write``'s own
        error stayed in pycurl (which prints it: counted mode keeps away from a full disk and
        a file size limit, see :func:`_room_for`, so this is for what it cannot see coming,
        such as a quota)."""
        fd = self._sink.file_descriptor
        if not self._counted or fd is None:
            return None
        size = os.fstat(fd).st_size
        try:
            os.posix_fallocate(fd, size, 1)
        except OSError as exc:
            return file_error(ErrorCode.CANNOT_WRITE_TO_FILE, exc, self._sink.path or "")
        os.ftruncate(fd, size)
        short = OSError(errno.EIO, "a write to the file came up short")
        return file_error(ErrorCode.CANNOT_WRITE_TO_FILE, short, self._sink.path or "")


#: The free space under which a download leaves counted mode for the Python writer: pycurl
#: prints the exception of a callback that raises (``PyErr_Print``), and ``os.write`` raises on
#: a full disk (16 KiB pieces fill a page-sized file system exactly); the Python writer turns
#: it into -3003 quietly. One ``socket_action`` moves a few MiB to a few tens.
_ROOM = 256 << 20
_ROOM_LOOK = 4 << 20  # bytes written between two looks at the free space


def _room_for(fd: int) -> bool:
    try:
        st = os.fstatvfs(fd)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= _ROOM


def _file_size_limited() -> bool:
    """A file size limit (``RLIMIT_FSIZE``) makes ``os.write`` raise at it: no counted mode."""
    try:
        import resource
    except ImportError:  # pragma: no cover (not POSIX)
        return False
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return bool(soft != resource.RLIM_INFINITY)


#: Downloads in counted mode (:meth:`DirectWrite.hand_to_libcurl`); network thread only.
_COUNTED: set[DirectWrite] = set()


def count_written() -> None:
    """(network thread, after each ``socket_action``) Count what libcurl wrote for the
    downloads in counted mode, and look at what their Python writer would have per piece."""
    if _COUNTED:
        for d in list(_COUNTED):
            d._after_action()


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
        signal.loop(d.hand_to_libcurl)
    try:
        yield from _report(a, t, d, progress, stop)
    finally:
        d.close()


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
        most = BLOCK
        if paced(a.ctl):
            # Its reports wait out the pacing (a limit set while it ran): on a worker, not on
            # the network thread that may have woken it (``light``); small ones, each paced.
            yield OFF_LOOP
            most = read_cap(a.ctl, BLOCK)
        with signal:
            written, paused, done, error = d.written, t.recv_paused, t.done, t.error
            generation = signal.generation
        while written > seen:  # counted a piece at most at a time, as libcurl gives them
            n = min(written - seen, most)
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
