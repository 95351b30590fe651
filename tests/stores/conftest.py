"""Fixtures of the store tests: a second origin, a host in another process, the transfer process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._processes import pid_alive, recorded_transfer_pid
from urlsession_module.testing import LocalServer

from ._util import HOST_SCRIPT


@pytest.fixture(scope="module")
def other_server() -> Iterator[LocalServer]:
    """A second server on 127.0.0.1: another port, so another origin (cookies ignore ports)."""
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def other_process(state_home: Path) -> Callable[..., list[dict[str, Any]]]:
    """Run GET data tasks from a session of another process sharing the state directory."""

    def run(*urls: str, **config: Any) -> list[dict[str, Any]]:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(HOST_SCRIPT), json.dumps(config), *urls],
            capture_output=True,
            text=True,
            timeout=90,
            env=dict(os.environ, URLSESSION_HOME=str(state_home)),
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        result: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    return run


@pytest.fixture
def transfer_process(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test start the background transfer process; whatever it started is gone after."""
    monkeypatch.setenv("URLSESSION_TRANSFER_IDLE", "3")
    yield
    pid = recorded_transfer_pid(state_home)
    if pid is not None and pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
