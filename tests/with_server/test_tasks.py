"""Task control and properties: getTask/tasks, cancel, suspend/resume, scheduling, limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import ErrorCode
from urlsession_module.testing import LocalServer, content_bytes, content_sha256

from ._util import echoed, file_sha256, raw_server, wait_until

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

N = 1_500_000
RATE = 2_000_000  # bytes/s: N takes ~0.75 s, long enough to act mid-transfer


def started(rec: Any, tid: str, timeout: float = 10.0) -> None:
    """Wait for the task's first downloadprogress: the transfer is under way."""
    rec.wait_for(
        lambda evs: any(e.type == "downloadprogress" and e.taskIdentifier == tid for e in evs),
        timeout,
    )


def requests_for(server: LocalServer, marker: str) -> list[Any]:
    return [r for r in server.requests if marker in r.path]


# --------------------------------------------------------------------------- many tasks


def test_hundred_concurrent_data_tasks_each_complete_once(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """100 tasks at once: distinct identifiers, each completed exactly once with its own reply."""
    session = make_session()
    rec = recorder(session)
    ids = [session.dataTask(url=server.url(f"/echo?i={i}"), method="GET") for i in range(100)]
    assert len(set(ids)) == 100 and all(isinstance(t, str) for t in ids)
    assert session.waitForTasks(60)
    completed = [e for e in rec.events if e.type == "sessioncompleted"]
    assert sorted(e.taskIdentifier for e in completed) == sorted(ids)
    for i, tid in enumerate(ids):
        (done,) = rec.of(tid, "sessioncompleted")
        assert echoed(done)["query"] == {"i": [str(i)]}
    assert session.tasks == []


def test_identifiers_unique_across_sessions(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Two sessions never hand out the same identifier."""
    a, b = make_session(), make_session(type="ephemeral")
    ids = [s.dataTask(url=server.url("/echo"), method="GET") for s in (a, b, a, b)]
    assert len(set(ids)) == 4
    assert a.waitForTasks(10) and b.waitForTasks(10)


def test_connections_per_host_are_limited(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """With httpMaximumConnectionsPerHost=2, six slow requests run two at a time."""
    delay = 0.3
    session = make_session(httpMaximumConnectionsPerHost=2)
    rec = recorder(session)
    accepted = server.connections_accepted
    t0 = time.monotonic()
    ids = [
        session.dataTask(url=server.url(f"/slow?delay={delay}&n={i}"), method="GET")
        for i in range(6)
    ]
    assert session.waitForTasks(20)
    elapsed = time.monotonic() - t0
    assert all(rec.of(t, "sessioncompleted")[0].success for t in ids)
    assert elapsed >= 3 * delay * 0.95  # three waves of two
    assert server.connections_accepted - accepted <= 2  # and only two connections, reused


def test_a_worker_runs_the_tasks_its_slot_frees(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any, engine: str
) -> None:
    """Twenty tasks through one slot: the worker that ends one starts the next itself, so the
    session hands work to a thread once (not once per task) and one thread does it all. On the
    curl engine a task waits for its response head and its body with no thread (parked): those
    wake-ups are the only other hand-offs it costs, and it still needs one worker at a time."""
    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    submit = mocker.spy(session._runner.pool, "submit")
    resume = mocker.spy(session._runner, "_resume")
    ids = [session.dataTask(url=server.url(f"/echo?n={i}"), method="GET") for i in range(20)]
    assert session.waitForTasks(20)
    assert all(rec.of(t, "sessioncompleted")[0].success for t in ids)
    if engine == "curl":
        assert submit.call_count == 1 + resume.call_count
        assert resume.call_count <= 2 * 20  # the head, the body
    else:
        assert submit.call_count == 1
        assert resume.call_count == 0
    assert session._runner.pool.threads <= (3 if engine == "curl" else 1)  # not one per task


def test_limit_is_per_host(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A busy host does not hold back a task for another host."""
    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    slow = session.dataTask(url=server.url("/slow?delay=1.5"), method="GET")
    other = session.dataTask(url=f"http://localhost:{server.port}/echo", method="GET")
    assert rec.completed(other, 1.0).success  # long before the slow one is done
    assert rec.of(slow, "sessioncompleted") == []
    assert rec.completed(slow).success


def test_higher_priority_waiting_task_goes_first(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Tasks waiting for a connection start in priority order."""
    session = make_session(httpMaximumConnectionsPerHost=1)
    server.clear_requests()
    session.dataTask(url=server.url("/slow?delay=0.3&p=first"), method="GET")
    session.dataTask(url=server.url("/echo?p=low"), method="GET", priority=0.1)
    session.dataTask(url=server.url("/echo?p=high"), method="GET", priority=0.9)
    session.dataTask(url=server.url("/echo?p=mid"), method="GET")
    assert session.waitForTasks(10)
    order = [r.path.split("p=")[1] for r in server.requests]
    assert order == ["first", "high", "mid", "low"]


# --------------------------------------------------------------------------- registry and properties


def test_get_task_and_tasks_list_outstanding_tasks(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """getTask returns the same Task proxy, finished or not; tasks lists the outstanding in order."""
    session = make_session()
    rec = recorder(session)
    a = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}"))
    b = session.dataTask(url=server.url("/slow?delay=0.5"), method="GET")
    task_a, task_b = session.getTask(a), session.getTask(b)
    assert isinstance(task_a, URLSession.Task) and task_a is session.getTask(a)
    assert [t.taskIdentifier for t in session.tasks] == [a, b]
    assert task_a.state == "running" and task_a.state == URLSession.TaskState.RUNNING
    assert session.getTask("no-such-task") is None
    rec.completed(a)
    rec.completed(b)
    assert session.waitForTasks(5)
    assert session.getTask(a) is task_a and session.tasks == []
    assert task_a.state == task_b.state == "completed"


def test_task_properties_of_an_upload(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """An upload's Task shows its request, counters, response and description."""
    session = make_session()
    rec = recorder(session)
    body = content_bytes(400_000)
    begin = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=0.2)
    tid = session.uploadTask(
        url=server.url("/upload"),
        data=body,
        method="PUT",
        requestHeaders={"X-Up": "1"},
        taskDescription="nightly backup",
        priority=0.75,
        earliestBeginDate=begin,
    )
    task = session.getTask(tid)
    assert task.taskDescription == "nightly backup"
    assert task.priority == 0.75
    assert abs((task.earliestBeginDate - begin).total_seconds()) < 0.001
    assert task.countOfBytesExpectedToSend == 400_000
    assert task.countOfBytesSent == 0
    req = task.originalRequest
    assert (req.method, req.url, req.header("x-up")) == ("PUT", server.url("/upload"), "1")
    assert task.response is None and task.error is None
    task.priority = 1.0
    assert task.priority == 1.0
    with pytest.raises(ValueError) as info:
        task.priority = 1.5
    assert info.value.argument == "priority"  # type: ignore[attr-defined]
    done = rec.completed(tid)
    assert echoed(done)["body_sha256"] == content_sha256(400_000)
    assert task.countOfBytesSent == 400_000
    assert task.response.statusCode == 200
    assert task.response.header("content-type") == "application/json; charset=utf-8"
    assert task.countOfBytesReceived == int(task.response.header("content-length"))
    assert task.currentRequest == task.originalRequest
    assert task.error is None


def test_upload_from_a_relative_path_is_resolved_at_the_call(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A relative upload path is made absolute at the call (issue 19.12: the transfer process
    runs in another working directory), and the upload sends that file."""
    body = content_bytes(50_000)
    (tmp_path / "photo.jpg").write_bytes(body)
    monkeypatch.chdir(tmp_path)
    session = make_session()
    rec = recorder(session)
    tid = session.uploadTask(url=server.url("/upload"), data="photo.jpg", method="PUT")
    request = session.getTask(tid).originalRequest
    assert request.body_path == str(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path.parent)  # the caller moves on; the task still finds its file
    done = rec.completed(tid)
    assert done.success, done.message
    assert echoed(done)["body_sha256"] == content_sha256(50_000)


def test_download_counters(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """countOfBytesReceived/ExpectedToReceive follow the body; nothing is sent for a GET."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE * 2}"))
    task = session.getTask(tid)
    started(rec, tid)
    assert task.countOfBytesExpectedToReceive == N
    assert 0 < task.countOfBytesReceived <= N
    rec.completed(tid)
    assert task.countOfBytesReceived == N
    assert task.countOfBytesSent == task.countOfBytesExpectedToSend == 0


def test_earliest_begin_date_delays_the_start(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A task does not start before its earliestBeginDate; a sooner date is not held up."""
    session = make_session()
    rec = recorder(session)
    t0 = time.monotonic()
    later = session.dataTask(
        url=server.url("/echo?when=later"), method="GET", earliestBeginDate=time.time() + 60
    )
    sooner = session.dataTask(
        url=server.url("/echo?when=sooner"),
        method="GET",
        earliestBeginDate=dt.datetime.now() + dt.timedelta(seconds=0.5),
    )
    assert rec.completed(sooner, 5).success
    assert time.monotonic() - t0 >= 0.45
    assert session.getTask(later).state == "running"
    assert requests_for(server, "when=later") == []
    session.getTask(later).cancel()
    done = rec.completed(later, 2)  # cancelled, it reports now rather than in a minute
    assert done.errorCode == ErrorCode.CANCELLED
    assert requests_for(server, "when=later") == []


def test_many_tasks_for_later_hold_up_neither_a_task_for_now_nor_their_cancel(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Tasks queued for later take no slot: a task for now behind them starts at once, none
    of them reaches the server early, and a cancel lets each report -999 at once."""
    session = make_session()
    rec = recorder(session)
    later = [
        session.dataTask(
            url=server.url(f"/echo?when=later{i}"), method="GET", earliestBeginDate=time.time() + 60
        )
        for i in range(200)
    ]
    now = session.dataTask(url=server.url("/echo?when=now"), method="GET")
    assert rec.completed(now, 5).success
    assert all(session.getTask(t).state == "running" for t in later)
    assert requests_for(server, "when=later") == []
    session.invalidateAndCancel()
    assert all(rec.completed(t, 5).errorCode == ErrorCode.CANCELLED for t in later)
    assert requests_for(server, "when=later") == []


# --------------------------------------------------------------------------- cancel


def test_cancel_mid_download(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Cancelling a throttled download mid-body reports -999, no file, no downloadcompleted."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}&c=1"))
    task = session.getTask(tid)
    started(rec, tid)
    task.cancel()
    assert task.state in ("canceling", "completed")
    done = rec.completed(tid, 5)
    assert (done.success, done.errorCode, done.statusCode) == (False, -999, 200)
    assert rec.of(tid)[-1] is done
    assert rec.of(tid, "downloadcompleted") == []
    assert task.countOfBytesReceived < N
    assert task.state == "completed"
    assert sorted(session.downloadDirectory.iterdir()) == []


def test_cancel_waiting_task_reports_at_once(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A task still waiting for a connection reports -999 at once when cancelled, never sent."""
    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    busy = session.dataTask(url=server.url("/slow?delay=1.5"), method="GET")
    waiting = session.dataTask(url=server.url("/echo?waiting=1"), method="GET")
    session.getTask(waiting).cancel()
    assert rec.completed(waiting, 1.0).errorCode == ErrorCode.CANCELLED
    assert rec.of(busy, "sessioncompleted") == []
    assert rec.completed(busy).success
    assert requests_for(server, "waiting=1") == []


def test_cancel_suspended_task(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A suspended task can be cancelled: it reports -999."""
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}"))
    task = session.getTask(tid)
    started(rec, tid)
    task.suspend()
    assert task.state == "suspended"
    task.cancel()
    assert rec.completed(tid, 5).errorCode == ErrorCode.CANCELLED
    task.resume()  # ignored once finished
    assert task.state == "completed"


# --------------------------------------------------------------------------- suspend / resume


def _progress_count(rec: Any, tid: str) -> tuple[int, int]:
    events = rec.of(tid, "downloadprogress")
    return len(events), (events[-1].totalBytesWritten if events else 0)


def test_suspend_stops_progress_and_resume_completes(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """No progress while suspended; after resume the file is complete (same connection)."""
    session = make_session()
    rec = recorder(session)
    marker = "susp=short"
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}&{marker}"))
    task = session.getTask(tid)
    started(rec, tid)
    task.suspend()
    assert task.state == "suspended"
    time.sleep(0.3)  # a block in flight when suspend() was called may still land
    before = _progress_count(rec, tid)
    received = task.countOfBytesReceived
    time.sleep(0.6)  # observing that nothing happens: no event can announce it
    assert _progress_count(rec, tid) == before
    assert task.countOfBytesReceived == received < N
    assert rec.of(tid, "sessioncompleted") == []
    task.resume()
    assert task.state == "running"
    done = rec.completed(tid)
    assert done.success, done.message
    (completed,) = rec.of(tid, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(N)
    progress = rec.of(tid, "downloadprogress")
    assert sum(e.bytesWritten for e in progress) == N == progress[-1].totalBytesWritten
    assert [r.headers.get("range") for r in requests_for(server, marker)] == [None]


@pytest.mark.parametrize("norange", [False, True], ids=["range", "norange"])
def test_long_suspension_lets_connection_go_and_resumes(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, norange: bool
) -> None:
    """Suspended past the idle timeout, the engine lets go, then resumes with Range (or anew)."""
    session = make_session(timeoutIntervalForRequest=1.0)
    rec = recorder(session)
    marker = f"susp=long{int(norange)}"
    extra = "&norange=1" if norange else ""
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}&{marker}{extra}"))
    task = session.getTask(tid)
    started(rec, tid)
    task.suspend()
    time.sleep(1.5)  # longer than the idle timeout: the connection must be let go
    assert rec.of(tid, "sessioncompleted") == []
    task.resume()
    done = rec.completed(tid)
    assert done.success and done.statusCode == 200, done.message
    (completed,) = rec.of(tid, "downloadcompleted")
    assert completed.data.length == N
    assert file_sha256(completed.data.nativePath) == content_sha256(N)
    seen = requests_for(server, marker)
    assert len(seen) == 2
    assert seen[0].headers.get("range") is None
    resumed = seen[1].headers
    assert resumed["range"].startswith("bytes=") and resumed["range"] != "bytes=0-"
    assert resumed["if-range"] == f'"bytes-{N}"'
    progress = rec.of(tid, "downloadprogress")
    assert progress[-1].totalBytesWritten == N and task.countOfBytesReceived == N
    if not norange:
        # continued where it stopped: every byte counted once
        assert sum(e.bytesWritten for e in progress) == N
        assert all(e.totalBytesExpectedToWrite == N for e in progress)


def test_response_arriving_while_suspended_waits_for_resume(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A response that lands while the task is suspended is reported only after resume()."""
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/slow?delay=0.3&held=1"), method="GET")
    task = session.getTask(tid)
    wait_until(lambda: bool(requests_for(server, "held=1")), 5, "request reached the server")
    task.suspend()
    time.sleep(0.8)  # the response arrives meanwhile; nothing may be reported
    assert rec.of(tid) == []
    assert task.state == "suspended"
    task.resume()
    done = rec.completed(tid, 5)
    assert done.success and echoed(done)["query"] == {"delay": ["0.3"], "held": ["1"]}


def test_task_suspended_while_waiting_does_not_start(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A task suspended before it started is not sent until resumed, and takes no slot."""
    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    first = session.dataTask(url=server.url("/slow?delay=0.2"), method="GET")
    held = session.dataTask(url=server.url("/echo?suspended=1"), method="GET")
    after = session.dataTask(url=server.url("/echo?after=1"), method="GET")
    session.getTask(held).suspend()
    assert rec.completed(first).success
    assert rec.completed(after).success  # the suspended task did not block the queue
    assert requests_for(server, "suspended=1") == []
    session.getTask(held).resume()
    assert rec.completed(held, 5).success


def test_resource_timeout_passes_while_suspended(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The resource deadline keeps running while suspended: -1001 arrives without a resume."""
    session = make_session(timeoutIntervalForResource=1.0)
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE // 4}"))
    started(rec, tid)
    session.getTask(tid).suspend()
    done = rec.completed(tid, 5)
    assert done.errorCode == ErrorCode.TIMED_OUT
    assert sorted(session.downloadDirectory.iterdir()) == []


def _gated_reader(go: threading.Event) -> Callable[[socket.socket], None]:
    """Read an upload's head, wait for ``go``, then read the body and answer with its digest.

    Until ``go`` the client can only fill the socket buffers, so the upload is certainly still
    going when the test suspends it.
    """

    def handler(conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(65536)
        head, _, rest = head.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        if not go.wait(10):
            return
        digest = hashlib.sha256(rest)
        got = len(rest)
        while got < length:
            chunk = conn.recv(min(1 << 20, length - got))
            if not chunk:
                return
            digest.update(chunk)
            got += len(chunk)
        body = json.dumps({"length": got, "sha256": digest.hexdigest()}).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )

    return handler


def test_suspended_upload_stops_sending_and_resumes(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Suspending an upload stops sending (no uploadprogress); resume sends the rest."""
    size = 24_000_000  # far more than socket buffers hold
    body = content_bytes(size)
    go = threading.Event()
    session = make_session()
    rec = recorder(session)
    with raw_server(_gated_reader(go)) as raw:
        tid = session.uploadTask(url=raw.url("/up"), data=body)
        task = session.getTask(tid)
        rec.wait_for(lambda evs: any(e.type == "uploadprogress" for e in evs), 10)
        task.suspend()
        go.set()  # the server reads now; the suspended task must not send more than in flight
        time.sleep(0.3)  # a block in flight when suspend() was called may still land
        before = (len(rec.of(tid, "uploadprogress")), task.countOfBytesSent)
        time.sleep(0.5)  # observing that nothing happens
        assert (len(rec.of(tid, "uploadprogress")), task.countOfBytesSent) == before
        assert before[1] < size // 2
        task.resume()
        done = rec.completed(tid, 20)
    reply = echoed(done)
    assert reply == {"length": size, "sha256": content_sha256(size)}
    assert rec.of(tid, "uploadprogress")[-1].totalBytesSent == size


def test_cancel_upload_the_server_does_not_read(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Cancelling an upload stuck sending (the server reads nothing) reports -999 at once."""
    go = threading.Event()
    session = make_session()
    rec = recorder(session)
    with raw_server(_gated_reader(go)) as raw:
        try:
            tid = session.uploadTask(url=raw.url("/up"), data=content_bytes(24_000_000))
            task = session.getTask(tid)
            rec.wait_for(lambda evs: any(e.type == "uploadprogress" for e in evs), 10)
            sent = -1
            for _ in range(30):  # until the socket buffers are full and sending blocks
                if task.countOfBytesSent == sent:
                    break
                sent = task.countOfBytesSent
                time.sleep(0.3)
            t0 = time.monotonic()
            task.cancel()
            assert rec.completed(tid, 5).errorCode == ErrorCode.CANCELLED
            assert time.monotonic() - t0 < 2.0
            assert task.countOfBytesSent < 24_000_000
        finally:
            go.set()  # let the handler finish before the server stops
