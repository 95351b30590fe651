"""Run the reliability suite and print its scenarios, outcomes and figures.

::

    python -m tests.reliability.run            # the CI form (what `pytest` runs), with figures
    python -m tests.reliability.run --full     # every long form at its real size
    python -m tests.reliability.run --markdown # the scenario table for docs/reliability.md
    python -m tests.reliability.run -k tls     # any other argument goes to pytest

A *long form* is a scenario whose CI run is a reduced one; ``--full`` switches each on through
its environment variable. To add one (the crash storm and the other-user peer check are run by
the background engine's tests), append a :class:`LongForm` to :data:`LONG_FORMS`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass(frozen=True)
class LongForm:
    """A scenario with a reduced CI form; ``env`` switches on its full form."""

    name: str
    env: dict[str, str]
    description: str


LONG_FORMS: tuple[LongForm, ...] = (
    LongForm(
        "sessions-and-properties",
        {"URLSESSION_RELIABILITY_FULL": "1"},
        "1000 sessions created, used and invalidated (CI: 50); 10 000 random argument dicts "
        "(CI: 200) and 400 control interleavings (CI: 25); a 256 MiB download under a slow "
        "listener (CI: 32 MiB); 2000 random configurations (CI: 200)",
    ),
    LongForm(
        "crash-storm",
        {"URLSESSION_STORM_FULL": "1"},
        "100 background downloads while the transfer process is SIGKILLed 20 times "
        "(CI: 30 and 6; test_crash_storm.py, owned by the background engine)",
    ),
)


@dataclass
class Outcome:
    nodeid: str
    doc: str = ""
    outcome: str = ""
    seconds: float = 0.0
    reason: str = ""
    expected: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    figures: list[tuple[str, Any, str]] = field(default_factory=list)


class Collector:
    """A pytest plugin that keeps, per test, its docstring, outcome, notes and figures."""

    def __init__(self) -> None:
        self.results: dict[str, Outcome] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            fn = getattr(item, "function", None)
            doc = (getattr(fn, "__doc__", None) or "").strip().splitlines()
            self.results[item.nodeid] = Outcome(item.nodeid, doc[0] if doc else "")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.results.setdefault(report.nodeid, Outcome(report.nodeid))
        result.seconds += report.duration
        for kind, value in report.user_properties:
            if kind == "figure" and isinstance(value, tuple) and value not in result.figures:
                name, amount, unit = cast("tuple[str, Any, str]", value)  # Figures sends these
                result.figures.append((name, amount, unit))
            elif kind == "scenario":
                result.doc = str(value)
            elif kind == "expected" and value not in result.expected:
                result.expected.append(str(value))
            elif kind == "observed" and value not in result.observed:
                result.observed.append(str(value))
        xfail = getattr(report, "wasxfail", None)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if xfail is not None:
                result.outcome = "xpassed" if report.passed else "xfailed"
                result.reason = str(xfail)
            else:
                result.outcome = report.outcome
        elif report.when == "teardown" and report.failed and xfail is None:
            result.outcome = "error"


def _scenario(nodeid: str) -> str:
    path, _, name = nodeid.partition("::")
    return f"{Path(path).stem.removeprefix('test_')}: {name.removeprefix('test_')}"


def _observed(result: Outcome) -> str:
    if result.outcome == "xfailed":
        seen = "; ".join(result.observed)
        return f"**known bug** (xfail): {seen or result.reason}"
    if result.outcome == "passed":
        return "; ".join(result.observed) or "as expected"
    return f"**{result.outcome.upper()}** " + "; ".join(result.observed)


def print_markdown(results: Sequence[Outcome]) -> None:
    print("| # | scenario | expected | observed |")
    print("|---|---|---|---|")
    for i, r in enumerate(results, 1):
        expected = "; ".join(r.expected)
        expected = f"{r.doc} ({expected})" if expected else r.doc
        cells = [str(i), f"`{_scenario(r.nodeid)}`", expected, _observed(r)]
        print("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")


def print_report(results: Sequence[Outcome], elapsed: float, full: bool) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome or "not run"] = counts.get(r.outcome or "not run", 0) + 1
    form = "full" if full else "CI"
    print(f"\n== reliability suite, {form} form: {len(results)} scenarios in {elapsed:.1f} s")
    print("   " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    by_file: dict[str, list[Outcome]] = {}
    for r in results:
        by_file.setdefault(r.nodeid.split("::")[0], []).append(r)
    print("\n== per file")
    for path, rs in by_file.items():
        ok = sum(r.outcome == "passed" for r in rs)
        xf = sum(r.outcome == "xfailed" for r in rs)
        secs = sum(r.seconds for r in rs)
        print(
            f"   {Path(path).name:28} {len(rs):4} scenarios  {ok:4} pass  {xf:3} xfail  {secs:6.1f} s"
        )
    print("\n== figures")
    for r in results:
        for name, value, unit in r.figures:
            print(f"   {name:45} {value} {unit}".rstrip())
    bugs = [r for r in results if r.outcome == "xfailed"]
    if bugs:
        print(f"\n== known engine bugs ({len(bugs)} xfail scenarios)")
        for r in bugs:
            print(f"   {_scenario(r.nodeid)}\n      {r.reason}")
    bad = [r for r in results if r.outcome in ("failed", "error", "xpassed")]
    if bad:
        print("\n== FAILURES")
        for r in bad:
            print(f"   {r.outcome}: {r.nodeid}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.run", description=__doc__)
    parser.add_argument("--full", action="store_true", help="run every long form at full size")
    parser.add_argument("--markdown", action="store_true", help="print the docs table too")
    args, rest = parser.parse_known_args(argv)
    if args.full:
        for form in LONG_FORMS:
            os.environ.update(form.env)
            print(f"long form {form.name}: {form.description}")
    os.chdir(ROOT)
    collector = Collector()
    started = time.monotonic()
    code = pytest.main(
        [str(HERE.relative_to(ROOT)), "-q", "-p", "no:cacheprovider", "-o", "timeout=1800", *rest],
        plugins=[collector],
    )
    elapsed = time.monotonic() - started
    results = [r for r in collector.results.values() if r.outcome]
    print_report(results, elapsed, args.full)
    if args.markdown:
        print()
        print_markdown(results)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
