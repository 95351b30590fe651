"""Driving one task's machine from two sides: the transfer's worker thread and the user.

The transport feeds wire inputs from a worker thread; the user (or a host, for the transfer
process) sends Suspend/Resume/Cancel from any other thread. :class:`TaskDriver` is the one place
that serialises both onto the sans-IO :class:`~._state.TaskMachine`, implements the transport's
``TransferControl`` and hands every payload the machine answers to :meth:`TaskDriver.publish`,
under the lock, so one task's events can never be reordered. The in-process session and the
background transfer process differ only in what ``publish`` does with them.

The wire does not stop the instant the user suspends: a block already being read (or sent), a
response head, the end of the transfer may still arrive. The machine accepts none of that while
suspended, so such inputs are held here, in order, and fed on resume (their progress is reported
then) or, after a cancel, absorbed by the machine (which then reports -999).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

from ._events import Payload
from ._state import Cancel, DownloadFinished, Failed, Input, TaskMachine, TaskState

__all__ = ["TaskDriver"]


class TaskDriver:
    """A ``TransferControl`` over a machine; subclasses say where payloads go."""

    def __init__(self, machine: TaskMachine) -> None:
        self.machine = machine
        self._cond = threading.Condition()
        self._abort: Callable[[], None] | None = None
        self._held: list[Input] = []

    def publish(self, event: Input, payloads: list[Payload]) -> None:
        """Called under the lock after the machine took ``event``; deliver or store ``payloads``."""
        raise NotImplementedError

    # -- TransferControl -----------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self.machine.state is TaskState.CANCELING

    def feed(self, event: Input) -> None:
        """An input from the wire (worker thread)."""
        with self._cond:
            if self.machine.state is TaskState.SUSPENDED and not isinstance(event, Failed):
                self._held.append(event)
                return
            if isinstance(event, Failed):
                self._held.clear()  # the task ends here; what was held no longer matters
            self._send(event)

    def control(self, event: Input) -> None:
        """Suspend, Resume or Cancel from the user; a cancel also breaks a blocking read."""
        with self._cond:
            self._send(event)
            if self._held and self.machine.state is not TaskState.SUSPENDED:
                # Fed even when cancelling: a held Finished is what ends the task (as -999).
                held, self._held = self._held, []
                for item in held:
                    self._send(item)
            abort = self._abort if isinstance(event, Cancel) else None
        if abort is not None:
            abort()  # outside the lock: wakes a worker blocked in recv()

    def wait_running(self, timeout: float) -> bool:
        if self.machine.state is not TaskState.SUSPENDED:
            return True  # the per-block fast path: no lock (a state is read atomically)
        with self._cond:
            return self._cond.wait_for(
                lambda: self.machine.state is not TaskState.SUSPENDED, timeout
            )

    def set_abort(self, abort: Callable[[], None] | None) -> None:
        with self._cond:
            self._abort = abort
            cancelled = self.cancelled
        if abort is not None and cancelled:
            abort()

    def _send(self, event: Input) -> None:
        out = self.machine.send(event)
        if isinstance(event, DownloadFinished) and not out:
            # The machine took the finished file but reports it to nobody (the task was
            # cancelled meanwhile): no downloadcompleted will hand it over, so it must not stay.
            with contextlib.suppress(OSError):
                os.unlink(event.location)
        self.publish(event, out)
        self._cond.notify_all()
