"""The progress displays, and the commands that show no transfer (``serve``, ``--help``)."""

from __future__ import annotations

import http.client
import io
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from urlsession_module._cli._display import BarDisplay, LineDisplay, NullDisplay, make_display

from .conftest import Result, cli_env


def test_bars_show_size_speed_and_eta_on_a_terminal() -> None:
    """On a terminal, a transfer is a live bar with percent, size, speed and ETA, then a summary."""
    buf = io.StringIO()
    display = BarDisplay(Console(file=buf, force_terminal=True, width=120))
    display.add("t1", "GET big.bin")
    for done in range(0, 8_000_001, 1_000_000):
        display.update("t1", done, 8_000_000)
    display._progress.refresh()  # what the 10 Hz refresh would draw
    display.finish("t1", True, "saved to big.bin")
    display.close()
    text = buf.getvalue()
    assert "GET big.bin" in text and "8.0 MB" in text and "B/s" in text
    assert "✓" in text and "saved to big.bin" in text


def test_plain_lines_when_stderr_is_not_a_terminal() -> None:
    """Without a terminal: periodic plain lines (percent, size, speed, ETA) and a summary line."""
    buf = io.StringIO()
    display = LineDisplay(buf, interval=0.0)
    display.add("t1", "GET x")
    display.update("t1", 250, 1000)
    display.update("t1", 600, -1)
    display.finish("t1", False)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("GET x:  25% 250 bytes of 1.0 kB") and "ETA" in lines[0]
    assert lines[1].startswith("GET x: 600 bytes,")
    assert lines[2] == "GET x: failed after 600 bytes"
    assert "\r" not in buf.getvalue() and "\x1b" not in buf.getvalue()


def test_quiet_and_json_show_nothing() -> None:
    """--quiet and --json choose the display that shows nothing."""
    console = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(make_display(True, False, console), NullDisplay)
    assert isinstance(make_display(False, True, console), NullDisplay)
    assert isinstance(make_display(False, False, None), LineDisplay)
    assert isinstance(make_display(False, False, console), BarDisplay)


def test_help_documents_the_exit_codes(cli: Callable[..., Result]) -> None:
    """`--help` lists every command and the exit codes."""
    r = cli("--help")
    assert r.code == 0
    for word in ("get", "put", "post", "status", "cancel", "serve", "demo", "130"):
        assert word in r.stdout
    r = cli("frobnicate")
    assert r.code == 2


def test_serve_runs_the_local_server_until_ctrl_c(workdir: Path, state_home: Path) -> None:
    """`serve --port 0` prints its URL, answers on 127.0.0.1, and stops cleanly on SIGINT."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "urlsession_module", "serve", "--port", "0"],
        cwd=workdir,
        env=cli_env(state_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        try:  # straight to 127.0.0.1, whatever proxy the environment names
            conn.request("GET", "/bytes/10")
            resp = conn.getresponse()
            assert resp.status == 200 and len(resp.read()) == 10
        finally:
            conn.close()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
