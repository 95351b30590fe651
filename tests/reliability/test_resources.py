"""Resources: sessions created, used and invalidated leave no thread, descriptor or process."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import ErrorCode
from urlsession_module.testing import FaultServer, LocalServer

from .conftest import size

E = ErrorCode


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def child_processes() -> list[str]:
    children: list[str] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                children += f.read().split()
        except OSError:
            pass
    return children


def session_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("urlsession-")]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def _settle(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _use(session: Any, server: LocalServer, i: int) -> list[str]:
    return [
        session.dataTask(url=server.url("/echo"), data={"i": i}),
        session.downloadTask(url=server.url(f"/bytes/{1000 + i % 7}")),
        session.uploadTask(url=server.url("/upload"), data=b"u" * 2000),
    ]


def run_sessions(server: LocalServer, n: int) -> dict[str, Any]:
    """Create, use and invalidate ``n`` sessions; count what is left behind."""
    warm = URLSession.createSession(configuration=URLSession.createSessionConfiguration())
    _use(warm, server, 0)
    assert warm.waitForTasks(10)
    warm.finishTasksAndInvalidate()
    assert warm.waitForInvalidation(10)
    assert _settle(lambda: not session_threads(), 5)
    fds, children, rss = open_fds(), child_processes(), rss_mib()
    started = time.monotonic()
    lingering = 0
    for i in range(n):
        kind = ("default", "ephemeral")[i % 2]
        cfg = URLSession.createSessionConfiguration(type=kind)
        session = URLSession.createSession(configuration=cfg)
        ids = _use(session, server, i)
        if i % 3 == 2:  # some are cancelled while running
            session.invalidateAndCancel()
        else:
            assert session.waitForTasks(10)
            session.finishTasksAndInvalidate()
        assert session.waitForInvalidation(10)
        assert len(ids) == 3
        lingering = max(lingering, len(session_threads()))
    elapsed = time.monotonic() - started
    threads_gone = _settle(lambda: not session_threads(), 5)
    # Server-side sockets of the (in-process) local server close when it sees the clients go.
    fds_back = _settle(lambda: open_fds() <= fds, 5)
    return {
        "sessions": n,
        "seconds": round(elapsed, 2),
        "threads_left": session_threads(),
        "threads_gone": threads_gone,
        "max_threads_right_after_invalidation": lingering,
        "fds_before": fds,
        "fds_after": open_fds(),
        "fds_back": fds_back,
        "children_before": children,
        "children_after": child_processes(),
        "rss_growth_mib": round(rss_mib() - rss, 1),
    }


def test_sessions_created_used_and_invalidated_leave_nothing(
    server: LocalServer, figures: Any
) -> None:
    """N sessions (50 in CI, 1000 in the full form), each with 3 tasks: no thread, fd or child."""
    n = size(50, 1000)
    result = run_sessions(server, n)
    figures("sessions created, used, invalidated", result["sessions"])
    figures("time for all sessions", result["seconds"], "s")
    figures("open fds before / after", f"{result['fds_before']} / {result['fds_after']}")
    figures("session threads left", len(result["threads_left"]))
    figures(
        "child processes before / after",
        f"{len(result['children_before'])} / {len(result['children_after'])}",
    )
    figures("RSS growth", result["rss_growth_mib"], "MiB")
    assert result["threads_gone"], result["threads_left"]
    assert result["fds_back"], (result["fds_before"], result["fds_after"])
    assert result["children_after"] == result["children_before"]


def test_no_session_thread_is_alive_once_invalidation_returns(server: LocalServer) -> None:
    """When waitForInvalidation() returns True, the session's threads are already gone."""
    session = URLSession.createSession(configuration=URLSession.createSessionConfiguration())
    session.dataTask(url=server.url("/echo"))
    assert session.waitForTasks(10)
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)
    assert session_threads() == []


def test_idle_connection_closed_by_invalidation_itself(recorder: Any) -> None:
    """After a failed redirect hop, invalidation closes the pooled connection (no GC needed)."""
    from tests.with_server._util import closed_port

    gc.collect()
    gc.disable()  # the garbage collector must not be what closes it
    try:
        with FaultServer() as faults:
            session = URLSession.createSession(
                configuration=URLSession.createSessionConfiguration()
            )
            rec = recorder(session)
            target = f"http://127.0.0.1:{closed_port()}/gone"
            tid = session.dataTask(url=faults.url("redirect", to=target), method="GET")
            assert rec.completed(tid, 10).errorCode == E.CANNOT_CONNECT_TO_HOST
            session.finishTasksAndInvalidate()
            assert session.waitForInvalidation(10)
            assert _settle(lambda: faults.open_connections == 0, 2.0)
    finally:
        gc.enable()
        gc.collect()


# The pool lookup is urllib3's (on curl: test_reset_spares_a_running_download).
@pytest.mark.engine("urllib3")
def test_flush_while_a_task_starts_does_not_fail_it(
    server: LocalServer, recorder: Any, make_session: Any
) -> None:
    """flush() landing between a task's pool lookup and its request: the task still succeeds."""
    session = make_session()
    rec = recorder(session)
    manager = session._transport.engine._pool
    lookup = manager.connection_from_host

    def lookup_then_flush(*args: Any, **kwargs: Any) -> Any:
        pool = lookup(*args, **kwargs)
        session.flush()  # the user's flush() lands here, deterministically
        return pool

    manager.connection_from_host = lookup_then_flush
    tid = session.dataTask(url=server.url("/echo"), method="GET")
    done = rec.completed(tid, 10)
    assert (done.errorCode, done.message) == (E.OK, "")
