"""The background wire as typed values: one class per request, reply and event, one task snapshot.

Hosts and the transfer process exchange JSON objects (framing is :mod:`._protocol`'s job). Every
object read from the other side goes through :func:`parse` (or a reply class's ``from_dict``),
which checks each field and raises :class:`MessageError` naming the field, as attrs does; so a
malformed message is refused at the edge and never reaches the journal, where it would come back
at every start. ``to_dict`` gives plain data for ``json.dumps``; nothing else crosses.

Sans-IO: no socket, no threads, no pyee, no urllib3. A session's configuration travels as a plain
dict here; turning it into ``ConfigValues`` (and checking it) is the transfer process's job.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from .._state import Request, TaskKind
from ._fields import (
    MessageError,
    WireError,
    count,
    enum_field,
    field,
    number,
    request_from_dict,
    request_to_dict,
    session_field,
)
from ._message import (
    CreateReply,
    ErrorReply,
    LeaseReply,
    Message,
    OkReply,
    Reply,
    StatusReply,
)
from ._snapshot import TaskSnapshot, snapshot_or_none

__all__ = [
    "Ack",
    "Attach",
    "Control",
    "Create",
    "CreateReply",
    "ErrorReply",
    "EventMessage",
    "Invalidate",
    "Journaled",
    "Lease",
    "LeaseReply",
    "Message",
    "MessageError",
    "OkReply",
    "Replay",
    "ReplayEvent",
    "Reply",
    "SetRate",
    "Shutdown",
    "Status",
    "StatusReply",
    "TaskSnapshot",
    "WireError",
    "parse",
    "parse_reply",
    "request_req",
]

# -- host -> transfer process ---------------------------------------------------------------------


@attrs.frozen
class Attach(Message):
    """A session (re)connects: its configuration, as plain data; a replay follows."""

    op: ClassVar[str] = "attach"
    session: str
    config: dict[str, Any]
    req: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Attach:
        return cls(session_field(d), dict(field(d, "config", dict)), field(d, "req", int, None))


@attrs.frozen
class Create(Message):
    """A new task. Two ways, one message:

    - the hand-over (``id`` set, no ``req``): the host chose the identifier from a :class:`Lease`
      and does not wait; the transfer process journals it with others (group commit) and says so
      in a pushed :class:`Journaled`. Sent again after a reconnect, it is journaled once.
    - a request (``req`` set, ``id`` None): journaled alone, the reply gives its identifier.

    Issue 16: ``validator`` is the ``If-Range`` validator of resume data the host moved into
    the session's download folder (the transfer process continues that partial file); ``rate``
    is the task's own ``maximumBytesPerSecond``.
    """

    op: ClassVar[str] = "create"
    session: str
    kind: TaskKind
    request: Request
    priority: float = 0.5
    description: str | None = None
    begin_at: float | None = None
    req: int | None = None
    id: str | None = None
    validator: str | None = None
    rate: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.plain(
            self.session,
            self.kind,
            request_to_dict(self.request),
            self.priority,
            self.description,
            self.begin_at,
            self.req,
            self.id,
            validator=self.validator,
            rate=self.rate,
        )

    @staticmethod
    def plain(
        session: str,
        kind: TaskKind,
        request: dict[str, Any],
        priority: float,
        description: str | None,
        begin_at: float | None,
        req: int | None,
        id: str | None,
        *,
        validator: str | None = None,
        rate: int | None = None,
    ) -> dict[str, Any]:
        """The message as plain data, without making a ``Create`` first: a hand-over builds
        its frame from this directly (with the request's dict made once per request)."""
        extras = {"validator": validator, "rate": rate} if validator or rate else {}
        return {
            "op": "create",
            "session": session,
            "kind": kind.value,
            "request": request,
            "priority": priority,
            "description": description,
            "begin_at": begin_at,
            "req": req,
            "id": id,
            **extras,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Create:
        priority = float(number(d, "priority", 0.5))
        if not 0.0 <= priority <= 1.0:
            raise MessageError(f"'priority' must be between 0 and 1 (got {priority})")
        return cls(
            session=session_field(d),
            kind=enum_field(d, "kind", TaskKind),
            request=request_from_dict(d.get("request")),
            priority=priority,
            description=field(d, "description", str, None),
            begin_at=number(d, "begin_at", None),
            req=field(d, "req", int, None),
            id=task_id_field(d),
            validator=field(d, "validator", str, None),
            rate=rate_field(d),
        )


def rate_field(d: Mapping[str, Any]) -> int | None:
    """A task's own ``maximumBytesPerSecond``: None, or bytes per second >= 1."""
    value: int | None = field(d, "rate", int, None)
    if value is not None and value < 1:
        raise MessageError(f"'rate' must be at least 1 byte per second (got {value})")
    return value


def task_id_field(d: Mapping[str, Any]) -> str | None:
    """A host-chosen identifier: ``bg`` and a leased number (checked against the lease later)."""
    value: str | None = field(d, "id", str, None)
    digits = value[2:] if value is not None else ""
    if value is not None and not (value.startswith("bg") and digits.isascii() and digits.isdigit()):
        raise MessageError(f"'id' must be 'bg' and a number (got {value!r:.40})")
    return value


@attrs.frozen
class Lease(Message):
    """A block of ``count`` task numbers for the host to name its tasks with (no round trip per
    task). Durable before the reply; numbers never come back, used or not."""

    op: ClassVar[str] = "lease"
    count: int
    req: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lease:
        n = count(d, "count")
        if not 1 <= n <= MAX_LEASE:
            raise MessageError(f"'count' must be between 1 and {MAX_LEASE} (got {n})")
        return cls(n, field(d, "req", int, None))


MAX_LEASE = 1 << 16


class Action(str, enum.Enum):
    CANCEL = "cancel"
    CANCEL_RESUMABLE = "cancel-resumable"  # cancelByProducingResumeData: keep the partial file
    SUSPEND = "suspend"
    RESUME = "resume"


@attrs.frozen
class Control(Message):
    """Cancel, suspend or resume a task (a host sends it without ``req``: no reply)."""

    op: ClassVar[str] = "control"
    task: str
    action: Action
    req: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Control:
        return cls(
            field(d, "task", str), enum_field(d, "action", Action), field(d, "req", int, None)
        )


@attrs.frozen
class SetRate(Message):
    """A session's new ``maximumBytesPerSecond`` (None: no limit) for its running and later
    tasks (``Session.setMaximumBytesPerSecond``; a host sends it without ``req``)."""

    op: ClassVar[str] = "rate"
    session: str
    rate: int | None = None
    req: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SetRate:
        return cls(session_field(d), rate_field(d), field(d, "req", int, None))


@attrs.frozen
class Ack(Message):
    """The host's listeners ran for every journaled event up to ``upto``: never send them again."""

    op: ClassVar[str] = "ack"
    session: str
    upto: int
    req: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ack:
        return cls(session_field(d), count(d, "upto"), field(d, "req", int, None))


@attrs.frozen
class Invalidate(Message):
    op: ClassVar[str] = "invalidate"
    session: str
    cancel: bool = False
    req: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Invalidate:
        return cls(
            session_field(d), bool(field(d, "cancel", bool, False)), field(d, "req", int, None)
        )


@attrs.frozen
class Status(Message):
    """Every task (``all``), or only those running now: ``status`` without ``--all`` counts the
    rest from the journal in one query, so 10,000 queued tasks cost it nothing."""

    op: ClassVar[str] = "status"
    req: int | None = None
    all: bool = True

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Status:
        return cls(field(d, "req", int, None), bool(field(d, "all", bool, True)))


@attrs.frozen
class Shutdown(Message):
    op: ClassVar[str] = "shutdown"
    req: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Shutdown:
        return cls(field(d, "req", int, None))


# -- transfer process -> host ---------------------------------------------------------------------


@attrs.frozen
class EventMessage(Message):
    """One event of a task (or of the session when ``task`` is None); ``seq`` > 0 wants an ack."""

    op: ClassVar[str] = "event"
    session: str
    seq: int
    name: str
    fields: dict[str, Any]
    task: TaskSnapshot | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["task"] = self.task.to_dict() if self.task else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EventMessage:
        return cls(
            session_field(d),
            count(d, "seq"),
            field(d, "name", str),
            dict(field(d, "fields", dict)),
            snapshot_or_none(d.get("task")),
        )


@attrs.frozen
class Journaled(Message):
    """Handed-over tasks now durable (``ids``), and those the journal could not take
    (``failed``: ``[id, message]``, e.g. a full disk): one message per group commit."""

    op: ClassVar[str] = "journaled"
    ids: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "ids": list(self.ids), "failed": [list(f) for f in self.failed]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Journaled:
        ids = field(d, "ids", list)
        failed = field(d, "failed", list, [])
        if not all(isinstance(i, str) for i in ids):
            raise MessageError("'ids' must be a list of task identifiers")
        if not all(
            isinstance(f, list) and len(f) == 2 and all(isinstance(x, str) for x in f)
            for f in failed
        ):
            raise MessageError("'failed' must be a list of [id, message]")
        return cls(tuple(ids), tuple((f[0], f[1]) for f in failed))


@attrs.frozen
class ReplayEvent:
    seq: int
    name: str
    fields: dict[str, Any]
    task: TaskSnapshot | None


@attrs.frozen
class Replay(Message):
    """What a (re)attached host missed, in order, and the tasks still outstanding.

    On the wire each task's snapshot travels once (``snapshots``, by identifier), and events
    name their task: a finished download has two events, and a replay can hold 10,000. A
    snapshot's request may be an index into ``requests`` (the transfer process sends each
    distinct request of a chunk once: a loop's 10,000 tasks share one).
    """

    op: ClassVar[str] = "replay"
    session: str
    handlerId: str | None
    events: tuple[ReplayEvent, ...]
    tasks: tuple[TaskSnapshot, ...]
    drained: bool
    first: bool = True  # a long replay comes in chunks: the first announces it,
    last: bool = True  # the last one may end it with sessioneventscompleted

    def to_dict(self) -> dict[str, Any]:
        snapshots: dict[str, Any] = {}
        for e in self.events:
            if e.task is not None and e.task.id not in snapshots:
                snapshots[e.task.id] = e.task.to_dict()
        return {
            "op": self.op,
            "session": self.session,
            "handlerId": self.handlerId,
            "snapshots": snapshots,
            "events": [
                [e.seq, e.name, e.fields, e.task.id if e.task else None] for e in self.events
            ],
            "tasks": [t.to_dict() for t in self.tasks],
            "drained": self.drained,
            "first": self.first,
            "last": self.last,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Replay:
        requests = tuple(
            request_from_dict(r, "requests[]", url_checked=True)
            for r in field(d, "requests", list, [])
        )
        raw_snaps = field(d, "snapshots", dict, {})
        snaps = {k: TaskSnapshot.from_dict(v, requests) for k, v in raw_snaps.items()}
        events = []
        for item in field(d, "events", list):
            if not isinstance(item, list) or len(item) != 4:
                raise MessageError("'events' must be a list of [seq, name, fields, task]")
            seq, name, fields, task = item
            if (
                not isinstance(seq, int)
                or not isinstance(name, str)
                or not isinstance(fields, dict)
                or not (task is None or task in snaps)
            ):
                raise MessageError("'events' must be a list of [seq, name, fields, task]")
            events.append(ReplayEvent(seq, name, fields, None if task is None else snaps[task]))
        return cls(
            session_field(d),
            field(d, "handlerId", str, None),
            tuple(events),
            tuple(TaskSnapshot.from_dict(t) for t in field(d, "tasks", list)),
            bool(field(d, "drained", bool, False)),
            bool(field(d, "first", bool, True)),
            bool(field(d, "last", bool, True)),
        )


# What each request is answered with (requests not listed here are answered with OkReply).
REPLY_TO: dict[type[Message], type[Reply]] = {
    Create: CreateReply,
    Status: StatusReply,
    Lease: LeaseReply,
}

_REQUESTS: dict[str, type[Message]] = {
    m.op: m for m in (Attach, Create, Control, SetRate, Ack, Invalidate, Status, Shutdown, Lease)
}
_PUSHED: dict[str, type[Message]] = {m.op: m for m in (EventMessage, Replay, Journaled)}


def parse(d: Any, *, from_host: bool) -> Message:
    """The message a decoded JSON object is, checked field by field (:class:`MessageError`).

    ``from_host``: what the transfer process reads (requests); otherwise what a host reads (a
    pushed event or replay; replies are parsed by :func:`parse_reply`, which knows what it awaits).
    """
    if not isinstance(d, Mapping) or not isinstance(d.get("op"), str):
        raise MessageError("a message is a JSON object with an 'op'")
    table = _REQUESTS if from_host else _PUSHED
    cls = table.get(d["op"])
    if cls is None:
        raise MessageError(f"'op' is not one the protocol knows (got {d['op']!r:.40})")
    return cls.from_dict(d)


def parse_reply(d: Mapping[str, Any], request: type[Message]) -> Reply:
    """The reply to a request of type ``request``: its reply class, or an :class:`ErrorReply`."""
    if not d.get("ok", False):
        return ErrorReply.from_dict(d)
    reply = REPLY_TO.get(request, OkReply).from_dict(d)
    assert isinstance(reply, Reply)
    return reply


def request_req(d: Any) -> int | None:
    """The ``req`` of a message that could not be parsed, so that it still gets its reply."""
    if isinstance(d, Mapping):
        req = d.get("req")
        if isinstance(req, int) and not isinstance(req, bool):
            return req
    return None
