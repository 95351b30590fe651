"""``get``, ``put``/``post`` and ``demo`` end to end: the CLI as a subprocess, the local server."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from urlsession_module.testing import LocalServer, content_bytes, content_sha256

from .conftest import Result

SIZE = 3 * (1 << 20) + 12345  # not a multiple of the block size


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_get_writes_the_file_with_the_servers_digest(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """`get URL -o FILE` saves exactly the served bytes (SHA-256 against content_sha256)."""
    r = cli("get", server.url(f"/bytes/{SIZE}"), "-o", "out.bin")
    assert r.code == 0, r
    assert file_sha256(workdir / "out.bin") == content_sha256(SIZE)
    assert "saved to out.bin" in r.stderr  # the plain summary line: stderr is not a terminal
    assert r.stdout == ""


def test_get_without_output_uses_the_urls_file_name(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """Without -o the file is named after the URL's last path segment, in the current folder."""
    r = cli("get", server.url("/bytes/1000"), "-q")
    assert r.code == 0, r
    assert (workdir / "1000").read_bytes() == content_bytes(1000)
    assert r.stderr == ""  # --quiet: no progress, no summary


def test_get_to_stdout(cli: Callable[..., Result], server: LocalServer) -> None:
    """`-o -` writes the body to stdout."""
    r = cli("get", server.url("/bytes/5000"), "-o", "-", "-q")
    assert r.code == 0, r
    assert r.stdout_bytes == content_bytes(5000)


def test_get_json_is_one_event_per_line(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """--json prints every event as one JSON object per line, in order, then saved and exit."""
    r = cli("get", server.url(f"/bytes/{SIZE}"), "-o", "out.bin", "--json")
    assert r.code == 0, r
    events = r.events
    types = [e["type"] for e in events]
    progress = [e for e in events if e["type"] == "downloadprogress"]
    assert progress and types[: len(progress)] == ["downloadprogress"] * len(progress)
    assert types[len(progress) :] == ["downloadcompleted", "sessioncompleted", "saved", "exit"]
    ids = {e["taskIdentifier"] for e in events if "taskIdentifier" in e}
    assert len(ids) == 1
    totals = [e["totalBytesWritten"] for e in progress]
    assert totals == sorted(totals) and totals[-1] == SIZE
    assert sum(e["bytesWritten"] for e in progress) == SIZE
    assert all(e["totalBytesExpectedToWrite"] == SIZE for e in progress)
    done = events[len(progress)]
    assert done["data"]["length"] == SIZE
    completed = events[len(progress) + 1]
    # issue 16: the task's metrics ride along, as JSON
    metrics = completed.pop("metrics")
    assert metrics["transactionMetrics"][0]["countOfResponseBodyBytesReceived"] == SIZE
    assert completed == {
        "type": "sessioncompleted",
        "taskIdentifier": completed["taskIdentifier"],
        "success": True,
        "errorCode": 0,
        "message": "",
        "statusCode": 200,
        "networkProtocolName": "http/1.1",
    }
    assert events[-1] == {"type": "exit", "code": 0, "reason": "ok"}
    assert file_sha256(workdir / "out.bin") == content_sha256(SIZE)
    assert "saved to" not in r.stderr  # --json: nothing for people on stderr either


def test_connection_refused_exits_1(cli: Callable[..., Result]) -> None:
    """A refused connection is a transfer error: exit 1, the -1004 on stderr and in --json."""
    url = f"http://127.0.0.1:{closed_port()}/x"
    r = cli("get", url, "-o", "x")
    assert r.code == 1, r
    assert "error -1004" in r.stderr
    r = cli("get", url, "-o", "x", "--json")
    assert r.code == 1, r
    completed = [e for e in r.events if e["type"] == "sessioncompleted"]
    assert completed[0]["success"] is False and completed[0]["errorCode"] == -1004
    assert r.events[-1] == {"type": "exit", "code": 1, "reason": "transfer_error"}


def test_http_error_status_with_and_without_fail(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """A 404 saves the body and exits 0 (as curl); with --fail it exits 3 and writes nothing."""
    r = cli("get", server.url("/status/404"), "-o", "a", "--fail")
    assert r.code == 3, r
    assert "HTTP 404" in r.stderr
    assert not (workdir / "a").exists()
    r = cli("get", server.url("/status/404"), "-o", "b")
    assert r.code == 0, r
    assert (workdir / "b").exists()


def test_usage_errors_exit_2(cli: Callable[..., Result], server: LocalServer) -> None:
    """A bad URL, a bad header or a missing upload file is a usage error: exit 2."""
    r = cli("get", "ftp://127.0.0.1/x")
    assert r.code == 2 and "'url'" in r.stderr, r
    r = cli("get", server.url("/echo"), "-H", "no colon")
    assert r.code == 2 and "not a header" in r.stderr, r
    r = cli("put", "does-not-exist.bin", server.url("/upload"))
    assert r.code == 2 and "does-not-exist.bin" in r.stderr, r
    r = cli("get", server.url("/echo"), "-o", "-", "--json")
    assert r.code == 2, r


def test_unwritable_output_exits_5(cli: Callable[..., Result], server: LocalServer) -> None:
    """An output folder that does not exist is refused before anything is fetched: exit 5."""
    before = len(server.requests)
    r = cli("get", server.url("/bytes/10"), "-o", "no/such/dir/file")
    assert r.code == 5, r
    assert len(server.requests) == before


def test_put_and_post_stream_a_file(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """`put FILE URL` / `post FILE URL` upload the file and print the server's answer."""
    data = content_bytes(SIZE)
    (workdir / "up.bin").write_bytes(data)
    for command, method in (("put", "PUT"), ("post", "POST")):
        r = cli(command, "up.bin", server.url("/upload"))
        assert r.code == 0, r
        answer = json.loads(r.stdout)
        assert answer["method"] == method
        assert answer["body_length"] == SIZE
        assert answer["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_put_json_reports_upload_progress(
    cli: Callable[..., Result], server: LocalServer, workdir: Path
) -> None:
    """`put --json` streams uploadprogress events, then sessioncompleted with responseText."""
    (workdir / "up.bin").write_bytes(content_bytes(SIZE))
    r = cli("put", "up.bin", server.url("/upload"), "--json", "-H", "X-Test: 1")
    assert r.code == 0, r
    progress = [e for e in r.events if e["type"] == "uploadprogress"]
    assert progress[-1]["totalBytesSent"] == SIZE == progress[-1]["totalBytesExpectedToSend"]
    completed = next(e for e in r.events if e["type"] == "sessioncompleted")
    assert json.loads(completed["responseText"])["body_sha256"] == content_sha256(SIZE)


@pytest.mark.timeout(60)  # bounds the blocking readline() below
def test_ctrl_c_cancels_and_exits_130(
    cli_popen: Callable[..., subprocess.Popen[str]], server: LocalServer, workdir: Path
) -> None:
    """SIGINT during a transfer cancels the task (-999 is reported) and exits 130."""
    proc = cli_popen("get", server.url("/bytes/50000000?rate=2000000"), "-o", "slow", "--json")
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # the first progress: the transfer runs
    assert first["type"] == "downloadprogress"
    proc.send_signal(signal.SIGINT)
    rest, _err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    events = [json.loads(line) for line in rest.splitlines()]
    completed = [e for e in events if e["type"] == "sessioncompleted"]
    assert len(completed) == 1 and completed[0]["errorCode"] == -999
    assert events[-1] == {"type": "exit", "code": 130, "reason": "interrupted"}
    assert not (workdir / "slow").exists()


def test_verbose_logs_the_package_on_stderr(
    cli: Callable[..., Result], server: LocalServer
) -> None:
    """-vv turns on the urlsession_module logger (debug) on stderr; by default it is silent."""
    r = cli("get", server.url("/bytes/10"), "-o", "x", "-vv")
    assert r.code == 0, r
    assert "DEBUG urlsession_module" in r.stderr
    r = cli("get", server.url("/bytes/10"), "-o", "y")
    assert "urlsession_module" not in r.stderr


def test_demo_checks_both_digests(cli: Callable[..., Result]) -> None:
    """`demo` (the README's first command) downloads and uploads through its own server."""
    r = cli("demo", "--size", "1MiB")
    assert r.code == 0, r
    assert "download sha256 OK; upload sha256 OK" in r.stdout
