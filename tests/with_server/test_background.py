"""Background sessions against real processes: a transfer process that outlives its hosts.

Each test has its own state directory, so its own transfer process; the ``transfer`` fixture
kills whatever process a test started, and checks none is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from tests._processes import pid_alive, recorded_transfer_pid, transfer_pid
from urlsession_module.testing import LocalServer, content_sha256


def _wait(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.05)


class Transfer:
    """Access to the test's transfer process: its pid, its journal, killing it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.pids: set[int] = set()

    def pid(self, timeout: float = 15.0) -> int:
        _wait(
            lambda: transfer_pid(self.home) is not None,
            timeout,
            "transfer pid",
        )
        pid = recorded_transfer_pid(self.home)
        assert pid is not None
        self.pids.add(pid)
        return pid

    def kill(self) -> int:
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not pid_alive(pid), 10, "transfer process to die")
        return pid

    def task_state(self, task_id: str) -> str | None:
        state: str | None = self.journal_value("SELECT state FROM tasks WHERE id = ?", task_id)
        return state

    def journal_value(self, sql: str, *args: Any) -> Any:
        """The first column of the first row ``sql`` reads from the journal (read-only; None
        when no row matches)."""
        db = sqlite3.connect(f"file:{self.home / 'journal.sqlite3'}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute(sql, args).fetchone()
        finally:
            db.close()
        return row[0] if row else None


def _bg_session(identifier: str = "com.test.bg", **config: Any) -> Any:
    cfg = URLSession.createSessionConfiguration({"identifier": identifier, **config})
    return URLSession.createSession({"configuration": cfg})


def _host_script(body: str) -> str:
    return textwrap.dedent(
        """
        import os, sys, json
        import urlsession_module as URLSession
        cfg = URLSession.createSessionConfiguration({'identifier': 'com.test.bg'})
        session = URLSession.createSession({'configuration': cfg})
        """
    ) + textwrap.dedent(body)


def _run_host(body: str, timeout: float = 60) -> str:
    """Run a host script (after the common preamble) in its own process; return its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", _host_script(body)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_download_outlives_host_and_is_replayed(
    server: LocalServer, transfer: Transfer, recorder: Any
) -> None:
    """A host starts a download and dies; a second host gets backgroundtransfer, the missed events in order, then sessioneventscompleted."""
    size = 3 * 1024 * 1024
    url = server.url(f"/bytes/{size}?rate={2 * 1024 * 1024}")
    task_id = _run_host(
        f"""
        tid = session.downloadTask({{'url': {url!r}}})
        print(tid, flush=True)
        os._exit(0)
        """
    )
    transfer.pid()
    _wait(
        lambda: transfer.task_state(task_id) == "completed", 30, "download to complete with no host"
    )

    rec = recorder(URLSession)
    session = _bg_session()
    rec.wait_for(lambda ev: any(e.type == "sessioneventscompleted" for e in ev), 15)
    names = [e.type for e in rec.events]
    assert names[0] == "backgroundtransfer"
    assert (
        names.index("downloadcompleted")
        < names.index("sessioncompleted")
        < names.index("sessioneventscompleted")
    )
    first = rec.events[0]
    assert first.sessionIdentifier == "com.test.bg" and first.handlerId
    done = rec.of(task_id, "downloadcompleted")[0]
    assert hashlib.sha256(done.data.read()).hexdigest() == content_sha256(size)
    completed = rec.of(task_id, "sessioncompleted")
    assert len(completed) == 1 and completed[0].success and completed[0].statusCode == 200
    assert completed[0].sessionIdentifier == "com.test.bg"
    URLSession.endBackgroundHandler(first.handlerId)
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)

    # Acknowledged events are never replayed again.
    rec2 = recorder(URLSession)
    again = _bg_session()
    time.sleep(0.5)
    assert not [e for e in rec2.events if e.type in ("backgroundtransfer", "sessioncompleted")]
    again.finishTasksAndInvalidate()
    assert again.waitForInvalidation(10)


def test_live_events_bubble_with_session_identifier(
    server: LocalServer, transfer: Transfer, recorder: Any
) -> None:
    """A connected host hears a background task's progress live, each event carrying sessionIdentifier."""
    session = _bg_session()
    rec = recorder(session)
    tid = session.downloadTask({"url": server.url("/bytes/2000000")})
    done = rec.completed(tid, 30)
    assert done.success and done.sessionIdentifier == "com.test.bg"
    progress = rec.of(tid, "downloadprogress")
    assert progress and progress[-1].totalBytesWritten == 2000000
    assert all(
        e.sessionIdentifier == "com.test.bg" for e in rec.events if e.get("taskIdentifier") == tid
    )
    data = session.dataTask({"url": server.url("/echo"), "data": {"a": 1}})
    echoed = json.loads(rec.completed(data, 30).responseText)
    assert echoed["method"] == "POST" and json.loads(echoed["body_text"]) == {"a": 1}
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


@pytest.mark.parametrize("norange", [False, True], ids=["range", "norange"])
def test_sigkill_mid_download_resumes(
    server: LocalServer, transfer: Transfer, recorder: Any, norange: bool
) -> None:
    """SIGKILL of the transfer process mid-download: it comes back and the file is right (Range when the server allows)."""
    size = 6 * 1024 * 1024
    path = f"/bytes/{size}?rate={3 * 1024 * 1024}" + ("&norange=1" if norange else "")
    session = _bg_session()
    rec = recorder(session)
    server.clear_requests()
    tid = session.downloadTask({"url": server.url(path)})
    rec.wait_for(
        lambda ev: any(
            e.type == "downloadprogress" and e.totalBytesWritten >= 1024 * 1024 for e in ev
        ),
        20,
    )
    old = transfer.kill()
    done = rec.completed(tid, 60)
    assert done.success, done.message
    assert transfer.pid() != old
    blob = rec.of(tid, "downloadcompleted")[0].data
    assert hashlib.sha256(blob.read()).hexdigest() == content_sha256(size)
    ranged = [
        r for r in server.requests if r.path.startswith(f"/bytes/{size}") and "range" in r.headers
    ]
    if norange:
        assert len([r for r in server.requests if r.path.startswith(f"/bytes/{size}")]) >= 2
    else:
        assert ranged and ranged[0].headers.get("if-range")
    assert len(rec.of(tid, "sessioncompleted")) == 1
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_identifiers_unique_across_relaunches(server: LocalServer, transfer: Transfer) -> None:
    """Task identifiers never repeat, even after the transfer process is killed and restarted."""
    first = json.loads(
        _run_host(
            f"""
            ids = [session.dataTask({{'url': {server.url("/status/204")!r}}}) for _ in range(5)]
            session.waitForTasks(30)
            print(json.dumps(ids))
            """
        )
    )
    transfer.kill()
    second = json.loads(
        _run_host(
            f"""
            ids = [session.dataTask({{'url': {server.url("/status/204")!r}}}) for _ in range(5)]
            session.waitForTasks(30)
            print(json.dumps(ids))
            """
        )
    )
    assert len(set(first) | set(second)) == 10


def test_thousand_queued_tasks(server: LocalServer, transfer: Transfer, recorder: Any) -> None:
    """1000 tasks queued in one background session each complete exactly once."""
    session = _bg_session()
    rec = recorder(session)
    ids = [
        session.dataTask({"url": server.url("/status/200"), "method": "GET"}) for _ in range(1000)
    ]
    assert len(set(ids)) == 1000
    assert session.waitForTasks(120)
    completed = [e for e in rec.events if e.type == "sessioncompleted"]
    assert sorted(e.taskIdentifier for e in completed) == sorted(ids)
    assert all(e.success and e.statusCode == 200 for e in completed)
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_launch_command_runs_when_events_wait(
    server: LocalServer, transfer: Transfer, tmp_path: Path
) -> None:
    """With sessionSendsLaunchEvents and a launch command, the process runs it when events wait and no host is there."""
    marker = tmp_path / "launched.json"
    command = [
        sys.executable,
        "-c",
        f"import os, json; open({str(marker)!r}, 'w').write(json.dumps(os.environ['URLSESSION_LAUNCH_SESSION']))",
    ]
    url = server.url("/bytes/100000?rate=200000")
    _run_host(
        f"""
        cfg = URLSession.createSessionConfiguration({{'identifier': 'com.test.launch', 'sessionSendsLaunchEvents': True, 'launchCommand': {command!r}}})
        s = URLSession.createSession({{'configuration': cfg}})
        print(s.downloadTask({{'url': {url!r}}}))
        os._exit(0)
        """
    )
    transfer.pid()
    _wait(marker.exists, 30, "launch command to run")
    _wait(lambda: marker.stat().st_size > 0, 5, "launch command output")
    assert json.loads(marker.read_text()) == "com.test.launch"


def test_transient_failure_is_retried(transfer: Transfer, recorder: Any) -> None:
    """Connection refused is retried with backoff; the task completes once the server comes up."""
    probe = LocalServer()
    probe.start()
    port = probe.port
    probe.stop()
    session = _bg_session()
    rec = recorder(session)
    tid = session.downloadTask({"url": f"http://127.0.0.1:{port}/bytes/1000"})
    time.sleep(1.0)
    assert not rec.of(tid, "sessioncompleted")
    with LocalServer(port=port):
        done = rec.completed(tid, 30)
    assert done.success and done.statusCode == 200
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_503_retried_until_resource_timeout(
    server: LocalServer, transfer: Transfer, recorder: Any
) -> None:
    """A server that keeps answering 503 is retried (Retry-After honoured) until timeoutIntervalForResource, then -1001."""
    session = _bg_session(timeoutIntervalForResource=3.0)
    rec = recorder(session)
    server.clear_requests()
    tid = session.downloadTask({"url": server.url("/bytes/10?status=503&retry_after=1")})
    done = rec.completed(tid, 30)
    assert not done.success and done.errorCode == -1001
    tries = [r for r in server.requests if r.path.startswith("/bytes/10")]
    assert 2 <= len(tries) <= 4
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_state_is_private(
    server: LocalServer, transfer: Transfer, state_home: Path, recorder: Any
) -> None:
    """The state directory is 0700 and every file in it 0600 (journal WAL and SHM too)."""
    session = _bg_session()
    rec = recorder(session)
    tid = session.uploadTask({"url": server.url("/upload"), "data": b"x" * 1000})
    assert rec.completed(tid, 30).success
    assert stat.S_IMODE(state_home.stat().st_mode) == 0o700
    for p in state_home.rglob("*"):
        mode = stat.S_IMODE(p.lstat().st_mode)
        if p.is_dir():
            assert mode == 0o700, p
        elif not p.is_socket():
            assert mode == 0o600, p
        else:
            assert mode & 0o077 == 0, p
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a peer as another user")
def test_peer_of_another_user_is_refused(transfer: Transfer, state_home: Path) -> None:
    """A process of another uid reaching the socket is refused before any handshake."""
    session = _bg_session()
    pid = transfer.pid()
    # Open the way on purpose (o+x on the directories above, a 0666 socket) so that only the
    # transfer process's peer-uid check stands between the other user and the socket.
    opened = [
        p
        for p in [state_home, *state_home.parents]
        if p != Path("/") and not p.stat().st_mode & 0o001
    ]
    modes = {p: p.stat().st_mode for p in opened}
    for p in opened:
        p.chmod(modes[p] | 0o001)
    (state_home / "transfer.sock").chmod(0o666)
    script = textwrap.dedent(
        f"""
        import os, socket
        os.setgid(65534); os.setuid(65534)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        try:
            s.connect({str(state_home / "transfer.sock")!r})
            data = s.recv(100)
        except OSError as exc:
            print('refused', type(exc).__name__)
        else:
            print('refused (closed)' if not data else 'accepted: challenge sent')
        """
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
        )
    finally:
        for p in opened:
            p.chmod(modes[p])
    assert "refused" in out.stdout, out.stdout + out.stderr
    log = (state_home / "transfer.log").read_text()
    assert "refused a peer of uid 65534" in log
    assert pid_alive(pid)
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_tasks_ending_together_announce_sessioneventscompleted_once(
    server: LocalServer, transfer: Transfer, recorder: Any
) -> None:
    """Six downloads that end within milliseconds of each other: one sessioneventscompleted
    after the last (each ending task asks whether the session is drained; only one may say so)."""
    session = _bg_session("com.test.drained")
    rec = recorder(session)
    ids = [session.downloadTask(url=server.url(f"/bytes/{2000 + i}")) for i in range(6)]
    for tid in ids:
        assert rec.completed(tid).success
    rec.wait_for(lambda ev: any(e.type == "sessioneventscompleted" for e in ev), 15)
    time.sleep(0.5)  # a second announcement would come right after the first
    names = [e.type for e in rec.events]
    assert names.count("sessioneventscompleted") == 1, names
    assert names.index("sessioneventscompleted") > max(
        i for i, name in enumerate(names) if name == "sessioncompleted"
    )
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)
