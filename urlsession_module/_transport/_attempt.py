"""One attempt at a task's transfer: everything the transport's loops share, in one object.

A :class:`Attempt` is made by :meth:`Transport.run` and handed down explicitly: to the redirect
and 401 loop, to the loops that move the bodies, and (inside urlopen's ``body`` argument, see
:class:`~._connections.Outgoing`) to the connection that sends it, so a cancel can shut that
connection's socket and the response head is read under the task's deadline. Nothing travels
in a thread-local.
"""

from __future__ import annotations

import time

import attrs
import urllib3

from .._state import Request, TaskKind
from ..exceptions import ErrorCode, TransferError
from ._bodies import Sink
from ._control import CancelledSignal, TransferControl
from ._metrics import TaskMetrics


@attrs.define(eq=False)
class Attempt:
    """One run of one task: its owner, where its body goes, and its clocks.

    ``request`` is the current hop's (redirects replace it); ``validator`` the ETag or
    Last-Modified a resume asks ``If-Range`` with; ``reused`` is set by the connection that
    sends the request (whether it had served a request before: a stale pooled connection is
    retried, a fresh one that failed is not); ``protocol`` what carried the last response.
    """

    ctl: TransferControl
    kind: TaskKind
    request: Request
    sink: Sink
    deadline: float  # time.monotonic() past which the resource timeout has passed
    idle: float  # timeoutIntervalForRequest: the longest the wire may stay quiet
    identifier: str
    download_dir: str | None = None
    durable: bool = False
    validator: str | None = None
    reused: bool | None = None
    protocol: str = "http/1.1"  # what carried the last response (Apple's networkProtocolName)
    metrics: TaskMetrics | None = None  # the task's metrics, one transaction per request

    def check_deadline(self, where: str = "") -> None:
        """Raise -1001 once the resource deadline has passed (``where``: what was being read)."""
        if time.monotonic() > self.deadline:
            suffix = f" ({where})" if where else ""
            raise TransferError(ErrorCode.TIMED_OUT, f"the resource timeout passed{suffix}")

    def timeout(self) -> urllib3.Timeout:
        """The idle timeout for the next exchange, never past the resource deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TransferError(ErrorCode.TIMED_OUT, "the resource timeout passed")
        step = min(self.idle, remaining)
        return urllib3.Timeout(connect=step, read=step)

    @property
    def patience(self) -> float:
        """How long a suspended task keeps its connection: half the idle timeout (the server's
        own idle timeout is likely no shorter), so it is let go before the server drops it."""
        return max(0.5, self.idle / 2)

    def checkpoint(self) -> None:
        """Stop here while suspended; raise if cancelled or the resource deadline passed."""
        if self.ctl.cancelled:
            raise CancelledSignal
        self.await_running()
        if self.ctl.cancelled:
            raise CancelledSignal

    def await_running(self, patience: float | None = None) -> bool:
        """True once running (or cancelled); False if still suspended after ``patience`` s.

        The resource deadline keeps running while a task is suspended: passing it raises -1001.
        """
        give_up = None if patience is None else time.monotonic() + patience
        while True:
            now = time.monotonic()
            if now > self.deadline:
                raise TransferError(ErrorCode.TIMED_OUT, "the resource timeout passed")
            step = min(1.0, self.deadline - now)
            if give_up is not None:
                if now >= give_up:
                    return False
                step = min(step, give_up - now)
            if self.ctl.wait_running(step):
                return True
