"""Issue 16 in a background session: metrics come from the transfer process (a real one)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from tests.unreliable.test_ratelimit_change import assert_held_steadily
from tests.with_server._util import closed_port
from tests.with_server.test_background import Transfer, _bg_session
from urlsession_module._background._client import TransferClient
from urlsession_module.exceptions import InvalidArgumentValueError
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


@pytest.mark.parametrize("eng", ["curl", "urllib3"])
def test_background_session_follows_its_retry_policy(
    eng: str,
    server: LocalServer,
    transfer: Transfer,
    recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """retryPolicy reaches the transfer process and rules there: a 503 asking for 1 s is
    retried twice (total 2), then the last 503 is the answer (the built-in rule would retry it
    until the resource timeout); a 500 the policy names is retried, which the built-in rule
    never does."""
    monkeypatch.setenv("URLSESSION_ENGINE", eng)
    session = _bg_session(retryPolicy={"total": 2, "backoffFactor": 0.1, "statusCodes": [500, 503]})
    rec = recorder(session)
    marker = uuid.uuid4().hex
    tid = session.dataTask(
        {"url": server.url(f"/bytes/10?status=503&retry_after=1&m={marker}"), "method": "GET"}
    )
    other = uuid.uuid4().hex
    tid500 = session.dataTask(
        {"url": server.url(f"/bytes/10?status=500&m={other}"), "method": "GET"}
    )
    done = rec.completed(tid, 30)
    done500 = rec.completed(tid500, 30)
    assert done.success and done.statusCode == 503, done.message
    assert len([r for r in server.requests if marker in r.path]) == 3
    assert done500.success and done500.statusCode == 500, done500.message
    assert len([r for r in server.requests if other in r.path]) == 3
    # Each retry shows in the metrics: one transaction per request the task made, in order.
    for finished in (done, done500):
        txs = finished.metrics["transactionMetrics"]
        assert len(txs) == 3
        starts = [tx["fetchStartDate"] for tx in txs]
        assert starts == sorted(starts) and starts[0] >= finished.metrics["taskInterval"]["start"]
        assert all(tx["remotePort"] == server.port for tx in txs)
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_background_session_without_a_policy_keeps_its_own_retry_rule(
    server: LocalServer, transfer: Transfer, recorder: Any
) -> None:
    """No retryPolicy: the transfer process's built-in rule, as Apple's background sessions
    retry by themselves: a 503 is tried again until the resource timeout passes (-1001), and a
    500 (not a "not now") is the answer at once."""
    session = _bg_session(timeoutIntervalForResource=3)
    rec = recorder(session)
    marker = uuid.uuid4().hex
    tid = session.dataTask(
        {"url": server.url(f"/bytes/10?status=503&retry_after=1&m={marker}"), "method": "GET"}
    )
    other = uuid.uuid4().hex
    tid500 = session.dataTask(
        {"url": server.url(f"/bytes/10?status=500&m={other}"), "method": "GET"}
    )
    done = rec.completed(tid, 30)
    done500 = rec.completed(tid500, 30)
    assert not done.success and done.errorCode == -1001, done.message
    assert len([r for r in server.requests if marker in r.path]) >= 2
    assert done500.statusCode == 500
    assert len([r for r in server.requests if other in r.path]) == 1
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def _journaled_metrics(transfer: Transfer, task_id: str) -> str | None:
    kept: str | None = transfer.journal_value("SELECT metrics FROM tasks WHERE id = ?", task_id)
    return kept


def test_background_metrics_keep_the_attempts_before_a_restart(
    transfer: Transfer, recorder: Any
) -> None:
    """An attempt refused by a port that is not listening yet is journaled with its metrics;
    the transfer process is SIGKILLed, and the one that recovers the task finishes it: the
    task's metrics still list the refused attempt, before the request that got the answer."""
    port = closed_port()
    session = _bg_session()
    rec = recorder(session)
    tid = session.downloadTask({"url": f"http://127.0.0.1:{port}/bytes/1000"})
    deadline = time.monotonic() + 20
    while _journaled_metrics(transfer, tid) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    kept = _journaled_metrics(transfer, tid)
    assert kept is not None, "the refused attempt was not journaled"
    transfer.kill()
    late = LocalServer(port=port)
    late.start()
    try:
        done = rec.completed(tid, 30)
    finally:
        late.stop()
    assert done.success and done.statusCode == 200, done.message
    txs = done.metrics["transactionMetrics"]
    assert len(txs) >= 2
    assert txs[0] == json.loads(kept)["transactionMetrics"][0]  # the refused one, as journaled
    assert txs[0]["responseStartDate"] is None
    assert txs[-1]["remotePort"] == port and txs[-1]["responseStartDate"] is not None
    assert done.metrics["taskInterval"]["start"] == json.loads(kept)["taskInterval"]["start"]
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


@pytest.mark.parametrize("eng", ["curl", "urllib3"])
def test_background_session_rate_changes_while_its_task_runs(
    eng: str,
    server: LocalServer,
    transfer: Transfer,
    recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """setMaximumBytesPerSecond reaches the transfer process: a download that started
    unlimited (the server sends 1 MB/s) is held to 64 KiB/s within a second, and raised
    again it ends; the journal keeps the session's last rate."""
    monkeypatch.setenv("URLSESSION_ENGINE", eng)
    session = _bg_session()
    rec = recorder(session)
    written = [0]
    heard: list[float] = []

    def progress(e: Any) -> None:
        written[0] = e.totalBytesWritten
        heard.append(time.monotonic())

    session.addEventListener("downloadprogress", progress)
    tid = session.downloadTask({"url": server.url(f"/bytes/{4 * 1000 * 1000}?rate=1000000")})
    deadline = time.monotonic() + 20
    while written[0] < 300_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert written[0] >= 300_000
    session.setMaximumBytesPerSecond(64 * 1024)
    since = time.monotonic()
    time.sleep(1.0)
    before = written[0]
    time.sleep(2.0)
    assert_held_steadily(written[0] - before, heard, since)  # unlimited it would be 2 MB
    session.setMaximumBytesPerSecond(None)
    done = rec.completed(tid, 20)
    assert done.success, done.message
    assert session.configuration.maximumBytesPerSecond is None
    config = transfer.journal_value(
        "SELECT config FROM sessions WHERE identifier = ?", "com.test.bg"
    )
    assert "maximumBytesPerSecond" in json.loads(config)
    assert json.loads(config)["maximumBytesPerSecond"] is None
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)


def test_background_session_rate_is_checked_at_the_call(transfer: Transfer) -> None:
    """A bad rate is refused in the host, naming the argument; the session keeps its rate."""
    session = _bg_session(maximumBytesPerSecond=1024 * 1024)
    with pytest.raises(InvalidArgumentValueError) as info:
        session.setMaximumBytesPerSecond(0)
    assert info.value.argument == "maximumBytesPerSecond"  # type: ignore[attr-defined]
    assert session.configuration.maximumBytesPerSecond == 1024 * 1024
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)
    # Once invalidated, the session has let go of the transfer process: a new rate is only
    # its own (no connection made again to send it).
    clients = list(TransferClient._instances.values())
    connected = [c._conn is not None for c in clients]
    session.setMaximumBytesPerSecond(2048)
    assert session.configuration.maximumBytesPerSecond == 2048
    assert [c._conn is not None for c in clients] == connected
