"""The transfer process's entry point: runs background sessions' tasks so they outlive the host.

One per user and state directory (an exclusive ``flock``, not a hope), started on demand by the
first background session, detached from the host, and gone after an idle period with no task and
no host. :mod:`._server` owns the socket and the hosts, :mod:`._runner` the tasks; this module
only takes the lock, writes the pid file and the log, and runs the two.

Every file it opens in the state directory is opened without following links and only if this
user owns it: a planted ``transfer.pid`` link must not make it overwrite what the link names.

Run as ``python -m urlsession_module._background._daemon --home DIR [--detach]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path

from .._storage import open_private, private_dir
from ..exceptions import StateDirectoryError
from . import _protocol as proto
from ._runner import Runner
from ._server import Server

__all__ = ["main"]


def _lock(home: Path) -> int | None:
    fd = open_private(home / proto.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_pid(home: Path) -> None:
    fd = open_private(home / proto.PID_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)


def _log_to(home: Path) -> None:
    fd = open_private(home / proto.LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="urlsession-transfer")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--detach", action="store_true", help="double-fork away from the caller")
    parser.add_argument(
        "--idle", type=float, default=float(os.environ.get("URLSESSION_TRANSFER_IDLE", "10"))
    )
    args = parser.parse_args(argv)
    try:
        home = private_dir(args.home)
    except StateDirectoryError as exc:
        print(f"urlsession transfer process: {exc}", file=sys.stderr)
        return 1
    if args.detach:
        if os.fork() > 0:
            os._exit(0)  # the host waits for this one; the grandchild is reparented, never a zombie
        os.setsid()
    os.umask(0o077)
    try:
        lock_fd = _lock(home)
        if lock_fd is None:
            return 0  # another transfer process serves this user and state directory
        _log_to(home)
        _write_pid(home)
    except StateDirectoryError as exc:
        print(f"urlsession transfer process: {exc}", file=sys.stderr)
        return 1
    try:
        runner = Runner(home, args.idle)
        server = Server(home, runner)
        signal.signal(signal.SIGTERM, lambda *_: runner.stop())
        runner.recover()
        server.serve()
    except StateDirectoryError as exc:
        logging.getLogger("urlsession_module.transfer").error("%s", exc)
        return 1
    finally:
        with contextlib.suppress(FileNotFoundError):
            (home / proto.PID_NAME).unlink()
        os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
