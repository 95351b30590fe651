"""Fixtures the background tests share: the test's own transfer process, ended for real."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._processes import pid_alive, recorded_transfer_pid
from tests.with_server.test_background import Transfer, _wait
from urlsession_module._background._client import TransferClient


@pytest.fixture
def transfer(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Transfer]:
    """The test's transfer process: SIGKILLed at the end if still alive, and awaited."""
    monkeypatch.setenv("URLSESSION_TRANSFER_IDLE", "3")
    t = Transfer(state_home)
    yield t
    # A session the test left open would see the kill below as a lost transfer process and
    # start another one from its reader thread, which then outlives the test (and a later
    # file's "no session thread is left" check): hang up this process's clients first.
    for client in list(TransferClient._instances.values()):
        client.close()
    pid = recorded_transfer_pid(state_home)
    if pid is not None:
        t.pids.add(pid)
    for pid in t.pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    for pid in t.pids:
        _wait(lambda pid=pid: not pid_alive(pid), 10, f"process {pid} to end")
