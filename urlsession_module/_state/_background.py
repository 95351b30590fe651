"""Background tasks' lifecycle rules: the transfer process and its hosts call these instead of
deciding for themselves (journal states, a task that never started, transient failures, one
``sessioncompleted``)."""

from __future__ import annotations

import attrs

from .._events import Payload
from ..exceptions import ErrorCode
from ._inputs import Cancel, Failed, Input, ResponseStarted, TaskState
from ._machine import TaskMachine

__all__ = [
    "JOURNAL_TASK_STATE",
    "TRANSIENT_CODES",
    "CompletionLedger",
    "Retry",
    "cancel_unstarted",
    "fail_unstarted",
    "journal_task_state",
    "transient",
]

# -- background tasks: the lifecycle rules of the transfer process and its hosts ------------------
# (Kept apart from the machine; the transfer process and the host side of background
# sessions call these instead of deciding for themselves.)

# A task's state in the transfer process's journal -> what its Task proxy says. Queued, running
# and downloaded (file in place, the end not yet journaled) tasks are all running to a host.
JOURNAL_TASK_STATE: dict[str, TaskState] = {
    "queued": TaskState.RUNNING,
    "running": TaskState.RUNNING,
    "downloaded": TaskState.RUNNING,
    "suspended": TaskState.SUSPENDED,
    "completed": TaskState.COMPLETED,
}

# Failures that say "not now" rather than "never": a background task tries again later.
TRANSIENT_CODES = frozenset(
    {
        ErrorCode.CANNOT_CONNECT_TO_HOST,
        ErrorCode.NETWORK_CONNECTION_LOST,
        ErrorCode.TIMED_OUT,
        ErrorCode.CANNOT_FIND_HOST,
    }
)


def journal_task_state(journal_state: str) -> TaskState:
    """The Task state a journaled task shows; an unknown journal state is a finished task."""
    return JOURNAL_TASK_STATE.get(journal_state, TaskState.COMPLETED)


def cancel_unstarted(machine: TaskMachine) -> list[Payload]:
    """Cancel a task that never reached the wire: its one sessioncompleted, with -999."""
    machine.send(Cancel())
    return machine.send(Failed(ErrorCode.CANCELLED))


def fail_unstarted(machine: TaskMachine, code: int, message: str) -> list[Payload]:
    """End a task that cannot start (e.g. a journal record this version cannot run)."""
    if machine.finished:
        return []
    return machine.send(Failed(code, message))


@attrs.frozen
class Retry:
    """A background attempt ended in a way worth trying again: why, and when the server asks."""

    code: int
    message: str
    retry_after: float | None = None

    def give_up(self, cancelled: bool) -> Failed:
        """The input that ends the task once retrying is over (the resource deadline passed)."""
        if cancelled:
            return Failed(ErrorCode.CANCELLED)
        if self.code:
            return Failed(self.code, self.message)
        return Failed(ErrorCode.TIMED_OUT, f"the resource timeout passed ({self.message})")


def transient(event: Input) -> Retry | None:
    """Whether this input from the wire ends a background attempt to be retried, not the task.

    A connection refused, lost or timed out, or an unknown host, and a 503 response (whose
    ``Retry-After`` in seconds is honoured). The machine never sees such an input; the runner
    ends the attempt and decides, with its backoff and deadline, whether to try again.
    """
    if isinstance(event, Failed) and event.code in TRANSIENT_CODES:
        return Retry(event.code, event.message)
    if isinstance(event, ResponseStarted) and event.response.statusCode == 503:
        after = event.response.header("retry-after")
        delay = float(after) if after and after.strip().isdigit() else None
        return Retry(0, "503 Service Unavailable", delay)
    return None


class CompletionLedger:
    """A host's half of "exactly one sessioncompleted": a task's second one is dropped.

    Journaled events reach a host at least once (a reconnect replays what was not acknowledged).
    Replays are dropped by their sequence number first; this ledger catches what that cannot,
    and forgets a task once the events up to its completion are acknowledged (they are never
    sent again then), so a host that runs for months keeps it small. ``limit`` bounds it anyway.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._seqs: dict[str, int] = {}
        self._limit = limit

    def first(self, task_id: str, seq: int) -> bool:
        """Record a sessioncompleted about to be delivered; False if this task already had one."""
        if task_id in self._seqs:
            return False
        self._seqs[task_id] = seq
        while len(self._seqs) > self._limit:
            del self._seqs[next(iter(self._seqs))]
        return True

    def settled(self, upto: int) -> None:
        """Events up to ``upto`` are acknowledged: the tasks they completed can be forgotten."""
        self._seqs = {t: s for t, s in self._seqs.items() if s == 0 or s > upto}

    def __len__(self) -> int:
        return len(self._seqs)
