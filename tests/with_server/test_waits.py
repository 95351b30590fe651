"""Blocking waits (``waitForTasks``, ``task.wait``, ``waitForInvalidation``): arguments, and the
thread that delivers the events they wait for (issue 19.15, 19.23)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import EventQueue, InvalidArgumentTypeError
from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]
WAIT = 10.0


def _try_each_wait(session: Any, tid: str) -> dict[str, Any]:
    """Each blocking wait, without a timeout: what it returned, or the WouldDeadlockError."""
    attempts: dict[str, Callable[[], Any]] = {
        "waitForTasks": session.waitForTasks,
        "wait": session.getTask(tid).wait,
        "waitForInvalidation": session.waitForInvalidation,
    }
    outcomes: dict[str, Any] = {}
    for name, attempt in attempts.items():
        try:
            outcomes[name] = attempt()
        except URLSession.WouldDeadlockError as exc:
            outcomes[name] = exc
    return outcomes


@pytest.mark.parametrize("call", ["waitForTasks", "wait", "waitForInvalidation"])
def test_a_timeout_that_is_not_a_number_names_the_argument(
    call: str, server: LocalServer, make_session: MakeSession
) -> None:
    """``timeout='1'`` raises InvalidArgumentTypeError naming 'timeout' (issue 19.23)."""
    session = make_session()
    tid = session.dataTask(url=server.url("/echo"), method="GET")
    target = session.getTask(tid) if call == "wait" else session
    with pytest.raises(InvalidArgumentTypeError, match=r"'timeout' must be a number") as info:
        getattr(target, call)(timeout="1")
    assert info.value.argument == "timeout"
    assert isinstance(info.value, TypeError)
    assert session.waitForTasks(timeout=WAIT)  # numbers, int or float, still do
    assert session.getTask(tid).wait(timeout=1)


def test_waiting_inside_a_listener_raises_instead_of_hanging(
    server: LocalServer, make_session: MakeSession
) -> None:
    """On the delivery thread, a wait with no timeout raises WouldDeadlockError (issue 19.15);
    one with a timeout still just times out."""
    session = make_session()
    outcomes: dict[str, Any] = {}
    done = threading.Event()

    def on_completed(e: Any) -> None:
        outcomes.update(_try_each_wait(session, e.taskIdentifier))
        outcomes["with timeout"] = session.waitForTasks(0.05)
        done.set()

    session.addEventListener("sessioncompleted", on_completed)
    session.dataTask(url=server.url("/echo"), method="GET")
    assert done.wait(WAIT), "the listener hung in a wait"
    for name in ("waitForTasks", "wait", "waitForInvalidation"):
        error = outcomes[name]
        assert isinstance(error, URLSession.WouldDeadlockError), name
        assert isinstance(error, RuntimeError)
        assert f"{name}() without a timeout inside a listener" in str(error)
    assert outcomes["with timeout"] is False
    assert session.waitForTasks(WAIT)


def test_a_wait_that_is_already_over_is_fine_inside_a_listener(
    server: LocalServer, make_session: MakeSession
) -> None:
    """Only a wait that would block is refused: a finished task's wait() returns True."""
    session = make_session()
    first = session.dataTask(url=server.url("/echo?first"), method="GET")
    assert session.getTask(first).wait(WAIT)
    seen: list[Any] = []
    done = threading.Event()

    def on_completed(_e: Any) -> None:
        seen.append(session.getTask(first).wait())
        done.set()

    session.addEventListener("sessioncompleted", on_completed)
    session.dataTask(url=server.url("/echo?second"), method="GET")
    assert done.wait(WAIT)
    assert seen == [True]


def test_waiting_on_the_delegate_loop_raises_instead_of_hanging(
    server: LocalServer, make_session: MakeSession
) -> None:
    """In ``async def main()`` with ``delegateQueue=loop``, waiting without a timeout raises
    (issue 19.15); from an executor thread it works."""
    outcome: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        session = make_session(delegateQueue=loop)
        tid = session.dataTask(url=server.url("/echo"), method="GET")
        outcome.update(_try_each_wait(session, tid))
        outcome["executor"] = await loop.run_in_executor(None, session.waitForTasks, WAIT)
        session.finishTasksAndInvalidate()
        outcome["invalidated"] = await loop.run_in_executor(None, session.waitForInvalidation, WAIT)

    runner = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    runner.start()
    runner.join(WAIT * 3)
    assert not runner.is_alive(), "the event loop hung in a wait"
    for name in ("waitForTasks", "wait", "waitForInvalidation"):
        error = outcome[name]
        assert isinstance(error, URLSession.WouldDeadlockError), name
        assert "on the event loop that is this session's delegateQueue" in str(error)
    assert outcome["executor"] is True and outcome["invalidated"] is True


def test_waiting_inside_a_listener_of_a_host_drained_queue_raises(
    server: LocalServer, make_session: MakeSession
) -> None:
    """With an EventQueue, a listener (run by the host's drain) that waits raises too."""
    queue = EventQueue()
    session = make_session(delegateQueue=queue)
    outcomes: dict[str, Any] = {}

    def on_completed(e: Any) -> None:
        outcomes.update(_try_each_wait(session, e.taskIdentifier))

    session.addEventListener("sessioncompleted", on_completed)
    session.dataTask(url=server.url("/echo"), method="GET")
    assert session.waitForTasks(WAIT)  # drains the queue here, which runs the listener
    for name in ("waitForTasks", "wait", "waitForInvalidation"):
        assert isinstance(outcomes[name], URLSession.WouldDeadlockError), name
