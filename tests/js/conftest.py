"""Fixtures for the JavaScript host's tests: scripts run in-process or by `urlsession run`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._processes import stop_transfer_process, subprocess_env, transfer_pid
from urlsession_module.js import JSHost, RunResult

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
JASMINE_CORE = "jasmine-core@5.13.0"  # pinned: the spec runner boots this version's API


class Ran:
    """One in-process run: its result and what Ti.API wrote."""

    def __init__(self, result: RunResult, output: str) -> None:
        self.result = result
        self.output = output
        self.lines = output.splitlines()

    @property
    def info(self) -> list[str]:
        return [line.removeprefix("[INFO] ") for line in self.lines if line.startswith("[INFO] ")]


RunJS = Callable[..., Ran]


@pytest.fixture
def run_js(tmp_path: Path) -> RunJS:
    """Run JavaScript source (or a file) in this process; Ti.API output captured."""

    def run(source: str, **options: Any) -> Ran:
        stream = io.StringIO()
        options.setdefault("timeout", 30)
        host = JSHost(stream=stream, **options)
        script = tmp_path / "app.js"
        script.write_text(source)
        result = host.run_file(script)
        return Ran(result, stream.getvalue())

    return run


@pytest.fixture
def no_transfer_left(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A background session's transfer process is real: it must be gone when the test ends."""
    monkeypatch.setenv("URLSESSION_TRANSFER_IDLE", "1")
    yield state_home
    killed = stop_transfer_process(state_home)
    assert transfer_pid(state_home) is None
    assert killed is None, f"the transfer process {killed} had to be killed"


def run_cli(args: list[str], home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`urlsession ARGS` in a subprocess with the test's state directory."""
    return subprocess.run(
        [sys.executable, "-m", "urlsession_module", *args],
        env=subprocess_env(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def jasmine_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jasmine-core from npm: $URLSESSION_JASMINE_CORE (CI installs it once), else installed
    here with npm (the registry is reachable where the tests run)."""
    given = os.environ.get("URLSESSION_JASMINE_CORE")
    if given:
        return Path(given)
    prefix = tmp_path_factory.mktemp("jasmine")
    subprocess.run(
        ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", JASMINE_CORE],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return prefix
