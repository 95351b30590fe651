"""The documentation site builds with warnings as errors, and its pages are all there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` passes (install with `pip install -e '.[docs]'`)."""
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    proc = subprocess.run(
        [*command, "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for page in ("quickstart", "porting", "events", "background", "errors", "cli", "examples"):
        assert (site / page / "index.html").exists(), page
    reference = (site / "reference" / "index.html").read_text()
    for name in ("Session.downloadTask", "Blob.move", "EventQueue.drain", "ErrorCode"):
        assert f"urlsession_module.{name}" in reference or name in reference, name
