"""Fixtures shared by every test: a private state directory, clean module listeners, servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module.testing import LocalServer

# The real peer servers (nginx, hypercorn + aioquic, pproxy, httpbin) as fixtures: tests/peers.
pytest_plugins = ["tests.peers.fixtures"]


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own state directory, so no test sees another's files."""
    home = tmp_path / "urlsession-home"
    monkeypatch.setenv("URLSESSION_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _clean_module_listeners() -> Iterator[None]:
    """The module proxy is process-wide: drop what a test registered on it."""
    yield
    URLSession._drop_listeners()  # type: ignore[attr-defined]
    URLSession.bubbleParent = True


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def tls_server() -> Iterator[LocalServer]:
    with LocalServer(tls=True) as srv:
        yield srv


class Recorder:
    """Collects every event that reaches a proxy, and waits for tasks to complete."""

    NAMES = (
        "downloadprogress",
        "uploadprogress",
        "downloadcompleted",
        "sessioncompleted",
        "sessioneventscompleted",
        "backgroundtransfer",
        "waitingforconnectivity",
    )

    def __init__(self, proxy: Any) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()
        for name in self.NAMES:
            proxy.addEventListener(name, self._on)

    def _on(self, e: Any) -> None:
        with self._cond:
            self.events.append(e)
            self._cond.notify_all()

    def of(self, task_id: str, name: str | None = None) -> list[Any]:
        with self._cond:
            return [
                e
                for e in self.events
                if e.get("taskIdentifier") == task_id and (name is None or e.type == name)
            ]

    def completed(self, task_id: str, timeout: float = 30.0) -> Any:
        """The task's sessioncompleted event, waiting for it (bounded)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = [
                    e
                    for e in self.events
                    if e.type == "sessioncompleted" and e.get("taskIdentifier") == task_id
                ]
                if done:
                    return done[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"task {task_id} did not complete in {timeout}s")
                self._cond.wait(remaining)

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("condition not met in time")
                self._cond.wait(remaining)


@pytest.fixture
def make_session() -> Iterator[Callable[..., Any]]:
    """Create sessions that are invalidated (and their threads joined) when the test ends."""
    made: list[Any] = []

    def make(**config: Any) -> Any:
        queue = config.pop("delegateQueue", None)
        cfg = URLSession.createSessionConfiguration(config)
        session = URLSession.createSession(configuration=cfg, delegateQueue=queue)
        made.append(session)
        return session

    yield make
    for session in made:
        session.invalidateAndCancel()
    for session in made:
        session.waitForInvalidation(10)


@pytest.fixture
def recorder() -> Callable[[Any], Recorder]:
    return Recorder


# -- which engine the run's sessions use ------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=("curl", "urllib3"),
        default=None,
        help="the engine every session of this run uses by default (URLSESSION_ENGINE; "
        "default: curl where pycurl imports)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """``--engine`` sets the default for every session the tests make, and (through the
    environment) for the transfer processes they start."""
    import os

    chosen = config.getoption("--engine")
    if chosen:
        os.environ["URLSESSION_ENGINE"] = chosen
    config.addinivalue_line(
        "markers", "engine(name): only the named engine can pass this test (others skip it)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from urlsession_module._config_values import default_engine

    engine = default_engine()
    for item in items:
        marker = item.get_closest_marker("engine")
        if marker is not None and engine not in marker.args:
            item.add_marker(pytest.mark.skip(reason=f"needs engine {marker.args}, runs {engine}"))


@pytest.fixture
def engine() -> str:
    """The engine this run's sessions use."""
    from urlsession_module._config_values import default_engine

    return default_engine()
