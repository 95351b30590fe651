"""``TaskDriver``: a lock and an abort around the machine. Driven from one thread here; the
lifecycle rules themselves are the machine's (tests/unit/test_state.py)."""

from __future__ import annotations

import os
from pathlib import Path

from urlsession_module._driver import TaskDriver
from urlsession_module._events import Payload
from urlsession_module._state import (
    BodyReceived,
    Cancel,
    DownloadFinished,
    Failed,
    Finished,
    Input,
    Request,
    ResponseInfo,
    ResponseStarted,
    Resume,
    Suspend,
    TaskKind,
    TaskMachine,
    TaskState,
)
from urlsession_module.exceptions import ErrorCode

URL = "http://127.0.0.1:8000/x"


class Recording(TaskDriver):
    """Publishes into a list: (input name, payload names)."""

    def __init__(self, kind: TaskKind = TaskKind.DOWNLOAD) -> None:
        super().__init__(TaskMachine("t", kind, Request("GET", URL)))
        self.published: list[tuple[str, list[str]]] = []

    def publish(self, event: Input, payloads: list[Payload]) -> None:
        self.published.append((type(event).__name__, [p.name for p in payloads]))


def _started(kind: TaskKind = TaskKind.DOWNLOAD) -> Recording:
    d = Recording(kind)
    d.feed(ResponseStarted(ResponseInfo(URL, 200), expected=10))
    d.published.clear()
    return d


def test_each_applied_input_is_published_in_order() -> None:
    """Every input the machine applied reaches publish, with its payloads, in order; what the
    machine holds while suspended is published on resume."""
    d = _started(TaskKind.DATA)
    d.feed(BodyReceived(10))
    d.control(Suspend())
    d.feed(Finished("ok"))  # held: nothing published yet
    assert d.published == [("BodyReceived", []), ("Suspend", [])]
    d.control(Resume())
    assert d.published[2:] == [("Resume", []), ("Finished", ["sessioncompleted"])]
    assert d.machine.state is TaskState.COMPLETED


def test_cancel_calls_the_abort_once_the_machine_is_cancelling() -> None:
    """A cancel wakes a blocked read through the abort, after the machine took the cancel."""
    d = _started()
    calls: list[bool] = []
    d.set_abort(lambda: calls.append(d.cancelled))
    d.control(Suspend())
    assert calls == []  # only a cancel aborts
    d.control(Cancel())
    assert calls == [True]
    d.feed(Failed(ErrorCode.CANCELLED))
    assert d.published[-1] == ("Failed", ["sessioncompleted"])
    assert d.machine.state is TaskState.COMPLETED


def test_an_abort_set_after_a_cancel_runs_at_once() -> None:
    """The transport may set its abort after the user cancelled: it is called straight away."""
    d = _started()
    d.control(Cancel())
    calls: list[int] = []
    d.set_abort(lambda: calls.append(1))
    assert calls == [1]
    d.set_abort(None)  # clearing never calls anything
    assert calls == [1]


def test_wait_running_returns_at_once_unless_suspended() -> None:
    """wait_running: True at once while running; after the timeout while suspended."""
    d = _started()
    assert d.wait_running(0.0)
    d.control(Suspend())
    assert not d.wait_running(0.01)
    d.control(Resume())
    assert d.wait_running(0.0)


def test_a_finished_file_nobody_will_collect_is_removed(tmp_path: Path) -> None:
    """A download finished after a cancel is reported to nobody: its file must not stay."""
    d = _started()
    d.feed(BodyReceived(10))
    d.control(Cancel())
    done = tmp_path / "file"
    done.write_bytes(b"x" * 10)
    d.feed(DownloadFinished(str(done)))
    assert not os.path.exists(done)
    d.feed(Finished())
    assert d.published[-1] == ("Finished", ["sessioncompleted"])


def test_a_finished_file_that_is_reported_stays(tmp_path: Path) -> None:
    """A download finished while running is handed over (downloadcompleted): the file stays."""
    d = _started()
    d.feed(BodyReceived(10))
    done = tmp_path / "file"
    done.write_bytes(b"x" * 10)
    d.feed(DownloadFinished(str(done)))
    assert done.exists()
    assert d.published[-1] == ("DownloadFinished", ["downloadcompleted"])
