"""The module-wide default delegateQueue: sessions made without a queue deliver through it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]


@pytest.fixture
def default_queue() -> Iterator[URLSession.EventQueue]:
    """An EventQueue set as the default for the test, the previous default put back after."""
    queue = URLSession.EventQueue()
    previous = URLSession.setDefaultDelegateQueue(queue)
    yield queue
    assert URLSession.setDefaultDelegateQueue(previous) is queue


def test_sessions_without_a_queue_deliver_through_the_default(
    server: LocalServer, make_session: MakeSession, default_queue: URLSession.EventQueue
) -> None:
    """Nothing arrives until the host drains the default queue, then on the host's thread."""
    assert URLSession.getDefaultDelegateQueue() is default_queue
    session = make_session()  # no delegateQueue given
    seen: list[str] = []
    session.addEventListener(
        "sessioncompleted", lambda e: seen.append(threading.current_thread().name)
    )
    session.dataTask(url=server.url("/echo"), method="GET")
    task = session.tasks[0]
    assert session.waitForTasks(10)  # drains the host queue itself
    assert seen == [threading.current_thread().name]
    assert task.state == "completed"


def test_a_queue_given_explicitly_wins_over_the_default(
    server: LocalServer, make_session: MakeSession, default_queue: URLSession.EventQueue
) -> None:
    """An explicit delegateQueue is used; the default queue stays empty."""
    own = URLSession.EventQueue()
    session = make_session(delegateQueue=own)
    session.dataTask(url=server.url("/echo"), method="GET")
    assert session.waitForTasks(10)
    assert len(default_queue) == 0
    assert default_queue.drain(0) == 0


def test_without_a_default_sessions_deliver_on_their_own_thread(
    server: LocalServer, make_session: MakeSession
) -> None:
    """The default is None: a session's own delivery thread, as before the feature."""
    assert URLSession.getDefaultDelegateQueue() is None
    session = make_session()
    names: list[str] = []
    session.addEventListener(
        "sessioncompleted", lambda e: names.append(threading.current_thread().name)
    )
    session.dataTask(url=server.url("/echo"), method="GET")
    assert session.waitForTasks(10)
    assert names and names[0] != threading.current_thread().name


def test_a_bad_default_is_refused_naming_the_argument() -> None:
    """Neither None, an EventQueue nor a loop: InvalidArgumentTypeError, the default unchanged."""
    with pytest.raises(URLSession.InvalidArgumentTypeError, match="'queue' must be None"):
        URLSession.setDefaultDelegateQueue("main")  # type: ignore[arg-type]
    assert URLSession.getDefaultDelegateQueue() is None
