"""Driving one task's machine from two sides: the transfer's worker thread and the user.

The transport feeds wire inputs from a worker thread; the user (or a host, for the transfer
process) sends Suspend/Resume/Cancel from any other thread. :class:`TaskDriver` is a lock and an
abort around the sans-IO :class:`~._state.TaskMachine`, which owns every lifecycle rule (holding
what the wire says while the task is suspended included). It implements the transport's
``TransferControl`` and hands each input the machine applied, with the payloads it answered, to
:meth:`TaskDriver.publish` under the lock, so one task's events can never be reordered. The
in-process session and the background transfer process differ only in what ``publish`` does.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import threading
from collections.abc import Callable

from ._events import Payload
from ._state import Cancel, DownloadFinished, Input, Step, TaskMachine, TaskState

__all__ = ["TaskDriver"]


class TaskDriver:
    """A ``TransferControl`` over a machine; subclasses say where payloads go."""

    def __init__(self, machine: TaskMachine) -> None:
        self.machine = machine
        # A plain (re-entrant) lock per task; the condition a suspended task's worker waits on
        # is made only when one waits (a Condition made per task was 8 % of a cached GET).
        # (named _cond for the subclasses that hold it: the background attempt)
        self._cond = _thread.RLock()  # (threading.RLock is a Python wrapper around this)
        self._resumed: threading.Condition | None = None
        self._abort: Callable[[], None] | None = None

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
            self._publish(self.machine.feed(event))

    def control(self, event: Input) -> None:
        """Suspend, Resume or Cancel from the user; a cancel also breaks a blocking read."""
        with self._cond:
            self._publish(self.machine.control(event))
            abort = self._abort if isinstance(event, Cancel) else None
        if abort is not None:
            abort()  # outside the lock: wakes a worker blocked in recv()

    def wait_running(self, timeout: float) -> bool:
        if self.machine.state is not TaskState.SUSPENDED:
            return True  # the per-block fast path: no lock (a state is read atomically)
        with self._cond:
            if self._resumed is None:
                self._resumed = threading.Condition(self._cond)
            return self._resumed.wait_for(
                lambda: self.machine.state is not TaskState.SUSPENDED, timeout
            )

    def wait_cancelled(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, returning early (True) once the task is cancelled:
        a paced read or send waiting its turn (bandwidth limits)."""
        with self._cond:
            if self._resumed is None:
                self._resumed = threading.Condition(self._cond)
            return self._resumed.wait_for(lambda: self.cancelled, timeout)

    def set_abort(self, abort: Callable[[], None] | None) -> None:
        if abort is None and self._abort is None:
            return  # nothing to forget (a task's steps say so several times): no lock
        with self._cond:
            self._abort = abort
            cancelled = self.cancelled
        if abort is not None and cancelled:
            abort()

    def _publish(self, steps: list[Step]) -> None:
        for event, out in steps:
            if isinstance(event, DownloadFinished) and not out:
                # The machine took the finished file but reports it to nobody (the task was
                # cancelled meanwhile): no downloadcompleted will hand it over, so it must not stay.
                with contextlib.suppress(OSError):
                    os.unlink(event.location)
            self.publish(event, out)
        if self._resumed is not None:  # someone waits (or waited) for the task to run again
            self._resumed.notify_all()
