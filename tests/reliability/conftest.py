"""Fixtures of the reliability suite: fault servers, a thread-leak guard, figures for the runner.

The suite has two forms. The CI form (the default) is sized to run in about a minute on two
cores; the full form (``URLSESSION_RELIABILITY_FULL=1``, set by ``python -m
tests.reliability.run --full``) runs the long scenarios at their real size.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from urlsession_module.testing import FaultServer

FULL = os.environ.get("URLSESSION_RELIABILITY_FULL") == "1"

# Threads a test may start and must not leave behind (the session-scoped LocalServer's are
# shared by every test and end with the run).
_OURS = ("urlsession-", "FaultServer-conn-", "FaultServer-accept-", "TLSFault-")


def size(ci: int, full: int) -> int:
    """A figure that depends on the form: ``ci`` by default, ``full`` with ``--full``."""
    return full if FULL else ci


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    """A plain-HTTP fault server shared by a module's tests."""
    with FaultServer() as srv:
        yield srv


def _wait_for_threads_to_end(before: set[threading.Thread], prefixes: tuple[str, ...]) -> None:
    # Anything a test let go of (a response, a pool) is collected first, so that a connection
    # kept only by garbage is closed and the fault server's thread for it sees its client go.
    gc.collect()
    deadline = time.monotonic() + 8.0
    while True:
        left = [
            t.name
            for t in threading.enumerate()
            if t not in before and t.is_alive() and t.name.startswith(prefixes)
        ]
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"threads left behind: {left}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Every test ends with no session thread and no fault-server connection it started.

    Idle transfer workers (``urlsession-worker``) leave on their own after a short idle period;
    they are checked once per module (below) so that each test need not wait for them.
    """
    before = set(threading.enumerate())
    yield
    _wait_for_threads_to_end(before, tuple(p for p in _OURS if p != "urlsession-"))
    _wait_for_threads_to_end(before, ("urlsession-delivery", "urlsession-timer", "urlsession-task"))


@pytest.fixture(scope="module", autouse=True)
def no_leftover_threads_at_all() -> Iterator[None]:
    """A module ends with none of the threads its tests started, idle workers included."""
    before = set(threading.enumerate())
    yield
    _wait_for_threads_to_end(before, _OURS)


_current: list[pytest.Item] = []


@pytest.fixture(autouse=True)
def _current_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Lets helpers note what a scenario expected and observed (the runner prints both)."""
    node = request.node
    assert isinstance(node, pytest.Item)
    _current.append(node)
    yield
    _current.pop()


def note(kind: str, text: str) -> None:
    """Attach ``('expected' | 'observed', text)`` to the running test's report."""
    if _current:
        _current[-1].user_properties.append((kind, text))


class Figures:
    """Numbers a test measured; the runner prints them (they travel in user_properties)."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def __call__(self, name: str, value: float | int | str, unit: str = "") -> None:
        self._node.user_properties.append(("figure", (name, value, unit)))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    node = request.node
    assert isinstance(node, pytest.Item)
    return Figures(node)


MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
