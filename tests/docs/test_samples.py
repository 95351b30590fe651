"""Every ```python sample of README.md and docs/*.md runs as written (issue 19 items 27 and 30).

Each sample runs on its own, as a reader would paste it into a file: a fresh interpreter, an
empty working folder, a private state directory, warnings as errors. Samples reach the local
server at the documented ``http://127.0.0.1:8000`` (``urlsession serve --port 8000``); the test
points that address at the package's test server.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from urlsession_module.testing import LocalServer

from .._processes import stop_transfer_process, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = "127.0.0.1:8000"
SAMPLE_TIMEOUT = 90.0

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _samples() -> list[tuple[str, int, str]]:
    """(page, line of the opening fence, code) for every ```python block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((str(page.relative_to(ROOT)), line, match.group(1)))
    return found


SAMPLES = _samples()

# Samples that cannot run yet because of a bug elsewhere: {(page, first code line): reason}.
KNOWN_BROKEN: dict[tuple[str, str], str] = {}


def _params() -> list[object]:
    params = []
    for page, line, code in SAMPLES:
        first = code.strip().splitlines()[0]
        marks = []
        reason = KNOWN_BROKEN.get((page, first))
        if reason is not None:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(page, code, id=f"{page}:{line}", marks=marks))
    return params


def test_the_samples_are_found() -> None:
    """The extraction finds the samples (a changed fence style must not turn this test off)."""
    pages = {page for page, _, _ in SAMPLES}
    assert len(SAMPLES) >= 20
    assert {"README.md", "docs/porting.md", "docs/background.md"} <= pages


def _run_sample(
    page: str, code: str, server: LocalServer, work: Path, home: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as ``work/sample.py``; assert it exits 0 with no traceback on stderr."""
    host_port = server.base_url.split("://", 1)[1]
    work.mkdir(exist_ok=True)
    script = work / "sample.py"
    script.write_text(code.replace(PLACEHOLDER, host_port), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=work,
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=SAMPLE_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    report = f"{page}\n--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, report
    assert "Traceback" not in proc.stderr and "Exception in" not in proc.stderr, report
    return proc


def _sample(page: str, fragment: str) -> str:
    """The one sample of ``page`` that contains ``fragment``."""
    (code,) = [code for p, _, code in SAMPLES if p == page and fragment in code]
    return code


@pytest.mark.timeout(SAMPLE_TIMEOUT + 30)
@pytest.mark.parametrize(("page", "code"), _params())
def test_sample_runs(
    page: str, code: str, server: LocalServer, tmp_path: Path, state_home: Path
) -> None:
    """The sample exits 0 with no traceback and no listener failure reported."""
    try:
        _run_sample(page, code, server, tmp_path / "work", state_home)
    finally:
        stop_transfer_process(state_home)  # a background sample's transfer process


def test_flush_and_reset_callbacks_run_before_the_script_ends(
    server: LocalServer, tmp_path: Path, state_home: Path
) -> None:
    """docs/porting.md's flush/reset sample, a script's last lines, prints both callbacks."""
    code = _sample("docs/porting.md", "session.flush(")
    proc = _run_sample("docs/porting.md", code, server, tmp_path / "work", state_home)
    assert proc.stdout.split() == ["True", "True"]


@pytest.mark.timeout(2 * SAMPLE_TIMEOUT + 30)
def test_background_samples_start_then_collect(
    server: LocalServer, tmp_path: Path, state_home: Path
) -> None:
    """docs/background.md: the first sample starts a download and exits; the second collects it."""
    work = tmp_path / "work"
    try:
        start = _run_sample(
            "docs/background.md",
            _sample("docs/background.md", "print('started'"),
            server,
            work,
            state_home,
        )
        (task_id,) = re.findall(r"started (\S+)", start.stdout)
        collect = _run_sample(
            "docs/background.md",
            _sample("docs/background.md", "def on_downloaded"),
            server,
            work,
            state_home,
        )
    finally:
        stop_transfer_process(state_home)
    assert f"{task_id} True 200" in collect.stdout, collect.stdout
    assert (work / "downloads" / f"{task_id}.iso").stat().st_size == 50_000_000
