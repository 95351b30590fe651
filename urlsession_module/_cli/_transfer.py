"""``get``, ``put``/``post`` and ``demo``: one task per session, watched from the main thread.

Each command makes a session whose ``delegateQueue`` is an :class:`~urlsession_module.EventQueue`
drained by the main thread (``waitForTasks``), so listeners run here, one at a time, after the
task's identifier is known. Ctrl-C lands in that wait: the task is cancelled, its -999
``sessioncompleted`` is awaited (bounded), and the command exits 130.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .._types import DownloadTaskArgs
from ._common import (
    ExitCode,
    Output,
    UsageError,
    describe_os_error,
)
from ._files import (
    StdoutStream,
    check_output,
    check_upload_file,
    current_umask,
    default_name,
    destination,
    discard_blob,
    request_headers,
    save,
    size,
    stdout_gone,
    to_stdout,
)
from ._run import TaskRun, close_session, make_session
from ._unreliable import keep_resume_data, show_timing, stored_resume_data

__all__ = ["demo", "get", "upload"]


def get(args: argparse.Namespace, out: Output) -> ExitCode:
    """``urlsession get URL [-o FILE]``: a download task, saved where asked."""
    if args.output == "-" and out.json:
        raise UsageError("-o - writes the body to stdout, which --json needs for events")
    dest = destination(args.url, args.output)  # an OSError here: exit 5, nothing fetched
    umask = current_umask()
    session = make_session(args)
    label = f"GET {dest.name if dest is not None else default_name(args.url)}"  # the saved name
    run = TaskRun(out, session, label, verbose=args.verbose > 0)
    stream: StdoutStream | None = None
    if dest is None and session.identifier is None:
        # -o - streams the body as it arrives. Not for a background session: its transfer
        # process may start a download over after a retry, and stdout cannot take bytes back.
        stream = StdoutStream(run, out, args.fail)
        run.on_progress = stream.on_progress
    try:
        resume = stored_resume_data(args, dest)  # -C - (issue 16)
        task_args: DownloadTaskArgs = {"url": args.url, "requestHeaders": request_headers(args)}
        if resume is not None:
            task_args["resumeData"] = resume
        run.run(lambda: session.downloadTask(task_args))
        keep_resume_data(args, dest, run.completed)
        if getattr(args, "timing", False):
            show_timing(out, run.completed)
        blob = run.blob
        if stream is not None and stream.closed:
            discard_blob(blob)
            if stream.error is None:  # the reader had enough (| head): quietly
                return ExitCode.OK
            out.error(f"cannot write to stdout: {describe_os_error(stream.error, with_path=False)}")
            return ExitCode.LOCAL_FILE
        if run.completed is None or not run.completed.success or blob is None:
            discard_blob(blob)
            return run.conclude() or ExitCode.TRANSFER_ERROR
        if args.fail and run.status_code >= 400:
            discard_blob(blob)
            return run.conclude(fail_on_http_error=True) or ExitCode.HTTP_ERROR
        if dest is None:  # -o -: the rest of the body (all of it when not streamed)
            try:
                if stream is not None:
                    stream.finish(blob)
                else:
                    out.display.close()  # no live bar may share the terminal with the body
                    to_stdout(blob, out)
            except BrokenPipeError:
                stdout_gone()
                return ExitCode.OK
            except OSError as exc:
                run.conclude(note="not written")
                out.error(f"cannot write to stdout: {describe_os_error(exc, with_path=False)}")
                return ExitCode.LOCAL_FILE
            finally:
                discard_blob(blob)
            run.conclude(note="written to stdout")
            out.emit({"type": "saved", "taskIdentifier": run.tid, "path": "-"})
            return ExitCode.OK
        try:
            save(blob, dest, umask)
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


def upload(args: argparse.Namespace, out: Output, method: str) -> ExitCode:
    """``urlsession put|post FILE URL``: an upload task streaming FILE; prints the response."""
    check_upload_file(args.file)  # exit 2: a usage error
    check_output(args.output)  # an OSError: exit 5, before anything is sent
    session = make_session(args)
    run = TaskRun(out, session, f"{method} {Path(args.file).name}", verbose=args.verbose > 0)
    try:
        run.run(
            lambda: session.uploadTask(
                url=args.url,
                data=str(args.file),
                method=method,
                requestHeaders=request_headers(args),
            ),
            total=size(args.file),
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
            discard_blob(blob)
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
