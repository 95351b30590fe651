"""The hand-over of new background tasks: named here, written to the socket, journaled there.

A ``downloadTask`` on a background session must return in microseconds, yet lose nothing once it
has returned. So the host names the task itself, from a block of task numbers the transfer
process leased to it (durably, so they never repeat), writes the task's message into the socket
(the kernel holds it even if this process is killed the next instant) and returns. The transfer
process journals what it reads in batches, one commit (one fsync) each, and says which tasks are
durable in a pushed :class:`~._wire.Journaled`. Until then the task's frame stays here: a
reconnect after the transfer process died hands it over again, with the same identifier (the
journal stores it once). :meth:`Handovers.flush` waits until everything handed so far is durable;
the process's exit waits for it too (bounded), and says so plainly when it cannot.

A task the journal could not take (a full disk) ends with a failed ``sessioncompleted`` and its
error is raised by the session's next call: nothing already journaled is touched.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from ..exceptions import TransferUnavailableError, URLSessionError
from ._wire import Journaled, Lease, LeaseReply, MessageError, parse_reply

if TYPE_CHECKING:
    from ._client import TransferClient

__all__ = ["EXIT_WAIT", "HandoverError", "Handovers"]

FIRST_LEASE = 256  # task numbers in the first block; each next block doubles, up to MAX_LEASE
MAX_LEASE = 8192
LEASE_WAIT = 30.0  # a call with no number left waits this long for a lease at most
EXIT_WAIT = float(os.environ.get("URLSESSION_EXIT_WAIT", "30"))  # host exit: journal wait bound
SEND_WAIT = 60.0  # a hand-over whose write failed waits this long for the reconnect to take it


class HandoverError(URLSessionError):
    """The transfer process could not journal a task handed over earlier (e.g. a full disk)."""


_all: weakref.WeakSet[Handovers] = weakref.WeakSet()


class Handovers:
    """One per :class:`~._client.TransferClient`: leased numbers and unjournaled tasks."""

    def __init__(self, client: TransferClient) -> None:
        self._client = client
        # The calls' fast paths take the lock itself (a C call); waiters use its condition.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending: dict[str, tuple[str, bytes]] = {}  # task id -> (session, frame), in order
        self._errors: dict[str, str] = {}  # session -> why its last hand-over failed
        self._ranges: collections.deque[list[int]] = collections.deque()  # [next, end) blocks
        self._left = 0
        self._block = FIRST_LEASE
        self._leasing = False
        _all.add(self)

    # -- task numbers ------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A task identifier no one else will ever get (a leased number; no round trip)."""
        with self._lock:  # the common case: numbers left, and no lease to ask for
            if self._left and (self._leasing or self._left > self._block // 2):
                return self._take()
        with self._cond:
            low = self._left <= self._block // 2 and not self._leasing
            if low:
                self._leasing = True
        if low:
            self._lease()
        with self._cond:
            if not self._left and not self._cond.wait_for(lambda: self._left > 0, LEASE_WAIT):
                raise TransferUnavailableError(
                    "the transfer process did not lease task identifiers in time"
                )
            return self._take()

    def _take(self) -> str:
        """The next leased number (the caller holds the lock and saw one left)."""
        block = self._ranges[0]
        number = block[0]
        block[0] += 1
        if block[0] == block[1]:
            self._ranges.popleft()
        self._left -= 1
        return f"bg{number}"

    def prefetch(self, wait: bool = False) -> None:
        """Lease a block now (after attaching) unless enough numbers are left; ``wait``: with
        none left, wait for it here (``createSession``), so no later call ever does."""
        with self._cond:
            if self._left > self._block // 2 or self._leasing:
                return
            self._leasing = True
            empty = not self._left
        if wait and empty:
            try:
                reply = self._client.request(Lease(self._block))
            finally:
                with self._cond:
                    self._leasing = False
            self._apply(reply)
        else:
            self._lease()

    def _lease(self) -> None:
        self._client.request_async(Lease(self._block), self._leased)

    def _leased(self, raw: dict[str, Any] | None) -> None:
        reply: Any = None
        if raw is not None:
            try:
                reply = parse_reply(raw, Lease)
            except MessageError:
                reply = None
        with self._cond:
            self._leasing = False
        self._apply(reply)  # unanswered: the reattach after a reconnect leases again

    def _apply(self, reply: Any) -> None:
        with self._cond:
            if isinstance(reply, LeaseReply):
                self._ranges.append([reply.first, reply.first + reply.count])
                self._left += reply.count
                self._block = min(self._block * 2, MAX_LEASE)
            self._cond.notify_all()

    # -- hand-over ---------------------------------------------------------------------------------

    def check(self, session: str) -> None:
        """Raise, once, why the journal refused this session's last hand-over."""
        if not self._errors:  # (read without the lock: a refusal set meanwhile is seen next call)
            return
        with self._cond:
            why = self._errors.pop(session, None)
        if why is not None:
            raise HandoverError(f"a background task was not journaled: {why}")

    def hand_over(self, session: str, task_id: str, frame: bytes) -> None:
        """Write the task's frame into the socket and return (no answer awaited)."""
        with self._lock:
            self._pending[task_id] = (session, frame)
        try:
            self._client.send_frame(frame)
        except TransferUnavailableError:
            # The transfer process went away under us: the reconnect hands the task over again.
            if not self._wait(lambda: task_id not in self._pending, SEND_WAIT):
                with self._cond:
                    self._pending.pop(task_id, None)
                raise

    def journaled(self, message: Journaled) -> None:
        """The transfer process journaled (or could not journal) these tasks (reader thread)."""
        refused: list[tuple[str, str, str]] = []
        with self._cond:
            for task_id in message.ids:
                self._pending.pop(task_id, None)
            for task_id, why in message.failed:
                entry = self._pending.pop(task_id, None)
                if entry is not None:
                    self._errors[entry[0]] = why
                    refused.append((entry[0], task_id, why))
            self._cond.notify_all()
        for session, task_id, why in refused:
            endpoint = self._client.session(session)
            if endpoint is not None:
                endpoint._remote_refused(task_id, why)

    def resend(self, session: str) -> None:
        """After a reattach: hand over again, in order, what was not journaled (same ids)."""
        with self._cond:
            frames = [f for s, f in self._pending.values() if s == session]
        for frame in frames:
            self._client.send_frame(frame)

    def connection_lost(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- waiting -----------------------------------------------------------------------------------

    def pending(self, session: str | None = None) -> list[str]:
        with self._cond:
            return [t for t, (s, _) in self._pending.items() if session in (None, s)]

    def flush(self, session: str | None, timeout: float) -> None:
        """Return once every task handed over so far (by ``session``, or by anyone) is durable.

        Raises :class:`TransferUnavailableError` after ``timeout``, and :class:`HandoverError`
        if the journal refused one of them.
        """
        waiting = set(self.pending(session))
        if waiting and not self._wait(lambda: waiting.isdisjoint(self._pending), timeout):
            left = len(waiting.intersection(self.pending(session)))
            raise TransferUnavailableError(
                f"{left} background task(s) handed over were not journaled within {timeout:g} s:"
                " the transfer process is gone or stuck"
            )
        if session is not None:
            self.check(session)

    def _wait(self, done: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True


@atexit.register
def _at_exit() -> None:
    """The host is leaving (end of script, ``sys.exit``, an uncaught exception): wait, bounded,
    until every task it handed over is journaled, and say plainly what was not."""
    for handovers in list(_all):
        if not handovers.pending():
            continue
        try:
            handovers.flush(None, EXIT_WAIT)
        except URLSessionError as exc:
            left = handovers.pending()
            shown = ", ".join(left[:10]) + (", ..." if len(left) > 10 else "")
            print(f"urlsession: {exc} ({shown})", file=sys.stderr)
