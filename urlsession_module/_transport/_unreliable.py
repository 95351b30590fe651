"""What an in-process task's driver does for unreliable networks (issue 16), in one mixin.

:class:`UnreliableDriver` sits between ``_task.TaskRun`` and :class:`~.._driver.TaskDriver`:

* retries and waiting for connectivity: every wire input is shown to the task's
  :class:`~._retrying.RunAgain` first; one it holds back ends the run, and the runner queues the
  task again for :attr:`requeue_at` (see ``_runner``);
* bandwidth limits: after each block the task waits, cancellably, for as long as its pacing
  says (:mod:`._ratelimit`), also when the session's rate is set while it runs;
* resume data: a download keeps its partial file; its end decides what becomes of it
  (:func:`~._resume.finish_partial`), and a task made from resume data continues that file.

Kept here, not in ``_task``, so the task's proxy and driver stay short and these rules sit with
the transport they drive.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._config_values import ConfigValues
from .._driver import TaskDriver
from .._events import Payload, SessionCompleted
from .._state import (
    BodyReceived,
    BodySent,
    Input,
    ResponseStarted,
    TaskKind,
    TaskMachine,
    TaskState,
)
from .._storage import part_name
from ._ratelimit import TaskPacing, joined_late, pacing_for
from ._resume import ResumeData, adopt, finish_partial
from ._retrying import RunAgain
from ._wire import Steps, on_network_thread

if TYPE_CHECKING:
    from ._engine import Transport

__all__ = ["UnreliableDriver"]


class UnreliableDriver(TaskDriver):
    """A task driver with retries, waiting for connectivity, pacing and resume data."""

    def __init__(self, machine: TaskMachine, config: ConfigValues) -> None:
        super().__init__(machine)
        self.again = RunAgain(config, machine) if RunAgain.wanted(config) else None
        self.resume_in: ResumeData | None = None  # downloadTask({'resumeData'})
        self.resume_callback: Callable[[dict[str, Any]], None] | None = None
        self.keeps_partial_on_cancel = False  # read by the transport (cancelByProducingResumeData)
        self.rate: int | None = None  # the task's own maximumBytesPerSecond
        self.pacing: TaskPacing | None = None
        self._transport: Any = None  # this run's: where its session's limits live
        self._part: str | None = None
        self._validator: str | None = None

    @property
    def cancelled(self) -> bool:
        # (TaskDriver's test written out: the transport asks ~10 times a task, and a property
        # calling its parent's is a second Python call each time)
        if self.machine.state is TaskState.CANCELING:
            return True
        again = self.again
        return again is not None and again.ending

    @property
    def requeue_at(self) -> float | None:
        """When this task is to run again (its last run ended in a retry), else None."""
        return None if self.again is None else self.again.requeue_at

    def feed(self, event: Input) -> None:
        if isinstance(event, ResponseStarted) and self.machine.kind is TaskKind.DOWNLOAD:
            self._validator = event.response.resume_validator  # (only a download's is read)
        again = self.again
        if again is not None:
            with self._cond:
                answer = again.intercept(event, self.publish)
                abort = self._abort if answer is True else None
            if answer is True:
                if abort is not None:
                    abort()  # a response being read (a 503 retried): stop it now
                return
            if answer is not False:
                event = answer
        super().feed(event)
        if isinstance(event, (BodyReceived, BodySent)):
            pacing = self.pacing
            if pacing is None:
                if getattr(self._transport, "_rate_limits", None) is None:
                    return  # (most tasks: no rate was ever set, nothing more to look at)
                machine = self.machine
                pacing = self.pacing = joined_late(  # the session's rate was set while it ran
                    self._transport,
                    machine.identifier,
                    self.rate,
                    machine.original_request.has_body,
                )
                if pacing is None:
                    return
            received = event.n if isinstance(event, BodyReceived) else 0
            wait = pacing.delay(received, event.n - received)
            # Ahead of its share: the read (or send) loop waits, cancellably. Never on an
            # engine's network thread (it moves every session's bytes): a step there looked
            # for a limit just before reporting, so only a rate set in between gets here; the
            # pacer keeps the debt, and the task's next report, on a worker, waits it out.
            if wait > 0 and not on_network_thread():
                self.wait_cancelled(wait)

    def ending(self, payload: Payload, submit: Callable[[Callable[[], None]], None]) -> Payload:
        """A payload about to be delivered; a download's ``sessioncompleted`` settles its
        partial file (resume data for the callback or the payload, or the file removed)."""
        if not isinstance(payload, SessionCompleted) or self.machine.kind is not TaskKind.DOWNLOAD:
            return payload
        return finish_partial(
            payload,
            self.machine.original_request.url,
            self._part,
            self._validator,
            self.resume_callback,
            submit,
        )

    def run_transport(self, transport: Transport, folder: str | None) -> Steps[None]:
        """One run of the transfer, with what this task carries across runs (a generator, as
        ``Transport.steps``: it yields where the transfer waits for the network)."""
        machine = self.machine
        kw = self.again.before_run(folder) if self.again is not None else {}
        self._transport = transport
        self.pacing = pacing_for(
            transport,
            transport.config.maximumBytesPerSecond,
            machine.identifier,
            self.rate,
            machine.original_request.has_body,
        )
        if folder is not None:  # a download keeps its partial file for resume data
            kw["keep_partial"] = True
            self._part = os.path.join(folder, part_name(machine.identifier))
            if self.resume_in is not None:
                resume, self.resume_in = adopt(self.resume_in, folder, machine.identifier), None
                machine.restore_received(resume[0])
                self._validator = resume[1]
                kw["resume"] = resume
        if self.pacing is not None:
            self.pacing.start()
        try:
            yield from transport.steps(
                self, machine.kind, machine.original_request, folder, machine.identifier, **kw
            )
        finally:
            if self.pacing is not None:
                self.pacing.stop()
                self.pacing = None
        if self.again is not None:
            self.again.after_run()
