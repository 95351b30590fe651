"""The background wire's base message and its replies (split out of :mod:`._wire`, which
re-exports them): every request is answered with one of these, ``req`` saying which.

Sans-IO, as :mod:`._wire`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from ._fields import MessageError, WireError, count, field
from ._snapshot import TaskSnapshot

__all__ = [
    "CreateReply",
    "ErrorReply",
    "LeaseReply",
    "Message",
    "OkReply",
    "Reply",
    "StatusReply",
]


@attrs.frozen
class Message:
    """Base of every message: ``op`` names it on the wire."""

    op: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        d = {"op": self.op}
        for a in attrs.fields(type(self)):
            value = getattr(self, a.name)
            d[a.name] = value.value if isinstance(value, enum.Enum) else value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Message:
        raise NotImplementedError


@attrs.frozen
class Reply(Message):
    """Base of the replies: ``req`` says which request this answers."""

    op: ClassVar[str] = "reply"
    req: int

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "req": self.req, "ok": True}


@attrs.frozen
class OkReply(Reply):
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OkReply:
        return cls(field(d, "req", int))


@attrs.frozen
class ErrorReply(Reply):
    """A refused request: a :class:`WireError` code and its plain words."""

    code: WireError
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "req": self.req,
            "ok": False,
            "code": self.code.value,
            "message": self.message or self.code.text,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ErrorReply:
        try:
            code = WireError(d.get("code"))
        except ValueError:
            code = WireError.INTERNAL
        return cls(field(d, "req", int), code, str(d.get("message") or code.text))


@attrs.frozen
class CreateReply(Reply):
    task: TaskSnapshot

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "task": self.task.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CreateReply:
        return cls(field(d, "req", int), TaskSnapshot.from_dict(d.get("task")))


@attrs.frozen
class LeaseReply(Reply):
    """Task numbers ``first`` .. ``first + count - 1`` are the host's."""

    first: int
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "first": self.first, "count": self.count}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LeaseReply:
        return cls(field(d, "req", int), count(d, "first", low=1), count(d, "count", low=1))


@attrs.frozen
class StatusReply(Reply):
    pid: int
    tasks: tuple[TaskSnapshot, ...]
    pending_events: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "pid": self.pid,
            "tasks": [t.to_dict() for t in self.tasks],
            "pending_events": dict(self.pending_events),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StatusReply:
        pending = field(d, "pending_events", dict)
        if not all(isinstance(k, str) and isinstance(v, int) for k, v in pending.items()):
            raise MessageError("'pending_events' must map session identifiers to counts")
        return cls(
            field(d, "req", int),
            field(d, "pid", int),
            tuple(TaskSnapshot.from_dict(t) for t in field(d, "tasks", list)),
            dict(pending),
        )
