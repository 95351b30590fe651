"""``get``, ``put``/``post`` and ``demo``: one task per session, watched from the main thread.

Each command makes a session whose ``delegateQueue`` is an :class:`~urlsession_module.EventQueue`
drained by the main thread (``waitForTasks``), so listeners run here, one at a time, after the
task's identifier is known. Ctrl-C lands in that wait: the task is cancelled, its -999
``sessioncompleted`` is awaited (bounded), and the command exits 130.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import posixpath
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import urlsession_module as URLSession

from .._storage import Blob, part_name
from ._common import (
    ExitCode,
    Output,
    UsageError,
    describe_os_error,
    event_to_json,
    plain_transfer_error,
)

__all__ = ["demo", "get", "upload"]

CANCEL_WAIT = 10.0  # seconds to wait for the -999 of a cancelled task after Ctrl-C
QUIET_NOTE = 5.0  # seconds without progress before a background run says it is retrying


class TaskRun:
    """Starts one task on a session and follows it to its ``sessioncompleted``."""

    def __init__(
        self, out: Output, session: URLSession.Session, label: str, *, verbose: bool = False
    ) -> None:
        self.out = out
        self.session = session
        self.label = label
        self.verbose = verbose
        self.tid: str | None = None
        self.blob: Blob | None = None
        self.completed: URLSession.Event | None = None
        self.interrupted = False
        self.url = ""  # what the task asked for, to say where a failure happened
        self.proxy: str | None = None
        self.moved = False  # a progress event came
        self.on_progress: Callable[[URLSession.Event], None] | None = None
        self._heads_shown = False
        for name in ("downloadprogress", "uploadprogress", "downloadcompleted", "sessioncompleted"):
            session.addEventListener(name, self._on_event)

    def _on_event(self, e: URLSession.Event) -> None:
        # A background session also replays what earlier runs left behind: only ours counts.
        if self.tid is None or e.get("taskIdentifier") != self.tid:
            return
        self.out.emit(event_to_json(e))
        if self.verbose:
            self._show_heads(final=e.type == "sessioncompleted")
        if e.type == "downloadprogress":
            self.moved = True
            self.out.display.update(self.tid, e.totalBytesWritten, e.totalBytesExpectedToWrite)
            if self.on_progress is not None:
                self.on_progress(e)
        elif e.type == "uploadprogress":
            self.moved = True
            self.out.display.update(self.tid, e.totalBytesSent, e.totalBytesExpectedToSend)
        elif e.type == "downloadcompleted":
            self.blob = e.data
        elif e.type == "sessioncompleted":
            self.completed = e

    @property
    def task(self) -> URLSession.Task | None:
        return self.session.getTask(self.tid) if self.tid is not None else None

    def _show_heads(self, final: bool) -> None:
        """``-v``: the request's and the response's heads on stderr, as ``curl -v`` shows them.

        Once the response's head is there (or, with none, when the task ends); credentials are
        not shown.
        """
        task = self.task
        if self._heads_shown or task is None or (task.response is None and not final):
            return
        self._heads_shown = True
        request, response = task.currentRequest, task.response
        lines = [f"> {request.method} {request.url}"]
        lines += [f"> {name}: {_shown(name, value)}" for name, value in request.headers]
        if request.has_body:
            lines.append(f"> ({request.body_length} byte body)")
        if response is not None:
            lines.append(f"< {response.statusCode} {response.url}")
            lines += [f"< {name}: {_shown(name, value)}" for name, value in response.headers]
        else:
            lines.append("< (no response)")
        for line in lines:
            self.out.display.message(line)

    def run(self, start: Callable[[], str], total: int = -1) -> None:
        """Start the task with ``start()`` and wait for its end (or for Ctrl-C).

        ``total`` is the size to show before the first progress event, when known (uploads).
        """
        self.tid = start()
        task = self.task
        if task is not None:
            self.url = task.originalRequest.url
            self.proxy = self.session.configuration.proxyURL
        self.out.display.add(self.tid, self.label, total)
        try:
            self._wait(None)
        except KeyboardInterrupt:
            self.interrupted = True
            self.out.info("interrupted: cancelling the transfer")
            task = self.session.getTask(self.tid)
            if task is not None:
                task.cancel()
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: leave now
                self._wait(CANCEL_WAIT)

    def _wait(self, timeout: float | None) -> None:
        task = self.task
        if task is None or self.completed is not None:
            return
        # A background session retries a refused or lost connection until the resource
        # timeout (7 days unless --max-time): say so instead of looking hung.
        if timeout is None and self.session.identifier is not None:
            finished = task.wait(QUIET_NOTE)
            if not finished and not self.moved and self.completed is None:
                self.out.info(
                    f"{self.label}: no progress yet; a background task retries until --max-time "
                    f"(default 7 days), also after this command ends. Ctrl-C cancels it, "
                    f"as does `urlsession cancel {self.tid}`."
                )
        if self.completed is None:
            task.wait(timeout)

    @property
    def status_code(self) -> int:
        return int(self.completed.statusCode) if self.completed is not None else 0

    def conclude(self, fail_on_http_error: bool = False, note: str = "") -> ExitCode | None:
        """End the task's bar (or line) and report a failure; the exit code, None for success.

        ``fail_on_http_error`` (``--fail``) makes a status >= 400 a failure.
        """
        code: ExitCode | None = None
        error = ""
        if self.interrupted:
            code = ExitCode.INTERRUPTED
        elif self.completed is None:
            code, error = ExitCode.TRANSFER_ERROR, "the transfer did not report completion"
        elif not self.completed.success:
            code = ExitCode.TRANSFER_ERROR
            error = plain_transfer_error(
                str(self.completed.message), int(self.completed.errorCode), self.url, self.proxy
            )
        elif fail_on_http_error and self.status_code >= 400:
            code, error = ExitCode.HTTP_ERROR, f"the server answered HTTP {self.status_code}"
        if self.tid is not None:
            self.out.display.finish(self.tid, code is None, note if code is None else "")
        if error:
            self.out.error(error)
        return code


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


def _shown(name: str, value: str) -> str:
    """A header's value for ``-v``: a credential shows its scheme only."""
    if name.lower() in _SECRET_HEADERS:
        return f"{value.split(' ', 1)[0]} (hidden)"
    return value


def make_session(args: argparse.Namespace) -> URLSession.Session:
    """A session from the common transfer options: ephemeral, or background with ``--background``."""
    props: URLSession.ConfigurationArgs = {}
    if getattr(args, "background", None):
        props["identifier"] = args.background
    else:
        props["type"] = "ephemeral"  # the tool keeps no cookies or cache between runs
    if getattr(args, "timeout", None) is not None:
        props["timeoutIntervalForRequest"] = args.timeout
    if getattr(args, "max_time", None) is not None:
        props["timeoutIntervalForResource"] = args.max_time
    if getattr(args, "insecure", False):
        props["tlsVerify"] = False
    if getattr(args, "cacert", None):
        props["caBundle"] = str(args.cacert)
    if getattr(args, "proxy", None):
        props["proxyURL"] = args.proxy
    cfg = URLSession.createSessionConfiguration(props)
    return URLSession.createSession(configuration=cfg, delegateQueue=URLSession.EventQueue())


def close_session(session: URLSession.Session) -> None:
    """Let the session go, draining our queue meanwhile; drop an ephemeral session's folder.

    A background session is only let go: its other tasks (another run's, say) belong to the
    transfer process and go on; ours has finished or was cancelled already.
    """
    if session.identifier is not None:
        session.finishTasksAndInvalidate()
        if not session.tasks:
            session.waitForInvalidation(5.0)
        return
    session.invalidateAndCancel()
    session.waitForInvalidation(5.0)
    with contextlib.suppress(OSError):  # an ephemeral session's folder is ours alone
        session.downloadDirectory.rmdir()


def _size(path: Path) -> int:
    """The file's size, or -1 (the upload call reports a missing file properly)."""
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _headers(args: argparse.Namespace) -> dict[str, str]:
    return dict(args.header or [])


def default_name(url: str) -> str:
    """The file name ``get`` saves to without ``-o``: the URL path's last segment (as wget).

    Characters no file name may hold (a NUL from ``%00``) become ``_``.
    """
    name = posixpath.basename(unquote(urlsplit(url).path)).replace("\x00", "_")
    return name if name not in ("", ".", "..") else "index.html"


def _destination(url: str, output: str | None) -> Path | None:
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


def _check_output(output: str | None) -> None:
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


def _check_upload_file(path: Path) -> None:
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


def _save(blob: Blob, dest: Path, umask: int) -> None:
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


def get(args: argparse.Namespace, out: Output) -> ExitCode:
    """``urlsession get URL [-o FILE]``: a download task, saved where asked."""
    if args.output == "-" and out.json:
        raise UsageError("-o - writes the body to stdout, which --json needs for events")
    dest = _destination(args.url, args.output)  # an OSError here: exit 5, nothing fetched
    umask = current_umask()
    session = make_session(args)
    label = f"GET {dest.name if dest is not None else default_name(args.url)}"  # the saved name
    run = TaskRun(out, session, label, verbose=args.verbose > 0)
    stream: _StdoutStream | None = None
    if dest is None and session.identifier is None:
        # -o - streams the body as it arrives. Not for a background session: its transfer
        # process may start a download over after a retry, and stdout cannot take bytes back.
        stream = _StdoutStream(run, out, args.fail)
        run.on_progress = stream.on_progress
    try:
        run.run(lambda: session.downloadTask(url=args.url, requestHeaders=_headers(args)))
        blob = run.blob
        if stream is not None and stream.closed:
            _discard(blob)
            if stream.error is None:  # the reader had enough (| head): quietly
                return ExitCode.OK
            out.error(f"cannot write to stdout: {describe_os_error(stream.error, with_path=False)}")
            return ExitCode.LOCAL_FILE
        if run.completed is None or not run.completed.success or blob is None:
            _discard(blob)
            return run.conclude() or ExitCode.TRANSFER_ERROR
        if args.fail and run.status_code >= 400:
            _discard(blob)
            return run.conclude(fail_on_http_error=True) or ExitCode.HTTP_ERROR
        if dest is None:  # -o -: the rest of the body (all of it when not streamed)
            try:
                if stream is not None:
                    stream.finish(blob)
                else:
                    out.display.close()  # no live bar may share the terminal with the body
                    _to_stdout(blob, out)
            except BrokenPipeError:
                _stdout_gone()
                return ExitCode.OK
            except OSError as exc:
                run.conclude(note="not written")
                out.error(f"cannot write to stdout: {describe_os_error(exc, with_path=False)}")
                return ExitCode.LOCAL_FILE
            finally:
                _discard(blob)
            run.conclude(note="written to stdout")
            out.emit({"type": "saved", "taskIdentifier": run.tid, "path": "-"})
            return ExitCode.OK
        try:
            _save(blob, dest, umask)
        except (OSError, ValueError) as exc:
            run.conclude(note="not saved")
            reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
            out.error(f"cannot write {dest}: {reason}; the download is at {blob.nativePath}")
            return ExitCode.LOCAL_FILE
        out.emit({"type": "saved", "taskIdentifier": run.tid, "path": str(dest)})
        note = f"saved to {dest}"
        if run.status_code >= 400:
            note += f" (HTTP {run.status_code})"
        run.conclude(note=note)
        return ExitCode.OK
    finally:
        close_session(session)


class _StdoutStream:
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
            _stdout_gone()
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
                _to_stdout(blob, self.out, discard=False)
                return
            self._copy(blob.length)
        finally:
            if self.file is not None:
                self.file.close()


def _stdout_gone() -> None:
    """The reader closed stdout: point it at /dev/null, so the exit's flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _to_stdout(blob: Blob, out: Output, discard: bool = True) -> None:
    """Copy the downloaded file to stdout (then remove it, unless ``discard`` is false)."""
    try:
        f: Any = blob.open()
        with f:
            out.stdout.flush()
            shutil.copyfileobj(f, out.stdout.buffer, 1 << 20)
            out.stdout.buffer.flush()
    finally:
        if discard:
            _discard(blob)


def _discard(blob: Blob | None) -> None:
    if blob is not None and blob.nativePath is not None:
        with contextlib.suppress(OSError):
            os.unlink(blob.nativePath)


def upload(args: argparse.Namespace, out: Output, method: str) -> ExitCode:
    """``urlsession put|post FILE URL``: an upload task streaming FILE; prints the response."""
    _check_upload_file(args.file)  # exit 2: a usage error
    _check_output(args.output)  # an OSError: exit 5, before anything is sent
    session = make_session(args)
    run = TaskRun(out, session, f"{method} {Path(args.file).name}", verbose=args.verbose > 0)
    try:
        run.run(
            lambda: session.uploadTask(
                url=args.url,
                data=str(args.file),
                method=method,
                requestHeaders=_headers(args),
            ),
            total=_size(args.file),
        )
        code = run.conclude(args.fail, f"HTTP {run.status_code}")
        if code is not None:
            return code
        out.display.close()  # the bars leave the terminal before the body is printed
        assert run.completed is not None
        text = str(run.completed.get("responseText") or "")
        if args.output:
            try:
                Path(args.output).write_text(text)
            except OSError as exc:
                out.error(f"cannot write {args.output}: {describe_os_error(exc, with_path=False)}")
                return ExitCode.LOCAL_FILE
        elif not out.json and text:
            out.stdout.write(text if text.endswith("\n") else text + "\n")
            out.stdout.flush()
        return ExitCode.OK
    finally:
        close_session(session)


def demo(args: argparse.Namespace, out: Output) -> ExitCode:
    """Download ``--size`` bytes from the local server, upload them back, check both digests."""
    import hashlib

    from ..testing import LocalServer, content_sha256

    size: int = args.size
    with LocalServer() as srv:
        out.info(f"local server at {srv.base_url}")
        session = make_session(args)
        try:
            down = TaskRun(out, session, "download")
            down.run(lambda: session.downloadTask(url=srv.url(f"/bytes/{size}")))
            code = down.conclude()
            if code is not None or down.blob is None:
                return code or ExitCode.TRANSFER_ERROR
            blob = down.blob
            digest = hashlib.sha256()
            f: Any = blob.open()
            with f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            ok_down = digest.hexdigest() == content_sha256(size)

            up = TaskRun(out, session, "upload")
            up.run(
                lambda: session.uploadTask(
                    url=srv.url("/upload"), data=blob.nativePath or blob.read(), method="PUT"
                ),
                total=size,
            )
            code = up.conclude()
            _discard(blob)
            if code is not None or up.completed is None:
                return code or ExitCode.TRANSFER_ERROR
            echoed = json.loads(up.completed.responseText)
            ok_up = echoed.get("body_sha256") == content_sha256(size)
        finally:
            close_session(session)
    line = (
        f"download sha256 {'OK' if ok_down else 'MISMATCH'}; "
        f"upload sha256 {'OK' if ok_up else 'MISMATCH'}"
    )
    if out.json:
        out.emit({"type": "demo", "downloadOK": ok_down, "uploadOK": ok_up})
    else:
        print(line, file=out.stdout, flush=True)
    return ExitCode.OK if ok_down and ok_up else ExitCode.TRANSFER_ERROR
