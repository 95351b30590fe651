"""Fixtures the background tests share: the test's own transfer process, ended for real."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._processes import pid_alive, recorded_transfer_pid
from tests.with_server.test_background import Transfer, _wait


@pytest.fixture
def transfer(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Transfer]:
    """The test's transfer process: SIGKILLed at the end if still alive, and awaited."""
    monkeypatch.setenv("URLSESSION_TRANSFER_IDLE", "3")
    t = Transfer(state_home)
    yield t
    pid = recorded_transfer_pid(state_home)
    if pid is not None:
        t.pids.add(pid)
    for pid in t.pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    for pid in t.pids:
        _wait(lambda pid=pid: not pid_alive(pid), 10, f"process {pid} to end")
