"""A background Session's host side: its tasks as the transfer process reports them, the replay.

The session stays the proxy users see and keeps one delivery path for every task
(``Session._deliver(task, payload)``). What is particular to a background session lives here:
Task proxies made from the transfer process's snapshots (:class:`RemoteTaskView`), the replay a
(re)attached host receives (framed by ``backgroundtransfer`` and ``sessioneventscompleted``),
dropping what a reconnect sends twice (by sequence number, and the single-``sessioncompleted``
rule of :class:`~urlsession_module._state.CompletionLedger`), and acknowledging journaled events
once their listeners have ran, so that each is delivered at least once and, once acknowledged,
never again.

One valid session per identifier (and state directory) in a process: the shared client refuses a
second one (``identifier``) until the first is invalidated, since events could reach only one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs

from .._config_values import ConfigValues
from .._events import Event, Payload, SessionCompleted, payload_from_dict
from .._state import (
    Cancel,
    CompletionLedger,
    Input,
    Request,
    ResponseInfo,
    Resume,
    Suspend,
    TaskKind,
    TaskMachine,
    TaskState,
)
from .._storage import open_private
from .._transport._resume import ResumeData
from ..exceptions import ErrorCode, TransferError
from ._link import BackgroundLink
from ._resumable import adopt_for_task
from ._snapshot import TaskSnapshot
from ._wire import Action, EventMessage, Message, Replay

__all__ = ["BackgroundHost", "RemoteControl", "RemoteTaskView"]

RESPONSE_FILE = "responseFile"
_FIRST_READ = 64 * 1024

log = logging.getLogger(__name__)


class RemoteTaskView:
    """What a host knows of a task run by the transfer process (the TaskMachine's attributes)."""

    def __init__(self, snap: TaskSnapshot, session_identifier: str) -> None:
        self.identifier = snap.id
        self.kind: TaskKind = snap.kind
        self.session_identifier = session_identifier
        self.original_request: Request = snap.request
        self.location: str | None = None
        self.metrics: dict[str, Any] | None = None  # from the sessioncompleted that ends it
        self.update(snap)

    def update(self, snap: TaskSnapshot) -> None:
        self.state: TaskState = snap.state
        self.current_request: Request = snap.current_request
        self.count_received = snap.received
        self.count_expected_to_receive = snap.expected_receive
        self.count_sent = snap.sent
        self.count_expected_to_send = snap.expected_send
        self.response: ResponseInfo | None = snap.response
        self.error: TransferError | None = TransferError(*snap.error) if snap.error else None

    def mark_completed(self, metrics: dict[str, Any] | None = None) -> None:
        self.state = TaskState.COMPLETED
        self.metrics = metrics

    @property
    def finished(self) -> bool:
        return self.state is TaskState.COMPLETED


class RemoteControl:
    """A background task's controls: forwarded to the transfer process, which runs its machine."""

    def __init__(self, host: BackgroundHost, task_id: str) -> None:
        self._host = host
        self._link = host.link
        self._task_id = task_id

    def control(self, event: Input) -> None:
        action = {Cancel: Action.CANCEL, Suspend: Action.SUSPEND, Resume: Action.RESUME}
        self._link.control(self._task_id, action[type(event)])

    def produce_resume_data(
        self, callback: Callable[[dict[str, Any]], None], finished: bool
    ) -> None:
        """``cancelByProducingResumeData`` of a background download: the transfer process
        cancels it keeping its partial file, and the resume data comes back in the task's
        ``sessioncompleted``, handed to ``callback`` before listeners hear of it."""
        if finished:  # as Apple: nothing to resume
            self._host.session._dispatcher.submit(lambda: callback({"resumeData": None}))
            return
        with self._host.session._lock:
            self._host.resume_callbacks[self._task_id] = callback
        self._link.control(self._task_id, Action.CANCEL_RESUMABLE)


class _Task(Protocol):
    _machine: TaskMachine | RemoteTaskView

    @property
    def taskIdentifier(self) -> str: ...

    def _dispatch_event(self, event: Event) -> None: ...


class _Session(Protocol):
    """What the host side needs of its ``Session`` (which imports this module)."""

    _lock: threading.Condition
    _tasks: dict[str, Any]
    _finished: Any
    _bubble_target: Any

    def _deliver(self, task: Any, payload: Payload) -> None: ...

    _dispatcher: Any

    def _dispatch_event(self, event: Event) -> None: ...


TaskFactory = Callable[[RemoteTaskView, TaskSnapshot, RemoteControl], Any]


class BackgroundHost:
    """One per background Session: its link, its remote tasks, replay and acknowledgement."""

    def __init__(
        self, session: _Session, config: ConfigValues, home: Path, make_task: TaskFactory
    ) -> None:
        assert config.identifier is not None
        self.identifier = config.identifier
        self.session = session
        self._make_task = make_task
        self.link = BackgroundLink(self, self.identifier, config, home)
        self._delivered_seq = 0  # highest journaled event delivered to listeners
        self._queued = 0  # journaled events queued for delivery, not yet delivered
        self._replays = 0  # replays queued, not yet wholly delivered
        self._ledger = CompletionLedger()
        self._replay_open = False  # a replay began; its first new event announces it
        self._replay_delivered = False  # this replay delivered something: it ends with an event
        # cancelByProducingResumeData callbacks waiting for their task's sessioncompleted.
        self.resume_callbacks: dict[str, Callable[[dict[str, Any]], None]] = {}

    # -- life -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (starting the transfer process if needed). The replay arrives before this
        returns, so ``waitForTasks`` right after creating the session waits for it. A second
        session with this identifier (same state directory) is refused here."""
        self.link.attach()

    def detach(self, cancel: bool) -> None:
        self.link.detach(cancel)

    def set_rate(self, config: ConfigValues) -> None:
        """The session's configuration with a new ``maximumBytesPerSecond``: for the transfer
        process now, and for every attach after (a restarted process gets it again)."""
        self.link.set_rate(config)

    @property
    def idle(self) -> bool:
        """Nothing the transfer process sent is waiting for delivery (the replay included)."""
        return self._queued == 0 and self._replays == 0

    # -- tasks ------------------------------------------------------------------------------------

    def create(
        self,
        kind: TaskKind,
        request: Request,
        priority: float,
        description: str | None,
        begin: float | None,
        resume: ResumeData | None = None,
        rate: int | None = None,
    ) -> str:
        """Hand a task over: its proxy exists before its message leaves (an event for it may
        come back at once), and is gone again if the message cannot be written.

        ``resume``: checked resume data; its partial file moves to where this task's download
        grows, and the transfer process continues it (:mod:`._resumable`). ``rate``: the
        task's own ``maximumBytesPerSecond``."""
        validator = resume.validator if resume is not None else None
        snap, frame = self.link.prepare(
            kind, request, priority, description, begin, validator=validator, rate=rate
        )
        if resume is not None:
            adopt_for_task(self.link.home, self.identifier, snap.id, resume)
        with self.session._lock:
            self._task_locked(snap)
        try:
            self.link.hand_over(snap.id, frame)
        except BaseException:
            with self.session._lock:
                self.session._tasks.pop(snap.id, None)
            raise
        return snap.id

    def flush(self, timeout: float) -> None:
        """Every task handed over so far is durable when this returns (bounded)."""
        self.link.flush(timeout)

    def refused(self, task_id: str, message: str) -> None:
        """The journal could not take this task (e.g. a full disk): it ends, failed."""
        with self.session._lock:
            task = self.session._tasks.get(task_id)
        if task is None:
            return
        code = ErrorCode.CANNOT_WRITE_TO_FILE
        payload = SessionCompleted(task_id, False, int(code), message, 0, None, self.identifier)
        fields = payload.to_dict()
        self.session._dispatcher.submit(lambda: self._deliver(0, payload.name, fields, task))

    def _task(self, snap: TaskSnapshot) -> Any:
        with self.session._lock:
            return self._task_locked(snap)

    def _task_locked(self, snap: TaskSnapshot) -> Any:
        """The Task proxy for a task of the transfer process, made on first sight."""
        s = self.session
        task = s._tasks.get(snap.id) or s._finished.get(snap.id)
        if task is None:
            view = RemoteTaskView(snap, self.identifier)
            task = self._make_task(view, snap, RemoteControl(self, snap.id))
            if not view.finished:
                s._tasks[view.identifier] = task
        elif isinstance(task._machine, RemoteTaskView) and not task._machine.finished:
            task._machine.update(snap)
        return task

    # -- what the transfer process sends (on the client's reader thread) ---------------------------

    def receive(self, message: Message) -> None:
        if isinstance(message, Replay):
            self._replay(message)
        elif isinstance(message, EventMessage):
            task = self._task(message.task) if message.task is not None else None
            seq = message.seq
            if seq:
                with self.session._lock:
                    self._queued += 1
            self.session._dispatcher.submit(
                lambda: self._deliver(seq, message.name, message.fields, task)
            )

    def _replay(self, message: Replay) -> None:
        """Adopt outstanding tasks; deliver what was missed, framed by ``backgroundtransfer`` (on
        the module) and ``sessioneventscompleted``.

        A replay can hold thousands of events, in chunks (``first`` .. ``last``): each chunk is
        prepared under one lock and delivered by one queued callback, in order, rather than one
        queue entry each. The first chunk with anything new announces the replay; the last one
        ends it, if anything was delivered.
        """
        with self.session._lock:
            if message.first:
                self._replay_open = True
                self._replay_delivered = False
            for snap in message.tasks:
                self._task_locked(snap)
            # A data task's body is read here, under the lock the delivering thread waits
            # for, rather than there: each read there hands the GIL to this thread mid-chunk.
            batch = [
                (
                    e.seq,
                    e.name,
                    _read_ahead(e.fields),
                    self._task_locked(e.task) if e.task else None,
                )
                for e in message.events
                if e.seq > self._delivered_seq
            ]
            announce_now = bool(batch) and self._replay_open
            if announce_now:
                self._replay_open = False
            if batch:
                self._replay_delivered = True
            end_now = message.last and message.drained and self._replay_delivered
            if not batch and not end_now:
                return
            self._queued += len(batch)
            self._replays += 1
        announce = {"sessionIdentifier": message.session, "handlerId": message.handlerId}

        def deliver_all() -> None:
            delivered = 0
            try:
                if announce_now:
                    self._fire_on_module("backgroundtransfer", announce)
                for seq, name, fields, task in batch:
                    try:
                        self._deliver_one(seq, name, fields, task)
                    finally:
                        self._delivered_seq = max(self._delivered_seq, seq)
                        delivered += 1
                if end_now:
                    done = {"sessionIdentifier": message.session}
                    self.session._dispatch_event(
                        Event("sessioneventscompleted", self.session, done)
                    )
            finally:
                # One lock and (at most) one acknowledgement per chunk, not per event.
                self._settle(delivered)
                with self.session._lock:
                    self._replays -= 1
                    self.session._lock.notify_all()  # waitForTasks waits for the replay too

        self.session._dispatcher.submit(deliver_all)

    def _deliver(self, seq: int, name: str, fields: dict[str, Any], task: Any) -> None:
        try:
            self._deliver_one(seq, name, fields, task)
        finally:
            if seq:
                self._delivered_seq = max(self._delivered_seq, seq)
                self._settle(1)

    def _settle(self, delivered: int) -> None:
        """``delivered`` journaled events have reached their listeners: once none is left
        queued, acknowledge them (at least once: after the listeners ran), in batches."""
        if not delivered:
            return
        with self.session._lock:
            self._queued -= delivered
            batch_done = self._queued == 0
        if batch_done:
            self.link.ack(self._delivered_seq)
            self._ledger.settled(self._delivered_seq)

    def _deliver_one(self, seq: int, name: str, fields: dict[str, Any], task: Any) -> None:
        if seq and seq <= self._delivered_seq:
            return  # delivered before a reconnect replayed it again
        if task is None:
            self.session._dispatch_event(Event(name, self.session, fields))
            return
        try:
            payload = payload_from_dict(name, _with_response_text(fields))
        except (KeyError, TypeError):
            task._dispatch_event(Event(name, task, fields))  # not a payload we know: as is
            return
        if isinstance(payload, SessionCompleted):
            if not self._ledger.first(payload.taskIdentifier, seq):
                return  # the package drops duplicates before listeners (SPEC 5)
            if self.resume_callbacks:  # (read without the lock: empty but for a resume)
                payload = self._answer_resume_callback(payload)
            if isinstance(task._machine, RemoteTaskView):
                task._machine.mark_completed(payload.metrics)
        self.session._deliver(task, payload)

    def _answer_resume_callback(self, payload: SessionCompleted) -> SessionCompleted:
        """A task cancelled by ``cancelByProducingResumeData``: its callback gets the resume
        data (before ``sessioncompleted``, which then carries none, as in-process). A host
        relaunched since finds no callback: the payload keeps it."""
        with self.session._lock:
            callback = self.resume_callbacks.pop(payload.taskIdentifier, None)
        if callback is None:
            return payload
        try:
            callback({"resumeData": payload.resumeData})
        except Exception:
            log.exception("a cancelByProducingResumeData callback failed")
        return attrs.evolve(payload, resumeData=None)

    def _fire_on_module(self, name: str, fields: dict[str, Any]) -> None:
        module = self.session._bubble_target
        if module is not None:
            module._dispatch_event(Event(name, module, fields))


def _read_ahead(fields: dict[str, Any]) -> dict[str, Any]:
    """:func:`_with_response_text` on the reading thread; a read that fails is left for the
    delivery to try again (and fail there, on that one event, not on its whole chunk)."""
    try:
        return _with_response_text(fields)
    except OSError:
        return fields


def _with_response_text(fields: dict[str, Any]) -> dict[str, Any]:
    """A data task's body comes as a private file of the transfer process: read it back."""
    path = fields.get(RESPONSE_FILE)
    if not isinstance(path, str):
        return fields
    out = {k: v for k, v in fields.items() if k != RESPONSE_FILE}
    try:
        fd = open_private(path, os.O_RDONLY)
    except OSError:
        out["responseText"] = ""  # collected by an earlier run that died before its ack
        return out
    try:  # read on the descriptor: a replay reads thousands of these, a file object each cost
        chunks = [os.read(fd, _FIRST_READ)]
        # A regular file's short read is its end (the body was whole before its event was
        # journaled): most bodies take one read, and no fstat for their size.
        if len(chunks[0]) == _FIRST_READ:
            while chunks[-1]:
                chunks.append(os.read(fd, 1 << 20))
    finally:
        os.close(fd)
    out["responseText"] = b"".join(chunks).decode("utf-8", "replace")
    return out
