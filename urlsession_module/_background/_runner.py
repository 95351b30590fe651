"""The transfer process's runner: the queue, the running tasks, retries, recovery, journal-then-push.

Every task runs the same sans-IO :class:`~urlsession_module._state.TaskMachine` and the same
:class:`~urlsession_module._transport.Transport` as in-process sessions. What differs is policy:
outputs are journaled before a host hears them; transient failures are retried with backoff
until ``timeoutIntervalForResource``; a killed process resumes downloads with ``Range`` from
their ``.part`` files; a record that cannot start fails its task (never the process); every
task ends with exactly one journaled ``sessioncompleted``, also when its result cannot be kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Protocol

import attrs

from .._config_values import ConfigValues
from .._events import DownloadCompleted, Payload, SessionCompleted
from .._state import (
    Cancel,
    Input,
    ResponseStarted,
    Resume,
    Suspend,
    TaskKind,
    TaskMachine,
    cancel_unstarted,
    fail_unstarted,
)
from .._storage import private_dir
from .._stores import persistent_stores
from .._transport import Transport
from .._transport._ratelimit import set_session_rate
from ..exceptions import ErrorCode
from . import _protocol as proto
from ._attempt import (
    RESPONSE_FILE,
    Attempt,
    carried_metrics,
    finish_recovered_download,
    machine_for,
    placeholder_machine,
    remove_response,
    remove_upload,
    resume_point,
    scheduler_for,
    snapshot,
    startable,
    store_response,
)
from ._fields import Refused
from ._intake import hand_over
from ._journal import (
    COMPLETED,
    OUTSTANDING,
    QUEUED,
    RUNNING,
    SUSPENDED,
    Journal,
    TaskRecord,
)
from ._launch import Launcher
from ._replay import send_replay
from ._requeue import retry_or_fail
from ._resumable import download_dir, settle_partial
from ._settings import config_from_dict, config_to_dict
from ._wire import (
    Action,
    Create,
    EventMessage,
    Journaled,
    Message,
    MessageError,
    TaskSnapshot,
    WireError,
)

log = logging.getLogger("urlsession_module.transfer")

# Transfers at once, over every session and origin (each origin has its own limit too).
WORKERS = int(os.environ.get("URLSESSION_TRANSFER_WORKERS", "64"))
UNSTARTABLE = "the transfer process cannot run this task: its record is not valid"


class Peer(Protocol):
    """A connected host, as the runner sees it: something to push messages to."""

    sessions: set[str]

    def send(self, message: Message) -> None: ...


class Runner:
    """The process's state: journal, sessions' configurations, the queue, the running tasks."""

    def __init__(self, home: Path, idle_timeout: float) -> None:
        self.home = home
        self.idle_timeout = idle_timeout
        self.journal = Journal(home / proto.JOURNAL_NAME)
        self.cond = threading.Condition()
        self.pub_lock = threading.RLock()  # journal-then-push, and attach's read-then-register
        self.hosts = 0  # connected hosts: the process does not leave while one is there
        self.session_host: dict[str, Peer] = {}
        # Sessions told ``sessioneventscompleted`` since their last task was queued: two tasks
        # ending at once must not announce it twice.
        self.drained: set[str] = set()
        # Running tasks whose sessioncompleted went out: until then a task keeps its session busy
        # (its machine may have finished while its end is still being journaled and pushed).
        self.ended: set[str] = set()
        self.configs: dict[str, ConfigValues] = {}
        self.transports: dict[str, Transport] = {}
        self.queue: dict[str, TaskRecord] = {}  # what the scheduler holds, by identifier
        self.scheduler = scheduler_for(self.configs)
        self.running: dict[str, Attempt] = {}
        # A bounded pool runs the started tasks (no thread per task); the scheduler holds the rest.
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="transfer-worker")
        self.futures: set[Future[None]] = set()
        self.full_pass = True  # the next pass reads every queue to the end (see Scheduler.take)
        self.due: float | None = None  # when a waiting task's date comes due
        self.launcher = Launcher(home)
        self.stopping = False
        self.leased = self.journal.leased()  # host-chosen task numbers above this are forged

    # -- start and stop --------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart (or a crash), everything outstanding goes back in the queue."""
        for ident in self.journal.sessions():
            raw = self.journal.session_config(ident)
            if raw is not None:
                try:
                    self.configs[ident] = config_from_dict(raw)
                except (TypeError, ValueError):
                    log.warning("session %s: its journaled configuration is not valid", ident)
        for rec in self.journal.tasks(states=OUTSTANDING):
            if rec.state == RUNNING:
                self.journal.update_task(rec.id, state=QUEUED)
                rec = self.journal.task(rec.id) or rec
            if rec.session not in self.configs or not startable(rec):
                self._fail_record(rec)  # it would fail at every start: end its task instead
            else:
                with self.cond:
                    self._enqueue(rec)
        log.info("recovered %d outstanding tasks", len(self.queue))

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()

    def close(self) -> None:
        """After the loop: stop running tasks, join their threads, close what they used."""
        for run in list(self.running.values()):
            run.set_abort(None)
        self.pool.shutdown(wait=False, cancel_futures=True)
        futures_wait(list(self.futures), 5.0)
        for transport in self.transports.values():
            transport.close()
        self.journal.close()

    def host_count(self, delta: int, gone: Peer | None = None) -> None:
        """A host came (+1) or went (-1, ``gone``: its sessions have no host now)."""
        with self.pub_lock, self.cond:
            for ident in list(gone.sessions if gone else ()):
                if self.session_host.get(ident) is gone:
                    del self.session_host[ident]
            self.hosts += delta
            self.cond.notify_all()

    # -- requests ------------------------------------------------------------------------------------

    def attach(self, host: Peer, ident: str, raw_config: dict[str, object]) -> None:
        try:
            config = config_from_dict(raw_config)
        except (TypeError, ValueError):
            raise Refused(WireError.BAD_CONFIG) from None
        self.journal.upsert_session(ident, raw_config)
        with self.cond:
            self.configs[ident] = config
            old = self.transports.pop(ident, None)
            busy = any(r.rec.session == ident for r in self.running.values())
        if old is not None and not busy:
            old.close()
        with self.pub_lock:
            # Journal-then-push: no event is pushed between the replay's read and the host's
            # registration, so none is missed or sent twice.
            outstanding = self.journal.tasks(session=ident, states=OUTSTANDING)
            tasks = tuple(self._snapshot(rec) for rec in outstanding)
            self.session_host[ident] = host
            host.sessions.add(ident)
            send_replay(host, ident, self.journal, self._snapshot, tasks, self.running)

    def set_rate(self, ident: str, rate: int | None) -> None:
        """A session's new ``maximumBytesPerSecond`` (None: no limit): its running attempts
        are paced by it from their next block, later ones start with it, and the journal's
        copy of its configuration has it (a restart, a host attaching again)."""
        with self.cond:
            config = self.configs.get(ident)
            if config is None:
                raise Refused(WireError.NOT_ATTACHED)
            config = self.configs[ident] = attrs.evolve(config, maximumBytesPerSecond=rate)
            transport = self.transports.get(ident)
        self.journal.upsert_session(ident, config_to_dict(config))  # (as a host's attach has it)
        if transport is not None:
            set_session_rate(transport, rate)

    def create(self, m: Create) -> TaskSnapshot:
        if m.session not in self.configs:
            raise Refused(WireError.NOT_ATTACHED)
        # Durable (numbered and stored in one commit) before the host hears the identifier.
        rec = self.journal.create_task(
            lambda number: TaskRecord(
                id=f"bg{number}",
                number=number,
                session=m.session,
                kind=m.kind.value,
                request=m.to_dict()["request"],
                state=QUEUED,
                priority=m.priority,
                description=m.description,
                begin_at=m.begin_at,
                created=time.time(),
                validator=m.validator,
                rate=m.rate,
            )
        )
        with self.cond:
            self._enqueue(rec)
        return snapshot(rec, None)

    def lease(self, n: int) -> int:
        """Task numbers for a host to name its hand-overs with (durable before the reply)."""
        first = self.journal.lease(n)
        self.leased = max(self.leased, first + n - 1)
        return first

    def hand_over(self, creates: list[Create]) -> Journaled:
        """Journal a batch of handed-over tasks in one commit and queue the new ones
        (:func:`~._intake.hand_over`)."""
        journaled, new = hand_over(self.journal, creates, self.configs, self.leased)
        if new:
            with self.cond:
                for rec in new:
                    self._enqueue(rec)
        return journaled

    def control(self, task_id: str, action: Action) -> None:
        with self.cond:
            run = self.running.get(task_id)
            queued = self.queue.get(task_id)
        if run is None and queued is None:
            raise Refused(WireError.NO_SUCH_TASK)
        resumable = action is Action.CANCEL_RESUMABLE  # cancelByProducingResumeData
        if run is not None:
            controls: dict[Action, Input] = {
                Action.CANCEL: Cancel(),
                Action.CANCEL_RESUMABLE: Cancel(),
                Action.SUSPEND: Suspend(),
                Action.RESUME: Resume(),
            }
            run.keeps_partial_on_cancel |= resumable
            run.control(controls[action])
        elif queued is not None and action in (Action.CANCEL, Action.CANCEL_RESUMABLE):
            with self.cond:
                self._dequeue(task_id)
            try:
                machine = machine_for(queued)
            except MessageError:
                machine = placeholder_machine(queued)
            self.publish(queued, machine, cancel_unstarted(machine), resumable)
        elif queued is not None:
            state = SUSPENDED if action is Action.SUSPEND else QUEUED
            self.journal.update_task(task_id, state=state)
            with self.cond:
                self._enqueue(self.journal.task(task_id) or queued)

    def invalidate(self, host: Peer, ident: str, cancel: bool) -> None:
        with self.pub_lock:
            if self.session_host.get(ident) is host:
                del self.session_host[ident]
            host.sessions.discard(ident)
        if cancel:
            for rec in self.journal.tasks(session=ident, states=OUTSTANDING):
                with contextlib.suppress(Refused):
                    self.control(rec.id, Action.CANCEL)

    def ack(self, ident: str, upto: int) -> None:
        for path in self.journal.acked_files(ident, upto):
            remove_response({RESPONSE_FILE: path})  # the host has read the body: done with
        self.journal.ack(ident, upto)

    def status(self, every: bool = True) -> tuple[tuple[TaskSnapshot, ...], dict[str, int]]:
        """Every task (or those running now), with no credential in sight, and the events
        waiting for each session (one query)."""
        if every:
            recs = self.journal.tasks()
        else:
            with self.cond:
                recs = [run.rec for run in self.running.values()]
        tasks = tuple(
            attrs.evolve(
                self._snapshot(rec),
                session=rec.session,
                journal_state=rec.state if every else RUNNING,
            ).redacted()
            for rec in recs
        )
        pending = self.journal.pending_by_session()
        return tasks, {s: pending.get(s, 0) for s in self.journal.sessions()}

    def _snapshot(self, rec: TaskRecord) -> TaskSnapshot:
        run = self.running.get(rec.id)
        return snapshot(rec, run.machine if run is not None else None)

    # -- events: journal, then push --------------------------------------------------------------

    def _publish_attempt(self, run: Attempt, event: Input, payloads: list[Payload]) -> None:
        if isinstance(event, ResponseStarted):
            self.journal.update_task(
                run.rec.id, state=RUNNING, validator=event.response.resume_validator
            )
        self.publish(run.rec, run.machine, payloads, run.keeps_partial_on_cancel)

    def publish(
        self,
        rec: TaskRecord,
        machine: TaskMachine,
        payloads: list[Payload],
        resumable: bool = False,
    ) -> None:
        """Journal what must survive, then tell the host (if one is attached) in that order.

        ``resumable``: a cancel by ``cancelByProducingResumeData`` (resume data wanted)."""
        for p in payloads:
            seq = 0
            with self.pub_lock:
                if isinstance(p, SessionCompleted):
                    p = settle_partial(self.home, self.journal, rec, p, resumable)
                    p, fields = store_response(self.home, p)
                    end = self._journal_completion(rec, p, fields)
                    if end is None:
                        remove_response(fields)
                        continue  # the task has had its one end already
                    seq = end
                    remove_upload(self.home, rec)
                elif isinstance(p, DownloadCompleted):
                    fields = p.to_dict()
                    status = machine.response.statusCode if machine.response else 0
                    seq = self.journal.record_download(
                        rec.id, rec.session, p.location, status, fields
                    )
                else:
                    fields = p.to_dict()
                host = self.session_host.get(rec.session)
                if host is not None:
                    host.send(
                        EventMessage(rec.session, seq, p.name, fields, snapshot(rec, machine))
                    )
                elif seq:
                    self.launcher.maybe_launch(rec.session, self.configs.get(rec.session))
                if isinstance(p, SessionCompleted):
                    self.ended.add(rec.id)
            if isinstance(p, SessionCompleted):
                self._maybe_drained(rec.session)

    def _journal_completion(
        self, rec: TaskRecord, p: SessionCompleted, fields: dict[str, object]
    ) -> int | None:
        """The task's one journaled end (its seq), or None if it already had one.

        If even that cannot be written, a bare failure is journaled instead.
        """
        try:
            seqs = self.journal.complete_task(
                rec.id, rec.session, [(p.name, fields)], p.statusCode, p.errorCode
            )
        except (sqlite3.Error, MemoryError, ValueError):
            log.exception("task %s: its completion could not be journaled", rec.id)
            remove_response(fields)
            code = ErrorCode.CANNOT_WRITE_TO_FILE
            bare = SessionCompleted(
                rec.id, False, int(code), code.description, p.statusCode, "", rec.session
            )
            seqs = self.journal.complete_task(
                rec.id, rec.session, [(bare.name, bare.to_dict())], p.statusCode, int(code)
            )
        return seqs[0] if seqs else None

    def _maybe_drained(self, session: str) -> None:
        with self.cond:
            self.ended &= self.running.keys()  # ends of tasks that never ran (cancelled queued)
            busy = any(r.session == session for r in self.queue.values()) or any(
                r.rec.session == session and r.rec.id not in self.ended
                for r in self.running.values()
            )
            if busy or session in self.drained:
                return
            self.drained.add(session)
        with self.pub_lock:
            host = self.session_host.get(session)
            if host is not None:
                host.send(
                    EventMessage(
                        session, 0, "sessioneventscompleted", {"sessionIdentifier": session}
                    )
                )

    # -- the loop ----------------------------------------------------------------------------------

    def loop(self) -> None:
        """Start what is due, until stopped or idle (no task and no host) for ``idle_timeout``."""
        idle_since: float | None = None
        while True:
            with self.cond:
                if self.stopping:
                    return
                wake = self._start_ready()
                busy = bool(self.queue or self.running or self.hosts)
                now = time.monotonic()
                if busy:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= self.idle_timeout:
                    log.info("idle for %.1fs: leaving", self.idle_timeout)
                    return
                timeout = 1.0 if wake is None else max(0.01, min(1.0, wake - time.time()))
                self.cond.wait(timeout)
            self.launcher.reap()

    def _enqueue(self, rec: TaskRecord) -> None:
        """Queue a task, or put a fresher record of a queued one in its place (under ``cond``)."""
        self.queue[rec.id] = rec
        self.drained.discard(rec.session)
        if self.scheduler.update(rec):
            self.full_pass = True  # suspended, resumed or retried: it may wait deep in a queue
        else:
            self.scheduler.add(rec)
        # A task for later wakes the loop only if it is due before the loop's next wake: 10,000
        # tasks for tomorrow handed over one by one must not cost 10,000 passes over the queue.
        begin = max(rec.begin_at or 0.0, rec.next_attempt_at or 0.0)
        if begin <= time.time() or self.due is None or begin < self.due:
            self.cond.notify_all()

    def _dequeue(self, task_id: str) -> None:
        rec = self.queue.pop(task_id, None)
        if rec is not None:
            self.scheduler.remove(rec)
            self.full_pass = True

    def _start_ready(self) -> float | None:
        """Start what may start now (under ``cond``); return when something else becomes due."""
        now = time.time()
        full = self.full_pass or (self.due is not None and now >= self.due)
        self.full_pass = False
        # A quick pass (each queue read up to its first task that must wait) unless a cancel,
        # a resume or a date asks for a full one: 10,000 queued tasks cost nothing per start.
        plan = self.scheduler.take(now, full=full)
        for rec in plan.start:
            self._start(rec)
        self.due = plan.wake
        return plan.wake

    def _fail_record(self, rec: TaskRecord) -> None:
        """A record that cannot start ends its task (and never the process)."""
        log.warning("task %s: %s", rec.id, UNSTARTABLE)
        machine = placeholder_machine(rec)
        self.publish(rec, machine, fail_unstarted(machine, ErrorCode.UNKNOWN, UNSTARTABLE))

    def _start(self, rec: TaskRecord) -> None:
        del self.queue[rec.id]
        try:
            machine = machine_for(rec)
        except MessageError:  # failed on its thread: publishing under ``cond`` could deadlock
            machine = placeholder_machine(rec)
        cfg = self.configs[rec.session]
        run = Attempt(
            rec,
            machine,
            self._publish_attempt,
            cfg.retryPolicy,
            rec.policy_retries,  # journaled: a restarted process goes on counting
            rec.created + cfg.timeoutIntervalForResource,
        )
        self.running[rec.id] = run
        future = self.pool.submit(self._work, run, cfg)
        self.futures.add(future)
        future.add_done_callback(self.futures.discard)

    def _transport(self, session: str, cfg: ConfigValues) -> Transport:
        with self.cond:
            transport = self.transports.get(session)
            if transport is None:
                # The shared persistent stores of default and background sessions (file locks
                # and SQLite keep this process and the hosts from losing each other's writes).
                stores = persistent_stores(self.home)
                transport = self.transports[session] = Transport(cfg, stores)
            return transport

    def _work(self, run: Attempt, cfg: ConfigValues) -> None:
        rec = run.rec
        try:
            if not startable(rec):
                self._fail_record(rec)
                return
            if finish_recovered_download(self.journal, run):
                return
            self.journal.update_task(rec.id, state=RUNNING)
            directory = private_dir(download_dir(self.home, rec.session))
            resume = resume_point(self.journal, rec, directory)
            if resume is not None:
                run.machine.restore_received(resume[0])
            transport = self._transport(rec.session, cfg)
            run.metrics = carried_metrics(rec, cfg)
            with run.paced(transport, cfg.maximumBytesPerSecond):
                transport.run(
                    run,
                    TaskKind(rec.kind),
                    run.machine.original_request,
                    str(directory),
                    rec.id,
                    durable=True,
                    resume=resume,
                    keep_partial=True,
                    metrics=run.metrics,
                )
            if run.retry is not None:  # the transport has reported the failure: retry or not
                retry_or_fail(self, run, cfg)
        except Exception:
            log.exception("task %s: engine error", rec.id)
        finally:
            self._ensure_completed(run)
            with self.cond:
                if not run.requeued:  # a requeued task gave its slot back already
                    self.scheduler.finished(rec)
                if self.running.get(rec.id) is run:  # not the next attempt, already started
                    del self.running[rec.id]
                    self.ended.discard(rec.id)
                self.cond.notify_all()

    def _ensure_completed(self, run: Attempt) -> None:
        """Whatever happened, a task not going round again ends with its one sessioncompleted."""
        current = self.journal.task(run.rec.id)
        if run.requeued or current is None or current.state == COMPLETED:
            return
        machine = run.machine if not run.machine.finished else placeholder_machine(run.rec)
        with contextlib.suppress(Exception):
            self.publish(
                run.rec, machine, fail_unstarted(machine, ErrorCode.UNKNOWN, "internal error")
            )
