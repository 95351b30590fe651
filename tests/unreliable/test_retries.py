"""retryPolicy on both engines against the fault server: 503 + Retry-After, a reset mid-body
resumed with Range, a resource that changed, what is never retried."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from urlsession_module.testing import FaultServer, LocalServer
from urlsession_module.testing._content import content_bytes
from urlsession_module.testing._scenarios import FLAKY_SHIFT

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
ENGINES = pytest.mark.parametrize("eng", ["curl", "urllib3"])


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@ENGINES
def test_503_with_retry_after_is_retried_then_succeeds_or_reports(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Three retries of a 503 that asks for 1 s each; the last 503 is the task's answer; every
    request is one transaction."""
    session = make_session(engine=eng, retryPolicy={"total": 3, "backoffFactor": 0.05})
    rec = recorder(session)
    marker = uuid.uuid4().hex
    server.clear_requests()
    started = time.monotonic()
    tid = session.dataTask(
        url=server.url(f"/bytes/10?status=503&retry_after=1&m={marker}"), method="GET"
    )
    done = rec.completed(tid, 30)
    took = time.monotonic() - started
    assert done.success and done.statusCode == 503
    hits = [r for r in server.requests if marker in r.path]
    assert len(hits) == 4
    assert took >= 2.9  # Retry-After: 1 honoured three times
    assert len(done.metrics["transactionMetrics"]) == 4


@ENGINES
def test_retry_after_past_the_resource_timeout_is_not_waited(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    session = make_session(engine=eng, retryPolicy={"total": 5}, timeoutIntervalForResource=2.0)
    rec = recorder(session)
    marker = uuid.uuid4().hex
    tid = session.dataTask(
        url=server.url(f"/bytes/10?status=503&retry_after=30&m={marker}"), method="GET"
    )
    done = rec.completed(tid, 10)
    assert done.statusCode == 503
    assert len([r for r in server.requests if marker in r.path]) == 1


@ENGINES
def test_reset_mid_body_download_resumes_with_range(
    eng: str, faults: FaultServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The first answer is cut by an RST after 100 000 bytes; the retry asks for the rest with
    Range + If-Range and the file is exactly the resource."""
    n = 300_000
    key = uuid.uuid4().hex
    session = make_session(engine=eng, retryPolicy={"total": 2})
    rec = recorder(session)
    url = faults.url("flaky-download", length=n, after=100_000, key=key)
    tid = session.downloadTask(url=url)
    done = rec.completed(tid, 30)
    assert done.success, done.message
    (file,) = [e for e in rec.of(tid, "downloadcompleted")]
    assert (
        hashlib.sha256(file.data.read()).hexdigest() == hashlib.sha256(content_bytes(n)).hexdigest()
    )
    tries = [r for r in faults.requests if key in r.target]
    assert len(tries) == 2
    assert "range" not in tries[0].headers
    assert tries[1].headers["range"] == "bytes=100000-"
    assert tries[1].headers["if-range"] == '"v0"'
    assert len(done.metrics["transactionMetrics"]) == 2
    progress = rec.of(tid, "downloadprogress")
    assert progress[-1].totalBytesWritten == n


@ENGINES
def test_a_retry_after_a_reset_is_a_new_connection_in_the_metrics(
    eng: str, faults: FaultServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The reset connection is gone: the retry's transaction connects anew (not "reused"),
    and the cut transaction still counts the body bytes that came before the reset."""
    key = uuid.uuid4().hex
    session = make_session(engine=eng, retryPolicy={"total": 2})
    rec = recorder(session)
    tid = session.downloadTask(
        url=faults.url("flaky-download", length=300_000, after=100_000, key=key)
    )
    done = rec.completed(tid, 30)
    assert done.success, done.message
    cut, rest = done.metrics["transactionMetrics"]
    assert cut["countOfResponseBodyBytesReceived"] == 100_000
    assert cut["responseEndDate"] is None  # it never ended
    assert rest["isReusedConnection"] is False
    assert rest["connectStartDate"] is not None
    assert rest["localPort"] != cut["localPort"]
    assert rest["countOfResponseBodyBytesReceived"] == 200_000


@ENGINES
def test_a_resource_that_changed_starts_over(
    eng: str, faults: FaultServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The ETag changed between the two answers: If-Range gets the whole new version, and the
    file is exactly that version."""
    n = 250_000
    key = uuid.uuid4().hex
    session = make_session(engine=eng, retryPolicy={"total": 2})
    rec = recorder(session)
    tid = session.downloadTask(
        url=faults.url("flaky-download", length=n, after=90_000, key=key, changes=1)
    )
    done = rec.completed(tid, 30)
    assert done.success, done.message
    data = rec.of(tid, "downloadcompleted")[0].data.read()
    assert data == content_bytes(n, FLAKY_SHIFT)


@ENGINES
def test_post_is_never_retried(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    session = make_session(engine=eng, retryPolicy={"total": 3})
    rec = recorder(session)
    marker = uuid.uuid4().hex
    tid = session.dataTask(url=server.url(f"/bytes/10?status=503&m={marker}"), method="POST")
    done = rec.completed(tid, 10)
    assert done.statusCode == 503
    assert len([r for r in server.requests if marker in r.path]) == 1


@ENGINES
def test_no_policy_no_retry(
    eng: str, faults: FaultServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Foreground default: no retries, as Apple's."""
    key = uuid.uuid4().hex
    session = make_session(engine=eng)
    rec = recorder(session)
    tid = session.downloadTask(url=faults.url("flaky-download", length=100_000, key=key))
    done = rec.completed(tid, 10)
    assert not done.success and done.errorCode == -1005
    assert len([r for r in faults.requests if key in r.target]) == 1


@ENGINES
def test_cancel_while_waiting_to_retry(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A task waiting for its retry time reports -999 at once when cancelled."""
    session = make_session(engine=eng, retryPolicy={"total": 3})
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/bytes/10?status=503&retry_after=20"), method="GET")
    time.sleep(0.5)
    session.getTask(tid).cancel()
    done = rec.completed(tid, 5)
    assert done.errorCode == -999
