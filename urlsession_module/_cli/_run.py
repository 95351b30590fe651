"""One CLI task watched from the main thread: its events, its heads for ``-v``, its exit code.

The session's ``delegateQueue`` is an ``EventQueue`` drained by the main thread, so listeners run
here; Ctrl-C lands in the wait, cancels the task and waits (bounded) for its -999.
"""

import argparse
import contextlib
from collections.abc import Callable

import urlsession_module as URLSession

from .._storage import Blob
from ._common import (
    ExitCode,
    Output,
    event_to_json,
    plain_transfer_error,
    secure_props,
)
from ._unreliable import session_props

__all__ = ["CANCEL_WAIT", "QUIET_NOTE", "TaskRun", "close_session", "make_session"]

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
    secure_props(args, props)  # --proxy, --noproxy, --cert, --key, --pinnedpubkey
    session_props(args, props)  # --limit-rate, --retry (issue 16)
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
