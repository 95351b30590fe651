"""``status``, ``cancel`` and ``get --background`` against a real transfer process."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from urlsession_module.testing import LocalServer, content_sha256

from .._processes import stop_transfer_process
from .conftest import Result


@pytest.fixture
def transfer_home(state_home: Path) -> Iterator[Path]:
    """The state directory; the transfer process the test caused must be gone at the end."""
    yield state_home
    killed = stop_transfer_process(state_home)
    assert killed is None, f"the transfer process {killed} did not leave when asked"


def test_status_without_a_transfer_process(cli: Callable[..., Result], state_home: Path) -> None:
    """`status` with no transfer process and no journal says so and exits 0 (text and JSON)."""
    r = cli("status")
    assert r.code == 0, r
    assert "no transfer process is running" in r.stdout
    r = cli("status", "--json")
    assert r.code == 0, r
    (report,) = r.events
    assert report["running"] is False and report["tasks"] == []
    assert report["stateDir"] == str(state_home)


def test_cancel_without_a_transfer_process_exits_4(cli: Callable[..., Result]) -> None:
    """`cancel ID` with no transfer process running exits 4 and says why."""
    r = cli("cancel", "bg1")
    assert r.code == 4, r
    assert "no transfer process is running" in r.stderr


def test_background_get_then_status_from_the_journal(
    cli: Callable[..., Result], server: LocalServer, workdir: Path, transfer_home: Path
) -> None:
    """`get --background` downloads through the transfer process; `status --all` lists it after."""
    r = cli("get", "--background", "cli.test", server.url("/bytes/300000"), "-o", "f", "-q")
    assert r.code == 0, r
    assert hashlib.sha256((workdir / "f").read_bytes()).hexdigest() == content_sha256(300000)
    r = cli("status", "--all", "--json")
    assert r.code == 0, r
    (report,) = r.events
    (task,) = report["tasks"]
    assert task["sessionIdentifier"] == "cli.test"
    assert task["kind"] == "download" and task["state"] == "completed"
    assert task["statusCode"] == 200 and task["url"].endswith("/bytes/300000")
    r = cli("status")  # outstanding only: the finished task is not listed
    assert r.code == 0 and "/bytes/300000" not in r.stdout, r


@pytest.mark.timeout(60)  # bounds the blocking readline() below
def test_status_and_cancel_of_a_running_background_task(
    cli: Callable[..., Result],
    cli_popen: Callable[..., subprocess.Popen[str]],
    server: LocalServer,
    transfer_home: Path,
) -> None:
    """`status` shows a running background task with its progress; `cancel ID` ends it with -999."""
    url = server.url("/bytes/40000000?rate=2000000")
    proc = cli_popen("get", "--background", "cli.slow", url, "-o", "slow", "--json")
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert first["type"] == "downloadprogress"
    tid = first["taskIdentifier"]

    r = cli("status", "--json")
    assert r.code == 0, r
    (report,) = r.events
    assert report["running"] is True and report["source"] == "transfer process"
    (task,) = [t for t in report["tasks"] if t["taskIdentifier"] == tid]
    assert task["sessionIdentifier"] == "cli.slow" and task["state"] == "running"
    assert task["countOfBytesReceived"] > 0 and task["countOfBytesExpectedToReceive"] == 40000000
    r = cli("status")
    assert "session cli.slow" in r.stdout and tid in r.stdout and "running" in r.stdout, r

    r = cli("cancel", tid)
    assert r.code == 0, r
    rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1  # the get saw its task end with an error: -999
    completed = [json.loads(x) for x in rest.splitlines() if '"sessioncompleted"' in x]
    assert completed[0]["errorCode"] == -999

    r = cli("cancel", tid)
    assert r.code in (0, 4), r  # already finished, or the idle process has already left
    r = cli("cancel", "no-such-task")
    assert r.code == 4, r
