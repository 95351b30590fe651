"""Every program in ``example/`` runs as is, as a subprocess, and says what it should."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from urlsession_module.testing import content_bytes

from .._processes import stop_transfer_process, subprocess_env

EXAMPLES = Path(__file__).resolve().parents[2] / "example"
TIMEOUT = 60.0


@pytest.fixture
def run_example(
    state_home: Path, tmp_path: Path
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Run ``example/NAME`` with the test's state directory; stop any transfer process after."""

    def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(EXAMPLES / name), *args],
            cwd=tmp_path,
            env=subprocess_env(state_home),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

    yield run
    killed = stop_transfer_process(state_home)
    assert killed is None, f"the transfer process {killed} did not leave when asked"


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stdout


def test_app_port_of_titaniums_example(
    run_example: Callable[..., subprocess.CompletedProcess[str]], state_home: Path
) -> None:
    """app.py (app.js ported): three downloads, progress in percent, files saved, list emptied."""
    out = _ok(run_example("app.py"))
    ids = re.findall(r"Downloading with Task ID (\S+) \.\.\.", out)
    assert len(set(ids)) == 3
    for task_id in set(ids):
        assert f"Completed : 100% of task number :{task_id}" in out
        assert f"Download task :{task_id} completed, success: True" in out
    assert "sessioneventscompleted Event Fired" in out
    assert out.rstrip().splitlines()[-8:].count("     No pending Downloads") == 1
    saved = sorted((state_home / "example-app").glob("downloadedfile*.png"))
    assert sorted(p.stat().st_size for p in saved) == [1_000_000, 2_000_000, 3_000_000]
    smallest = min(saved, key=lambda p: p.stat().st_size)
    assert smallest.read_bytes() == content_bytes(1_000_000)


def test_asyncio_example(run_example: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """asyncio_example.py: three concurrent tasks awaited on the loop, all checked."""
    out = _ok(run_example("asyncio_example.py"))
    assert "sha256 ok: True" in out
    assert 'POST /echo: HTTP 200, server saw {"hello": "asyncio"}' in out
    assert "PUT /upload: HTTP 200, 19000 bytes, ok: True" in out
    assert out.count("sessioncompleted") == 3


def test_host_loop_example(run_example: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """host_loop_example.py: the host drains the EventQueue from its frame loop."""
    out = _ok(run_example("host_loop_example.py"))
    assert re.search(r"frame +\d+: task \S+ completed, HTTP 200", out)
    assert "reset: {'completed': True}" in out
    assert re.search(r"2 task\(s\) done in \d+ frames: ok", out)


def test_background_example_finishes_after_exit_and_is_collected(
    run_example: Callable[..., subprocess.CompletedProcess[str]],
    state_home: Path,
    tmp_path: Path,
) -> None:
    """background_example.py: `start` exits while the download runs; `collect` gets it later."""
    out = _ok(run_example("background_example.py", "start"))
    task_id = re.search(r"started background download (\S+)", out)
    assert task_id is not None
    props = json.loads((state_home / "background-example.json").read_text())
    server_pid = props["server"]["pid"]

    def task_state() -> str | None:
        status = subprocess.run(
            [sys.executable, "-m", "urlsession_module", "status", "--all", "--json"],
            env=subprocess_env(state_home),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        for task in json.loads(status.stdout)["tasks"]:
            if task["taskIdentifier"] == task_id.group(1):
                return str(task["state"])
        return None

    assert task_state() == "running"  # the script has exited; its download goes on
    deadline = time.monotonic() + 30
    while task_state() != "completed":  # ... and finishes with no host at all
        assert time.monotonic() < deadline, "the background download did not finish"
        time.sleep(0.2)

    out = _ok(run_example("background_example.py", "collect"))
    lines = out.splitlines()
    assert lines[0].startswith("backgroundtransfer: session com.example.background-download")
    assert f"downloadcompleted {task_id.group(1)}: saved" in out and "(sha256 OK)" in out
    assert f"sessioncompleted {task_id.group(1)}: success=True HTTP 200" in out
    assert "sessioneventscompleted: com.example.background-download" in out
    assert lines[-1] == "all downloads collected"
    assert not (state_home / "background-example.json").exists()
    deadline = time.monotonic() + 10  # collect stopped the server that start launched
    while Path(f"/proc/{server_pid}").exists() and _not_zombie(server_pid):
        assert time.monotonic() < deadline, "the example's server is still running"
        time.sleep(0.05)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
