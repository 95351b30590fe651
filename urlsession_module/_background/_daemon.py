"""The transfer process: runs background sessions' tasks so they outlive the host that made them.

One per user and state directory (an exclusive ``flock``, not a hope), started on demand by the
first background session, detached from the host, and gone after an idle period with no task and
no host. Hosts reach it over a Unix socket in the private state directory; a peer of another
user is refused before anything is read (``SO_PEERCRED``), and every peer must answer an HMAC
challenge with the key in a 0600 file.

Every task runs the same sans-IO :class:`~urlsession_module._state.TaskMachine` and the same
:class:`~urlsession_module._transport.Transport` as in-process sessions. What differs is policy:
the machine's outputs go to the journal before they go to a host, transient failures are retried
with backoff until ``timeoutIntervalForResource``, a killed process resumes every unfinished
download with ``Range``/``If-Range`` from its ``.part`` file, and a session whose events wait with
no host connected can have its launch command run.

Run as ``python -m urlsession_module._background._daemon --home DIR [--detach]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

from .._configuration import ConfigValues
from .._driver import TaskDriver
from .._events import DownloadCompleted, Payload, SessionCompleted
from .._state import (
    Cancel,
    Failed,
    Finished,
    Input,
    ResponseInfo,
    ResponseStarted,
    Resume,
    Suspend,
    TaskKind,
    TaskMachine,
)
from .._storage import background_key, part_name, private_dir
from .._stores import persistent_stores
from .._transport import Transport
from .._urls import origin
from ..exceptions import ErrorCode
from . import _protocol as proto
from ._journal import DOWNLOADED, OUTSTANDING, QUEUED, RUNNING, SUSPENDED, Journal, TaskRecord

log = logging.getLogger("urlsession_module.transfer")

TRANSIENT = frozenset(
    {
        ErrorCode.CANNOT_CONNECT_TO_HOST,
        ErrorCode.NETWORK_CONNECTION_LOST,
        ErrorCode.TIMED_OUT,
        ErrorCode.CANNOT_FIND_HOST,
    }
)
MAX_BACKOFF = 60.0
DISCRETIONARY_CONCURRENCY = 1


def download_dir(home: Path, session: str) -> Path:
    return home / "downloads" / background_key(session)


class _RetrySignal(Exception):
    """Raised into the transport when a response means "try again later" (503)."""


class _Host:
    """One connected host process."""

    def __init__(self, conn: Connection, pid: int) -> None:
        self.conn = conn
        self.pid = pid
        self.lock = threading.Lock()
        self.sessions: set[str] = set()
        self.alive = True

    def send(self, message: dict[str, Any]) -> None:
        if not self.alive:
            return
        try:
            with self.lock:
                self.conn.send_bytes(proto.encode(message))
        except (OSError, ValueError):
            self.alive = False


class _Running(TaskDriver):
    """A task being moved now: the driver whose payloads go to the journal, then the host.

    It adds the background retry policy: a transient failure (refused, lost, timed out, or a 503
    response) does not reach the machine; the attempt ends and the task is queued again.
    """

    def __init__(self, daemon: TransferProcess, rec: TaskRecord, machine: TaskMachine) -> None:
        super().__init__(machine)
        self.daemon = daemon
        self.rec = rec
        self.retry: tuple[int, str, float | None] | None = None  # code, message, retry-after

    def feed(self, event: Input) -> None:
        with self._cond:
            if self.retry is not None:
                return  # this attempt is over; what the transport still says does not count
            if not self.cancelled and self._transient(event):
                return
        super().feed(event)

    def give_up(self, code: int, message: str) -> None:
        """End the task with this failure: retrying is over, so no policy applies."""
        super().feed(Failed(code, message))

    def _transient(self, event: Input) -> bool:
        if isinstance(event, Failed) and event.code in TRANSIENT:
            self.retry = (event.code, event.message, None)
            return True
        if isinstance(event, ResponseStarted) and event.response.statusCode == 503:
            after = event.response.header("retry-after")
            delay = float(after) if after and after.strip().isdigit() else None
            self.retry = (0, "503 Service Unavailable", delay)
            raise _RetrySignal
        return False

    def publish(self, event: Input, payloads: list[Payload]) -> None:
        if isinstance(event, ResponseStarted):
            self.daemon.journal.update_task(
                self.rec.id, state=RUNNING, validator=event.response.resume_validator
            )
        self.daemon.publish(self.rec, self.machine, payloads)


def snapshot(rec: TaskRecord, machine: TaskMachine | None) -> dict[str, Any]:
    """What a host's Task proxy shows: plain data from the machine (or the journal)."""
    if machine is None:
        state = {
            QUEUED: "running",
            RUNNING: "running",
            DOWNLOADED: "running",
            SUSPENDED: "suspended",
        }.get(rec.state, "completed")
        return {
            "id": rec.id,
            "kind": rec.kind,
            "state": state,
            "request": rec.request,
            "current_request": rec.request,
            "priority": rec.priority,
            "description": rec.description,
            "begin_at": rec.begin_at,
            "received": 0,
            "expected_receive": -1,
            "sent": 0,
            "expected_send": rec.request.get("body_length", 0),
            "response": None,
            "error": None,
        }
    err = machine.error
    return {
        "id": rec.id,
        "kind": rec.kind,
        "state": machine.state.value,
        "request": rec.request,
        "current_request": proto.request_to_dict(machine.current_request),
        "priority": rec.priority,
        "description": rec.description,
        "begin_at": rec.begin_at,
        "received": machine.count_received,
        "expected_receive": machine.count_expected_to_receive,
        "sent": machine.count_sent,
        "expected_send": machine.count_expected_to_send,
        "response": proto.response_to_dict(machine.response),
        "error": [err.code, err.message] if err else None,
    }


class TransferProcess:
    """The process's state: journal, hosts, the queue, the running tasks."""

    def __init__(self, home: Path, idle_timeout: float) -> None:
        self.home = home
        self.idle_timeout = idle_timeout
        self.journal = Journal(home / proto.JOURNAL_NAME)
        self.key = proto.read_or_make_key(home)
        self.cond = threading.Condition()
        self.pub_lock = threading.RLock()  # journal-then-push, and attach's read-then-register
        self.hosts: list[_Host] = []
        self.session_host: dict[str, _Host] = {}
        self.configs: dict[str, ConfigValues] = {}
        self.transports: dict[str, Transport] = {}
        self.queue: dict[str, TaskRecord] = {}
        self.running: dict[str, _Running] = {}
        self.threads: set[threading.Thread] = set()
        self.launched: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
        self.stopping = False
        self.listener: Listener | None = None

    # -- start and stop --------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart (or a crash), everything outstanding goes back in the queue."""
        for ident in self.journal.sessions():
            raw = self.journal.session_config(ident)
            if raw is not None:
                with contextlib.suppress(Exception):
                    self.configs[ident] = proto.config_from_dict(raw)
        for rec in self.journal.tasks(states=OUTSTANDING):
            if rec.state == RUNNING:
                self.journal.update_task(rec.id, state=QUEUED)
                rec = self.journal.task(rec.id) or rec
            self.queue[rec.id] = rec
        log.info("recovered %d outstanding tasks", len(self.queue))

    def serve(self) -> None:
        address = str(self.home / proto.SOCKET_NAME)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)  # a stale socket of a dead process: we hold the lock now
        old_umask = os.umask(0o177)
        try:
            self.listener = Listener(address, family="AF_UNIX")
        finally:
            os.umask(old_umask)
        os.chmod(address, 0o600)
        accept = threading.Thread(target=self._accept_loop, name="transfer-accept", daemon=True)
        accept.start()
        try:
            self._schedule_loop()
        finally:
            self.stopping = True
            self.listener.close()
            for host in list(self.hosts):
                with contextlib.suppress(OSError):
                    host.conn.close()
            for run in list(self.running.values()):
                run.set_abort(None)
            accept.join(2.0)
            for t in list(self.threads):
                t.join(5.0)
            for transport in self.transports.values():
                transport.close()
            self.journal.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()

    # -- hosts -------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self.listener is not None
        while not self.stopping:
            try:
                conn = self.listener.accept()
            except OSError:
                return
            try:
                uid = proto.peer_uid(conn.fileno())
                if uid != os.getuid():
                    log.warning("refused a peer of uid %d", uid)
                    conn.close()
                    continue
                deliver_challenge(conn, self.key)
                answer_challenge(conn, self.key)
            except Exception as exc:  # a bad peer never gets further
                log.warning("refused a peer: %s", exc)
                with contextlib.suppress(OSError):
                    conn.close()
                continue
            host = _Host(conn, 0)
            with self.cond:
                self.hosts.append(host)
                self.cond.notify_all()
            t = threading.Thread(
                target=self._host_loop, args=(host,), name="transfer-host", daemon=True
            )
            self.threads.add(t)
            t.start()

    def _host_loop(self, host: _Host) -> None:
        try:
            while not self.stopping:
                try:
                    data = host.conn.recv_bytes()
                except (EOFError, OSError):
                    break
                try:
                    message = proto.decode(data)
                    reply = self.handle(host, message)
                except Exception as exc:
                    log.exception("bad message from host")
                    reply = {"ok": False, "error": str(exc)}
                    message = {"req": None}
                if reply is not None and message.get("req") is not None:
                    host.send({"op": "reply", "req": message["req"], **reply})
        finally:
            host.alive = False
            with contextlib.suppress(OSError):
                host.conn.close()
            with self.pub_lock, self.cond:
                self.hosts = [h for h in self.hosts if h is not host]
                for ident in list(host.sessions):
                    if self.session_host.get(ident) is host:
                        del self.session_host[ident]
                self.cond.notify_all()
            self.threads.discard(threading.current_thread())

    def handle(self, host: _Host, m: dict[str, Any]) -> dict[str, Any] | None:
        op = m["op"]
        if op == "attach":
            return self._attach(host, m)
        if op == "create":
            return self._create(m)
        if op == "control":
            return self._control(m["task"], m["action"])
        if op == "ack":
            self.journal.ack(m["session"], int(m["upto"]))
            return None
        if op == "invalidate":
            with self.pub_lock:
                if self.session_host.get(m["session"]) is host:
                    del self.session_host[m["session"]]
                host.sessions.discard(m["session"])
            if m.get("cancel"):
                for rec in self.journal.tasks(session=m["session"], states=OUTSTANDING):
                    self._control(rec.id, "cancel")
            return {"ok": True}
        if op == "status":
            return {
                "ok": True,
                "pid": os.getpid(),
                "tasks": [
                    {
                        **snapshot(
                            rec, self.running[rec.id].machine if rec.id in self.running else None
                        ),
                        "session": rec.session,
                        "journal_state": rec.state,
                    }
                    for rec in self.journal.tasks()
                ],
                "pending_events": {
                    s: self.journal.count_pending(s) for s in self.journal.sessions()
                },
            }
        if op == "shutdown":
            self.stop()
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")

    def _attach(self, host: _Host, m: dict[str, Any]) -> dict[str, Any]:
        ident = m["session"]
        config = proto.config_from_dict(m["config"])
        self.journal.upsert_session(ident, m["config"])
        with self.cond:
            self.configs[ident] = config
            old = self.transports.pop(ident, None)
        if old is not None and not any(r.rec.session == ident for r in self.running.values()):
            old.close()
        with self.pub_lock:
            events = self.journal.pending_events(ident)
            # One query for the tasks the events speak of, not one per event (replays are big).
            wanted = {e.task_id for e in events if e.task_id}
            snaps = {
                rec.id: snapshot(
                    rec, self.running[rec.id].machine if rec.id in self.running else None
                )
                for rec in (self.journal.tasks(session=ident) if wanted else [])
                if rec.id in wanted
            }
            handler = f"{ident}-{uuid.uuid4().hex[:8]}" if events else None
            tasks = [
                snapshot(rec, self.running[rec.id].machine if rec.id in self.running else None)
                for rec in self.journal.tasks(session=ident, states=OUTSTANDING)
            ]
            self.session_host[ident] = host
            host.sessions.add(ident)
            host.send(
                {
                    "op": "replay",
                    "session": ident,
                    "handlerId": handler,
                    "events": [
                        [e.seq, e.name, e.fields, snaps.get(e.task_id or "")] for e in events
                    ],
                    "tasks": tasks,
                    "drained": not tasks,
                }
            )
        return {"ok": True}

    def _create(self, m: dict[str, Any]) -> dict[str, Any]:
        ident = m["session"]
        if ident not in self.configs:
            raise ValueError(f"session {ident!r} is not attached")
        # Durable (numbered and stored in one commit) before the host hears the identifier.
        rec = self.journal.create_task(
            lambda number: TaskRecord(
                id=f"bg{number}",
                number=number,
                session=ident,
                kind=m["kind"],
                request=m["request"],
                state=QUEUED,
                priority=float(m.get("priority", 0.5)),
                description=m.get("description"),
                begin_at=m.get("begin_at"),
                created=time.time(),
            )
        )
        with self.cond:
            self.queue[rec.id] = rec
            self.cond.notify_all()
        return {"ok": True, "taskIdentifier": rec.id, "task": snapshot(rec, None)}

    def _control(self, task_id: str, action: str) -> dict[str, Any]:
        controls: dict[str, Input] = {"cancel": Cancel(), "suspend": Suspend(), "resume": Resume()}
        event = controls[action]
        with self.cond:
            run = self.running.get(task_id)
            queued = self.queue.get(task_id)
        if run is None and queued is None:
            return {"ok": False, "error": f"no outstanding task {task_id!r}"}
        if run is not None:
            run.control(event)
        elif queued is not None:
            if action == "cancel":
                with self.cond:
                    self.queue.pop(task_id, None)
                machine = TaskMachine(
                    queued.id,
                    TaskKind(queued.kind),
                    proto.request_from_dict(queued.request),
                    queued.session,
                )
                machine.send(Cancel())
                self.publish(queued, machine, machine.send(Failed(ErrorCode.CANCELLED)))
            else:
                state = SUSPENDED if action == "suspend" else QUEUED
                self.journal.update_task(task_id, state=state)
                with self.cond:
                    self.queue[task_id] = self.journal.task(task_id) or queued
                    self.cond.notify_all()
        return {"ok": True}

    # -- events ------------------------------------------------------------------------------------

    def publish(self, rec: TaskRecord, machine: TaskMachine, payloads: list[Payload]) -> None:
        """Journal what must survive, then tell the host (if one is attached) in that order."""
        for p in payloads:
            fields = p.to_dict()
            seq = 0
            with self.pub_lock:
                if isinstance(p, SessionCompleted):
                    seq = self.journal.complete_task(
                        rec.id, rec.session, [(p.name, fields)], p.statusCode, p.errorCode
                    )[0]
                    self._cleanup_upload(rec)
                elif isinstance(p, DownloadCompleted):
                    status = machine.response.statusCode if machine.response else 0
                    seq = self.journal.record_download(
                        rec.id, rec.session, p.location, status, fields
                    )
                host = self.session_host.get(rec.session)
                if host is not None:
                    host.send(
                        {
                            "op": "event",
                            "session": rec.session,
                            "seq": seq,
                            "name": p.name,
                            "fields": fields,
                            "task": snapshot(rec, machine),
                        }
                    )
                elif seq:
                    self._maybe_launch(rec.session)
            if isinstance(p, SessionCompleted):
                self._maybe_drained(rec.session)

    def _maybe_drained(self, session: str) -> None:
        with self.cond:
            busy = any(r.session == session for r in self.queue.values()) or any(
                r.rec.session == session and not r.machine.finished for r in self.running.values()
            )
        if busy:
            return
        with self.pub_lock:
            host = self.session_host.get(session)
            if host is not None:
                host.send(
                    {
                        "op": "event",
                        "session": session,
                        "seq": 0,
                        "name": "sessioneventscompleted",
                        "fields": {"sessionIdentifier": session},
                    }
                )

    def _cleanup_upload(self, rec: TaskRecord) -> None:
        path = rec.request.get("body_path")
        uploads = self.home / "uploads"
        if path and Path(path).parent == uploads:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _maybe_launch(self, session: str) -> None:
        config = self.configs.get(session)
        if config is None or not config.sessionSendsLaunchEvents or not config.launchCommand:
            return
        previous = self.launched.get(session)
        if previous is not None and previous[0].poll() is None:
            return  # the host we launched is still starting
        if previous is not None and time.monotonic() - previous[1] < 5.0:
            return
        env = dict(os.environ, URLSESSION_LAUNCH_SESSION=session, URLSESSION_HOME=str(self.home))
        try:
            proc = subprocess.Popen(
                list(config.launchCommand),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            log.warning("launch command for %s failed: %s", session, exc)
            return
        log.info("ran the launch command for %s (pid %d)", session, proc.pid)
        self.launched[session] = (proc, time.monotonic())

    # -- scheduling --------------------------------------------------------------------------------

    def _schedule_loop(self) -> None:
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
            for proc, _ in list(self.launched.values()):
                proc.poll()  # reap launched hosts that have exited

    def _start_ready(self) -> float | None:
        """Start what may start now (under ``cond``); return when something else becomes due."""
        now = time.time()
        wake: float | None = None
        per_host: dict[tuple[str, str, int], int] = {}
        discretionary_running = 0
        for run in self.running.values():
            key = origin(run.rec.request["url"])
            per_host[key] = per_host.get(key, 0) + 1
            cfg = self.configs.get(run.rec.session)
            discretionary_running += 1 if cfg and cfg.isDiscretionary else 0
        ready = []
        for rec in self.queue.values():
            if rec.state == SUSPENDED:
                continue
            due = max(rec.begin_at or 0.0, rec.next_attempt_at or 0.0)
            if due > now:
                wake = due if wake is None else min(wake, due)
                continue
            ready.append(rec)
        if not ready:
            return wake

        # Discretionary sessions' tasks go after everyone else's, and fewer at a time.
        def order(rec: TaskRecord) -> tuple[int, float, int]:
            cfg = self.configs.get(rec.session)
            return (1 if cfg and cfg.isDiscretionary else 0, -rec.priority, rec.number)

        urgent_waiting = any(not self._discretionary(r) for r in ready)
        for rec in sorted(ready, key=order):
            cfg = self.configs.get(rec.session)
            if cfg is None:
                continue  # no host has described this session yet (cannot happen after attach)
            key = origin(rec.request["url"])
            if per_host.get(key, 0) >= cfg.httpMaximumConnectionsPerHost:
                continue
            if cfg.isDiscretionary and (
                urgent_waiting or discretionary_running >= DISCRETIONARY_CONCURRENCY
            ):
                continue
            per_host[key] = per_host.get(key, 0) + 1
            discretionary_running += 1 if cfg.isDiscretionary else 0
            self._start(rec, cfg)
        return wake

    def _discretionary(self, rec: TaskRecord) -> bool:
        cfg = self.configs.get(rec.session)
        return bool(cfg and cfg.isDiscretionary)

    def _start(self, rec: TaskRecord, cfg: ConfigValues) -> None:
        del self.queue[rec.id]
        machine = TaskMachine(
            rec.id, TaskKind(rec.kind), proto.request_from_dict(rec.request), rec.session
        )
        run = _Running(self, rec, machine)
        self.running[rec.id] = run
        t = threading.Thread(
            target=self._work, args=(run, cfg), name=f"transfer-{rec.id}", daemon=True
        )
        self.threads.add(t)
        t.start()

    def _transport(self, session: str, cfg: ConfigValues) -> Transport:
        with self.cond:
            transport = self.transports.get(session)
            if transport is None:
                # The shared persistent stores of default and background sessions (file locks
                # and SQLite keep this process and the hosts from losing each other's writes).
                stores = persistent_stores(self.home)
                transport = self.transports[session] = Transport(cfg, stores)
            return transport

    def _work(self, run: _Running, cfg: ConfigValues) -> None:
        rec = run.rec
        try:
            if self._finish_recovered_download(run):
                return
            self.journal.update_task(rec.id, state=RUNNING)
            directory = private_dir(download_dir(self.home, rec.session))
            resume = self._resume_point(rec, directory)
            if resume is not None:
                run.machine.restore_received(resume[0])
            self._transport(rec.session, cfg).run(
                run,
                TaskKind(rec.kind),
                run.machine.original_request,
                str(directory),
                rec.id,
                durable=True,
                resume=resume,
                keep_partial=True,
            )
            if run.retry is not None:
                self._retry_or_fail(run, cfg)
        except Exception:
            log.exception("task %s: engine error", rec.id)
            if not run.machine.finished:
                with contextlib.suppress(Exception):
                    run.feed(Failed(ErrorCode.UNKNOWN, "internal error"))
        finally:
            with self.cond:
                self.running.pop(rec.id, None)
                self.threads.discard(threading.current_thread())
                self.cond.notify_all()

    def _finish_recovered_download(self, run: _Running) -> bool:
        """A download whose file was in place before a crash: complete it, don't fetch it again."""
        rec = self.journal.task(run.rec.id) or run.rec
        if rec.state != DOWNLOADED or not rec.location:
            return False
        if not os.path.exists(rec.location):
            # The host already moved the file it was told about: the download is still done.
            log.info("task %s: finished file already collected", rec.id)
        run.machine.restore_download_finished(
            ResponseInfo(rec.request["url"], rec.status_code or 200), rec.location
        )
        run.feed(Finished())
        return True

    def _resume_point(self, rec: TaskRecord, directory: Path) -> tuple[int, str] | None:
        """Where a download left off, if the server can be asked to continue it safely."""
        if rec.kind != TaskKind.DOWNLOAD.value:
            return None
        rec = self.journal.task(rec.id) or rec
        part = directory / part_name(rec.id)
        try:
            size = part.stat().st_size
        except FileNotFoundError:
            return None
        if size and rec.validator:
            return size, rec.validator
        return None

    def _retry_or_fail(self, run: _Running, cfg: ConfigValues) -> None:
        rec = self.journal.task(run.rec.id) or run.rec
        assert run.retry is not None
        code, message, retry_after = run.retry
        attempts = rec.attempts + 1
        delay = (
            retry_after if retry_after is not None else min(MAX_BACKOFF, 0.5 * 2 ** (attempts - 1))
        )
        deadline = rec.created + cfg.timeoutIntervalForResource
        if time.time() + delay < deadline and not run.cancelled:
            log.info("task %s: retry %d in %.1fs (%s)", rec.id, attempts, delay, message)
            self.journal.update_task(
                rec.id, state=QUEUED, attempts=attempts, next_attempt_at=time.time() + delay
            )
            with self.cond:
                self.queue[rec.id] = self.journal.task(rec.id) or rec
                self.cond.notify_all()
            return
        run.retry = None
        if run.cancelled:
            run.give_up(ErrorCode.CANCELLED, "")
        elif code:
            run.give_up(code, message)
        else:  # the server kept answering 503 until the resource deadline
            run.give_up(ErrorCode.TIMED_OUT, f"the resource timeout passed ({message})")


def _lock(home: Path) -> int | None:
    fd = os.open(home / proto.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="urlsession-transfer")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--detach", action="store_true", help="double-fork away from the caller")
    parser.add_argument(
        "--idle", type=float, default=float(os.environ.get("URLSESSION_TRANSFER_IDLE", "10"))
    )
    args = parser.parse_args(argv)
    home = private_dir(args.home)
    if args.detach:
        if os.fork() > 0:
            os._exit(0)  # the host waits for this one; the grandchild is reparented, never a zombie
        os.setsid()
    os.umask(0o077)
    lock_fd = _lock(home)
    if lock_fd is None:
        return 0  # another transfer process serves this user and state directory
    logging.basicConfig(
        filename=str(home / proto.LOG_NAME),
        level=logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    (home / proto.PID_NAME).write_text(str(os.getpid()))
    process = TransferProcess(home, args.idle)
    signal.signal(signal.SIGTERM, lambda *_: process.stop())
    try:
        process.recover()
        process.serve()
    finally:
        with contextlib.suppress(FileNotFoundError):
            (home / proto.PID_NAME).unlink()
        os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
