"""`urlsession run`: the example app end to end (a background session in a real transfer
process), jasmine specs, and bad input, each as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from urlsession_module.testing import LocalServer

from .conftest import ROOT, SCRIPTS, run_cli

APP = ROOT / "example" / "titanium" / "app.js"


def _maps(server: LocalServer) -> list[str]:
    return [
        "--url-map",
        f"https://photos.example.com/={server.url('/bytes/300000')}?from=",
        "--url-map",
        f"https://api.example.com/={server.url('/')}",
    ]


def test_the_example_app_downloads_in_the_background_and_saves_the_photos(
    server: LocalServer, no_transfer_left: Path
) -> None:
    """Click and background fetch: two background downloads saved through Ti.Filesystem, the
    pending list in Ti.App.Properties emptied, the data task answered; nothing else left."""
    home = no_transfer_left
    run = run_cli(
        [
            "run",
            str(APP),
            *_maps(server),
            "--click",
            "Download photo",
            "--background-fetch",
            "--timeout",
            "60",
        ],
        home,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert "[INFO] api answered 200: POST /echo" in lines
    assert "[INFO] download bg1 started" in lines
    assert "[INFO] task bg1 completed, success: true" in lines
    assert "[INFO] task bg2 completed, success: true" in lines
    assert [line for line in lines if line.startswith("[INFO] list: ")][-1] == (
        "[INFO] list: 0 pending, 2 saved"
    )
    assert any(line.startswith("[INFO] [local notification] ") for line in lines)
    props = json.loads((home / "js" / "app" / "properties.json").read_text())
    assert props == {"photo.pending": []}
    saved = sorted((home / "js" / "app" / "data").glob("photo-*.png"))
    assert [p.stat().st_size for p in saved] == [300000, 300000]
    assert not [p for p in (home / "downloads").rglob("*") if p.is_file()]


def test_a_jasmine_spec_runs_against_the_module(
    server: LocalServer, jasmine_core: Path, state_home: Path
) -> None:
    """describe/it/expect from jasmine-core, async specs with done, real tasks: exit 0."""
    run = run_cli(
        [
            "run",
            str(SCRIPTS / "module.spec.js"),
            "--jasmine",
            str(jasmine_core),
            "--url-map",
            f"https://spec.test/={server.url('/')}",
            "--timeout",
            "60",
        ],
        state_home,
    )
    assert run.returncode == 0, run.stderr
    assert "[INFO] jasmine: 11 passed, 0 failed (passed)" in run.stderr.splitlines()
    assert "passed com.appcelerator.urlSession Session hands a download over as a Blob" in (
        run.stderr
    )


def test_a_failing_spec_fails_the_run(jasmine_core: Path, state_home: Path) -> None:
    """The failed expectation is printed with where it is; exit 1."""
    run = run_cli(
        ["run", str(SCRIPTS / "failing.spec.js"), "--jasmine", str(jasmine_core)], state_home
    )
    assert run.returncode == 1
    assert "Expected 'com.appcelerator.urlSession' to be 'ti.urlsession'." in run.stderr
    assert "failing.spec.js:6:" in run.stderr
    assert "[INFO] jasmine: 1 passed, 1 failed (failed)" in run.stderr


def test_a_script_that_does_not_parse_exits_1_with_line_and_column(
    tmp_path: Path, state_home: Path
) -> None:
    """Nothing runs; the message is file:line:column."""
    script = tmp_path / "broken.js"
    script.write_text("Ti.API.info('never');\nfunction (\n")
    run = run_cli(["run", str(script)], state_home)
    assert run.returncode == 1
    assert f"urlsession run: SyntaxError: {script}:2:10: SyntaxError:" in run.stderr
    assert "never" not in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.js"], "no such script: missing.js"),
        (["run", "x.js", "--url-map", "nothing"], "must be FROM=TO"),
        (["run", "x.js", "--timeout", "0"], "must be a number of seconds > 0"),
    ],
)
def test_bad_command_lines_exit_2(
    args: list[str], message: str, state_home: Path, tmp_path: Path
) -> None:
    """A missing script or a bad option: one line naming it, exit 2."""
    run = run_cli(args, state_home)
    assert run.returncode == 2
    assert message in run.stderr


def test_a_missing_jasmine_core_is_named(tmp_path: Path, state_home: Path) -> None:
    """--jasmine DIR without jasmine-core in it: exit 2 and how to get it."""
    script = tmp_path / "spec.js"
    script.write_text("describe('x', () => {});\n")
    run = run_cli(["run", str(script), "--jasmine", str(tmp_path)], state_home)
    assert run.returncode == 2
    assert f"no jasmine-core in {tmp_path}" in run.stderr
    assert "npm install --prefix DIR jasmine-core" in run.stderr


def test_a_script_stuck_in_a_busy_loop_is_ended_after_the_timeout(
    tmp_path: Path, state_home: Path
) -> None:
    """A loop that never yields holds the interpreter: the watchdog ends the run, exit 1."""
    script = tmp_path / "busy.js"
    script.write_text("Ti.API.info('spinning');\nwhile (true) {}\n")
    run = run_cli(["run", str(script), "--timeout", "1"], state_home, timeout=60)
    assert run.returncode == 1
    assert run.stderr.startswith("[INFO] spinning\nTimeout (0:00:03)!")
