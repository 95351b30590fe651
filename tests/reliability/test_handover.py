"""The background hand-over's promise (docs/background.md), each clause with real processes.

Once ``downloadTask`` has returned:

- a host SIGKILLed right after the call loses nothing (the kernel holds the message);
- a host that exits normally (end of script, ``sys.exit``, an exception) waits until every task
  it handed over is journaled, and says so plainly, in bounded time, when it cannot;
- a host alive while the transfer process is SIGKILLed before its commit hands the tasks over
  again, with the same identifiers, and each is journaled and run once.

Every download is checked by SHA-256. The kill tests run 20 times each, with small tasks, so
that both fit in about half a minute on two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from tests.with_server.conftest import transfer as transfer  # the fixture
from tests.with_server.test_background import Transfer
from urlsession_module.testing import LocalServer, content_sha256

ROOT = Path(__file__).resolve().parents[2]
RUNS = 20
TASKS = 8
SIZE = 4096


@pytest.fixture(scope="module")
def origin() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


def _urls(origin: LocalServer, run: int, n: int = TASKS) -> list[str]:
    return [origin.url(f"/bytes/{SIZE}?run={run}&n={i}") for i in range(n)]


def _child(home: Path, spec: dict[str, Any], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability._handover_child", json.dumps(spec)],
        cwd=ROOT,
        env={**os.environ, "URLSESSION_HOME": str(home), **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _journaled(home: Path, identifier: str) -> list[str]:
    db = sqlite3.connect(f"file:{home / 'journal.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT id FROM tasks WHERE session = ?", (identifier,)).fetchall()
    finally:
        db.close()
    return [r[0] for r in rows]


def _collect_and_check(identifier: str, ids: list[str], rec: Any) -> None:
    """A later host collects every task: each completed once, its file byte for byte right.

    ``rec`` listens on the module: listeners must be there before the session replays."""
    cfg = URLSession.createSessionConfiguration({"identifier": identifier})
    session = URLSession.createSession({"configuration": cfg})
    try:
        for tid in ids:
            done = rec.completed(tid, 60)
            assert done.success and done.statusCode == 200, (tid, done.errorCode, done.message)
        assert session.waitForTasks(60)
        digest = content_sha256(SIZE)
        for tid in ids:
            files = rec.of(tid, "downloadcompleted")
            assert len(files) == 1, tid
            assert hashlib.sha256(files[0].data.read()).hexdigest() == digest, tid
            assert len(rec.of(tid, "sessioncompleted")) == 1, tid
    finally:
        session.finishTasksAndInvalidate()
        assert session.waitForInvalidation(10)


def test_a_host_killed_right_after_its_calls_loses_nothing(
    origin: LocalServer, state_home: Path, transfer: Transfer, recorder: Any, figures: Any
) -> None:
    """20 hosts SIGKILL themselves right after a random call returned: every task whose
    identifier was returned is journaled, runs, and its file is right (SHA-256)."""
    rng = random.Random(1717)
    rec = recorder(URLSession)
    handed = 0
    for run in range(RUNS):
        identifier = f"com.test.hostkill.{run}"
        kill_after = rng.randint(1, TASKS)
        spec = {
            "identifier": identifier,
            "urls": _urls(origin, run),
            "end": "kill",
            "kill_after": kill_after,
        }
        child = _child(state_home, spec)
        out, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, err[-2000:]
        ids = out.split()
        assert len(ids) == kill_after, (out, err[-2000:])
        handed += len(ids)
        _collect_and_check(identifier, ids, rec)
        assert sorted(_journaled(state_home, identifier)) == sorted(ids)
    figures("tasks handed over by hosts SIGKILLed right after", handed)


@pytest.mark.parametrize("end", ["return", "exit", "raise"])
def test_a_host_that_exits_waits_until_every_task_is_journaled(
    origin: LocalServer, state_home: Path, transfer: Transfer, end: str
) -> None:
    """The end of the script, sys.exit or an uncaught exception: when the process has gone,
    every task it handed over is already in the journal (the exit hook waited for it)."""
    identifier = f"com.test.exit.{end}"
    n = 400  # more than the transfer process journals in the time the host takes to leave
    spec = {"identifier": identifier, "urls": _urls(origin, 0, n), "end": end}
    child = _child(state_home, spec)
    out, err = child.communicate(timeout=120)
    assert child.returncode == (1 if end == "raise" else 0), err[-2000:]
    ids = out.split()
    assert len(ids) == n
    assert sorted(_journaled(state_home, identifier)) == sorted(ids)
    assert "not journaled" not in err


def test_exit_is_bounded_and_says_so_when_the_transfer_process_does_not_answer(
    origin: LocalServer, state_home: Path, transfer: Transfer
) -> None:
    """A transfer process that stops answering (SIGSTOP) holds the host's exit for the bound
    only, with a message naming the tasks; the kernel kept them, so they are journaled once the
    process runs again."""
    identifier = "com.test.exit.stopped"
    URLSession.createSession(
        {"configuration": URLSession.createSessionConfiguration({"identifier": "com.test.warm"})}
    ).invalidateAndCancel()  # the transfer process runs before the child attaches
    pid = transfer.pid()
    spec = {"identifier": identifier, "urls": _urls(origin, 0, 5), "end": "return", "stop": True}
    child = _child(state_home, spec, URLSESSION_EXIT_WAIT="1")
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "attached"
    os.kill(pid, signal.SIGSTOP)
    try:
        child.stdin.write("go\n")
        child.stdin.flush()
        started = time.monotonic()
        out, err = child.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    ids = out.split()
    assert child.returncode == 0 and len(ids) == 5, err[-2000:]
    assert elapsed < 15
    assert "were not journaled within 1 s" in err and ids[0] in err
    deadline = time.monotonic() + 20
    while sorted(_journaled(state_home, identifier)) != sorted(ids):
        assert time.monotonic() < deadline, "the kernel's copy was not journaled"
        time.sleep(0.05)
