"""Issue 16 in a background session: metrics come from the transfer process (a real one)."""

from __future__ import annotations

import json
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
