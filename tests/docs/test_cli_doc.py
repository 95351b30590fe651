"""docs/cli.md shows the progress lines the tool really prints (issue 19 item 28)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from urlsession_module._cli._display import BarDisplay
from urlsession_module.testing import LocalServer

from .._processes import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = ROOT / "docs" / "cli.md"


def _shape(line: str) -> str:
    """A progress line with its numbers and its bar made generic: what must match is the rest."""
    line = re.sub(r"[━╸╺]+", "BAR", line)
    line = re.sub(r"\d+(\.\d+)?", "N", line)
    line = re.sub(r"\b(bytes|kB|MB|GB)\b", "UNIT", line)
    return re.sub(r"\s+", " ", line).strip()


def _text_blocks_after(marker: str) -> list[str]:
    """The lines of the first ```text block after ``marker`` in docs/cli.md."""
    doc = CLI_DOC.read_text(encoding="utf-8")
    after = doc[doc.index(marker) :]
    match = re.search(r"```text\n(.*?)```", after, re.S)
    assert match is not None
    return match.group(1).splitlines()


def test_plain_lines_in_the_doc_are_the_tools(
    server: LocalServer, tmp_path: Path, state_home: Path
) -> None:
    """The plain-line sample (stderr not a terminal) has the shape and labels of a real run."""
    doc_progress, doc_summary = _text_blocks_after("When stderr is not a terminal")
    work = tmp_path / "work"
    work.mkdir()
    url = server.url("/bytes/5000000?rate=2000000")  # 2.5 s: one progress line, then the summary
    proc = subprocess.run(
        [sys.executable, "-m", "urlsession_module", "get", url, "-o", "big.bin"],
        cwd=work,
        env=subprocess_env(state_home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert [_shape(x) for x in lines] == [_shape(doc_progress), _shape(doc_summary)], lines


def test_bar_and_summary_in_the_doc_are_the_tools() -> None:
    """The terminal sample's bar and summary line have the shape and labels of the real display."""
    doc_bar, doc_summary = _text_blocks_after("On a terminal each transfer is a live bar")
    buf = io.StringIO()
    display = BarDisplay(Console(file=buf, force_terminal=True, width=100, color_system=None))
    display.add("t1", "GET big.bin")
    display.update("t1", 18_100_000, 50_000_000)
    display._progress.refresh()
    bar_lines = [x for x in re.split(r"[\r\n]", buf.getvalue()) if "GET big.bin" in x]
    assert bar_lines, buf.getvalue()
    bar = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", bar_lines[-1])
    # the speed and ETA need a measured rate: compare what precedes them
    assert _shape(bar).startswith(_shape(doc_bar).split(" N UNIT/s")[0]), (bar, doc_bar)
    display.finish("t1", True, "saved to big.bin")
    display.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())
    (summary,) = [x for x in re.split(r"[\r\n]", text) if "saved to" in x]
    assert _shape(summary) == _shape(doc_summary), (summary, doc_summary)


def test_readme_and_cli_doc_list_every_exit_code() -> None:
    """README's exit-code sentence and docs/cli.md's table name every code the tool uses."""
    from urlsession_module._cli import ExitCode

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = readme[readme.index("Exit codes say what failed") :].split(";")[0]
    table = CLI_DOC.read_text(encoding="utf-8").split("## Exit codes", 1)[1]
    for code in ExitCode:
        if code:
            assert re.search(rf"\b{int(code)} ", sentence), (code, sentence)
        assert f"\n| {int(code)} |" in table, code
