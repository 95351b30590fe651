"""Where a CLI transfer's bytes go and come from: output paths checked before sending, the
user's files made with the umask's mode, ``-o -`` streamed to stdout as the body arrives."""

import argparse
import contextlib
import errno
import os
import posixpath
import shutil
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import urlsession_module as URLSession

from .._storage import Blob, part_name
from ._common import (
    Output,
    UsageError,
)
from ._run import TaskRun

__all__ = [
    "StdoutStream",
    "check_output",
    "check_upload_file",
    "current_umask",
    "default_name",
    "destination",
    "discard_blob",
    "request_headers",
    "save",
    "size",
    "stdout_gone",
    "to_stdout",
]


def size(path: Path) -> int:
    """The file's size, or -1 (the upload call reports a missing file properly)."""
    try:
        return path.stat().st_size
    except OSError:
        return -1


def request_headers(args: argparse.Namespace) -> dict[str, str]:
    return dict(args.header or [])


def default_name(url: str) -> str:
    """The file name ``get`` saves to without ``-o``: the URL path's last segment (as wget).

    Characters no file name may hold (a NUL from ``%00``) become ``_``.
    """
    name = posixpath.basename(unquote(urlsplit(url).path)).replace("\x00", "_")
    return name if name not in ("", ".", "..") else "index.html"


def destination(url: str, output: str | None) -> Path | None:
    """Where ``get`` writes (None for ``-o -``, stdout); refuses a folder that does not exist.

    ``-o name/`` (a trailing slash) names a folder: it must exist, as with curl and cp.
    """
    if output == "-":
        return None
    dest = Path(output) if output else Path(default_name(url))
    if dest.is_dir():
        dest = dest / default_name(url)
    elif output and output.endswith(("/", os.sep)):
        raise FileNotFoundError(errno.ENOENT, "no such folder", output)
    if not dest.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(dest.parent))
    return dest


def check_output(output: str | None) -> None:
    """``put``/``post -o FILE``: refuse a file that cannot be written before anything is sent."""
    if not output or output == "-":
        return
    path = Path(output)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", output)
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path.parent))
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise PermissionError(errno.EACCES, "permission denied", output)


def check_upload_file(path: Path) -> None:
    """The file to upload: a readable file (exit 2 otherwise), in words of the command line."""
    if path.is_dir():
        raise UsageError(f"cannot upload {path}: it is a folder, not a file")
    if not path.exists():
        raise UsageError(f"cannot upload {path}: no such file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"cannot upload {path}: permission denied")


def current_umask() -> int:
    """The process's umask (read once, on the main thread, before any session starts)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save(blob: Blob, dest: Path, umask: int) -> None:
    """Move the download to ``dest`` with the mode a file the user asked for gets: the umask's
    for a new file, the replaced file's own otherwise (as ``curl -o`` and ``cp`` leave it); the
    package's folder keeps its files 0600 until they leave it."""
    try:
        mode = stat.S_IMODE(dest.stat().st_mode) if dest.is_file() else 0o666 & ~umask
    except OSError:
        mode = 0o666 & ~umask
    if blob.nativePath is not None:
        os.chmod(blob.nativePath, mode)  # so the file appears at dest with it
    blob.move(dest)
    if stat.S_IMODE(dest.stat().st_mode) != mode:  # Blob.move gave it the umask's mode
        os.chmod(dest, mode)


class StdoutStream:
    """``get -o -``: copies the download to stdout as it grows, from the file it grows in.

    Each ``downloadprogress`` says how many bytes the file holds; they are copied from the
    task's part file (kept open, so its rename when complete does not matter). A reader that
    closes the pipe (``| head -c 10``) cancels the task; the command then ends quietly.
    """

    def __init__(self, run: TaskRun, out: Output, fail: bool) -> None:
        self.run = run
        self.out = out
        self.fail = fail  # --fail: nothing of a status >= 400 goes out, so wait and see
        self.file: BinaryIO | None = None
        self.sent = 0
        self.closed = False  # stdout took no more: the reader left, or ``error``
        self.error: OSError | None = None
        self.held = False  # not streamed (status >= 400 with --fail): written at the end, or not

    def on_progress(self, e: URLSession.Event) -> None:
        if self.closed or self.held:
            return
        if self.file is None:
            task = self.run.task
            if self.fail and task is not None and task.response is not None:
                self.held = task.response.statusCode >= 400
            if self.held or task is None:
                return
            try:
                self.file = open(  # noqa: SIM115 (kept open across events; closed in finish)
                    self.run.session.downloadDirectory / part_name(task.taskIdentifier), "rb"
                )
            except OSError:
                self.held = True  # written from the finished file instead
                return
            self.out.display.close()  # no live bar may share the terminal with the body
        try:
            self._copy(int(e.totalBytesWritten))
        except BrokenPipeError:
            stdout_gone()
            self._stop()
        except OSError as exc:  # stdout cannot take it (a full disk behind a redirection)
            self.error = exc
            self._stop()

    def _copy(self, upto: int) -> None:
        assert self.file is not None
        target = self.out.stdout.buffer
        while self.sent < upto:
            block = self.file.read(min(1 << 20, upto - self.sent))
            if not block:
                break
            target.write(block)
            self.sent += len(block)
        target.flush()

    def _stop(self) -> None:
        self.closed = True
        task = self.run.task
        if task is not None:
            task.cancel()

    def finish(self, blob: Blob) -> None:
        """The download is complete: write what has not been written yet."""
        try:
            if self.file is None:
                self.out.display.close()
                to_stdout(blob, self.out, discard=False)
                return
            self._copy(blob.length)
        finally:
            if self.file is not None:
                self.file.close()


def stdout_gone() -> None:
    """The reader closed stdout: point it at /dev/null, so the exit's flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def to_stdout(blob: Blob, out: Output, discard: bool = True) -> None:
    """Copy the downloaded file to stdout (then remove it, unless ``discard`` is false)."""
    try:
        f: Any = blob.open()
        with f:
            out.stdout.flush()
            shutil.copyfileobj(f, out.stdout.buffer, 1 << 20)
            out.stdout.buffer.flush()
    finally:
        if discard:
            discard_blob(blob)


def discard_blob(blob: Blob | None) -> None:
    if blob is not None and blob.nativePath is not None:
        with contextlib.suppress(OSError):
            os.unlink(blob.nativePath)
