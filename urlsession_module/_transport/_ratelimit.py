"""Bandwidth limits: ``maximumBytesPerSecond`` of a session (shared fairly by its running
tasks, each direction on its own) and of a task (that task only; the tighter of the two wins).

Each task's bytes are paced where its driver hears of them (``BodyReceived``/``BodySent``, fed
by the transport's read and write loops on every engine): a task that ran ahead of its share
waits there, cancellably, so the engine reads (or sends) no faster; the wire follows, as a
reader that waits stops reading (urllib3) or pauses its transfer once it is a few MiB behind
(curl's write callback, ``_curl/_easy``).

The session's rate can change while tasks run (``Session.setMaximumBytesPerSecond``), and a
share changes whenever a task joins or leaves: the pacing reads the share at every block, so
both follow at once. libcurl's own limits (``MAX_RECV_SPEED_LARGE``/``_SEND_``) are not used:
they are read as a transfer starts in some libcurl versions, and with libcurl 7.88 a handle
limited that way and paused by its reader stalled for a minute (-1001) when the shares changed
(benchmarks/_ratelimit.py, two tasks, rate raised mid-download).

The pacing is GCRA (the "virtual scheduling" form of a token bucket): each task has a
theoretical arrival time that advances by ``n / rate`` per ``n`` bytes; bytes that arrive
before it wait the difference, and at most :data:`BURST` seconds of credit build up while a
task is idle, so progress stays steady rather than coming in second-long bursts. The clock is
injected, so the accounting is tested without sleeping.

Why not a library: the pacing is a dozen lines, and the libraries that do it (``aiolimiter``,
``pyrate-limiter``) count requests or are asyncio-bound, not bytes on a blocking thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

__all__ = [
    "BURST",
    "Pacer",
    "SessionLimits",
    "TaskPacing",
    "joined_late",
    "limits_for",
    "paced",
    "pacing_for",
    "read_cap",
    "set_session_rate",
]

BURST = 0.05  # seconds of credit a task may build up (progress stays steady)
DIRECTIONS = ("recv", "send")


class Pacer:
    """One direction of one session: the running tasks' shares of its rate, and their pacing."""

    def __init__(self, rate: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._tasks: dict[Hashable, tuple[int | None, float]] = {}  # key -> (own rate, tat)

    def join(self, key: Hashable, own: int | None) -> None:
        """A task starts moving bytes this way (``own``: its own limit, or None)."""
        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = (own, self._clock())

    def leave(self, key: Hashable) -> None:
        with self._lock:
            self._tasks.pop(key, None)

    def share(self, key: Hashable) -> int | None:
        """The task's rate now: the session's divided among its running tasks, or its own,
        whichever is tighter (None: no limit)."""
        with self._lock:
            return self._share(key)

    def _share(self, key: Hashable) -> int | None:
        own = self._tasks.get(key, (None, 0.0))[0]
        session = self.rate // max(1, len(self._tasks)) if self.rate else None
        rates = [r for r in (own, session) if r]
        return max(1, min(rates)) if rates else None

    def take(self, key: Hashable, n: int) -> float:
        """``n`` bytes of this task moved: how long it must wait before it moves more."""
        with self._lock:
            rate = self._share(key)
            if rate is None or key not in self._tasks:
                return 0.0
            own, tat = self._tasks[key]
            now = self._clock()
            tat = max(tat, now) + n / rate
            self._tasks[key] = (own, tat)
            return max(0.0, tat - now - BURST)


class SessionLimits:
    """A session's two pacers (receive, send)."""

    def __init__(self, rate: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.recv = Pacer(rate, clock)
        self.send = Pacer(rate, clock)

    @property
    def rate(self) -> int | None:
        return self.recv.rate

    def set_rate(self, rate: int | None) -> None:
        """A new session limit: running tasks' shares follow at their next block."""
        with self.recv._lock, self.send._lock:
            self.recv.rate = self.send.rate = rate


_made = threading.Lock()


def limits_for(owner: Any, rate: int | None) -> SessionLimits:
    """The session's limits, kept on ``owner`` (its transport), made on first use."""
    limits = getattr(owner, "_rate_limits", None)
    if limits is None:
        with _made:
            limits = getattr(owner, "_rate_limits", None)
            if limits is None:
                limits = SessionLimits(rate)
                owner._rate_limits = limits
    return limits


def set_session_rate(owner: Any, rate: int | None) -> None:
    """A session's new ``maximumBytesPerSecond`` (None: no limit) for its running and later
    tasks (``owner``: its transport, where the limits live)."""
    limits_for(owner, rate).set_rate(rate)


class TaskPacing:
    """One task's side of its session's limits: joined while it runs, paced per block."""

    def __init__(self, limits: SessionLimits, key: Hashable, own: int | None, sends: bool):
        self.limits = limits
        self.key = key
        self.own = own
        self.sends = sends

    def start(self) -> None:
        self.limits.recv.join(self.key, self.own)
        if self.sends:
            self.limits.send.join(self.key, self.own)

    def stop(self) -> None:
        self.limits.recv.leave(self.key)
        self.limits.send.leave(self.key)

    def delay(self, received: int, sent: int) -> float:
        """Seconds to wait after ``received`` / ``sent`` more bytes."""
        wait = 0.0
        if received:
            wait = self.limits.recv.take(self.key, received)
        if sent:
            wait = max(wait, self.limits.send.take(self.key, sent))
        return wait

    def share(self) -> int | None:
        """The task's receiving share now (None: no limit)."""
        return self.limits.recv.share(self.key)


def pacing_for(
    owner: Any, session_rate: int | None, key: Hashable, own: int | None, sends: bool
) -> TaskPacing | None:
    """A task's pacing when a limit applies to it, or may come to (the session's rate was set
    while it ran); None: no limit, no cost per block."""
    if not session_rate and not own and getattr(owner, "_rate_limits", None) is None:
        return None
    return TaskPacing(limits_for(owner, session_rate), key, own, sends)


def joined_late(owner: Any, key: Hashable, own: int | None, sends: bool) -> TaskPacing | None:
    """The pacing of a task that started without one, once its session's rate was set while
    it ran (``owner``: the transport it runs on); None while no rate was ever set there. The
    task joins the shares now and is paced from its next block."""
    if getattr(owner, "_rate_limits", None) is None:
        return None
    pacing = TaskPacing(limits_for(owner, None), key, own, sends)
    pacing.start()
    return pacing


#: How far the wire may run ahead of a paced task's reports before libcurl is paused (a curl
#: body moved by the network thread itself, whose task's thread paces what it reports).
_PACED_WINDOW = 256 * 1024
#: How often (in bytes moved) such a body's callback looks whether a limit came to apply.
_PACE_LOOK = 64 * 1024


def look_for_limit(ctl: Any, moved: int, reported: int) -> tuple[bool, int]:
    """For a body an engine's network thread moves itself (libcurl's write or read callback),
    which looks whether a bandwidth limit came to apply once per ``_PACE_LOOK`` bytes, not per
    piece: whether the wire must wait for the task's paced reports to catch up (a limit
    applies and it is a window ahead), and at what count to look again (the next piece while
    it must wait)."""
    if moved - reported >= _PACED_WINDOW and paced(ctl):
        return True, moved
    return False, moved + _PACE_LOOK


def paced(ctl: Any) -> bool:
    """Whether a bandwidth limit applies to a task now: its driver paces it, or its session's
    rate was set while it ran (its driver paces the next block it hears of). An engine that
    moves bytes off the task's thread (curl's direct paths) asks this to keep the wire in step.
    """
    if getattr(ctl, "pacing", None) is not None:
        return True
    return getattr(getattr(ctl, "_transport", None), "_rate_limits", None) is not None


def read_cap(ctl: Any, block: int) -> int:
    """The most one read of a paced task's body may take (or one report may count, of bytes
    an engine moved off the task's thread: curl's direct paths): an eighth of a second of its
    share (at least 4 KiB), else ``block``; 4 KiB for a task whose session got a rate while it
    ran, until it joins the shares (at the report of those 4 KiB).

    A read takes what the socket holds; after a task waited out its share, that can be a
    second or more of a fast server's bytes, all at once (a 64 KiB/s task moving 800 KB in
    one read). Smaller reads keep the pace steady and let TCP's window hold the server back;
    each is paced before the next, so progress comes steadily, not as a window's worth of
    bytes followed by seconds of nothing.
    """
    pacing = getattr(ctl, "pacing", None)
    if pacing is None:
        if getattr(getattr(ctl, "_transport", None), "_rate_limits", None) is None:
            return block
        return min(block, 4096)  # a rate set while it ran: it joins at this read's report
    share = pacing.share()
    return block if share is None else min(block, max(4096, share // 8))
