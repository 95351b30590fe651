"""Listener abuse: raising, slow, re-entrant and self-modifying listeners during real transfers."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import ErrorCode, SessionInvalidatedError
from urlsession_module.testing import LocalServer, content_sha256

from ._checks import check_end, settle
from .conftest import MakeRecorder, MakeSession, size

E = ErrorCode
NAMES = ("downloadprogress", "uploadprogress", "downloadcompleted", "sessioncompleted")


def _sha_of(event: Any) -> str:
    import hashlib

    with open(event.data.nativePath, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_raising_listeners_everywhere_break_nothing(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Listeners that raise on every event, on task, session and module: all transfers correct."""
    session = make_session()

    def boom(e: Any) -> None:
        raise RuntimeError(f"listener failure on {e.type}")

    for name in NAMES:
        session.addEventListener(name, boom)
        URLSession.addEventListener(name, boom)
    rec = recorder(session)
    caplog.set_level(logging.ERROR, logger="urlsession_module")
    downloads = [session.downloadTask(url=server.url(f"/bytes/{200_000 + i}")) for i in range(4)]
    uploads = [session.uploadTask(url=server.url("/upload"), data=b"u" * 300_000)]
    for tid in downloads:
        session.getTask(tid).addEventListener("downloadprogress", boom)
    for tid in downloads + uploads:
        check_end(rec, session, tid, E.OK, status=200)
    for i, tid in enumerate(downloads):
        (completed,) = rec.of(tid, "downloadcompleted")
        assert _sha_of(completed) == content_sha256(200_000 + i)
    assert any("listener failure" in r.getMessage() or r.exc_info for r in caplog.records)


def test_listener_calling_sys_exit_does_not_wedge_the_session(
    server: LocalServer, recorder: MakeRecorder
) -> None:
    """A listener that raises SystemExit is logged like any other; delivery goes on."""
    # Not make_session: should this regress, a wedged session could not finish invalidating
    # and make_session's teardown would wait for it; this bounds the wait instead.
    session = URLSession.createSession(configuration=URLSession.createSessionConfiguration())
    rec = recorder(session)
    fired: list[str] = []

    def leave(e: Any) -> None:
        if not fired:
            fired.append(e.type)
            raise SystemExit(3)

    session.addEventListener("sessioncompleted", leave)
    try:
        first = session.dataTask(url=server.url("/echo"), method="GET")
        assert rec.completed(first, 5).success
        second = session.dataTask(url=server.url("/echo"), method="GET")
        assert rec.completed(second, 2).success
    finally:
        session.invalidateAndCancel()
        session.waitForInvalidation(0.5)


def test_slow_listener_keeps_transfer_correct_and_memory_bounded(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, figures: Any
) -> None:
    """A listener slower than the network: the file is intact and memory stays bounded."""
    n = size(32, 256) * 1024 * 1024
    session = make_session()
    other = session.downloadTask(url=server.url("/bytes/1000"))  # not held up by the slow one
    rec = recorder(session)
    calls = [0]

    def slow(e: Any) -> None:  # far slower than the loopback network
        calls[0] += 1
        time.sleep(0.05)

    session.addEventListener("downloadprogress", slow)
    tracemalloc.start()
    try:
        started = time.monotonic()
        tid = session.downloadTask(url=server.url(f"/bytes/{n}"))
        done = check_end(rec, session, tid, E.OK, status=200, timeout=120)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (completed,) = rec.of(tid, "downloadcompleted")
    assert _sha_of(completed) == content_sha256(n)
    progress = rec.of(tid, "downloadprogress")
    assert sum(e.bytesWritten for e in progress) == n == progress[-1].totalBytesWritten
    assert done.statusCode == 200
    check_end(rec, session, other, E.OK, status=200)
    figures("slow listener: body", n // (1024 * 1024), "MiB")
    figures("slow listener: progress events", calls[0])
    figures("slow listener: wall time", round(elapsed, 2), "s")
    figures("slow listener: peak traced memory", round(peak / (1024 * 1024), 1), "MiB")
    assert peak < 24 * 1024 * 1024  # the body never piles up in memory, whatever n is


def test_slow_sessioncompleted_listener_with_many_tasks(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A sessioncompleted listener taking 20 ms each: 40 tasks still end once each, in order."""
    session = make_session()
    rec = recorder(session)
    session.addEventListener("sessioncompleted", lambda e: time.sleep(0.02))
    ids = [session.dataTask(url=server.url(f"/echo?i={i}"), method="GET") for i in range(40)]
    for tid in ids:
        check_end(rec, session, tid, E.OK, status=200)


@pytest.mark.parametrize("event", ["downloadprogress", "downloadcompleted", "sessioncompleted"])
def test_invalidate_and_cancel_from_inside_a_listener(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    event: str,
) -> None:
    """invalidateAndCancel() re-entrantly from a listener: each task ends once; no deadlock."""
    session = make_session()
    rec = recorder(session)
    once: list[str] = []
    created = threading.Event()

    def invalidate(e: Any) -> None:
        if not once:
            once.append(e.taskIdentifier)
            # A loaded machine can deliver the first event before the test made its last task:
            # invalidating then would refuse that call, which is not what this test is about.
            created.wait(10)
            session.invalidateAndCancel()
            session.invalidateAndCancel()  # twice: the second is a no-op

    session.addEventListener(event, invalidate)
    ids = [session.downloadTask(url=server.url("/bytes/3000000?rate=6000000")) for _ in range(3)]
    ids.append(session.downloadTask(url=server.url("/bytes/1000")))
    created.set()
    assert session.waitForInvalidation(15)
    for tid in ids:
        (done,) = rec.of(tid, "sessioncompleted")
        assert done.errorCode in (E.OK, E.CANCELLED)
        assert rec.of(tid)[-1].type == "sessioncompleted"
        if done.errorCode == E.CANCELLED:
            assert rec.of(tid, "downloadcompleted") == []
    assert any(rec.of(t, "sessioncompleted")[0].errorCode == E.CANCELLED for t in ids[:3])
    with pytest.raises(SessionInvalidatedError):
        session.dataTask(url=server.url("/echo"))


def test_finish_and_invalidate_from_a_listener_then_new_task_refused(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """finishTasksAndInvalidate() in a listener lets the rest finish; a task started after raises."""
    session = make_session()
    rec = recorder(session)
    raised: list[BaseException] = []

    def on_done(e: Any) -> None:
        session.finishTasksAndInvalidate()
        try:
            session.dataTask(url=server.url("/echo"))
        except SessionInvalidatedError as exc:
            raised.append(exc)

    session.addEventListener("sessioncompleted", on_done)
    ids = [session.dataTask(url=server.url(f"/slow?delay=0.{i}"), method="GET") for i in range(4)]
    assert session.waitForInvalidation(15)
    for tid in ids:
        assert [e.type for e in rec.of(tid)] == ["sessioncompleted"]
        assert rec.of(tid, "sessioncompleted")[0].success
    assert raised and all(getattr(x, "argument", None) == "session" for x in raised)


def test_tasks_started_from_listeners_chain_to_the_end(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Each sessioncompleted starts the next task, 15 deep, from the delivery thread."""
    session = make_session()
    rec = recorder(session)
    chain: list[str] = []
    finished = threading.Event()

    def next_one(e: Any) -> None:
        if len(chain) < 15:
            chain.append(session.downloadTask(url=server.url(f"/bytes/{1000 + len(chain)}")))
        else:
            finished.set()

    session.addEventListener("sessioncompleted", next_one)
    chain.append(session.downloadTask(url=server.url("/bytes/999")))
    assert finished.wait(20)
    for tid in chain:
        check_end(rec, session, tid, E.OK, status=200)


def test_listener_cancels_its_own_task_mid_download(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """task.cancel() from the task's own progress listener: -999 once, no file left."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/bytes/4000000?rate=4000000"))
    task = session.getTask(tid)
    task.addEventListener("downloadprogress", lambda e: e.source.cancel())
    check_end(rec, session, tid, E.CANCELLED)


def test_listener_suspends_and_resumes_re_entrantly(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """suspend()+resume() from inside every progress event: the download is still intact."""
    n = 2_000_000
    session = make_session()
    rec = recorder(session)

    def toggle(e: Any) -> None:
        e.source.suspend()
        e.source.resume()

    tid = session.downloadTask(url=server.url(f"/bytes/{n}?rate=8000000"))
    session.getTask(tid).addEventListener("downloadprogress", toggle)
    check_end(rec, session, tid, E.OK, status=200)
    (completed,) = rec.of(tid, "downloadcompleted")
    assert _sha_of(completed) == content_sha256(n)


def test_listeners_added_and_removed_while_delivering(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Self-removing, sibling-removing and listener-adding listeners: sane, no error, no hang."""
    session = make_session()
    rec = recorder(session)
    seen: dict[str, list[str]] = {"once": [], "late": [], "victim": [], "adder": []}

    def once(e: Any) -> None:
        seen["once"].append(e.type)
        session.removeEventListener("downloadprogress", once)

    def late(e: Any) -> None:
        seen["late"].append(e.type)

    def victim(e: Any) -> None:
        seen["victim"].append(e.type)

    def killer(e: Any) -> None:
        session.removeEventListener("downloadprogress", victim)
        session.removeEventListener("downloadprogress", killer)
        session.removeEventListener("no-such-event", killer)  # unknown: a no-op

    def adder(e: Any) -> None:
        seen["adder"].append(e.type)
        session.addEventListener("sessioncompleted", late)
        session.addEventListener("sessioncompleted", late)  # twice: registered once

    for fn in (once, killer, victim):
        session.addEventListener("downloadprogress", fn)
    session.addEventListener("downloadcompleted", adder)
    tid = session.downloadTask(url=server.url("/bytes/3000000?rate=12000000"))
    check_end(rec, session, tid, E.OK, status=200)
    assert seen["once"] == ["downloadprogress"]
    assert len(seen["victim"]) <= 1  # at most the event during which it was removed
    assert seen["adder"] == ["downloadcompleted"]
    assert seen["late"] == ["sessioncompleted"]  # added before sessioncompleted, called once


def test_listener_churn_from_another_thread_during_transfers(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A thread adding and removing listeners non-stop while 8 downloads deliver: all correct."""
    session = make_session()
    rec = recorder(session)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        callbacks = [lambda e, i=i: None for i in range(20)]
        try:
            while not stop.is_set():
                for cb in callbacks:
                    session.addEventListener("downloadprogress", cb)
                    session.addEventListener("sessioncompleted", cb)
                for cb in callbacks:
                    session.removeEventListener("downloadprogress", cb)
                    session.removeEventListener("sessioncompleted", cb)
        except BaseException as exc:  # reported below
            errors.append(exc)

    churner = threading.Thread(target=churn, name="urlsession-test-churn", daemon=True)
    churner.start()
    try:
        ids = {
            session.downloadTask(url=server.url(f"/bytes/{500_000 + i}?rate=8000000")): i
            for i in range(8)
        }
        for tid, i in ids.items():
            check_end(rec, session, tid, E.OK, status=200)
            (completed,) = rec.of(tid, "downloadcompleted")
            assert _sha_of(completed) == content_sha256(500_000 + i)
    finally:
        stop.set()
        churner.join(5)
    assert errors == []


def test_wait_for_tasks_inside_a_listener_is_bounded(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """waitForTasks(timeout) called on the delivery thread returns False instead of deadlocking."""
    session = make_session()
    rec = recorder(session)
    answers: list[bool] = []

    def wait_inside(e: Any) -> None:
        if not answers:
            answers.append(session.waitForTasks(0.3))

    session.addEventListener("downloadprogress", wait_inside)
    tid = session.downloadTask(url=server.url("/bytes/2000000?rate=8000000"))
    check_end(rec, session, tid, E.OK, status=200)
    assert answers == [False]
    settle(session)
