"""Issue 16 in background sessions, against a real transfer process: resume data (a failed
download's, ``cancelByProducingResumeData``'s, continued by the same or a relaunched host),
per-task and session bandwidth limits, and retryPolicy's count surviving a restart."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from tests.with_server.test_background import Transfer, _bg_session, _wait
from urlsession_module.exceptions import InvalidArgumentValueError
from urlsession_module.testing import FaultServer, LocalServer, content_sha256
from urlsession_module.testing._content import content_bytes
from urlsession_module.testing._scenarios import FLAKY_SHIFT

ENGINES = pytest.mark.parametrize("eng", ["curl", "urllib3"])
KiB = 1024


def _journal_row(home: Path, task_id: str, *columns: str) -> tuple[Any, ...] | None:
    """The task's journaled columns (None until the hand-over is journaled)."""
    db = sqlite3.connect(f"file:{home / 'journal.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute(f"SELECT {', '.join(columns)} FROM tasks WHERE id = ?", (task_id,))
        found = row.fetchone()
    finally:
        db.close()
    return None if found is None else tuple(found)


def _close(session: Any) -> None:
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


@ENGINES
@pytest.mark.parametrize("changes", [0, 1], ids=["same", "changed"])
def test_failed_background_download_resumes_in_a_relaunched_host(
    eng: str,
    changes: int,
    faults: FaultServer,
    transfer: Transfer,
    recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host hands a download over and exits; every attempt of the transfer process meets an
    RST after some bytes (it resumes each from the partial file) until the resource timeout
    passes: the failure is journaled with resumeData. A relaunched host reads it from the
    replay and continues with Range + If-Range: the file is exactly the resource, the new
    version when it changed meanwhile."""
    monkeypatch.setenv("URLSESSION_ENGINE", eng)
    n, after = 600_000, 60_000
    key = uuid.uuid4().hex
    url = faults.url("flaky-download", length=n, after=after, key=key, changes=changes, fail=3)
    script = textwrap.dedent(
        f"""
        import os
        import urlsession_module as URLSession
        cfg = URLSession.createSessionConfiguration(
            {{'identifier': 'com.test.bg', 'timeoutIntervalForResource': 2}})
        session = URLSession.createSession({{'configuration': cfg}})
        print(session.downloadTask({{'url': {url!r}}}), flush=True)
        session.flush()
        os._exit(0)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    tid = out.stdout.strip()
    transfer.pid()
    _wait(lambda: transfer.task_state(tid) == "completed", 30, "the download to fail")
    failed_tries = len([r for r in faults.requests if key in r.target])

    rec = recorder(URLSession)  # the replay comes while the session is made
    session = _bg_session()
    failed = rec.completed(tid, 20)
    assert not failed.success and failed.errorCode in (-1005, -1001), failed.message
    assert isinstance(failed.resumeData, str)
    again = session.downloadTask({"resumeData": failed.resumeData})
    done = rec.completed(again, 30)
    assert done.success, done.message
    data = rec.of(again, "downloadcompleted")[0].data.read()
    assert (
        hashlib.sha256(data).digest()
        == hashlib.sha256(content_bytes(n, FLAKY_SHIFT * changes)).digest()
    )
    tries = [r for r in faults.requests if key in r.target]
    resumed = tries[failed_tries]  # the relaunched host's first request
    assert int(resumed.headers["range"][6:-1]) >= after
    assert resumed.headers["if-range"] == f'"v{changes}"'
    assert all("range" in r.headers for r in tries[1:])
    with pytest.raises(InvalidArgumentValueError) as info:  # used up: its file moved on
        session.downloadTask({"resumeData": failed.resumeData})
    assert info.value.argument == "resumeData"
    _close(session)


@ENGINES
def test_background_cancel_by_producing_resume_data_then_continue(
    eng: str,
    server: LocalServer,
    transfer: Transfer,
    recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cancelByProducingResumeData on a download the transfer process runs: the callback gets
    resume data before sessioncompleted (-999, which carries none), and the same host
    continues it with Range + If-Range into exactly the resource."""
    monkeypatch.setenv("URLSESSION_ENGINE", eng)
    size = 2 * 1024 * KiB
    marker = uuid.uuid4().hex
    session = _bg_session()
    rec = recorder(session)
    tid = session.downloadTask({"url": server.url(f"/bytes/{size}?rate={1024 * KiB}&m={marker}")})
    rec.wait_for(
        lambda ev: any(
            e.type == "downloadprogress"
            and e.taskIdentifier == tid
            and e.totalBytesWritten >= 300_000
            for e in ev
        ),
        20,
    )
    got: list[tuple[dict[str, Any], int]] = []
    called = threading.Event()

    def callback(answer: dict[str, Any]) -> None:
        got.append((answer, len(rec.of(tid, "sessioncompleted"))))
        called.set()

    session.getTask(tid).cancelByProducingResumeData(callback)
    assert called.wait(20)
    done = rec.completed(tid, 10)
    assert done.errorCode == -999 and "resumeData" not in done
    answer, completions_before = got[0]
    assert completions_before == 0  # the callback ran first
    data = answer["resumeData"]
    assert isinstance(data, str)
    again = session.downloadTask({"resumeData": data})
    finished = rec.completed(again, 30)
    assert finished.success, finished.message
    blob = rec.of(again, "downloadcompleted")[0].data
    assert hashlib.sha256(blob.read()).hexdigest() == content_sha256(size)
    ranged = [r for r in server.requests if marker in r.path and "range" in r.headers]
    assert len(ranged) == 1 and ranged[0].headers["if-range"]
    assert int(ranged[0].headers["range"][6:-1]) >= 300_000
    _close(session)


def test_background_cancel_of_a_finished_download_gives_none(
    server: LocalServer, transfer: Transfer, recorder: Any
) -> None:
    """As Apple: a download that already ended has nothing to resume; a plain cancel of a
    running one keeps no partial file behind."""
    session = _bg_session()
    rec = recorder(session)
    tid = session.downloadTask({"url": server.url("/bytes/1000")})
    assert rec.completed(tid, 20).success
    got: list[dict[str, Any]] = []
    called = threading.Event()
    session.getTask(tid).cancelByProducingResumeData(lambda a: (got.append(a), called.set()))
    assert called.wait(10) and got == [{"resumeData": None}]
    slow = session.downloadTask({"url": server.url(f"/bytes/{1 << 20}?rate={256 * KiB}")})
    rec.wait_for(lambda ev: any(e.type == "downloadprogress" for e in rec.of(slow)), 20)
    session.getTask(slow).cancel()
    cancelled = rec.completed(slow, 10)
    assert cancelled.errorCode == -999 and "resumeData" not in cancelled
    folder = transfer.home / "downloads"
    assert not [p for p in folder.rglob("*.part")]
    _close(session)


@ENGINES
def test_background_task_and_session_rates_pace_the_transfer_process(
    eng: str,
    server: LocalServer,
    transfer: Transfer,
    recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task's maximumBytesPerSecond crosses to the transfer process (journaled with the task)
    and paces it there, as the session's does: 768 KiB at 256 KiB/s cannot take under about
    3 s (unpaced, on 127.0.0.1, it takes milliseconds; the rate figures are the benchmark's)."""
    monkeypatch.setenv("URLSESSION_ENGINE", eng)
    size = 768 * KiB
    session = _bg_session(maximumBytesPerSecond=64 * 1024 * KiB)
    rec = recorder(session)
    start = time.monotonic()
    tid = session.downloadTask(
        {"url": server.url(f"/bytes/{size}"), "maximumBytesPerSecond": 256 * KiB}
    )
    done = rec.completed(tid, 30)
    elapsed = time.monotonic() - start
    assert done.success, done.message
    assert _journal_row(transfer.home, tid, "rate") == (256 * KiB,)
    assert elapsed >= 2.5, elapsed
    blob = rec.of(tid, "downloadcompleted")[0].data
    assert hashlib.sha256(blob.read()).hexdigest() == content_sha256(size)
    _close(session)

    limited = _bg_session("com.test.bg2", maximumBytesPerSecond=256 * KiB)
    rec2 = recorder(limited)
    start = time.monotonic()
    tid2 = limited.downloadTask({"url": server.url(f"/bytes/{size}")})
    assert rec2.completed(tid2, 30).success
    assert time.monotonic() - start >= 2.5
    _close(limited)


def test_bad_background_task_rate_is_refused_at_the_call(
    server: LocalServer, transfer: Transfer
) -> None:
    session = _bg_session()
    with pytest.raises(InvalidArgumentValueError) as info:
        session.downloadTask({"url": server.url("/bytes/1"), "maximumBytesPerSecond": 0})
    assert info.value.argument == "maximumBytesPerSecond"
    _close(session)


def test_retry_policy_count_survives_a_transfer_process_restart(
    server: LocalServer, transfer: Transfer, recorder: Any
) -> None:
    """retryPolicy total 2 against a 503 asking for 2 s: the transfer process is SIGKILLed
    while it waits for the first retry; the new one goes on counting from the journal, so the
    server sees 3 requests in all (a count that restarted would make it 4)."""
    session = _bg_session(retryPolicy={"total": 2, "statusCodes": [503]})
    rec = recorder(session)
    marker = uuid.uuid4().hex
    tid = session.dataTask(
        {"url": server.url(f"/bytes/10?status=503&retry_after=2&m={marker}"), "method": "GET"}
    )
    _wait(
        lambda: _journal_row(transfer.home, tid, "policy_retries") == (1,),
        20,
        "the first retry to be journaled",
    )
    old = transfer.kill()
    done = rec.completed(tid, 40)
    assert transfer.pid() != old
    assert done.success and done.statusCode == 503, done.message
    assert len([r for r in server.requests if marker in r.path]) == 3
    assert _journal_row(transfer.home, tid, "policy_retries") == (2,)
    _close(session)


def test_no_partial_file_is_left_after_resume_data_is_made(
    faults: FaultServer, transfer: Transfer, recorder: Any
) -> None:
    """The partial file moved into the resume folder (its data names it): nothing stays in the
    session's download folder."""
    key = uuid.uuid4().hex
    session = _bg_session(timeoutIntervalForResource=1)
    rec = recorder(session)
    url = faults.url("flaky-download", length=200_000, after=20_000, key=key, fail=100)
    tid = session.downloadTask({"url": url})
    failed = rec.completed(tid, 20)
    assert isinstance(failed.resumeData, str)
    assert not list((transfer.home / "downloads").rglob("*.part"))
    assert len(os.listdir(transfer.home / "resume")) >= 2  # the key and the partial file
    _close(session)
