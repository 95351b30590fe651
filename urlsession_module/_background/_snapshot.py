"""One task snapshot class: what hosts and ``urlsession status`` know of a background task.

Written by the transfer process, read by a host's Task proxies and by the command-line tool,
through the same :meth:`TaskSnapshot.to_dict`/:meth:`TaskSnapshot.from_dict` (checked).
Sans-IO: no socket, no threads, no pyee, no urllib3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._state import Request, ResponseInfo, TaskKind, TaskState
from .._urls import without_userinfo
from ._fields import (
    MessageError,
    count,
    enum_field,
    field,
    number,
    plain_request,
    redact_request,
    request_from_dict,
    request_to_dict,
    response_from_dict,
    response_to_dict,
)

__all__ = ["TaskSnapshot"]

# -- the task snapshot ------------------------------------------------------------------------------


DEFAULT_PRIORITY = 0.5  # URLSessionTask.defaultPriority: a snapshot without one has it


@attrs.frozen
class TaskSnapshot:
    """What a host's Task proxy (or ``urlsession status``) knows of a task of the transfer process.

    ``journal_state`` and ``session`` are filled for ``status``, which lists every session's tasks.
    """

    id: str
    kind: TaskKind
    state: TaskState
    request: Request
    current_request: Request
    priority: float = DEFAULT_PRIORITY
    description: str | None = None
    begin_at: float | None = None
    received: int = 0
    expected_receive: int = -1
    sent: int = 0
    expected_send: int = 0
    response: ResponseInfo | None = None
    error: tuple[int, str] | None = None
    session: str | None = None
    journal_state: str | None = None

    def redacted(self) -> TaskSnapshot:
        """The same task with no credential in sight (user info, Authorization): for ``status``."""
        return attrs.evolve(
            self,
            request=redact_request(self.request),
            current_request=redact_request(self.current_request),
            response=None
            if self.response is None
            else attrs.evolve(self.response, url=without_userinfo(self.response.url)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "state": self.state.value,
            "request": request_to_dict(self.request),
            # Most snapshots (every finished task's in a replay) have not been redirected: the
            # request once, not twice.
            "current_request": None
            if self.current_request == self.request
            else request_to_dict(self.current_request),
            "priority": self.priority,
            "description": self.description,
            "begin_at": self.begin_at,
            "received": self.received,
            "expected_receive": self.expected_receive,
            "sent": self.sent,
            "expected_send": self.expected_send,
            "response": response_to_dict(self.response),
            "error": list(self.error) if self.error else None,
            "session": self.session,
            "journal_state": self.journal_state,
        }

    @classmethod
    def from_dict(cls, d: Any, requests: Sequence[Request] = ()) -> TaskSnapshot:
        """``requests``: a replay's requests, each sent once; a snapshot may name one by its
        index instead of carrying it (thousands of finished tasks share a few requests)."""
        quick = _plain_snapshot(d, requests)
        return quick if quick is not None else cls.checked_from_dict(d, requests)

    @classmethod
    def checked_from_dict(cls, d: Any, requests: Sequence[Request] = ()) -> TaskSnapshot:
        """Field by field, naming the first that is wrong (what :meth:`from_dict` falls back on)."""
        if not isinstance(d, Mapping):
            raise MessageError("'task' must be an object")
        raw = d.get("request")
        if type(raw) is int:
            if not 0 <= raw < len(requests):
                raise MessageError("'request' must be an object or the index of one in 'requests'")
            request = requests[raw]
        else:  # Requests a snapshot shows were checked by the intake (types still are)
            request = request_from_dict(raw, url_checked=True)
        current = d.get("current_request")
        err = d.get("error")
        if err is not None and not (
            isinstance(err, (list, tuple))
            and len(err) == 2
            and isinstance(err[0], int)
            and isinstance(err[1], str)
        ):
            raise MessageError("'error' must be [code, message] or null")
        return cls(
            id=field(d, "id", str),
            kind=enum_field(d, "kind", TaskKind),
            state=enum_field(d, "state", TaskState),
            request=request,
            current_request=request
            if current is None
            else request_from_dict(current, "current_request", url_checked=True),
            priority=float(number(d, "priority", DEFAULT_PRIORITY)),
            description=field(d, "description", str, None),
            begin_at=number(d, "begin_at", None),
            received=count(d, "received", 0),
            expected_receive=count(d, "expected_receive", -1, low=-1),
            sent=count(d, "sent", 0),
            expected_send=count(d, "expected_send", 0, low=-1),
            response=response_from_dict(d.get("response")),
            error=(int(err[0]), str(err[1])) if err else None,
            session=field(d, "session", str, None),
            journal_state=field(d, "journal_state", str, None),
        )


_KINDS = {k.value: k for k in TaskKind}
_STATES = {s.value: s for s in TaskState}


def _number(value: Any) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _plain_snapshot(d: Any, requests: Sequence[Request] = ()) -> TaskSnapshot | None:
    """The common snapshot (``to_dict``'s, as JSON reads it) checked with no call per field: a
    replay reads 10,000. None: the checked path reads it, and says what is wrong."""
    if type(d) is not dict:
        return None
    g = d.get
    task_id, kind, state, raw = g("id"), g("kind"), g("state"), g("request")
    priority, description, begin_at = (
        g("priority", DEFAULT_PRIORITY),
        g("description"),
        g("begin_at"),
    )
    received, expected_receive = g("received", 0), g("expected_receive", -1)
    sent, expected_send = g("sent", 0), g("expected_send", 0)
    session, journal_state = g("session"), g("journal_state")
    if (
        type(task_id) is not str
        or type(kind) is not str
        or type(state) is not str
        or kind not in _KINDS
        or state not in _STATES
        or g("current_request") is not None
        or g("error") is not None
        or not _number(priority)
        or not (description is None or type(description) is str)
        or not (begin_at is None or _number(begin_at))
        or type(received) is not int
        or type(expected_receive) is not int
        or type(sent) is not int
        or type(expected_send) is not int
        or received < 0
        or sent < 0
        or expected_receive < -1
        or expected_send < -1
        or not (session is None or type(session) is str)
        or not (journal_state is None or type(journal_state) is str)
    ):
        return None
    if type(raw) is int:
        if not 0 <= raw < len(requests):
            return None
        request: Request | None = requests[raw]
    else:
        request = plain_request(raw)
    if request is None:
        return None
    return TaskSnapshot(
        task_id,
        _KINDS[kind],
        _STATES[state],
        request,
        request,
        float(priority),
        description,
        begin_at,
        received,
        expected_receive,
        sent,
        expected_send,
        response_from_dict(g("response")),
        None,
        session,
        journal_state,
    )


def snapshot_or_none(value: Any) -> TaskSnapshot | None:
    return None if value is None else TaskSnapshot.from_dict(value)
