"""waitsForConnectivity on both engines: a port that starts listening late gets the task."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
ENGINES = pytest.mark.parametrize("eng", ["curl", "urllib3"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def late_server() -> Iterator[Callable[[float], int]]:
    """A LocalServer on a port chosen now that starts listening ``delay`` s later."""
    servers: list[LocalServer] = []
    timers: list[threading.Timer] = []

    def start(delay: float) -> int:
        port = _free_port()
        server = LocalServer(port=port)
        servers.append(server)
        timer = threading.Timer(delay, server.start)
        timers.append(timer)
        timer.start()
        return port

    yield start
    for timer in timers:
        timer.cancel()
        timer.join(5)
    for server in servers:
        server.stop()


@ENGINES
def test_a_server_that_listens_2s_late_gets_the_task(
    eng: str, late_server: Callable[[float], int], make_session: MakeSession, recorder: Any
) -> None:
    session = make_session(engine=eng, waitsForConnectivity=True)
    rec = recorder(session)
    port = late_server(2.0)
    started = time.monotonic()
    tid = session.dataTask(url=f"http://127.0.0.1:{port}/bytes/100", method="GET")
    done = rec.completed(tid, 20)
    took = time.monotonic() - started
    assert done.success and done.statusCode == 200, done.message
    assert 1.9 <= took <= 5.0  # found within the backoff cap (2 s) of it listening
    waiting = rec.of(tid, "waitingforconnectivity")
    assert len(waiting) == 1
    assert waiting[0].errorCode == -1004 and waiting[0].taskIdentifier == tid
    names = [e.type for e in rec.events if e.get("taskIdentifier") == tid]
    assert names.index("waitingforconnectivity") < names.index("sessioncompleted")


@ENGINES
def test_without_waiting_a_refused_connection_fails_at_once(
    eng: str, make_session: MakeSession, recorder: Any
) -> None:
    session = make_session(engine=eng)
    rec = recorder(session)
    tid = session.dataTask(url=f"http://127.0.0.1:{_free_port()}/", method="GET")
    done = rec.completed(tid, 10)
    assert done.errorCode == -1004
    assert not rec.of(tid, "waitingforconnectivity")


@ENGINES
def test_waiting_ends_at_the_resource_timeout_with_minus_1001(
    eng: str, make_session: MakeSession, recorder: Any
) -> None:
    session = make_session(engine=eng, waitsForConnectivity=True, timeoutIntervalForResource=1.5)
    rec = recorder(session)
    tid = session.dataTask(url=f"http://127.0.0.1:{_free_port()}/", method="GET")
    done = rec.completed(tid, 10)
    assert done.errorCode == -1001
    assert "connectivity" in done.message
    assert len(rec.of(tid, "waitingforconnectivity")) == 1
    assert len(done.metrics["transactionMetrics"]) >= 3  # each try is a transaction
