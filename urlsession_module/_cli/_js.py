"""``urlsession run app.js``: a Titanium script run as it is, by the JavaScript host (``_js``).

The host is imported only when the command runs: the rest of the tool works without the
optional ``js`` extra, and this command says how to get it when it is missing.
"""

from __future__ import annotations

import argparse
import faulthandler
import sys
from pathlib import Path
from typing import Any

from ._common import ExitCode, parse_seconds

__all__ = ["add_parser", "run"]

# A script busy in a loop that never yields holds the interpreter: the host's own timeout cannot
# run. faulthandler's watchdog is a C thread that needs no interpreter: this long after
# --timeout it prints the stacks and ends the process with status 1.
_WATCHDOG_GRACE = 2.0


def _url_map(text: str) -> tuple[str, str]:
    """``--url-map FROM=TO``: both sides non-empty (an argparse type)."""
    src, sep, dst = text.partition("=")
    if not sep or not src or not dst:
        raise argparse.ArgumentTypeError(f"must be FROM=TO, both non-empty (got {text!r})")
    return src, dst


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run",
        parents=[common],
        help="run a Titanium JavaScript app against this package (needs the js extra)",
        description="Run a Titanium script as it is: require('com.appcelerator.urlSession') "
        "is this package, Ti.API/Ti.App.Properties/Ti.Filesystem/Ti.App.iOS work headless, "
        "Ti.UI is inert. Exit 0, or 1 after an uncaught JS error or --timeout.",
    )
    p.add_argument("script", type=Path, metavar="SCRIPT.js")
    p.add_argument(
        "--url-map",
        action="append",
        type=_url_map,
        default=[],
        metavar="FROM=TO",
        help="task URLs starting with FROM start with TO instead (repeatable)",
    )
    p.add_argument(
        "--click",
        action="append",
        default=[],
        metavar="TITLE",
        help="once the script has run, click the button with this title (repeatable)",
    )
    p.add_argument(
        "--background-fetch",
        action="store_true",
        help="then fire Ti.App.iOS 'backgroundfetch' with a handlerId",
    )
    p.add_argument(
        "--timeout",
        type=parse_seconds,
        metavar="SECONDS",
        help="end the run (exit 1) when it has not finished by then (a script stuck in a "
        "loop that never yields: 2 s later, with the stacks)",
    )
    p.add_argument(
        "--app-id",
        metavar="ID",
        help="where Ti.App.Properties and applicationDataDirectory live "
        "(default: the script's file name)",
    )
    p.add_argument(
        "--jasmine",
        type=Path,
        metavar="DIR",
        help="run SCRIPT as a jasmine spec with jasmine-core from DIR (its jasmine.js, or an "
        "npm install prefix); exit 1 when a spec fails",
    )


def run(args: argparse.Namespace) -> int:
    """Run the script; the exit code is the run's status (2: the script or the extra missing)."""
    if not args.script.is_file():
        sys.stderr.write(f"urlsession run: error: no such script: {args.script}\n")
        return int(ExitCode.USAGE)
    try:
        from .._js import JSSyntaxError, run_script
    except ImportError as exc:
        sys.stderr.write(f"urlsession run: error: {exc}\n")
        return int(ExitCode.USAGE)
    if args.timeout is not None:
        faulthandler.dump_traceback_later(args.timeout + _WATCHDOG_GRACE, exit=True)
    try:
        result = run_script(
            args.script,
            app_id=args.app_id,
            url_map=args.url_map,
            clicks=args.click,
            background_fetch=args.background_fetch,
            timeout=args.timeout,
            jasmine=args.jasmine,
        )
    except JSSyntaxError as exc:
        sys.stderr.write(f"urlsession run: SyntaxError: {exc}\n")
        return 1
    except (OSError, ValueError) as exc:  # the jasmine directory, an unusable state dir...
        sys.stderr.write(f"urlsession run: error: {exc}\n")
        return int(ExitCode.USAGE)
    finally:
        faulthandler.cancel_dump_traceback_later()
    return result.status
