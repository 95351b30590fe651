"""``get``, ``put``/``post`` and ``demo``: one task per session, watched from the main thread.

Each command makes a session whose ``delegateQueue`` is an :class:`~urlsession_module.EventQueue`
drained by the main thread (``waitForTasks``), so listeners run here, one at a time, after the
task's identifier is known. Ctrl-C lands in that wait: the task is cancelled, its -999
``sessioncompleted`` is awaited (bounded), and the command exits 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import posixpath
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import urlsession_module as URLSession

from .._storage import Blob
from ._common import ExitCode, Output, UsageError, event_to_json

__all__ = ["demo", "get", "upload"]

CANCEL_WAIT = 10.0  # seconds to wait for the -999 of a cancelled task after Ctrl-C


class TaskRun:
    """Starts one task on a session and follows it to its ``sessioncompleted``."""

    def __init__(self, out: Output, session: URLSession.Session, label: str) -> None:
        self.out = out
        self.session = session
        self.label = label
        self.tid: str | None = None
        self.blob: Blob | None = None
        self.completed: URLSession.Event | None = None
        self.interrupted = False
        for name in ("downloadprogress", "uploadprogress", "downloadcompleted", "sessioncompleted"):
            session.addEventListener(name, self._on_event)

    def _on_event(self, e: URLSession.Event) -> None:
        # A background session also replays what earlier runs left behind: only ours counts.
        if self.tid is None or e.get("taskIdentifier") != self.tid:
            return
        self.out.emit(event_to_json(e))
        if e.type == "downloadprogress":
            self.out.display.update(self.tid, e.totalBytesWritten, e.totalBytesExpectedToWrite)
        elif e.type == "uploadprogress":
            self.out.display.update(self.tid, e.totalBytesSent, e.totalBytesExpectedToSend)
        elif e.type == "downloadcompleted":
            self.blob = e.data
        elif e.type == "sessioncompleted":
            self.completed = e

    def run(self, start: Callable[[], str], total: int = -1) -> None:
        """Start the task with ``start()`` and wait for its end (or for Ctrl-C).

        ``total`` is the size to show before the first progress event, when known (uploads).
        """
        self.tid = start()
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
        task = self.session.getTask(self.tid or "")
        if task is not None and self.completed is None:
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
            error = f"{self.completed.message} (error {self.completed.errorCode})"
        elif fail_on_http_error and self.status_code >= 400:
            code, error = ExitCode.HTTP_ERROR, f"the server answered HTTP {self.status_code}"
        if self.tid is not None:
            self.out.display.finish(self.tid, code is None, note if code is None else "")
        if error:
            self.out.error(error)
        return code


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
    """The file name ``get`` saves to without ``-o``: the URL path's last segment (as wget)."""
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name if name not in ("", ".", "..") else "index.html"


def _destination(url: str, output: str | None) -> Path | None:
    """Where ``get`` writes (None for ``-o -``, stdout); refuses a folder that does not exist."""
    if output == "-":
        return None
    dest = Path(output) if output else Path(default_name(url))
    if dest.is_dir():
        dest = dest / default_name(url)
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"no such directory: {str(dest.parent)!r}")
    return dest


def get(args: argparse.Namespace, out: Output) -> ExitCode:
    """``urlsession get URL [-o FILE]``: a download task, saved where asked."""
    if args.output == "-" and out.json:
        raise UsageError("-o - writes the body to stdout, which --json needs for events")
    try:
        dest = _destination(args.url, args.output)
    except OSError as exc:
        out.error(str(exc))
        return ExitCode.LOCAL_FILE
    session = make_session(args)
    run = TaskRun(out, session, f"GET {default_name(args.url)}")
    try:
        run.run(lambda: session.downloadTask(url=args.url, requestHeaders=_headers(args)))
        blob = run.blob
        if run.completed is None or not run.completed.success or blob is None:
            _discard(blob)
            return run.conclude() or ExitCode.TRANSFER_ERROR
        if args.fail and run.status_code >= 400:
            _discard(blob)
            return run.conclude(fail_on_http_error=True) or ExitCode.HTTP_ERROR
        if dest is None:  # -o -: the summary first, then the body on stdout
            run.conclude(note="written to stdout")
            try:
                _to_stdout(blob, out)
            except OSError as exc:
                out.error(f"cannot write to stdout: {exc}")
                return ExitCode.LOCAL_FILE
            out.emit({"type": "saved", "taskIdentifier": run.tid, "path": "-"})
            return ExitCode.OK
        try:
            blob.move(dest)
        except OSError as exc:
            run.conclude(note="not saved")
            out.error(f"cannot write {dest}: {exc}; the download is at {blob.nativePath}")
            return ExitCode.LOCAL_FILE
        out.emit({"type": "saved", "taskIdentifier": run.tid, "path": str(dest)})
        note = f"saved to {dest}"
        if run.status_code >= 400:
            note += f" (HTTP {run.status_code})"
        run.conclude(note=note)
        return ExitCode.OK
    finally:
        close_session(session)


def _to_stdout(blob: Blob, out: Output) -> None:
    """Stream the downloaded file to stdout, then remove it."""
    out.display.close()  # no live bar may share the terminal with the body
    try:
        f: Any = blob.open()
        with f:
            out.stdout.flush()
            shutil.copyfileobj(f, out.stdout.buffer, 1 << 20)
            out.stdout.buffer.flush()
    finally:
        _discard(blob)


def _discard(blob: Blob | None) -> None:
    if blob is not None and blob.nativePath is not None:
        with contextlib.suppress(OSError):
            os.unlink(blob.nativePath)


def upload(args: argparse.Namespace, out: Output, method: str) -> ExitCode:
    """``urlsession put|post FILE URL``: an upload task streaming FILE; prints the response."""
    session = make_session(args)
    run = TaskRun(out, session, f"{method} {Path(args.file).name}")
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
                out.error(f"cannot write {args.output}: {exc}")
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
