"""The command line's rough edges (issue 19: items 14, 18-22, 24, 25): one line, the right code."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from urlsession_module.testing import LocalServer, content_bytes

from .._processes import stop_transfer_process, subprocess_env
from .conftest import Result
from .test_transfers import closed_port


def _one_plain_line(r: Result) -> str:
    """The error of a failed run: one line, no traceback, no Python class names."""
    assert "Traceback" not in r.stderr, r
    assert "Error:" not in r.stderr and "Errno" not in r.stderr, r
    lines = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, r
    return lines[0]


@pytest.fixture
def transfer_home(state_home: Path) -> Iterator[Path]:
    """The state directory; the transfer process the test caused must be gone at the end."""
    yield state_home
    killed = stop_transfer_process(state_home)
    assert killed is None, f"the transfer process {killed} did not leave when asked"


def _run_with_home(home: Path, cwd: Path, *args: str) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "urlsession_module", *args],
        cwd=cwd,
        env=subprocess_env(home),
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc)


# -- 14: no tracebacks ---------------------------------------------------------------------------


def test_a_state_directory_that_is_a_file_is_one_line_and_exit_2(
    server: LocalServer, workdir: Path, tmp_path: Path
) -> None:
    """URLSESSION_HOME naming a file (get) or a path under a file (status): exit 2, one line."""
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a folder")
    r = _run_with_home(a_file, workdir, "get", server.url("/bytes/10"), "-o", "x")
    assert r.code == 2, r
    assert f"URLSESSION_HOME={a_file}" in _one_plain_line(r)
    assert not (workdir / "x").exists()
    r = _run_with_home(a_file / "sub", workdir, "status")
    assert r.code == 2, r
    assert "cannot be used as the state directory" in _one_plain_line(r)


def test_serve_refuses_a_bad_port_and_says_when_one_is_busy(
    cli: Callable[..., Result], server: LocalServer
) -> None:
    """`serve --port -1` is a usage error (2); a port in use is one line with host:port (1)."""
    r = cli("serve", "--port", "-1")
    assert r.code == 2, r
    assert "0 to 65535" in r.stderr and "Traceback" not in r.stderr, r
    busy = server.base_url.rsplit(":", 1)[1]
    r = cli("serve", "--port", busy)
    assert r.code == 1, r
    assert f"127.0.0.1:{busy}" in _one_plain_line(r)


def test_a_nul_in_the_urls_file_name_is_saved_under_a_safe_name(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """`get .../a%00b` saves to `a_b` (a NUL cannot be in a file name) instead of a traceback."""
    r = cli("get", server.url("/bytes/10/a%00b"), "-q")
    assert "Traceback" not in r.stderr, r
    assert r.code == 0, r
    assert (workdir / "a_b").exists()


def test_transfer_errors_are_plain_words_with_host_and_port(
    cli: Callable[..., Result], server: LocalServer
) -> None:
    """A refused connection, a lost one, a refused proxy: host:port and words, no reprs."""
    port = closed_port()
    r = cli("get", f"http://127.0.0.1:{port}/x", "-o", "x")
    assert r.code == 1, r
    line = _one_plain_line(r)
    assert f"127.0.0.1:{port}, connection refused (error -1004)" in line, line
    assert "(host=" not in line and "Connection(" not in line, line
    r = cli("get", server.url("/drop"), "-o", "x")
    assert r.code == 1, r
    assert "(error -1005)" in _one_plain_line(r)
    r = cli("get", server.url("/bytes/10"), "-o", "x", "--proxy", f"http://127.0.0.1:{port}")
    assert r.code == 1, r
    assert f"the proxy 127.0.0.1:{port}, connection refused" in _one_plain_line(r)


@pytest.mark.parametrize(
    ("message", "said"),
    [
        (
            "The request timed out. (timed out)",
            "The request timed out: h:8 (error -1)",
        ),
        (
            "An SSL error has occurred. ([SSL: WRONG_VERSION_NUMBER] wrong version number "
            "(_ssl.c:1006))",
            "An SSL error has occurred: h:8, wrong version number (error -1)",
        ),
        (
            "The network connection was lost. (IncompleteRead(0 bytes read, 5 more expected))",
            "The network connection was lost: h:8, 0 bytes read, 5 more expected (error -1)",
        ),
        ("too many HTTP redirects", "too many HTTP redirects: h:8 (error -1)"),
        ("Bad server response. (('a', Thing(x=1)))", "Bad server response: h:8 (error -1)"),
    ],
)
def test_plain_transfer_error(message: str, said: str) -> None:
    """Foundation's words stay; errno and SSL reasons are kept in words; reprs are dropped."""
    from urlsession_module._cli._common import plain_transfer_error

    assert plain_transfer_error(message, -1, "http://h:8/x") == said


# -- 18, 19, 20: output files ----------------------------------------------------------------------


def test_output_with_a_trailing_slash_must_be_an_existing_folder(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """`-o nodir/` for a folder that does not exist: exit 5 before fetching; no file `nodir`."""
    before = len(server.requests)
    r = cli("get", server.url("/bytes/10"), "-o", "nodir/")
    assert r.code == 5, r
    assert "nodir" in _one_plain_line(r)
    assert not (workdir / "nodir").exists()
    assert len(server.requests) == before
    (workdir / "there").mkdir()
    r = cli("get", server.url("/bytes/10"), "-o", "there/", "-q")
    assert r.code == 0, r
    assert (workdir / "there" / "10").read_bytes() == content_bytes(10)


def test_output_files_follow_the_umask_and_keep_an_existing_mode(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """A new `-o` file gets 0666 & ~umask (not 0600); a replaced file keeps its mode."""
    umask = os.umask(0o022)
    os.umask(umask)
    r = cli("get", server.url("/bytes/10"), "-o", "new.bin", "-q")
    assert r.code == 0, r
    assert stat.S_IMODE((workdir / "new.bin").stat().st_mode) == 0o666 & ~umask
    old = workdir / "existing.txt"
    old.write_text("old")
    old.chmod(0o640)
    r = cli("get", server.url("/bytes/10"), "-o", "existing.txt", "-q")
    assert r.code == 0, r
    assert old.read_bytes() == content_bytes(10)
    assert stat.S_IMODE(old.stat().st_mode) == 0o640


def test_put_checks_its_output_before_uploading(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """`put FILE URL -o /nonexistent/resp.json` exits 5 and sends nothing."""
    (workdir / "up.txt").write_text("hello")
    before = len(server.requests)
    r = cli("put", "up.txt", server.url("/upload"), "-o", str(workdir / "no" / "resp.json"))
    assert r.code == 5, r
    assert "no such folder" in _one_plain_line(r)
    assert len(server.requests) == before


# -- 21, 22, 24: usage errors ------------------------------------------------------------------------


def test_missing_cacert_and_empty_background_are_usage_errors(
    cli: Callable[..., Result], server: LocalServer, tls_server: LocalServer
) -> None:
    """`--cacert /nonexistent.pem` and `--background ''` exit 2 before anything is sent."""
    before = len(tls_server.requests)
    r = cli("get", tls_server.url("/bytes/10"), "-o", "x", "--cacert", "/nonexistent.pem")
    assert r.code == 2, r
    assert "/nonexistent.pem" in r.stderr and "no such file" in r.stderr, r
    assert len(tls_server.requests) == before
    r = cli("get", server.url("/bytes/10"), "-o", "x", "--background", "")
    assert r.code == 2, r
    assert "--background" in r.stderr, r


@pytest.mark.timeout(60)  # bounds the blocking readline() below
def test_background_get_that_cannot_connect_says_it_retries(
    cli: Callable[..., Result],
    cli_popen: Callable[..., subprocess.Popen[str]],
    transfer_home: Path,
) -> None:
    """`get --background ID` to a closed port says the task retries (and how to stop it)."""
    proc = cli_popen("get", "--background", "cli.retry", f"http://127.0.0.1:{closed_port()}/x")
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "retries until --max-time" in line, line
    match = re.search(r"urlsession cancel (\S+)`", line)
    assert match, line
    r = cli("cancel", match.group(1))
    assert r.code == 0, r
    proc.communicate(timeout=20)
    assert proc.returncode == 1


def test_max_time_bounds_a_background_task_that_cannot_connect(
    cli: Callable[..., Result], transfer_home: Path
) -> None:
    """With --max-time the retries of a background task end: exit 1 with the last error."""
    url = f"http://127.0.0.1:{closed_port()}/x"
    r = cli("get", "--background", "cli.bounded", url, "-o", "x", "--max-time", "2")
    assert r.code == 1, r
    assert "error -10" in r.stderr, r


def test_json_usage_error_still_ends_with_the_exit_line(
    cli: Callable[..., Result], server: LocalServer
) -> None:
    """`--json get --badopt URL` (argparse's error) and `--json get ftp://x` end with `exit`."""
    r = cli("--json", "get", "--badopt", server.url("/bytes/10"))
    assert r.code == 2, r
    assert r.events[-1] == {"type": "exit", "code": 2, "reason": "usage"}
    r = cli("get", "ftp://127.0.0.1/x", "--json")
    assert r.code == 2, r
    assert r.events[-1] == {"type": "exit", "code": 2, "reason": "usage"}
    r = cli("get", server.url("/echo"), "-o", "-", "--json")
    assert r.code == 2, r
    assert r.events[-1] == {"type": "exit", "code": 2, "reason": "usage"}


def test_timeout_zero_and_uploading_a_folder_are_told_in_command_line_words(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """`--timeout 0` names the option; `put <folder>` says it is a folder; the path is said once."""
    r = cli("get", server.url("/bytes/10"), "--timeout", "0")
    assert r.code == 2, r
    assert "--timeout" in r.stderr and "timeoutIntervalForRequest" not in r.stderr, r
    (workdir / "folder").mkdir()
    r = cli("put", "folder", server.url("/upload"))
    assert r.code == 2, r
    line = _one_plain_line(r)
    assert "is a folder" in line and line.count("folder") == 2, line
    r = cli("put", "missing.bin", server.url("/upload"))
    assert r.code == 2, r
    line = _one_plain_line(r)
    assert line.count("missing.bin") == 1 and "no such file" in line, line


# -- 25: -o - streams; -v shows the heads ------------------------------------------------------


@pytest.mark.timeout(60)
def test_stdout_streams_and_a_closed_pipe_ends_quietly(
    cli_popen: Callable[..., subprocess.Popen[str]], server: LocalServer
) -> None:
    """`-o -` writes the first bytes long before the body ends; a reader that leaves: exit 0."""
    # 20 MB at 2 MB/s: ten seconds of body, so a first byte within seven means streaming
    # (the rest is the interpreter's start on a busy machine).
    proc = cli_popen("get", server.url("/bytes/20000000?rate=2000000"), "-o", "-")
    assert proc.stdout is not None and proc.stderr is not None
    started = time.monotonic()
    first = os.read(proc.stdout.fileno(), 10)
    assert first == content_bytes(20000000)[: len(first)] and first
    assert time.monotonic() - started < 7.0
    proc.stdout.close()  # as `| head -c 10` does
    err = proc.stderr.read()
    assert proc.wait(timeout=20) == 0, err
    assert "error" not in err and "Broken pipe" not in err, err


def test_stdout_stream_is_whole_and_fail_writes_nothing(
    cli: Callable[..., Result], server: LocalServer
) -> None:
    """`-o -` gives the exact body; with --fail a 404 body never reaches stdout."""
    r = cli("get", server.url("/bytes/3000000"), "-o", "-", "-q")
    assert r.code == 0, r
    assert r.stdout_bytes == content_bytes(3000000)
    r = cli("get", server.url("/status/404"), "-o", "-", "--fail")
    assert r.code == 3, r
    assert r.stdout_bytes == b""


def test_verbose_shows_the_request_and_response_heads(
    cli: Callable[..., Result], server: LocalServer
) -> None:
    """`get -v` adds the request's and the response's heads on stderr, as curl -v."""
    r = cli("get", server.url("/bytes/10"), "-o", "x", "-v", "-H", "X-Probe: 1")
    assert r.code == 0, r
    assert f"> GET {server.url('/bytes/10')}" in r.stderr, r
    assert "> X-Probe: 1" in r.stderr, r
    assert "< 200 " in r.stderr and "< Content-Length: 10" in r.stderr, r
    r = cli("get", server.url("/bytes/10"), "-o", "y")
    assert "> GET" not in r.stderr, r
    r = cli("get", server.url("/bytes/10"), "-o", "z", "-v", "-H", "Authorization: Bearer s3cret")
    assert "> Authorization: Bearer (hidden)" in r.stderr and "s3cret" not in r.stderr, r
    r = cli("get", f"http://127.0.0.1:{closed_port()}/x", "-o", "z", "-v")
    assert "> GET" in r.stderr and "< (no response)" in r.stderr, r


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_that_cannot_be_written_exits_5(
    server: LocalServer, workdir: Path, state_home: Path
) -> None:
    """`-o -` into a full disk (/dev/full): one line, exit 5, not a listener traceback."""
    url = server.url("/bytes/1000000")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "urlsession_module", "get", url, "-o", "-"],
            cwd=workdir,
            env=subprocess_env(state_home),
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    err = proc.stderr.decode()
    assert proc.returncode == 5, err
    assert "Traceback" not in err and "no space left on device" in err, err
