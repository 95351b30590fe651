"""Issue 19's background findings, each against a real transfer process (a separate process).

Items 2, 5, 6, 7, 8, 13 and 16: what a hostile peer, a bad message, a planted file or a
collecting script did to the transfer process or its hosts. Every test has its own state
directory; the ``transfer`` fixture kills what a test started and checks nothing is left.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from tests._processes import pid_alive
from tests.with_server.test_background import Transfer, _bg_session, _run_host, _wait
from urlsession_module.exceptions import InvalidArgumentValueError, StateDirectoryError
from urlsession_module.testing import LocalServer


def _status(home: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, URLSESSION_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "urlsession_module", "status", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _outbox(home: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(f"file:{home / 'journal.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT task_id, name, fields FROM outbox ORDER BY seq").fetchall()
    finally:
        db.close()


@pytest.fixture
def peer(state_home: Path) -> Iterator[list[socket.socket]]:
    """Raw sockets a test opens to the transfer process; closed at the end."""
    opened: list[socket.socket] = []
    yield opened
    for s in opened:
        s.close()


# -- 2: a data task's body lives in a file, never in the journal; one sessioncompleted always --


def test_background_data_body_is_kept_in_a_file_not_the_journal(
    server: LocalServer, transfer: Transfer, state_home: Path, recorder: Any
) -> None:
    """A data task finished with no host: its body is a private file, not a journal row; a collecting host reads it back."""
    size = 2 * 1024 * 1024
    url = server.url(f"/bytes/{size}")
    task_id = _run_host(
        f"""
        print(session.dataTask({{'url': {url!r}, 'method': 'GET'}}), flush=True)
        os._exit(0)
        """
    )
    transfer.pid()
    _wait(lambda: transfer.task_state(task_id) == "completed", 30, "data task to complete")
    (row,) = [r for r in _outbox(state_home) if r[0] == task_id and r[1] == "sessioncompleted"]
    assert len(row[2]) < 4096, "the body went into the journal"
    fields = json.loads(row[2])
    body_file = Path(fields["responseFile"])
    assert body_file.parent == state_home / "responses"
    assert oct(body_file.stat().st_mode & 0o777) == oct(0o600)

    local = URLSession.createSession()
    rec_local = recorder(local)
    expected = rec_local.completed(local.dataTask({"url": url, "method": "GET"}), 30).responseText
    local.finishTasksAndInvalidate()

    rec = recorder(URLSession)
    session = _bg_session()
    done = rec.completed(task_id, 30)
    assert done.success and done.responseText == expected and len(expected) >= size // 2
    assert len(rec.of(task_id, "sessioncompleted")) == 1
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)
    _wait(lambda: not body_file.exists(), 10, "the body file to go once acknowledged")


def test_background_data_task_ends_once_when_its_body_cannot_be_kept(
    server: LocalServer, transfer: Transfer, state_home: Path, recorder: Any
) -> None:
    """When the transfer process cannot store a data task's body, the task still ends with exactly one sessioncompleted (-3003)."""
    session = _bg_session()
    rec = recorder(session)
    (state_home / "responses").write_text("not a directory")  # the body has nowhere to go
    tid = session.dataTask({"url": server.url("/bytes/5000"), "method": "GET"})
    done = rec.completed(tid, 30)
    assert not done.success and done.errorCode == -3003, done.message
    assert session.waitForTasks(10)
    time.sleep(0.3)
    assert len(rec.of(tid, "sessioncompleted")) == 1
    assert transfer.task_state(tid) == "completed"
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


# -- 5: a silent peer does not block the transfer process -------------------------------------------


def test_silent_peer_does_not_block_other_hosts(
    transfer: Transfer, state_home: Path, peer: list[socket.socket]
) -> None:
    """A peer that connects and never answers the challenge delays no one; it is dropped after the handshake timeout."""
    session = _bg_session()
    pid = transfer.pid()
    for _ in range(3):
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(state_home / "transfer.sock"))
        peer.append(s)
    started = time.monotonic()
    r = _status(state_home, "--json", timeout=20)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["running"] is True and report["pid"] == pid
    assert time.monotonic() - started < 10
    _wait(
        lambda: "refused a peer" in (state_home / "transfer.log").read_text(),
        15,
        "the silent peer to be dropped",
    )
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


# -- 6: a bad message is refused with a code; a bad journal record fails its task -----------------


def _raw_client(home: Path) -> Any:
    key = (home / "transfer.key").read_bytes()
    return Client(str(home / "transfer.sock"), family="AF_UNIX", authkey=key)


def _ask_raw(conn: Any, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    conn.send_bytes(json.dumps(message).encode())
    deadline = time.monotonic() + timeout
    while True:
        assert conn.poll(max(0.0, deadline - time.monotonic())), f"no reply to {message}"
        reply: dict[str, Any] = json.loads(conn.recv_bytes())
        if reply.get("op") == "reply" and reply.get("req") == message.get("req"):
            return reply


def test_bad_messages_get_an_error_code_and_nothing_is_journaled(
    server: LocalServer, transfer: Transfer, state_home: Path, recorder: Any
) -> None:
    """A create with kind 'bogus', an unknown op and garbage each get a reply with an error code; nothing reaches the journal; the process goes on."""
    session = _bg_session()
    pid = transfer.pid()
    conn = _raw_client(state_home)
    try:
        bogus = {
            "op": "create",
            "session": "com.test.bg",
            "kind": "bogus",
            "request": {"method": "GET", "url": server.url("/status/200"), "headers": []},
            "req": 7,
        }
        reply = _ask_raw(conn, bogus)
        assert reply["ok"] is False and reply["code"] == "bad-message"
        assert "kind" in reply["message"] and "Error" not in reply["message"]
        reply = _ask_raw(conn, {"op": "frobnicate", "req": 8})
        assert reply["ok"] is False and reply["code"] == "unknown-op"
        reply = _ask_raw(conn, {"op": "create", "session": "com.test.bg", "req": 9})
        assert reply["ok"] is False and reply["code"] == "bad-message"
        reply = _ask_raw(conn, {"op": "control", "task": "bg999", "action": "cancel", "req": 10})
        assert reply["ok"] is False and reply["code"] == "no-such-task"
    finally:
        conn.close()
    db = sqlite3.connect(f"file:{state_home / 'journal.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        assert db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 0
    finally:
        db.close()
    rec = recorder(session)
    tid = session.dataTask({"url": server.url("/status/200"), "method": "GET"})
    assert rec.completed(tid, 30).success
    assert pid_alive(pid)
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_journal_record_that_cannot_start_fails_its_task(
    server: LocalServer, transfer: Transfer, state_home: Path, recorder: Any
) -> None:
    """A journaled task the process cannot run (kind 'bogus') ends with sessioncompleted and an error code; the process does not crash-loop."""
    session = _bg_session()
    transfer.pid()
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)
    transfer.kill()
    db = sqlite3.connect(str(state_home / "journal.sqlite3"), timeout=5)
    try:
        with db:
            db.execute(
                "INSERT INTO tasks (id, number, session, kind, request, state, created) "
                "VALUES ('bg900', 900, 'com.test.bg', 'bogus', ?, 'queued', ?)",
                (json.dumps({"method": "GET", "url": server.url("/status/200")}), time.time()),
            )
    finally:
        db.close()
    rec = recorder(URLSession)
    again = _bg_session()
    done = rec.completed("bg900", 30)
    assert not done.success and done.errorCode == -1 and "not valid" in done.message
    pid = transfer.pid()
    time.sleep(1.0)
    assert pid_alive(pid), "the transfer process crashed on the bad record"
    tid = again.dataTask({"url": server.url("/status/200"), "method": "GET"})
    assert rec.completed(tid, 30).success
    again.finishTasksAndInvalidate()
    assert again.waitForInvalidation(10)


# -- 7: transfer files that are links or not ours are refused ---------------------------------------


@pytest.mark.parametrize(
    "name", ["transfer.pid", "transfer.key", "transfer.sock", "transfer.lock", "journal.sqlite3"]
)
def test_planted_link_in_the_state_directory_is_refused(
    transfer: Transfer, state_home: Path, tmp_path: Path, name: str
) -> None:
    """A transfer file planted as a symbolic link is refused (StateDirectoryError naming it) and its target left alone."""
    state_home.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (state_home / name).symlink_to(victim)
    with pytest.raises(StateDirectoryError, match=name):
        _bg_session()
    assert victim.read_text() == "precious"


def test_transfer_process_does_not_write_through_a_pid_link(
    state_home: Path, tmp_path: Path
) -> None:
    """Run directly, the transfer process refuses a planted transfer.pid link instead of overwriting its target."""
    state_home.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (state_home / "transfer.pid").symlink_to(victim)
    r = subprocess.run(
        [sys.executable, "-m", "urlsession_module._background._daemon", "--home", str(state_home)],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, URLSESSION_HOME=str(state_home), URLSESSION_TRANSFER_IDLE="1"),
    )
    assert r.returncode == 1 and "transfer.pid" in r.stderr, r.stderr
    assert victim.read_text() == "precious"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user owns")
def test_transfer_key_owned_by_another_user_is_refused(
    transfer: Transfer, state_home: Path
) -> None:
    """A transfer.key owned by another uid (which could read or swap it) is refused."""
    state_home.mkdir(mode=0o700)
    key = state_home / "transfer.key"
    key.write_bytes(os.urandom(32))
    os.chown(key, 65534, 65534)
    with pytest.raises(StateDirectoryError) as info:
        _bg_session()
    assert "owned by another user" in info.value.args[0]


# -- 8: no credentials in status -------------------------------------------------------------------


def test_status_shows_no_credentials(
    server: LocalServer, transfer: Transfer, state_home: Path, recorder: Any
) -> None:
    """`status --all` and `--json` never show a URL's user info, live or from the journal."""
    session = _bg_session()
    rec = recorder(session)
    url = server.url("/status/200").replace("http://", "http://bguser:bg-pass@")
    tid = session.dataTask({"url": url, "method": "GET"})
    assert rec.completed(tid, 30)
    slow = session.downloadTask(
        {"url": server.url("/bytes/400000?rate=100000"), "credential": ("bguser", "bg-pass")}
    )
    for args in (("--all",), ("--all", "--json")):
        r = _status(state_home, *args)
        assert r.returncode == 0, r.stderr
        assert "bg-pass" not in r.stdout and "bguser" not in r.stdout, r.stdout
        assert tid in r.stdout
    rec.completed(slow, 30)
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)
    pid = transfer.pid()
    _wait(lambda: not pid_alive(pid), 20, "the transfer process to leave")
    r = _status(state_home, "--all", "--json")
    assert "journal" in r.stdout and tid in r.stdout
    assert "bg-pass" not in r.stdout and "bguser" not in r.stdout, r.stdout


# -- 13: a collecting run's waitForTasks waits for the replay ---------------------------------------


def test_collecting_run_waits_for_the_replay(server: LocalServer, transfer: Transfer) -> None:
    """A script that creates the session and calls waitForTasks() gets every missed sessioncompleted before it returns."""
    ids = json.loads(
        _run_host(
            f"""
            ids = [session.dataTask({{'url': {server.url("/status/200")!r}, 'method': 'GET'}})
                   for _ in range(2)]
            print(json.dumps(ids), flush=True)
            os._exit(0)
            """
        )
    )
    transfer.pid()
    for tid in ids:
        _wait(lambda tid=tid: transfer.task_state(tid) == "completed", 30, "tasks to complete")
    script = textwrap.dedent(
        """
        import json, time
        import urlsession_module as URLSession
        seen = []
        URLSession.addEventListener('sessioncompleted', lambda e: seen.append(e.taskIdentifier))
        cfg = URLSession.createSessionConfiguration({'identifier': 'com.test.bg'})
        session = URLSession.createSession({'configuration': cfg})
        ok = session.waitForTasks(30)
        print(json.dumps({'ok': ok, 'seen': sorted(seen)}))
        session.finishTasksAndInvalidate()
        session.waitForInvalidation(10)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"ok": True, "seen": sorted(ids)}


# -- 16: one session per background identifier ------------------------------------------------------


def test_second_session_with_the_same_identifier_is_refused(transfer: Transfer) -> None:
    """While a background session is valid, another with its identifier is refused naming 'identifier'; once it is invalidated, a new one works."""
    first = _bg_session()
    with pytest.raises(InvalidArgumentValueError, match="identifier") as info:
        _bg_session()
    assert info.value.argument == "identifier"
    first.finishTasksAndInvalidate()
    assert first.waitForInvalidation(10)
    second = _bg_session()
    second.finishTasksAndInvalidate()
    assert second.waitForInvalidation(10)
