"""Destination faults: disk full, directory not writable or gone → -3000s, no partial file.

A full disk and a read-only directory are made for real where the kernel lets us (a tmpfs or a
read-only bind mount, in a private mount namespace of a child process, so nothing can leak into
the host); elsewhere the child falls back to RLIMIT_FSIZE (which binds root too) and to a
directory that is not a directory.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from urlsession_module import ErrorCode
from urlsession_module.testing import LocalServer, content_sha256

from ._checks import check_end
from .conftest import MakeRecorder, MakeSession

E = ErrorCode
ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def can_mount() -> bool:
    """Whether a child may mount a tmpfs in its own mount namespace (root, unshare, no seccomp)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = tempfile.mkdtemp(prefix="urlsession-mount-probe-")
    try:
        result = subprocess.run(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "mount",
                "-t",
                "tmpfs",
                "-o",
                "size=4k",
                "tmpfs",
                probe,
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def run_child(home: Path, urls: list[str], *, mount: str | None, fsize: int | None) -> Any:
    """Run the downloads in a child (in its own mount namespace if it mounts); its JSON report."""
    args = json.dumps({"urls": urls, "mount": mount, "fsize": fsize})
    cmd = [sys.executable, "-m", "tests.reliability._child", args]
    if mount:
        cmd = ["unshare", "-m", "--propagation", "private", *cmd]
    env = dict(os.environ, URLSESSION_HOME=str(home))
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["finished"] is True, report
    for tid in report["ids"]:  # exactly one sessioncompleted per task, and last
        types = [e["type"] for e in report["events"][tid]]
        assert types.count("sessioncompleted") == 1 and types[-1] == "sessioncompleted", types
    return report


def _ends(report: Any, tid: str) -> Any:
    return report["events"][tid][-1]


def test_disk_full_reports_minus_3003_and_leaves_no_file(
    server: LocalServer, tmp_path: Path, figures: Any
) -> None:
    """A download that fills the disk (a 256 KiB tmpfs, else RLIMIT_FSIZE) fails with -3003."""
    mounted = can_mount()
    figures("disk-full method", "tmpfs" if mounted else "RLIMIT_FSIZE")
    report = run_child(
        tmp_path / "home",
        [server.url("/bytes/2000000")],
        mount="tmpfs:256k" if mounted else None,
        fsize=None if mounted else 256 * 1024,
    )
    (tid,) = report["ids"]
    done = _ends(report, tid)
    assert (done["success"], done["errorCode"]) == (False, E.CANNOT_WRITE_TO_FILE), done
    assert "could not be written" in done["message"]
    assert [e["type"] for e in report["events"][tid]] == ["sessioncompleted"]
    assert report["left"] == {}


def test_disk_filling_up_under_parallel_downloads(server: LocalServer, tmp_path: Path) -> None:
    """Five parallel downloads into 1 MiB: the ones that fit are intact, the rest -3003, no debris."""
    sizes = [300_000 + i for i in range(5)]
    mounted = can_mount()
    report = run_child(
        tmp_path / "home",
        [server.url(f"/bytes/{n}?rate=2000000") for n in sizes],
        mount="tmpfs:1m" if mounted else None,
        fsize=None if mounted else 250_000,  # per file: then every one of them fails
    )
    failed, delivered = 0, {}
    for tid, n in zip(report["ids"], sizes, strict=True):
        events = report["events"][tid]
        done = events[-1]
        if done["success"]:
            (completed,) = [e for e in events if e["type"] == "downloadcompleted"]
            assert completed["sha256"] == content_sha256(n)
            delivered[os.path.basename(completed["path"])] = n
        else:
            failed += 1
            assert done["errorCode"] == E.CANNOT_WRITE_TO_FILE, done
            assert [e["type"] for e in events] == ["sessioncompleted"]
    assert failed >= 1
    assert report["left"] == delivered  # only whole, handed-over files remain


def test_read_only_download_directory_reports_minus_3000(
    server: LocalServer, tmp_path: Path, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A download directory that cannot be written (read-only mount, else a file) → -3000."""
    if can_mount():
        report = run_child(
            tmp_path / "home", [server.url("/bytes/100000")], mount="ro-bind", fsize=None
        )
        (tid,) = report["ids"]
        done = _ends(report, tid)
        assert (done["success"], done["errorCode"]) == (False, E.CANNOT_CREATE_FILE), done
        assert report["left"] == {}
        return
    session = make_session()
    rec = recorder(session)
    directory = Path(session.downloadDirectory)
    if os.geteuid() != 0:
        directory.chmod(0o500)  # permissions bind everyone but root
    else:
        directory.rmdir()
        directory.write_bytes(b"")  # root ignores permissions: a file where the directory was
    try:
        tid = session.downloadTask(url=server.url("/bytes/100000"))
        done = rec.completed(tid)
        assert (done.success, done.errorCode) == (False, E.CANNOT_CREATE_FILE)
    finally:
        if directory.is_dir():
            directory.chmod(0o700)


def test_download_directory_removed_mid_transfer(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The download directory deleted under a running download: a -3000s failure, once."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/bytes/2000000?rate=4000000"))
    rec.wait_for(lambda evs: any(e.type == "downloadprogress" for e in evs), 10)
    shutil.rmtree(session.downloadDirectory)
    done = rec.completed(tid, 15)
    assert not done.success and -3999 <= done.errorCode <= -3000, (done.errorCode, done.message)
    assert rec.of(tid, "downloadcompleted") == []
    time.sleep(0.05)
    assert [e.type for e in rec.of(tid)][-1] == "sessioncompleted"


def test_many_downloads_into_one_directory_leave_only_their_files(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Failed and cancelled downloads among good ones leave exactly the good ones' files."""
    session = make_session()
    rec = recorder(session)
    good = [session.downloadTask(url=server.url(f"/bytes/{50_000 + i}")) for i in range(6)]
    broken = [
        session.downloadTask(url=server.url("/drop?length=400000&after=100000")) for _ in range(3)
    ]
    slow = session.downloadTask(url=server.url("/bytes/4000000?rate=1000000"))
    rec.wait_for(lambda evs: any(e.get("taskIdentifier") == slow for e in evs), 10)
    session.getTask(slow).cancel()
    for tid in good:
        check_end(rec, session, tid, E.OK, status=200)
    for tid in broken:
        check_end(rec, session, tid, E.NETWORK_CONNECTION_LOST, status=200)
    check_end(rec, session, slow, E.CANCELLED)
    assert len(os.listdir(session.downloadDirectory)) == len(good)


@pytest.mark.parametrize("then", ["cancel", "invalidateAndCancel"])
def test_download_cancelled_after_its_file_was_finished_leaves_no_file(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    then: str,
) -> None:
    """A download suspended just as its file is finished, then cancelled: -999 and no file left."""
    session = make_session()
    rec = recorder(session)
    real_replace = os.replace
    suspended: list[str] = []

    def replace_then_suspend(src: Any, dst: Any) -> None:
        # The user's suspend() lands in the window between the file being put in place and
        # downloadcompleted (found by the interleaving property test; made deterministic here).
        real_replace(src, dst)
        for task in session.tasks:
            if str(dst).endswith("-2000") and task.state == "running":
                task.suspend()
                suspended.append(task.taskIdentifier)

    setattr(os, "replace", replace_then_suspend)  # noqa: B010 (the transport's os.replace)
    try:
        tid = session.downloadTask(url=server.url("/bytes/2000"))
        deadline = time.monotonic() + 5
        while not suspended and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        setattr(os, "replace", real_replace)  # noqa: B010
    assert suspended == [tid]
    if then == "cancel":
        session.getTask(tid).cancel()
    else:
        session.invalidateAndCancel()
    check_end(rec, session, tid, E.CANCELLED)


def test_cancel_after_downloadcompleted_does_not_fail_the_task(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """cancel() between downloadcompleted and the end is ignored: the task ends with success."""
    from urlsession_module._state import DownloadFinished

    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/bytes/3000"), earliestBeginDate=time.time() + 0.3)
    task = session.getTask(tid)
    run = task._run
    feed = run.feed

    def feed_then_cancel(event: Any) -> None:
        # The user's cancel() lands right after the file was handed over (deterministically).
        feed(event)
        if isinstance(event, DownloadFinished):
            task.cancel()

    run.feed = feed_then_cancel
    done = check_end(rec, session, tid, E.OK, status=200)
    assert rec.of(tid, "downloadcompleted") and done.success
