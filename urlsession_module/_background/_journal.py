"""The transfer process's durable journal: sessions, tasks and an outbox of events, in SQLite.

WAL mode with ``synchronous=FULL``: a commit is on disk when it returns, so a SIGKILL of either
side loses no task and no event. Commits happen at state changes only (task created, response
started, finished, event queued, event acknowledged), never per block of bytes: how much of a
download is done is the size of its ``.part`` file, which survives a killed process.

Plain data in, plain data out: requests and event fields are stored as JSON.
"""

from __future__ import annotations

import json
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import attrs

from .._storage import check_private_file

__all__ = ["Journal", "OutboxEvent", "TaskRecord"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    identifier TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    session TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    priority REAL NOT NULL DEFAULT 0.5,
    description TEXT,
    begin_at REAL,
    validator TEXT,
    location TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error_code INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    rate INTEGER,
    policy_retries INTEGER NOT NULL DEFAULT 0,
    metrics TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, session);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    task_id TEXT,
    name TEXT NOT NULL,
    fields TEXT NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (session, acked, seq);
"""

# Columns added after the first schema, for _migrate: (name, declaration).
_ADDED_COLUMNS = (
    ("location", "TEXT"),
    ("rate", "INTEGER"),  # the task's own maximumBytesPerSecond (issue 16)
    ("policy_retries", "INTEGER NOT NULL DEFAULT 0"),  # retryPolicy retries made, across restarts
    ("metrics", "TEXT"),  # earlier attempts' metrics (JSON), carried to the task's end
)

# Task states in the journal. All but 'completed' are outstanding; a restart puts every 'running'
# task back in the queue. 'downloaded': the file is in its final place and downloadcompleted is
# journaled, so a restart only completes the task, never fetches it again.
QUEUED, RUNNING, SUSPENDED, DOWNLOADED, COMPLETED = (
    "queued",
    "running",
    "suspended",
    "downloaded",
    "completed",
)
OUTSTANDING = (QUEUED, RUNNING, SUSPENDED, DOWNLOADED)


@attrs.frozen
class TaskRecord:
    id: str
    number: int
    session: str
    kind: str
    request: dict[str, Any]
    state: str
    priority: float = 0.5
    description: str | None = None
    begin_at: float | None = None
    validator: str | None = None
    location: str | None = None
    attempts: int = 0
    next_attempt_at: float | None = None
    status_code: int = 0
    error_code: int = 0
    created: float = 0.0
    rate: int | None = None
    policy_retries: int = 0
    metrics: str | None = None  # the earlier attempts' metrics record, as JSON text


@attrs.frozen
class OutboxEvent:
    seq: int
    session: str
    task_id: str | None
    name: str
    fields: dict[str, Any]


_TASK_COLUMNS = [a.name for a in attrs.fields(TaskRecord)]


class Journal:
    """One SQLite database; safe to share between the transfer process's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for suffix in ("", "-wal", "-shm"):
            # SQLite follows links: a planted one (or another user's file) is refused first.
            check_private_file(f"{path}{suffix}")
        old_umask = os.umask(0o077)  # the db, -wal and -shm files are born 0600
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._migrate()
        finally:
            os.umask(old_umask)
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{path}{suffix}")
            if p.exists():
                p.chmod(0o600)
        self._lock = threading.RLock()

    def _migrate(self) -> None:
        """Bring a journal written by an older version up to this schema (columns only grow)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
        for column, decl in _ADDED_COLUMNS:
            if column not in have:
                self._db.execute(f"ALTER TABLE tasks ADD COLUMN {column} {decl}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    # -- sessions ----------------------------------------------------------------------------------

    def upsert_session(self, identifier: str, config: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions (identifier, config, created) VALUES (?, ?, ?) "
                "ON CONFLICT(identifier) DO UPDATE SET config = excluded.config",
                (identifier, json.dumps(config), time.time()),
            )

    def session_config(self, identifier: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT config FROM sessions WHERE identifier = ?", (identifier,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def sessions(self) -> list[str]:
        with self._lock:
            return [
                r[0] for r in self._db.execute("SELECT identifier FROM sessions ORDER BY created")
            ]

    # -- tasks -------------------------------------------------------------------------------------

    def new_task_number(self) -> int:
        """A durable counter: task identifiers never repeat, across restarts too."""
        with self._tx() as db:
            return self._next_number(db)

    @staticmethod
    def _next_number(db: sqlite3.Connection) -> int:
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('task_number', 0)")
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'task_number'")
        return int(db.execute("SELECT value FROM meta WHERE key = 'task_number'").fetchone()[0])

    def lease(self, n: int) -> int:
        """Reserve ``n`` task numbers for a host in one durable commit; returns the first."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('task_number', 0)")
            db.execute("UPDATE meta SET value = value + ? WHERE key = 'task_number'", (n,))
            last = int(db.execute("SELECT value FROM meta WHERE key = 'task_number'").fetchone()[0])
        return last - n + 1

    def leased(self) -> int:
        """The highest task number handed out so far (a host-chosen one above it is forged)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'task_number'").fetchone()
        return int(row[0]) if row else 0

    def add_tasks(self, recs: list[TaskRecord]) -> list[TaskRecord]:
        """Group commit: store the records not stored yet, in one transaction (one fsync).

        Returns those that were new: a task handed over again after a reconnect is stored once.
        """
        if not recs:
            return []
        with self._tx() as db:
            have: set[str] = set()
            ids = [r.id for r in recs]
            for i in range(0, len(ids), 500):  # SQLite's limit on bound parameters
                chunk = ids[i : i + 500]
                have.update(
                    row[0]
                    for row in db.execute(
                        f"SELECT id FROM tasks WHERE id IN ({', '.join('?' * len(chunk))})", chunk
                    )
                )
            new: list[TaskRecord] = []
            for rec in recs:
                if rec.id not in have:
                    have.add(rec.id)
                    new.append(rec)
            # A loop's tasks often share one request object (see _intake): encoded once.
            texts: dict[int, str] = {}
            rows = []
            for rec in new:
                row = list(_task_values(rec))
                text = texts.get(id(rec.request))
                if text is None:
                    text = texts[id(rec.request)] = json.dumps(rec.request)
                row[_REQUEST_COLUMN] = text
                rows.append(row)
            db.executemany(_INSERT_TASK, rows)
        return new

    def add_task(self, rec: TaskRecord) -> None:
        with self._tx() as db:
            self._insert(db, rec)

    def create_task(self, make: Callable[[int], TaskRecord]) -> TaskRecord:
        """Number and store a new task in one durable commit (one fsync, not two)."""
        with self._tx() as db:
            rec = make(self._next_number(db))
            self._insert(db, rec)
            return rec

    @staticmethod
    def _insert(db: sqlite3.Connection, rec: TaskRecord) -> None:
        db.execute(_INSERT_TASK, _task_row(rec))

    def update_task(self, task_id: str, **fields: Any) -> None:
        bad = set(fields) - set(_TASK_COLUMNS) or {"id"} & set(fields)
        if bad:
            raise ValueError(f"not updatable task fields: {sorted(bad)}")
        if "request" in fields:
            fields["request"] = json.dumps(fields["request"])
        with self._tx() as db:
            db.execute(
                f"UPDATE tasks SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                [*fields.values(), task_id],
            )

    def task(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
        return _task(row) if row else None

    def tasks(
        self, session: str | None = None, states: Iterable[str] | None = None
    ) -> list[TaskRecord]:
        sql = f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks WHERE 1=1"
        args: list[Any] = []
        if session is not None:
            sql += " AND session = ?"
            args.append(session)
        if states is not None:
            states = list(states)
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            args.extend(states)
        sql += " ORDER BY number"
        with self._lock:
            return [_task(r) for r in self._db.execute(sql, args)]

    def record_download(
        self, task_id: str, session: str, location: str, status_code: int, fields: dict[str, Any]
    ) -> int:
        """The file is in place: mark the task downloaded and queue downloadcompleted, atomically."""
        with self._tx() as db:
            db.execute(
                "UPDATE tasks SET state = ?, location = ?, status_code = ? WHERE id = ?",
                (DOWNLOADED, location, status_code, task_id),
            )
            return self._append(db, session, task_id, "downloadcompleted", fields)

    def complete_task(
        self,
        task_id: str,
        session: str,
        events: list[tuple[str, dict[str, Any]]],
        status_code: int,
        error_code: int,
    ) -> list[int]:
        """Mark the task completed and queue its last events, in one transaction.

        Only once: a task already completed gets no second end (returns ``[]``).
        """
        with self._tx() as db:
            cur = db.execute(
                "UPDATE tasks SET state = ?, status_code = ?, error_code = ? "
                "WHERE id = ? AND state != ?",
                (COMPLETED, status_code, error_code, task_id, COMPLETED),
            )
            if cur.rowcount == 0 and self._exists(db, task_id):
                return []
            return [self._append(db, session, task_id, name, fields) for name, fields in events]

    @staticmethod
    def _exists(db: sqlite3.Connection, task_id: str) -> bool:
        return db.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is not None

    # -- outbox ------------------------------------------------------------------------------------

    def append_event(
        self, session: str, task_id: str | None, name: str, fields: dict[str, Any]
    ) -> int:
        with self._tx() as db:
            return self._append(db, session, task_id, name, fields)

    @staticmethod
    def _append(
        db: sqlite3.Connection, session: str, task_id: str | None, name: str, fields: dict[str, Any]
    ) -> int:
        cur = db.execute(
            "INSERT INTO outbox (session, task_id, name, fields) VALUES (?, ?, ?, ?)",
            (session, task_id, name, json.dumps(fields)),
        )
        return int(cur.lastrowid or 0)

    def pending_events(
        self, session: str, after: int = 0, limit: int | None = None
    ) -> list[OutboxEvent]:
        sql = (
            "SELECT seq, session, task_id, name, fields FROM outbox "
            "WHERE session = ? AND acked = 0 AND seq > ? ORDER BY seq"
        )
        args: list[Any] = [session, after]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [OutboxEvent(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def count_pending(self, session: str | None = None) -> int:
        with self._lock:
            if session is None:
                row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE acked = 0").fetchone()
            else:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM outbox WHERE acked = 0 AND session = ?", (session,)
                ).fetchone()
        return int(row[0])

    def tasks_with_pending(self, session: str) -> list[TaskRecord]:
        """The tasks that ``session``'s unacknowledged events speak of, in one query."""
        sql = (
            f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks WHERE id IN "
            "(SELECT task_id FROM outbox WHERE session = ? AND acked = 0) ORDER BY number"
        )
        with self._lock:
            return [_task(r) for r in self._db.execute(sql, (session,))]

    def replay_page(
        self, session: str, after: int, limit: int
    ) -> tuple[list[tuple[int, str | None, str, str]], list[tuple[Any, ...]], bool]:
        """One page of a replay's reads, as stored (JSON text, not decoded): ``session``'s
        unacknowledged events after ``after`` (seq, task_id, name, fields), at most ``limit``;
        the tasks they speak of (id, kind, state, request, priority, description, begin_at,
        body_length); and whether more events follow.

        By pages, so that a replay's first chunk leaves before the last one is read: the host
        starts on it while the rest is read and put together. ``request`` is None where the
        stored text is not the object the journal writes (a method, a URL, a body length >= 0):
        the replay then reads that task the slow way.
        """
        with self._lock:
            events = self._db.execute(
                "SELECT seq, task_id, name, fields FROM outbox "
                "WHERE session = ? AND acked = 0 AND seq > ? ORDER BY seq LIMIT ?",
                (session, after, limit + 1),
            ).fetchall()
            more = len(events) > limit
            del events[limit:]
            tasks = (
                self._db.execute(_REPLAY_TASKS, (session, after, events[-1][0])).fetchall()
                if events
                else []
            )
        return events, tasks, more

    def pending_by_session(self) -> dict[str, int]:
        """Events not yet acknowledged, per session, in one query."""
        with self._lock:
            rows = self._db.execute(
                "SELECT session, COUNT(*) FROM outbox WHERE acked = 0 GROUP BY session"
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def sessions_with_pending(self) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._db.execute("SELECT DISTINCT session FROM outbox WHERE acked = 0")
            ]

    def acked_files(self, session: str, upto: int) -> list[str]:
        """The files named by the events an ``ack(session, upto)`` will settle (a data task's
        body): a replay's ack settles 10,000 at once, none of them decoded."""
        with self._lock:
            rows = self._db.execute(
                "SELECT fields FROM outbox WHERE session = ? AND seq <= ? AND acked = 0 "
                "AND fields LIKE '%\"responseFile\"%'",
                (session, upto),
            ).fetchall()
        return [path for (fields,) in rows if (path := response_file(fields)) is not None]

    def ack(self, session: str, upto: int) -> int:
        """Acknowledge every event of ``session`` up to ``upto``: they are never sent again."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE outbox SET acked = 1 WHERE session = ? AND seq <= ? AND acked = 0",
                (session, upto),
            )
            # Acknowledged rows are history: keep the table small.
            db.execute("DELETE FROM outbox WHERE session = ? AND acked = 1", (session,))
            return cur.rowcount


# A replay's tasks; the request checked by SQLite's JSON functions rather than decoded in Python
# (json_valid first: json_type raises on malformed text, and CASE evaluates lazily).
_REPLAY_TASKS = """
SELECT id, kind, state,
    CASE WHEN json_valid(request)
        AND json_type(request) = 'object'
        AND json_type(request, '$.method') = 'text'
        AND json_type(request, '$.url') = 'text'
        AND coalesce(json_type(request, '$.headers'), 'array') = 'array'
        AND json_type(request, '$.body') IS NULL
        AND coalesce(json_extract(request, '$.body_length'), 0) >= 0
        AND coalesce(json_type(request, '$.body_length'), 'integer') = 'integer'
    THEN request END,
    priority, description, begin_at,
    CASE WHEN json_valid(request) THEN json_extract(request, '$.body_length') END
FROM tasks WHERE id IN (
    SELECT task_id FROM outbox WHERE session = ? AND acked = 0 AND seq > ? AND seq <= ?
)
"""

_INSERT_TASK = f"INSERT INTO tasks ({', '.join(_TASK_COLUMNS)}) VALUES ({', '.join('?' for _ in _TASK_COLUMNS)})"


_REQUEST_COLUMN = _TASK_COLUMNS.index("request")
_task_values = operator.attrgetter(*_TASK_COLUMNS)


def _task_row(rec: TaskRecord) -> list[Any]:
    values = list(_task_values(rec))
    values[_REQUEST_COLUMN] = json.dumps(rec.request)
    return values


def _task(row: tuple[Any, ...]) -> TaskRecord:
    values = dict(zip(_TASK_COLUMNS, row, strict=True))
    values["request"] = json.loads(values["request"])
    return TaskRecord(**values)


_FILE_KEY = '"responseFile": "'  # (json.dumps's separators, as append_event writes)


def response_file(fields: str) -> str | None:
    """The response file an event's stored fields name, read without decoding them.

    ``store_response`` adds the file last and ``json.dumps`` keeps that order, so it is the
    text's last member: ``, "responseFile": "<path>"}``. Anything else, None.
    """
    at = fields.rfind(_FILE_KEY)
    if at < 0:
        return None
    try:
        path, end = scanstring(fields, at + len(_FILE_KEY))
    except ValueError:
        return None
    return path if fields[end:] == "}" and fields.startswith("{") else None
