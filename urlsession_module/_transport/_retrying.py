"""A task run again: retries (``retryPolicy``) and waiting for connectivity, around runs.

The rules are sans-IO (:class:`~.._state._retry.RetryGate`); this is what a task's driver
does with them. Every input from the wire is shown to the gate before the machine: one that
ends the run as a "not now" is held back (the machine never sees a 503 or a refused
connection that will be retried), the transfer is stopped as for a cancel, and once the
transport has returned the driver's owner queues the task again for :attr:`requeue_at`
through the scheduler (its ``not_before``), so no worker sleeps through the wait.

Across runs a download keeps its ``.part`` file and continues it with ``Range`` + ``If-Range``
(the validator of the response that started it), the task's metrics gain a transaction per
request of every run, and the resource deadline keeps counting from the task's start.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from .._config_values import ConfigValues
from .._events import Payload, WaitingForConnectivity
from .._state import (
    DownloadFinished,
    Failed,
    Input,
    ResponseStarted,
    TaskKind,
    TaskMachine,
    TaskState,
)
from .._state._retry import RetryGate
from .._storage import part_name
from ._metrics import TaskMetrics

__all__ = ["RunAgain"]


class RunAgain:
    """One task's state across its runs, for a driver that retries or waits for connectivity."""

    def __init__(self, config: ConfigValues, machine: TaskMachine, *, always_wait: bool = False):
        """``always_wait``: wait for connectivity whatever the configuration says (background
        sessions, as Apple's)."""
        self.gate = RetryGate(
            config.retryPolicy,
            config.waitsForConnectivity or always_wait,
            machine.original_request,
            time.time() + config.timeoutIntervalForResource,
        )
        self.metrics = TaskMetrics(proxy=bool(config.proxyURL))
        self.machine = machine
        self.requeue_at: float | None = None  # set when a run ended to be run again
        self.ending = False  # this run is over (held back): what the transport says is dropped
        self._validator: str | None = None
        self._part: str | None = None

    @staticmethod
    def wanted(config: ConfigValues) -> bool:
        return config.retryPolicy is not None or config.waitsForConnectivity

    def intercept(self, event: Input, publish: Callable[[Input, list[Payload]], None]) -> Any:
        """Called under the driver's lock before the machine sees ``event``.

        Returns ``True`` (held back: the run ends, see :attr:`requeue_at`), ``False`` (the
        machine takes it) or another input the machine takes instead.
        """
        if self.machine.state is TaskState.CANCELING and isinstance(event, Failed):
            self.ending, self.requeue_at = False, None  # the user's cancel ends the task
            return False
        if self.ending:
            if isinstance(event, DownloadFinished):  # a file finished after the run was over
                with contextlib.suppress(OSError):
                    os.unlink(event.location)
            return True
        if self.machine.state is TaskState.CANCELING:
            return False
        answer = self.gate.check(event, time.time())
        if isinstance(answer, float):
            self.requeue_at = answer
            self.ending = True
            if self.gate.announce:
                self.gate.announce = False
                code = event.code if isinstance(event, Failed) else 0
                waiting = WaitingForConnectivity(
                    self.machine.identifier, code, self.machine.session_identifier
                )
                publish(event, [waiting])
            return True
        if isinstance(event, ResponseStarted):
            self._validator = event.response.resume_validator
        return answer if answer is not None else False

    def before_run(self, folder: str | None) -> dict[str, Any]:
        """The transport's keyword arguments for the next run of the task."""
        self.requeue_at = None
        self.ending = False
        self.gate.new_run()
        kw: dict[str, Any] = {
            "metrics": self.metrics,
            "deadline": time.monotonic() + max(0.0, self.gate.deadline - time.time()),
        }
        if self.machine.kind is TaskKind.DOWNLOAD and folder is not None:
            self._part = os.path.join(folder, part_name(self.machine.identifier))
            kw["keep_partial"] = True
            try:
                size = os.stat(self._part).st_size
            except OSError:
                size = 0
            if size and self._validator and size <= self.machine.count_received:
                kw["resume"] = (size, self._validator)
        return kw

    def after_run(self) -> None:
        """The run returned: a task that ended drops the partial file it kept for a retry."""
        if self.machine.finished and self._part is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._part)
