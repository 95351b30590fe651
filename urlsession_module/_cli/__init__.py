"""The ``urlsession`` command-line tool (also ``python -m urlsession_module``).

::

    urlsession get URL [-o FILE]        download, with a progress bar
    urlsession put FILE URL             upload FILE (streamed) with PUT; prints the response
    urlsession post FILE URL            the same with POST
    urlsession status                   background sessions and their tasks
    urlsession cancel ID                cancel a background task
    urlsession serve [--port N]         the package's local test server
    urlsession demo [--size 64MiB]      download + upload through the local server, checked
    urlsession run app.js               run a Titanium JavaScript app (the js extra)

Options for every command: ``-q/--quiet``, ``--json`` (one JSON object per line on stdout),
``-v/--verbose`` (the package's log on stderr; twice for debug). Exit codes: see
:class:`~urlsession_module._cli._common.ExitCode`.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from .._background._client import TransferUnavailableError
from .._storage import state_dir
from ..exceptions import (
    InvalidArgumentError,
    SessionInvalidatedError,
    UploadFileNotFoundError,
    URLSessionError,
)
from . import _js
from ._common import (
    ExitCode,
    Output,
    UsageError,
    describe_os_error,
    parse_ca_file,
    parse_header,
    parse_identifier,
    parse_port,
    parse_seconds,
    parse_size,
)
from ._unreliable import add_options as add_unreliable_options

__all__ = ["ExitCode", "build_parser", "main"]

EPILOG = """\
exit codes:
  0    success (also when the reader of -o - closes the pipe early)
  1    the transfer failed (connection refused, timed out, cancelled, ...); serve:
       the port cannot be opened
  2    usage error: bad option, URL, header, a missing upload file, or a state
       directory (URLSESSION_HOME) that cannot be used
  3    with --fail: the server answered with an HTTP status >= 400
  4    background: no transfer process runs (cancel), it has no such task, or it
       cannot be started (get --background)
  5    the output file could not be written
  130  interrupted (Ctrl-C): the transfer was cancelled

environment:
  URLSESSION_HOME   the state directory (downloads in progress, background journal)
"""


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    """-q/--json/-v, accepted before the command and after it (``suppress``: no defaults)."""
    default = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if suppress else False,
        help="no progress bars or messages (errors still go to stderr)",
    )
    g.add_argument(
        "--json",
        action="store_true",
        default=default if suppress else False,
        help="print one JSON object per line on stdout: every event, then the outcome",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default if suppress else 0,
        help="log what the package does on stderr (-vv: debug)",
    )
    return p


def _transfer_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("transfer")
    g.add_argument(
        "-H",
        "--header",
        action="append",
        type=parse_header,
        metavar="'NAME: VALUE'",
        help="add a request header (repeatable)",
    )
    g.add_argument(
        "--fail",
        action="store_true",
        help="treat an HTTP status >= 400 as an error (exit 3, nothing written)",
    )
    g.add_argument(
        "--timeout",
        type=parse_seconds,
        metavar="SECONDS",
        help="give up when no byte moves for this long (timeoutIntervalForRequest, default 60)",
    )
    g.add_argument(
        "--max-time",
        type=parse_seconds,
        metavar="SECONDS",
        help="give up when the whole transfer takes longer (timeoutIntervalForResource)",
    )
    g.add_argument(
        "--cacert", type=parse_ca_file, metavar="FILE", help="trust the CAs in this PEM bundle"
    )
    g.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server's certificate"
    )
    g.add_argument(
        "--proxy",
        metavar="URL",
        help="send requests through this proxy (http://, https://, socks5://, socks5h://; "
        "user:password@ for its credential); default: the environment's http_proxy etc.",
    )
    g.add_argument(
        "--noproxy",
        metavar="LIST",
        help="comma-separated hosts (and their subdomains) to reach directly; '*' for all",
    )
    g.add_argument(
        "--cert",
        metavar="FILE[:PASSWORD]",
        help="client certificate (PEM, the key may be inside; .p12/.pfx for PKCS#12)",
    )
    g.add_argument("--key", metavar="FILE", help="the client certificate's key (PEM)")
    g.add_argument(
        "--pinnedpubkey",
        metavar="sha256//BASE64[;...]",
        help="fail unless the server's public key has one of these SHA-256 hashes",
    )
    g.add_argument(
        "--background",
        type=parse_identifier,
        metavar="ID",
        help="run the task in the background session ID (it goes on if this command dies; "
        "a failing connection is retried until --max-time, default 7 days)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(suppress=True)
    parser = argparse.ArgumentParser(
        prog="urlsession",
        description="Download and upload over HTTP(S) with progress bars; show background transfers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common_options(suppress=False)],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "get",
        parents=[common],
        help="download URL to a file, with a progress bar",
        description="Download URL with a download task; the file is written when complete.",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to save (a file or a folder; '-' for stdout); default: the URL's file name",
    )
    _transfer_options(p)
    add_unreliable_options(p)  # --limit-rate, --retry, -C -, --timing (issue 16)

    for method in ("put", "post"):
        p = sub.add_parser(
            method,
            parents=[common],
            help=f"upload FILE to URL with {method.upper()}; print the response",
            description=f"Upload FILE (streamed from disk) to URL with {method.upper()}; "
            "the response body goes to stdout.",
        )
        p.add_argument("file", metavar="FILE", type=Path)
        p.add_argument("url", metavar="URL")
        p.add_argument("-o", "--output", metavar="FILE", help="write the response body here")
        _transfer_options(p)

    p = sub.add_parser(
        "status",
        parents=[common],
        help="show background sessions and their tasks",
        description="Ask the background transfer process (or read its journal when none "
        "runs) for its sessions and their tasks.",
    )
    p.add_argument("--all", action="store_true", help="list finished tasks too")

    p = sub.add_parser(
        "cancel",
        parents=[common],
        help="cancel a background task",
        description="Cancel a task of the background transfer process; its session gets a "
        "sessioncompleted with errorCode -999.",
    )
    p.add_argument("id", metavar="ID", help="the task identifier (see `urlsession status`)")

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the package's local HTTP server (127.0.0.1)",
        description="Run the package's local test server in the foreground until Ctrl-C.",
    )
    p.add_argument(
        "--port", type=parse_port, default=8000, help="port (default 8000; 0 = any free one)"
    )
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a throwaway CA")

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="download and upload through the local server, with progress",
        description="Start the local server, download --size bytes, upload them back, and "
        "check both SHA-256 digests. No internet needed.",
    )
    p.add_argument(
        "--size", type=parse_size, default=parse_size("64MiB"), help="e.g. 8MiB (default 64MiB)"
    )
    _js.add_parser(sub, common)  # urlsession run app.js: the JavaScript host
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns the exit code (see ``urlsession --help``).

    This is the tool's one error boundary: whatever goes wrong ends as one line on stderr (no
    traceback unless ``-vv``) and one of the documented exit codes.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message (or --help)
        if exc.code not in (0, None) and "--json" in argv[: _end_of_options(argv)]:
            Output(json_mode=True).emit({"type": "exit", "code": 2, "reason": "usage"})
        raise
    if args.command == "serve":
        return _serve(args)
    if args.command == "run":
        return _js.run(args)
    out = Output(quiet=args.quiet, json_mode=args.json, verbose=args.verbose)
    try:
        _check_state_dir()
        code = _run(args, out)
    except UsageError as exc:
        out.close()
        if args.json:  # stdout is for JSON only; the message goes to stderr, as every error
            out.error(str(exc))
        else:
            parser.exit(ExitCode.USAGE, f"{parser.prog} {args.command}: error: {exc}\n")
        code = ExitCode.USAGE
    except TransferUnavailableError as exc:  # --background: the transfer process cannot start
        out.error(
            f"{exc} (its log: {state_dir() / 'transfer.stderr'}, {state_dir() / 'transfer.log'})"
        )
        code = ExitCode.NO_BACKGROUND
    except UploadFileNotFoundError as exc:
        out.error(f"no such file: {exc.filename}" if exc.filename else str(exc))
        code = ExitCode.USAGE
    except (InvalidArgumentError, SessionInvalidatedError) as exc:
        out.error(str(exc))
        code = ExitCode.USAGE
    except KeyboardInterrupt:  # outside a transfer (e.g. while the local server starts)
        code = ExitCode.INTERRUPTED
    except OSError as exc:  # a local file or folder the tool could not use
        out.error(describe_os_error(exc))
        code = ExitCode.LOCAL_FILE
    except Exception as exc:  # a bug: still one line, the traceback only with -vv
        logging.getLogger("urlsession_module").debug("unexpected error", exc_info=True)
        out.error(f"unexpected failure: {exc or type(exc).__name__} (-vv shows where)")
        code = ExitCode.TRANSFER_ERROR
    finally:
        out.close()
    if args.json and args.command in ("get", "put", "post", "demo"):
        out.emit({"type": "exit", "code": int(code), "reason": ExitCode(code).name.lower()})
    return int(code)


def _end_of_options(argv: list[str]) -> int:
    """Where options end (a ``--`` argument), so a URL spelled ``--json`` is not an option."""
    return argv.index("--") if "--" in argv else len(argv)


class StateDirError(UsageError):
    """The state directory (``URLSESSION_HOME``) cannot be made or used."""


def _check_state_dir() -> None:
    """Make the state directory now, so a bad ``URLSESSION_HOME`` is one clear line (exit 2)."""
    where = os.environ.get("URLSESSION_HOME")
    try:
        state_dir()
    except (OSError, URLSessionError) as exc:
        reason = describe_os_error(exc, with_path=False) if isinstance(exc, OSError) else str(exc)
        name = f"URLSESSION_HOME={where}" if where else "the state directory"
        raise StateDirError(f"{name} cannot be used as the state directory: {reason}") from None


def _serve(args: argparse.Namespace) -> int:
    """``serve``: the local server in the foreground; a port that cannot be opened is exit 1."""
    from ..testing.__main__ import main as serve_main

    try:
        if args.port:  # a port in use: say so here, in plain words, before the server tries
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", args.port))
        return serve_main(
            ["--port", str(args.port), *(["--tls"] if args.tls else []), *(["-v"] * args.verbose)]
        )
    except OSError as exc:
        reason = describe_os_error(exc, with_path=False)
        sys.stderr.write(f"urlsession: error: cannot listen on 127.0.0.1:{args.port}: {reason}\n")
        return int(ExitCode.TRANSFER_ERROR)


def _run(args: argparse.Namespace, out: Output) -> ExitCode:
    from . import _status, _transfer

    if args.command == "get":
        return _transfer.get(args, out)
    if args.command in ("put", "post"):
        return _transfer.upload(args, out, args.command.upper())
    if args.command == "status":
        return _status.status(args, out)
    if args.command == "cancel":
        return _status.cancel(args, out)
    if args.command == "demo":
        return _transfer.demo(args, out)
    raise UsageError(f"unknown command {args.command!r}")  # argparse has refused it already
