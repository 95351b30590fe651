"""`urlsession get --limit-rate --retry -C - --timing` (issue 16), as a real process."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Result
from urlsession_module.testing import FaultServer, LocalServer
from urlsession_module.testing._content import content_bytes


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


@pytest.mark.parametrize("eng", ["curl", "urllib3"])
def test_retry_resumes_a_reset_download(
    eng: str,
    cli: Callable[..., Result],
    faults: FaultServer,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--retry 2: the RST mid-body is retried with Range; the file is exactly the resource."""
    monkeypatch.setenv("URLSESSION_ENGINE", eng)
    key = uuid.uuid4().hex
    url = faults.url("flaky-download", length=200_000, after=50_000, key=key)
    r = cli("get", url, "-o", "out.bin", "--retry", "2", "--limit-rate", "4M")
    assert r.code == 0, r
    assert (workdir / "out.bin").read_bytes() == content_bytes(200_000)
    tries = [q for q in faults.requests if key in q.target]
    assert [q.headers.get("range") for q in tries] == [None, "bytes=50000-"]


def test_continue_at_keeps_and_uses_resume_data(
    cli: Callable[..., Result], faults: FaultServer, workdir: Path
) -> None:
    """-C -: the first run fails and leaves resume data by the file; the second continues it."""
    key = uuid.uuid4().hex
    url = faults.url("flaky-download", length=150_000, after=60_000, key=key)
    first = cli("get", url, "-o", "out.bin", "-C", "-")
    assert first.code == 1, first
    side = workdir / "out.bin.urlsession-resume"
    assert side.is_file()
    second = cli("get", url, "-o", "out.bin", "-C", "-")
    assert second.code == 0, second
    assert (workdir / "out.bin").read_bytes() == content_bytes(150_000)
    assert not side.exists()
    tries = [q for q in faults.requests if key in q.target]
    assert tries[-1].headers.get("range") == "bytes=60000-"


def test_timing_prints_one_row_per_request(cli: Callable[..., Result], server: LocalServer) -> None:
    r = cli("get", server.url("/redirect-to?url=/bytes/2000"), "-o", "x.bin", "--timing")
    assert r.code == 0, r
    rows = [line for line in r.stderr.splitlines() if "networkLoad" in line]
    assert len(rows) == 2  # the redirect and the answer
    assert "1 redirect(s)" in r.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--limit-rate", "0"], "at least 1 byte"),
        (["--limit-rate", "fast"], "not a rate"),
        (["--retry", "-1"], "--retry"),
        (["-C", "100"], "-C -"),
    ],
)
def test_bad_options_are_usage_errors(
    cli: Callable[..., Result], server: LocalServer, args: list[str], words: str
) -> None:
    r = cli("get", server.url("/bytes/10"), "-o", "y.bin", *args)
    assert r.code == 2, r
    assert words in r.stderr
