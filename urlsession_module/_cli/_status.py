"""``status`` and ``cancel``: ask the background transfer process, or read its journal.

``status`` stays fast with 10,000 tasks: it counts each session's tasks by state in one query of
the journal (read only) and asks the transfer process only for the tasks running now, with
their live progress. ``status --all`` lists every task: the transfer process answers with each
one it knows, or, when none runs, the journal it left does (what is queued there resumes when a
background session next needs the process).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .._background import _protocol as proto
from .._background._client import TransferClient
from .._background._journal import OUTSTANDING, Journal, TaskRecord
from .._background._snapshot import TaskSnapshot
from .._background._wire import Action, Control, Status, StatusReply
from .._storage import check_private_file, state_dir
from .._urls import without_userinfo
from ..exceptions import StateDirectoryError, TransferUnavailableError, URLSessionError
from ._common import ExitCode, Output
from ._display import human_size

__all__ = ["cancel", "status"]

CONNECT_TIMEOUT = 0.5  # a live process answers at once; a stale socket only refuses
REPLY_TIMEOUT = 10.0


def _ask_status(home: Path, every: bool = True) -> StatusReply | None:
    """The running transfer process's answer to ``status`` (every task, or those running now),
    or None (never starts one)."""
    if not (home / proto.SOCKET_NAME).exists():
        return None
    try:
        with TransferClient.one_shot(home, CONNECT_TIMEOUT) as client:
            reply = client.request(Status(all=every), REPLY_TIMEOUT)
    except (URLSessionError, OSError):
        return None
    return reply if isinstance(reply, StatusReply) else None


def _from_snapshot(snap: TaskSnapshot) -> dict[str, Any]:
    """A task as ``status --json`` shows it, from the transfer process's snapshot (no credential:
    the process sends them redacted, and we redact again in case an older one did not)."""
    snap = snap.redacted()
    error = snap.error or (0, "")
    return {
        "taskIdentifier": snap.id,
        "sessionIdentifier": snap.session,
        "kind": snap.kind.value,
        "state": snap.state.value,
        "method": snap.request.method,
        "url": snap.request.url,
        "countOfBytesReceived": snap.received,
        "countOfBytesExpectedToReceive": snap.expected_receive,
        "countOfBytesSent": snap.sent,
        "countOfBytesExpectedToSend": snap.expected_send,
        "statusCode": snap.response.statusCode if snap.response else 0,
        "errorCode": error[0],
        "message": error[1],
        "outstanding": (snap.journal_state or "") in OUTSTANDING,
    }


def _from_record(rec: TaskRecord) -> dict[str, Any]:
    """A task as ``status --json`` shows it, from the journal (no process: no live counters)."""
    return {
        "taskIdentifier": rec.id,
        "sessionIdentifier": rec.session,
        "kind": rec.kind,
        "state": rec.state,
        "method": rec.request.get("method"),
        "url": _url_of(rec),
        "countOfBytesReceived": None,
        "countOfBytesExpectedToReceive": None,
        "countOfBytesSent": None,
        "countOfBytesExpectedToSend": rec.request.get("body_length", 0),
        "statusCode": rec.status_code,
        "errorCode": rec.error_code,
        "message": "",
        "outstanding": rec.state in OUTSTANDING,
    }


def _url_of(rec: TaskRecord) -> str | None:
    url = rec.request.get("url")
    return without_userinfo(url) if isinstance(url, str) else None


def _counts(home: Path) -> tuple[list[str], dict[str, dict[str, int]], dict[str, int]] | None:
    """The journal's sessions, their tasks counted by state and their waiting events: a few
    grouped queries, read only, whatever the number of tasks (None without a journal)."""
    path = home / proto.JOURNAL_NAME
    for suffix in ("", "-wal", "-shm"):
        check_private_file(f"{path}{suffix}")  # a planted link is refused, as the journal does
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        sessions = [r[0] for r in db.execute("SELECT identifier FROM sessions ORDER BY created")]
        by_state: dict[str, dict[str, int]] = {}
        for session, state, n in db.execute(
            "SELECT session, state, COUNT(*) FROM tasks GROUP BY session, state"
        ):
            by_state.setdefault(session, {})[state] = int(n)
        pending = {
            r[0]: int(r[1])
            for r in db.execute(
                "SELECT session, COUNT(*) FROM outbox WHERE acked = 0 GROUP BY session"
            )
        }
    finally:
        db.close()
    return sessions, by_state, pending


def _collect(home: Path, every: bool = True) -> dict[str, Any]:
    """Everything ``status`` reports: every task (``every``), or the counts by state and the
    tasks running now; from the live process, or else from the journal."""
    report: dict[str, Any] = {
        "type": "status",
        "stateDir": str(home),
        "running": False,
        "pid": None,
        "source": None,
        "sessions": [],
        "tasks": [],
    }
    reply = _ask_status(home, every)
    if reply is not None:
        report.update(running=True, pid=reply.pid, source="transfer process")
        report["tasks"] = [_from_snapshot(t) for t in reply.tasks]
        report["sessions"] = [
            {"sessionIdentifier": s, "pendingEvents": n} for s, n in reply.pending_events.items()
        ]
    if not every:
        counts = None
        with contextlib.suppress(sqlite3.Error):
            counts = _counts(home)
        if counts is not None:
            sessions, by_state, pending = counts
            report["source"] = report["source"] or "journal"
            if reply is None:
                report["sessions"] = [
                    {"sessionIdentifier": s, "pendingEvents": pending.get(s, 0)} for s in sessions
                ]
            for entry in report["sessions"]:
                entry["tasksByState"] = by_state.get(entry["sessionIdentifier"], {})
        return report
    if reply is not None:
        _add_outcomes(home, report["tasks"])
        return report
    path = home / proto.JOURNAL_NAME
    if path.exists():
        journal = Journal(path)
        try:
            report["source"] = "journal"
            report["tasks"] = [_from_record(r) for r in journal.tasks()]
            pending = journal.pending_by_session()
            report["sessions"] = [
                {"sessionIdentifier": s, "pendingEvents": pending.get(s, 0)}
                for s in journal.sessions()
            ]
        finally:
            journal.close()
    return report


def _add_outcomes(home: Path, tasks: list[dict[str, Any]]) -> None:
    """Finished tasks' status and error codes, which live snapshots leave out, from the journal
    (one query for them all)."""
    path = home / proto.JOURNAL_NAME
    finished = [t for t in tasks if not t["outstanding"]]
    if not finished or not path.exists():
        return
    journal = Journal(path)
    try:
        outcomes = {r.id: r for r in journal.tasks()}
    finally:
        journal.close()
    for t in finished:
        rec = outcomes.get(t["taskIdentifier"])
        if rec is not None:
            t["statusCode"] = t["statusCode"] or rec.status_code
            t["errorCode"] = t["errorCode"] or rec.error_code
            t["countOfBytesReceived"] = None  # not kept once a task is over
            t["countOfBytesSent"] = None


def _progress(task: dict[str, Any]) -> str:
    if task["kind"] == "upload":
        done, total = task["countOfBytesSent"], task["countOfBytesExpectedToSend"]
    else:
        done, total = task["countOfBytesReceived"], task["countOfBytesExpectedToReceive"]
    if done is None:
        return "-"
    if total and total > 0:
        return f"{human_size(done)} / {human_size(total)} ({done / total:.0%})"
    return human_size(done)


def _result(task: dict[str, Any]) -> str:
    if task["errorCode"]:
        return f"error {task['errorCode']}" + (f": {task['message']}" if task["message"] else "")
    if task["statusCode"]:
        return f"HTTP {task['statusCode']}"
    return ""


def _table(tasks: Iterable[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in ("TASK", "KIND", "STATE", "PROGRESS", "RESULT", "URL"):
        table.add_column(name, no_wrap=True)
    for t in tasks:
        table.add_row(
            t["taskIdentifier"], t["kind"], t["state"], _progress(t), _result(t), t["url"] or ""
        )
    return table


def status(args: argparse.Namespace, out: Output) -> ExitCode:
    """``urlsession status [--all]``: background sessions, their tasks counted by state and
    those running now; ``--all`` lists every task."""
    report = _collect(state_dir(), every=args.all)
    if out.json:
        out.emit(report)
        return ExitCode.OK
    console = Console(file=out.stdout, width=None if out.stdout.isatty() else 200)
    if report["running"]:
        console.print(f"transfer process {report['pid']} ({report['stateDir']})", highlight=False)
    elif report["source"] == "journal":
        console.print(
            "no transfer process is running; from its journal "
            f"({report['stateDir']}), queued tasks resume when a background session needs it",
            highlight=False,
        )
    else:
        console.print(
            f"no transfer process is running, and no background session has been used "
            f"with {report['stateDir']}",
            highlight=False,
        )
        return ExitCode.OK
    sessions = {s["sessionIdentifier"]: s for s in report["sessions"]}
    for t in report["tasks"]:
        sessions.setdefault(t["sessionIdentifier"], {"pendingEvents": 0})
    if not sessions:
        console.print("no background sessions", highlight=False)
    for ident, entry in sessions.items():
        tasks = [t for t in report["tasks"] if t["sessionIdentifier"] == ident]
        pending = entry.get("pendingEvents", 0)
        waiting = f", {pending} event(s) waiting for the host" if pending else ""
        by_state: dict[str, int] = entry.get("tasksByState", {})
        total = sum(by_state.values()) if not args.all else len(tasks)
        count = f"{total:,} task(s)" if total else "no task"
        console.print(f"\n[bold]session {ident}[/] ({count}{waiting})", highlight=False)
        for state, n in sorted(by_state.items(), key=lambda kv: _STATE_ORDER.get(kv[0], 9)):
            console.print(f"  {state}: {n:,}", highlight=False)
        if tasks:
            if not args.all:
                console.print("  running now:", highlight=False)
            console.print(_table(tasks))
    if not args.all:
        console.print("\n(counts by state; --all lists every task)", highlight=False)
    return ExitCode.OK


_STATE_ORDER = {"running": 0, "queued": 1, "suspended": 2, "downloaded": 3, "completed": 4}


def cancel(args: argparse.Namespace, out: Output) -> ExitCode:
    """``urlsession cancel ID``: cancel a background task (it reports -999 to its session)."""
    home = state_dir()
    try:
        with TransferClient.one_shot(home, CONNECT_TIMEOUT) as client:
            reply = client.request(Status(), REPLY_TIMEOUT)
            assert isinstance(reply, StatusReply)
            task = next((t for t in reply.tasks if t.id == args.id), None)
            if task is None:
                out.error(f"the transfer process has no task {args.id!r}")
                return ExitCode.NO_BACKGROUND
            if task.journal_state not in OUTSTANDING:
                out.info(f"task {args.id} has already completed: nothing to cancel")
                out.emit({"type": "cancel", "taskIdentifier": args.id, "cancelled": False})
                return ExitCode.OK
            client.request(Control(args.id, Action.CANCEL), REPLY_TIMEOUT)
    except StateDirectoryError as exc:
        out.error(str(exc))
        return ExitCode.NO_BACKGROUND
    except TransferUnavailableError:
        out.error("no transfer process is running: no background task to cancel")
        return ExitCode.NO_BACKGROUND
    except (URLSessionError, OSError) as exc:
        out.error(f"the transfer process refused: {exc}")
        return ExitCode.NO_BACKGROUND
    out.info(f"cancelled task {args.id}")
    out.emit({"type": "cancel", "taskIdentifier": args.id, "cancelled": True})
    return ExitCode.OK
