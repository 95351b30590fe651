"""The hand-over's edges: a full disk, a hostile peer, back-pressure (issue 17).

The full-disk test runs the transfer process's server and runner in this process, on their
threads, so that the journal's commit can be made to fail (a fault injection point, pytest-mock);
everything else uses the real transfer process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from tests._processes import pid_alive
from tests.with_server.test_background import Transfer, _wait
from tests.with_server.test_background_findings import _status
from urlsession_module._background._handover import HandoverError
from urlsession_module._background._runner import Runner
from urlsession_module._background._server import MAX_FRAME, Server
from urlsession_module._storage import private_dir
from urlsession_module.testing import LocalServer

LATER = {"earliestBeginDate": 4102444800.0}  # 2100: the task stays queued


def _session(identifier: str = "com.test.handover") -> Any:
    cfg = URLSession.createSessionConfiguration({"identifier": identifier})
    return URLSession.createSession({"configuration": cfg})


def _journaled(home: Path) -> set[str]:
    db = sqlite3.connect(f"file:{home / 'journal.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return {r[0] for r in db.execute("SELECT id FROM tasks")}
    finally:
        db.close()


@pytest.fixture
def in_process(state_home: Path) -> Iterator[Runner]:
    """The transfer process's server and runner on threads of this process."""
    home = private_dir(state_home)
    runner = Runner(home, idle_timeout=60)
    server = Server(home, runner)
    thread = threading.Thread(target=server.serve, name="test-transfer", daemon=True)
    thread.start()
    _wait(lambda: (home / "transfer.sock").exists(), 10, "the in-process server")
    yield runner
    runner.stop()
    thread.join(15)
    assert not thread.is_alive()


def test_a_full_disk_fails_the_next_call_and_keeps_what_was_journaled(
    in_process: Runner, state_home: Path, recorder: Any, mocker: Any
) -> None:
    """The journal's commit fails (disk full): that task ends failed (-3003, the reason in its
    message), the session's next call raises it in plain words, and the tasks journaled before
    are still there; once the disk has room, hand-overs work again."""
    session = _session()
    rec = recorder(session)
    try:
        first = session.downloadTask({"url": "http://127.0.0.1:9/a", **LATER})
        session.flush()
        full = sqlite3.OperationalError("database or disk is full")
        mocker.patch.object(in_process.journal, "add_tasks", side_effect=full)
        lost = session.downloadTask({"url": "http://127.0.0.1:9/b", **LATER})
        done = rec.completed(lost, 10)
        assert not done.success and done.errorCode == -3003
        assert "disk is full" in done.message
        with pytest.raises(HandoverError, match=r"not journaled: .*disk is full"):
            session.downloadTask({"url": "http://127.0.0.1:9/c", **LATER})
        mocker.stopall()
        again = session.downloadTask({"url": "http://127.0.0.1:9/d", **LATER})
        session.flush()
        assert _journaled(state_home) == {first, again}
    finally:
        session.invalidateAndCancel()
        assert session.waitForInvalidation(10)


def test_a_malformed_or_oversized_frame_closes_that_connection_only(
    server: LocalServer, transfer: Transfer, state_home: Path, recorder: Any
) -> None:
    """A peer that sends a frame over the limit, or garbage it wants no answer to, is hung up
    on; the transfer process and the other hosts go on."""
    session = _session()
    pid = transfer.pid()
    rec = recorder(session)
    key = (state_home / "transfer.key").read_bytes()
    try:
        for frame in (b"x" * (MAX_FRAME + 1), b"{not json", json.dumps({"op": 1}).encode()):
            conn = Client(str(state_home / "transfer.sock"), family="AF_UNIX", authkey=key)
            try:
                conn.send_bytes(frame)
            except (BrokenPipeError, ConnectionResetError):
                pass  # hung up on while it was still writing: closed, as it should be
            else:
                assert conn.poll(10)
                with pytest.raises((EOFError, ConnectionResetError)):
                    conn.recv_bytes()
            finally:
                conn.close()
        tid = session.dataTask({"url": server.url("/status/200"), "method": "GET"})
        assert rec.completed(tid, 30).success
        assert pid_alive(pid)
    finally:
        session.finishTasksAndInvalidate()
        assert session.waitForInvalidation(10)


def test_a_host_faster_than_the_journal_is_slowed_never_refused(
    transfer: Transfer, state_home: Path, recorder: Any
) -> None:
    """3,000 hand-overs as fast as one thread can make them: the socket fills and the calls
    wait when the socket is full (back-pressure); none fails, and every one is journaled once."""
    session = _session()
    try:
        ids = [
            session.downloadTask({"url": f"http://127.0.0.1:9/{i}", **LATER}) for i in range(3000)
        ]
        started = time.monotonic()
        session.flush()
        assert time.monotonic() - started < 60
        assert _journaled(state_home) == set(ids)
        assert len(set(ids)) == len(ids)
        numbers = [int(t[2:]) for t in ids]
        assert numbers == sorted(numbers)
    finally:
        session.invalidateAndCancel()
        assert session.waitForInvalidation(30)


def test_status_counts_thousands_of_tasks_by_state_and_lists_them_with_all(
    transfer: Transfer, state_home: Path
) -> None:
    """`urlsession status` with 1,000 queued tasks prints one line per state (not 1,000 rows);
    `--json` carries the counts; `--all` lists every task."""
    session = _session("com.test.many")
    try:
        ids = [
            session.downloadTask({"url": f"http://127.0.0.1:9/{i}", **LATER}) for i in range(1000)
        ]
        session.flush()
        r = _status(state_home)
        assert r.returncode == 0, r.stderr
        assert "session com.test.many (1,000 task(s))" in r.stdout
        assert "queued: 1,000" in r.stdout and ids[0] not in r.stdout
        r = _status(state_home, "--json")
        report = json.loads(r.stdout.strip().splitlines()[-1])
        (entry,) = [s for s in report["sessions"] if s["sessionIdentifier"] == "com.test.many"]
        assert entry["tasksByState"] == {"queued": 1000}
        assert report["tasks"] == []  # none is running: they wait for their date
        r = _status(state_home, "--all", "--json")
        report = json.loads(r.stdout.strip().splitlines()[-1])
        assert {t["taskIdentifier"] for t in report["tasks"]} == set(ids)
    finally:
        session.invalidateAndCancel()
        assert session.waitForInvalidation(30)
