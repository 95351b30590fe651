"""``get``'s options for unreliable networks (issue 16), as curl spells them.

``--limit-rate 2M`` (the session's ``maximumBytesPerSecond``), ``--retry N`` (its
``retryPolicy``: N retries with backoff, Retry-After honoured), ``-C -`` (continue an earlier
``get -C -`` of the same output that failed: its resume data waits next to the file as
``FILE.urlsession-resume``), ``--timing`` (the task's metrics as a table on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import re
from pathlib import Path
from typing import Any

from ._common import Output

__all__ = ["add_options", "resume_file", "session_props", "show_timing"]

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
RESUME_SUFFIX = ".urlsession-resume"


def parse_rate(text: str) -> int:
    """curl's --limit-rate: bytes per second, with K, M or G (powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (e.g. 500K, 2M)")
    rate = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if rate < 1:
        raise argparse.ArgumentTypeError(f"the rate must be at least 1 byte per second: {text!r}")
    return rate


def _retries(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--retry takes a count >= 0 (got {text!r})")
    return int(text)


def _continue_at(text: str) -> str:
    if text != "-":
        raise argparse.ArgumentTypeError("only '-C -' (continue where the last try stopped)")
    return text


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("unreliable networks")
    g.add_argument(
        "--limit-rate",
        type=parse_rate,
        metavar="RATE",
        help="at most RATE bytes per second (K, M, G suffixes), as curl",
    )
    g.add_argument(
        "--retry",
        type=_retries,
        metavar="N",
        default=0,
        help="retry a failed transfer up to N times, with backoff (Retry-After honoured)",
    )
    g.add_argument(
        "-C",
        "--continue-at",
        type=_continue_at,
        metavar="-",
        help="keep a failed download's resume data next to the file, and continue from it",
    )
    g.add_argument(
        "--timing", action="store_true", help="print the transfer's timing breakdown (stderr)"
    )


def session_props(args: argparse.Namespace, props: Any) -> None:
    """The configuration properties the options ask for."""
    if getattr(args, "limit_rate", None):
        props["maximumBytesPerSecond"] = args.limit_rate
    if getattr(args, "retry", 0):
        props["retryPolicy"] = {"total": args.retry, "backoffFactor": 0.5}


def resume_file(dest: Path | None) -> Path | None:
    return None if dest is None else dest.with_name(dest.name + RESUME_SUFFIX)


def stored_resume_data(args: argparse.Namespace, dest: Path | None) -> str | None:
    """``-C -``: the resume data an earlier failed run left for this output, if any."""
    path = resume_file(dest)
    if not getattr(args, "continue_at", None) or path is None or not path.is_file():
        return None
    return path.read_text().strip() or None


def keep_resume_data(args: argparse.Namespace, dest: Path | None, completed: Any) -> None:
    """After the task: keep a failure's resume data (``-C -``), or drop what was used."""
    path = resume_file(dest)
    if not getattr(args, "continue_at", None) or path is None:
        return
    data = completed.get("resumeData") if completed is not None else None
    if data:
        path.write_text(data + "\n")
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _ms(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{(b - a) * 1000:.1f}"


def show_timing(out: Output, completed: Any) -> None:
    """``--timing``: one line per request the task made (Apple's metrics), on stderr."""
    metrics = completed.get("metrics") if completed is not None else None
    if not metrics:
        return
    rows = [
        (
            "#",
            "fetch",
            "protocol",
            "reused",
            "dns ms",
            "connect ms",
            "tls ms",
            "wait ms",
            "receive ms",
            "total ms",
            "remote",
            "body bytes",
        ),
    ]
    for i, tx in enumerate(metrics["transactionMetrics"], 1):
        remote = f"{tx['remoteAddress']}:{tx['remotePort']}" if tx["remoteAddress"] else "-"
        rows.append(
            (
                str(i),
                tx["resourceFetchType"],
                tx["networkProtocolName"] or "-",
                "yes" if tx["isReusedConnection"] else "no",
                _ms(tx["domainLookupStartDate"], tx["domainLookupEndDate"]),
                _ms(tx["connectStartDate"], tx["connectEndDate"]),
                _ms(tx["secureConnectionStartDate"], tx["secureConnectionEndDate"]),
                _ms(tx["requestStartDate"], tx["responseStartDate"]),
                _ms(tx["responseStartDate"], tx["responseEndDate"]),
                _ms(tx["fetchStartDate"], tx["responseEndDate"]),
                remote,
                str(tx["countOfResponseBodyBytesReceived"]),
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    total = metrics["taskInterval"]["duration"] * 1000
    lines.append(f"task: {total:.1f} ms, {metrics['redirectCount']} redirect(s)")
    out.stderr.write("\n".join(lines) + "\n")
    out.stderr.flush()
