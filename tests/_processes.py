"""Helpers for tests that run the package's programs as subprocesses (CLI, examples)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from urlsession_module._background._client import TransferClient
from urlsession_module._background._wire import Shutdown
from urlsession_module.exceptions import URLSessionError


def subprocess_env(home: Path) -> dict[str, str]:
    """The test's state directory, and a transfer process that leaves one second after its work."""
    env = dict(os.environ)
    env["URLSESSION_HOME"] = str(home)
    env["URLSESSION_TRANSFER_IDLE"] = "1"
    env.pop("COLUMNS", None)
    return env


def recorded_transfer_pid(home: Path) -> int | None:
    """The pid in ``home``'s pid file, alive or not (a killed process leaves it behind)."""
    try:
        return int((home / "transfer.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def transfer_pid(home: Path) -> int | None:
    """The live transfer process of ``home``, or None."""
    pid = recorded_transfer_pid(home)
    return pid if pid is not None and pid_alive(pid) else None


def stop_transfer_process(home: Path, timeout: float = 10.0) -> int | None:
    """Ask the transfer process a test caused to leave; kill it (by pid) if it does not.

    Returns the pid that had to be killed, or None when it left by itself.
    """
    if (home / "transfer.sock").exists():
        with (
            contextlib.suppress(OSError, URLSessionError),
            TransferClient.one_shot(home) as client,
        ):
            client.request(Shutdown(), 10.0)
    deadline = time.monotonic() + timeout
    while (pid := transfer_pid(home)) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    return pid
