"""Issue 16 in a background session: metrics come from the transfer process (a real one)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.with_server.test_background import Transfer, _bg_session
from urlsession_module.testing import LocalServer


@pytest.mark.parametrize("eng", ["curl", "urllib3"])
def test_background_task_reports_metrics(
    eng: str,
    server: LocalServer,
    transfer: Transfer,
    recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The transfer process measures the task; the host's sessioncompleted and Task.metrics
    carry the same record, a redirect hop included."""
    monkeypatch.setenv("URLSESSION_ENGINE", eng)
    session = _bg_session()
    rec = recorder(session)
    tid = session.downloadTask({"url": server.url("/redirect-to?url=/bytes/3000")})
    done = rec.completed(tid, 30)
    assert done.success, done.message
    m = done.metrics
    json.dumps(m)
    assert m["redirectCount"] == 1
    assert len(m["transactionMetrics"]) == 2
    assert m["transactionMetrics"][-1]["remotePort"] == server.port
    task = session.getTask(tid)
    assert task is not None and task.metrics == m
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_background_task_waits_for_connectivity_and_says_so_once(
    transfer: Transfer, recorder: Any
) -> None:
    """A background session always waits: a port that listens 2 s late gets the task, and the
    host hears waitingforconnectivity once, before sessioncompleted."""
    probe = LocalServer()
    probe.start()
    port = probe.port
    probe.stop()
    session = _bg_session()
    rec = recorder(session)
    late = LocalServer(port=port)
    timer = threading.Timer(2.0, late.start)
    tid = session.downloadTask({"url": f"http://127.0.0.1:{port}/bytes/1000"})
    timer.start()
    try:
        done = rec.completed(tid, 30)
    finally:
        timer.join(5)
        late.stop()
    assert done.success and done.statusCode == 200, done.message
    waiting = rec.of(tid, "waitingforconnectivity")
    assert len(waiting) == 1 and waiting[0].errorCode == -1004
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)
