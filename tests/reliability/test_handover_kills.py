"""The background hand-over's promise, its last clause: a host alive while the transfer process
is SIGKILLed before its commit hands the tasks over again, with the same identifiers, and each is
journaled and run once (the other clauses are in test_handover.py; this one has a file of its own
so that the two long kill loops run on different workers).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import urlsession_module as URLSession
from tests._processes import pid_alive, recorded_transfer_pid
from tests.reliability.test_handover import RUNS, SIZE, TASKS, _journaled, _urls
from tests.reliability.test_handover import origin as origin  # the fixture
from tests.with_server.conftest import transfer as transfer  # the fixture
from tests.with_server.test_background import Transfer
from urlsession_module.testing import LocalServer, content_sha256


def test_transfer_process_killed_before_its_commit_gets_every_task_again(
    origin: LocalServer, state_home: Path, transfer: Transfer, recorder: Any, figures: Any
) -> None:
    """20 times: the transfer process is SIGKILLed at a random moment of a hand-over loop; the
    host hands the unjournaled tasks over again with the same identifiers: each is journaled
    once, completes once, and its file is right (SHA-256)."""
    rng = random.Random(4242)
    killed: list[int] = []
    cfg = URLSession.createSessionConfiguration({"identifier": "com.test.daemonkill"})
    rec = recorder(URLSession)
    session = URLSession.createSession({"configuration": cfg})
    ids: list[str] = []
    try:
        for run in range(RUNS):
            pid = transfer.pid()
            delay = rng.uniform(0.0, 0.01)

            def kill(pid: int = pid, delay: float = delay) -> None:
                time.sleep(delay)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

            killer = threading.Thread(target=kill)
            killer.start()
            ids += [session.downloadTask({"url": url}) for url in _urls(origin, run, TASKS * 2)]
            killer.join()
            session.flush()  # every task handed so far is durable: in the new process's journal
            assert set(ids) <= set(_journaled(state_home, "com.test.daemonkill"))
        for tid in ids:
            done = rec.completed(tid, 60)
            assert done.success and done.statusCode == 200, (tid, done.errorCode, done.message)
        assert session.waitForTasks(60)
        digest = content_sha256(SIZE)
        for tid in ids:
            assert len(rec.of(tid, "sessioncompleted")) == 1, tid
            files = rec.of(tid, "downloadcompleted")
            assert len(files) == 1, tid
            assert hashlib.sha256(files[0].data.read()).hexdigest() == digest, tid
        journaled = _journaled(state_home, "com.test.daemonkill")
        assert sorted(journaled) == sorted(ids)  # the same identifiers, none twice, none new
        assert len(killed) == RUNS and all(not pid_alive(p) for p in killed)
        figures("transfer processes SIGKILLed during a hand-over", len(killed))
    finally:
        session.invalidateAndCancel()
        session.waitForInvalidation(10)
        pid_now = recorded_transfer_pid(state_home)
        if pid_now is not None:
            transfer.pids.add(pid_now)
