"""Helpers for the command-line tests: run ``python -m urlsession_module`` as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .._processes import subprocess_env as cli_env

CLI_TIMEOUT = 60.0


class Result:
    """A finished CLI run: exit code, stdout, stderr, and stdout parsed as JSON lines."""

    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.code = proc.returncode
        self.stdout_bytes = proc.stdout
        self.stdout = proc.stdout.decode("utf-8", errors="replace")
        self.stderr = proc.stderr.decode("utf-8", errors="replace")

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    def __repr__(self) -> str:
        return f"<Result {self.code} stdout={self.stdout[-500:]!r} stderr={self.stderr[-800:]!r}>"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The folder the CLI runs in (where ``get`` without ``-o`` saves)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def cli(workdir: Path, state_home: Path) -> Callable[..., Result]:
    """Run the tool to completion in ``workdir`` with the test's state directory."""

    def run(*args: str, timeout: float = CLI_TIMEOUT) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "urlsession_module", *args],
            cwd=workdir,
            env=cli_env(state_home),
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc)

    return run


@pytest.fixture
def cli_popen(workdir: Path, state_home: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start the tool without waiting; whatever is still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "urlsession_module", *args],
            cwd=workdir,
            env=cli_env(state_home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
