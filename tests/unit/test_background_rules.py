"""The background lifecycle rules kept in _state: journal states, cancel before start, retries, one end."""

from __future__ import annotations

import pytest

from urlsession_module._events import SessionCompleted
from urlsession_module._state import (
    CompletionLedger,
    Failed,
    Request,
    ResponseInfo,
    ResponseStarted,
    TaskKind,
    TaskMachine,
    TaskState,
    cancel_unstarted,
    fail_unstarted,
    journal_task_state,
    transient,
)
from urlsession_module.exceptions import ErrorCode


def _machine() -> TaskMachine:
    return TaskMachine("bg1", TaskKind.DOWNLOAD, Request("GET", "http://h/x"), "s")


@pytest.mark.parametrize(
    ("journal_state", "state"),
    [
        ("queued", TaskState.RUNNING),
        ("running", TaskState.RUNNING),
        ("downloaded", TaskState.RUNNING),
        ("suspended", TaskState.SUSPENDED),
        ("completed", TaskState.COMPLETED),
        ("from-the-future", TaskState.COMPLETED),
    ],
)
def test_journal_state_maps_to_task_state(journal_state: str, state: TaskState) -> None:
    """What a Task proxy says for each journal state (an unknown one reads as finished)."""
    assert journal_task_state(journal_state) is state


def test_cancel_unstarted_gives_one_sessioncompleted_with_minus_999() -> None:
    """A queued task cancelled before it reached the wire ends once, with -999."""
    machine = _machine()
    (done,) = cancel_unstarted(machine)
    assert isinstance(done, SessionCompleted) and done.errorCode == ErrorCode.CANCELLED
    assert machine.finished
    assert fail_unstarted(machine, ErrorCode.UNKNOWN, "x") == []  # no second end


def test_fail_unstarted_ends_the_task_with_its_code() -> None:
    """A record that cannot start ends its task with the code and message given."""
    (done,) = fail_unstarted(_machine(), ErrorCode.UNKNOWN, "not valid")
    assert isinstance(done, SessionCompleted)
    assert (done.success, done.errorCode, done.message) == (False, -1, "not valid")


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.CANNOT_CONNECT_TO_HOST,
        ErrorCode.NETWORK_CONNECTION_LOST,
        ErrorCode.TIMED_OUT,
        ErrorCode.CANNOT_FIND_HOST,
    ],
)
def test_transient_failures_are_retried(code: ErrorCode) -> None:
    """Refused, lost, timed out and unknown host end the attempt, not the task."""
    retry = transient(Failed(code, "m"))
    assert retry is not None and retry.code == code
    assert retry.give_up(cancelled=False) == Failed(code, "m")
    assert retry.give_up(cancelled=True) == Failed(ErrorCode.CANCELLED)


def test_503_is_retried_with_retry_after_and_times_out_in_the_end() -> None:
    """A 503 is retried (Retry-After seconds honoured); once retrying is over it is -1001."""
    response = ResponseInfo("http://h/x", 503, (("Retry-After", "7"),))
    retry = transient(ResponseStarted(response))
    assert retry is not None and retry.retry_after == 7.0
    end = retry.give_up(cancelled=False)
    assert end.code == ErrorCode.TIMED_OUT and "503" in end.message
    assert transient(ResponseStarted(ResponseInfo("http://h/x", 503))).retry_after is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "event",
    [
        Failed(ErrorCode.BAD_SERVER_RESPONSE),
        Failed(ErrorCode.CANCELLED),
        ResponseStarted(ResponseInfo("http://h/x", 500)),
        ResponseStarted(ResponseInfo("http://h/x", 200)),
    ],
)
def test_other_outcomes_are_not_transient(event: Failed | ResponseStarted) -> None:
    """Everything else reaches the machine as usual."""
    assert transient(event) is None


def test_completion_ledger_drops_a_second_sessioncompleted_and_forgets_settled_tasks() -> None:
    """A task's second sessioncompleted is dropped; acknowledged tasks are forgotten; it stays bounded."""
    ledger = CompletionLedger(limit=3)
    assert ledger.first("bg1", 5)
    assert not ledger.first("bg1", 9)
    assert ledger.first("bg2", 6)
    ledger.settled(5)
    assert len(ledger) == 1  # bg1 forgotten: events up to 5 are never sent again
    for n in range(3, 10):
        ledger.first(f"bg{n}", 10 + n)
    assert len(ledger) == 3
