"""The transfer process's journal: durable counters, tasks, an outbox acknowledged by hosts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from urlsession_module._background._journal import (
    COMPLETED,
    OUTSTANDING,
    QUEUED,
    RUNNING,
    Journal,
    TaskRecord,
    response_file,
)


def _rec(journal: Journal, session: str = "s") -> TaskRecord:
    n = journal.new_task_number()
    rec = TaskRecord(
        id=f"bg{n}",
        number=n,
        session=session,
        kind="download",
        request={"method": "GET", "url": "http://127.0.0.1/x", "headers": []},
        state=QUEUED,
    )
    journal.add_task(rec)
    return rec


def test_task_numbers_never_repeat_across_reopen(tmp_path: Path) -> None:
    """The task counter is durable: a reopened journal continues after the last number."""
    j = Journal(tmp_path / "j.sqlite3")
    first = [j.new_task_number() for _ in range(3)]
    j.close()
    j = Journal(tmp_path / "j.sqlite3")
    assert j.new_task_number() == first[-1] + 1
    j.close()


def test_files_are_private(tmp_path: Path) -> None:
    """The database and its WAL/SHM files are 0600."""
    j = Journal(tmp_path / "j.sqlite3")
    _rec(j)
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    j.close()


def test_task_round_trip_and_update(tmp_path: Path) -> None:
    """Tasks come back as they were stored; updates change only the named fields."""
    j = Journal(tmp_path / "j.sqlite3")
    rec = _rec(j)
    j.update_task(rec.id, state=RUNNING, validator='"abc"')
    got = j.task(rec.id)
    assert got is not None
    assert got.state == RUNNING and got.validator == '"abc"' and got.request == rec.request
    assert [t.id for t in j.tasks(states=OUTSTANDING)] == [rec.id]
    with pytest.raises(ValueError):
        j.update_task(rec.id, nonsense=1)
    j.close()


def test_outbox_order_ack_and_completion(tmp_path: Path) -> None:
    """Events come back in order until acknowledged; completing a task queues its last event."""
    j = Journal(tmp_path / "j.sqlite3")
    rec = _rec(j)
    s1 = j.append_event("s", rec.id, "downloadcompleted", {"taskIdentifier": rec.id})
    (s2,) = j.complete_task(rec.id, "s", [("sessioncompleted", {"success": True})], 200, 0)
    assert s1 < s2
    assert [e.name for e in j.pending_events("s")] == ["downloadcompleted", "sessioncompleted"]
    assert j.task(rec.id).state == COMPLETED  # type: ignore[union-attr]
    assert j.count_pending("s") == 2 and j.sessions_with_pending() == ["s"]
    assert j.ack("s", s1) == 1
    assert [e.seq for e in j.pending_events("s")] == [s2]
    assert j.pending_events("other") == []
    j.close()


def test_an_ack_names_the_response_files_it_settles(tmp_path: Path) -> None:
    """The files of the events an ack settles are read from the stored text (not decoded):
    only a top-level ``responseFile`` written last, as ``store_response`` writes it."""
    j = Journal(tmp_path / "j.sqlite3")
    rec = _rec(j)
    odd = 'x"y\\z é'
    s1 = j.append_event("s", rec.id, "sessioncompleted", {"a": 1, "responseFile": f"/r/{odd}"})
    j.append_event("s", rec.id, "other", {"metrics": {"responseFile": "/nested"}})
    j.append_event("s", rec.id, "other", {"message": 'say "responseFile": "/no"'})
    s4 = j.append_event("s", None, "sessioncompleted", {"responseFile": "/r/2"})
    j.append_event("t", None, "sessioncompleted", {"responseFile": "/r/other-session"})
    assert j.acked_files("s", s1) == [f"/r/{odd}"]
    assert j.acked_files("s", s4) == [f"/r/{odd}", "/r/2"]
    j.ack("s", s1)
    assert j.acked_files("s", s4) == ["/r/2"]
    assert response_file('{"responseFile": "/p"} ') is None
    assert response_file('{"responseFile": "/p') is None
    assert response_file('{"responseFile": 7}') is None
    j.close()


def test_old_journal_is_migrated(tmp_path: Path) -> None:
    """A journal written before the 'location' column opens and gains the column."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, number INTEGER NOT NULL, session TEXT NOT NULL,"
        " kind TEXT NOT NULL, request TEXT NOT NULL, state TEXT NOT NULL,"
        " priority REAL NOT NULL DEFAULT 0.5, description TEXT, begin_at REAL, validator TEXT,"
        " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL,"
        " status_code INTEGER NOT NULL DEFAULT 0, error_code INTEGER NOT NULL DEFAULT 0,"
        " created REAL NOT NULL)"
    )
    db.close()
    j = Journal(path)
    rec = _rec(j)
    j.update_task(rec.id, location="/x")
    assert j.task(rec.id).location == "/x"  # type: ignore[union-attr]
    j.close()
