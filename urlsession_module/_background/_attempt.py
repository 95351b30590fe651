"""One attempt at a background task, and what the transfer process keeps of a finished one.

:class:`Attempt` is the transport's ``TransferControl`` for a task of the transfer process: the
usual :class:`~urlsession_module._driver.TaskDriver` (payloads go to the runner, which journals
them before a host hears of them) plus the background retry rule. An input that
:func:`~urlsession_module._state._retry.background_retry` calls a "not now" (the session's
``retryPolicy`` when it has one, else :func:`~urlsession_module._state.transient`'s built-in
rule: refused, lost, timed out, a 503) never reaches the machine: the attempt ends there, by the transport's own way of stopping (it is
told the transfer is to stop, as for a cancel), and once the transport has returned the runner
decides, explicitly, whether to try again. Nothing is raised into the transport.

A data task's body is kept in a private file under the state directory, never in the journal:
:func:`store_response` puts it there and the journaled ``sessioncompleted`` names the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._config_values import ConfigValues
from .._driver import TaskDriver
from .._events import Payload, SessionCompleted, WaitingForConnectivity
from .._scheduler import Hold, Scheduler
from .._state import (
    BodyReceived,
    BodySent,
    DownloadFinished,
    Finished,
    Input,
    Request,
    ResponseInfo,
    Retry,
    TaskKind,
    TaskMachine,
    TaskState,
    journal_task_state,
)
from .._state._retry import CONNECTIVITY_CODES, RetryPolicy, background_retry
from .._storage import open_private, part_name, private_dir
from .._transport._metrics import TaskMetrics
from .._transport._proxies import proxy_for
from .._transport._ratelimit import TaskPacing, joined_late, pacing_for
from .._urls import origin
from ..exceptions import ErrorCode
from ._fields import MessageError, request_from_dict
from ._journal import DOWNLOADED, SUSPENDED, Journal, TaskRecord
from ._resumable import download_dir
from ._snapshot import TaskSnapshot

__all__ = [
    "Attempt",
    "carried_metrics",
    "download_dir",
    "machine_for",
    "snapshot",
    "store_response",
]

log = logging.getLogger("urlsession_module.transfer")

DISCRETIONARY_CONCURRENCY = 1  # discretionary tasks running at once, all sessions together
RESPONSES = "responses"  # under the state directory: data tasks' bodies until acknowledged
RESPONSE_FILE = "responseFile"  # the journaled field that replaces responseText
_CHUNK = 1 << 20


class Attempt(TaskDriver):
    """A task being moved now; ``retry`` is set when this attempt ended in a transient failure."""

    def __init__(
        self,
        rec: TaskRecord,
        machine: TaskMachine,
        publish: Callable[..., None],
        policy: RetryPolicy | None = None,
        policy_retries: int = 0,
        deadline: float = float("inf"),
    ) -> None:
        super().__init__(machine)
        self.rec = rec
        self._on_payloads = publish
        self.retry: Retry | None = None
        # The session's retryPolicy, the retries it made so far, and the resource deadline
        # (epoch seconds); ``delay`` is the policy's wait when it retries this attempt (None:
        # the runner's own backoff).
        self.policy = policy
        self.policy_retries = policy_retries
        self.deadline = deadline
        self.delay: float | None = None
        self.requeued = False  # the runner queued the task again: this attempt is not its end
        # Issue 16: cancelByProducingResumeData asked for this cancel (the transport keeps the
        # partial file), and the bandwidth limit this attempt is paced by (None: none).
        self.keeps_partial_on_cancel = False
        self.pacing: TaskPacing | None = None
        self._transport: object = None  # the transport it runs on, while it runs (paced)
        # The task's metrics, going on from its earlier attempts' (:func:`carried_metrics`);
        # journaled when this attempt ends in a retry.
        self.metrics: TaskMetrics | None = None

    @property
    def user_cancelled(self) -> bool:
        return self.machine.state is TaskState.CANCELING

    @property
    def cancelled(self) -> bool:
        """What the transport polls to stop: a user's cancel, or this attempt being over."""
        return self.user_cancelled or self.retry is not None

    def feed(self, event: Input) -> None:
        abort = None
        with self._cond:
            if self.retry is not None:
                # The attempt is over; what the transport still says does not count. A file it
                # finished meanwhile is no one's.
                if isinstance(event, DownloadFinished):
                    with contextlib.suppress(OSError):
                        os.unlink(event.location)
                return
            decided = (
                None
                if self.user_cancelled
                else background_retry(
                    event,
                    self.policy,
                    self.machine.original_request,
                    self.policy_retries,
                    time.time(),
                    self.deadline,
                )
            )
            retry = None
            if decided is not None:
                retry, self.delay = decided
                self.retry = retry
                abort = self._abort
        if retry is None:
            super().feed(event)
            if not isinstance(event, (BodyReceived, BodySent)):
                return
            pacing = self.pacing
            if pacing is None:  # the session's rate set while it ran (SetRate)?
                pacing = self.pacing = joined_late(
                    self._transport,
                    self.rec.id,
                    self.rec.rate,
                    self.machine.original_request.has_body,
                )
            if pacing is not None:
                received = event.n if isinstance(event, BodyReceived) else 0
                wait = pacing.delay(received, event.n - received)
                if wait > 0:  # ahead of its share: the read (or send) loop waits, cancellably
                    self.wait_cancelled(wait)
        elif abort is not None:
            abort()  # a response being read: stop it now rather than at the next block

    @contextlib.contextmanager
    def paced(self, owner: object, session_rate: int | None) -> Iterator[None]:
        """The session's ``maximumBytesPerSecond`` (shared by its running tasks; ``owner`` is
        its transport, where the shares live) and the task's own, while the transfer runs."""
        request = self.machine.original_request
        # Where the session's limits live: a rate set while the attempt runs applies to it too
        # (``feed`` joins then; ``paced()`` tells an engine moving the body itself).
        self._transport = owner
        pacing = pacing_for(owner, session_rate, self.rec.id, self.rec.rate, request.has_body)
        self.pacing = pacing
        if pacing is not None:
            pacing.start()
        try:
            yield
        finally:
            if self.pacing is not None:
                self.pacing.stop()
                self.pacing = None
            self._transport = None

    def give_up(self) -> None:
        """Retrying is over: the machine ends the task with the failure the retry rule names."""
        assert self.retry is not None
        retry, self.retry = self.retry, None
        failed = retry.give_up(self.user_cancelled)
        if self.metrics is not None:  # every attempt's requests, the last one's too
            failed = attrs.evolve(failed, metrics=self.metrics.to_dict())
        super().feed(failed)

    def publish(self, event: Input, payloads: list[Payload]) -> None:
        self._on_payloads(self, event, payloads)


def carried_metrics(rec: TaskRecord, config: ConfigValues) -> TaskMetrics:
    """The metrics an attempt records into: the task's earlier attempts' (journaled at each
    retry, so a restarted transfer process has them too) with this one's requests added, so
    its ``sessioncompleted`` lists every request the task made, as in a foreground session. A
    journaled record this version cannot read is dropped: the task goes on from now."""
    proxy = proxy_for(config, rec.request.get("url", "")) is not None
    if rec.metrics is not None:
        try:
            return TaskMetrics.carried(json.loads(rec.metrics), proxy)
        except ValueError:
            log.warning("task %s: its earlier attempts' metrics are not readable", rec.id)
    return TaskMetrics(proxy)


def waiting_for_connectivity(run: Attempt) -> WaitingForConnectivity | None:
    """The event a background task sends when its attempt could not reach the host (a
    background session always waits for connectivity, as Apple's); None for other retries."""
    retry = run.retry
    if retry is None or retry.code not in CONNECTIVITY_CODES:
        return None
    return WaitingForConnectivity(run.rec.id, retry.code, run.rec.session)


def finish_recovered_download(journal: Journal, run: Attempt) -> bool:
    """A download whose file was in place before a crash: complete it, don't fetch it again."""
    rec = journal.task(run.rec.id) or run.rec
    if rec.state != DOWNLOADED or not rec.location:
        return False
    if not os.path.exists(rec.location):
        # The host already moved the file it was told about: the download is still done.
        log.info("task %s: finished file already collected", rec.id)
    run.machine.restore_download_finished(
        ResponseInfo(run.machine.original_request.url, rec.status_code or 200), rec.location
    )
    run.feed(Finished())
    return True


def resume_point(journal: Journal, rec: TaskRecord, directory: Path) -> tuple[int, str] | None:
    """Where a download left off, if the server can be asked to continue it safely."""
    if rec.kind != TaskKind.DOWNLOAD.value:
        return None
    rec = journal.task(rec.id) or rec
    try:
        size = (directory / part_name(rec.id)).stat().st_size
    except FileNotFoundError:
        return None
    if size and rec.validator:
        return size, rec.validator
    return None


def scheduler_for(configs: Mapping[str, ConfigValues]) -> Scheduler[TaskRecord]:
    """The package's one scheduler, told how to read a journal record (and its session's
    configuration, looked up at each pass: a host may describe the session again)."""

    def config(rec: TaskRecord) -> ConfigValues | None:
        return configs.get(rec.session)

    return Scheduler(
        origin=lambda rec: origin(rec.request["url"]),
        # 0 holds a task whose session no host has described (recovery fails those).
        limit=lambda rec: c.httpMaximumConnectionsPerHost if (c := config(rec)) else 0,
        priority=lambda rec: rec.priority,
        not_before=lambda rec: max(rec.begin_at or 0.0, rec.next_attempt_at or 0.0) or None,
        hold=lambda rec: Hold.SUSPENDED if rec.state == SUSPENDED else Hold.READY,
        discretionary=lambda rec: bool((c := config(rec)) and c.isDiscretionary),
        discretionary_limit=DISCRETIONARY_CONCURRENCY,
        ident=lambda rec: rec.id,
    )


def machine_for(rec: TaskRecord) -> TaskMachine:
    """A fresh machine for a journaled task (:class:`MessageError` if its record is not valid)."""
    try:
        kind = TaskKind(rec.kind)
    except ValueError:
        raise MessageError(f"'kind' is not one the protocol knows (got {rec.kind!r:.40})") from None
    return TaskMachine(rec.id, kind, request_from_dict(rec.request), rec.session)


def startable(rec: TaskRecord) -> bool:
    try:
        machine_for(rec)
    except MessageError:
        return False
    return True


def placeholder_machine(rec: TaskRecord) -> TaskMachine:
    """A machine for a record that cannot start, only so that it can fail its task properly."""
    kind = rec.kind if rec.kind in {k.value for k in TaskKind} else TaskKind.DATA.value
    url = rec.request.get("url") if isinstance(rec.request, dict) else None
    request = Request("GET", url if isinstance(url, str) else "")
    return TaskMachine(rec.id, TaskKind(kind), request, rec.session)


_KINDS = frozenset(k.value for k in TaskKind)


def snapshot(rec: TaskRecord, machine: TaskMachine | None) -> TaskSnapshot:
    """What a host's Task proxy shows: plain data from the machine, or else from the journal."""
    try:
        request = request_from_dict(rec.request)
    except MessageError:
        request = Request(
            "GET", str(rec.request.get("url", "")) if isinstance(rec.request, dict) else ""
        )
    kind = TaskKind(rec.kind) if rec.kind in _KINDS else TaskKind.DATA
    common: dict[str, Any] = {
        "id": rec.id,
        "kind": kind,
        "request": request,
        "priority": rec.priority,
        "description": rec.description,
        "begin_at": rec.begin_at,
    }
    if machine is None:
        return TaskSnapshot(
            state=journal_task_state(rec.state),
            current_request=request,
            expected_send=request.body_length,
            **common,
        )
    err = machine.error
    return TaskSnapshot(
        state=machine.state,
        current_request=machine.current_request,
        received=machine.count_received,
        expected_receive=machine.count_expected_to_receive,
        sent=machine.count_sent,
        expected_send=machine.count_expected_to_send,
        response=machine.response,
        error=(err.code, err.message) if err else None,
        **common,
    )


def store_response(
    home: Path, payload: SessionCompleted
) -> tuple[SessionCompleted, dict[str, Any]]:
    """The payload to report and the fields to journal, with the body moved to a private file.

    When the body cannot be stored, the task still ends: with a failure that says so (-3003),
    never with no ``sessioncompleted`` at all.
    """
    if not payload.responseText:  # a download's (None), or an empty body: nothing to keep
        return payload, payload.to_dict()
    path = home / RESPONSES / payload.taskIdentifier
    try:
        private_dir(path.parent)
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            text = payload.responseText
            for start in range(0, len(text), _CHUNK):
                data = memoryview(text[start : start + _CHUNK].encode("utf-8", "surrogatepass"))
                while data:
                    data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
    except (OSError, MemoryError, UnicodeError) as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        code = ErrorCode.CANNOT_WRITE_TO_FILE
        failed = attrs.evolve(
            payload,
            success=False,
            errorCode=int(code),
            message=f"{code.description} (the response body could not be kept: "
            f"{getattr(exc, 'strerror', None) or 'out of memory'})",
            responseText="",
        )
        return failed, failed.to_dict()
    fields = payload.to_dict()
    del fields["responseText"]
    fields[RESPONSE_FILE] = str(path)
    return payload, fields


def remove_response(fields: dict[str, Any]) -> None:
    path = fields.get(RESPONSE_FILE)
    if isinstance(path, str):
        with contextlib.suppress(OSError):
            os.unlink(path)


def remove_upload(home: Path, rec: TaskRecord) -> None:
    """A body the host spilled to a file for this task (``uploads/``) is no one's once it ended."""
    path = rec.request.get("body_path")
    if isinstance(path, str) and Path(path).parent == home / "uploads":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
