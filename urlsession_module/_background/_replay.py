"""The replay a (re)attached host receives: its missed events, in chunks, each task's snapshot once.

A replay can hold 10,000 events. Sent as one message it costs the transfer process one huge
encode and the host one huge decode, with every event held twice in memory at the peak. So it
goes in chunks of :data:`CHUNK` events, in order (``first``/``last`` frame them), all written
before the attach is answered: the host has every missed event queued for delivery by the time
``createSession`` returns, and starts delivering the first chunk while it reads the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from ._journal import Journal, TaskRecord
from ._wire import Message, Replay, ReplayEvent, TaskSnapshot

__all__ = ["CHUNK", "send_replay"]

CHUNK = 1000


class _Peer(Protocol):
    def send(self, message: Message) -> None: ...


def send_replay(
    host: _Peer,
    ident: str,
    journal: Journal,
    snapshot: Callable[[TaskRecord], TaskSnapshot],
    outstanding: tuple[TaskSnapshot, ...],
) -> None:
    """Send ``ident``'s unacknowledged events to ``host`` (the caller holds the publish lock)."""
    events = journal.pending_events(ident)
    # One query for the tasks the events speak of, not one per event.
    snaps = {rec.id: snapshot(rec) for rec in journal.tasks_with_pending(ident)}
    handler = f"{ident}-{uuid.uuid4().hex[:8]}" if events else None
    chunks = [events[i : i + CHUNK] for i in range(0, len(events), CHUNK)] or [[]]
    for i, chunk in enumerate(chunks):
        host.send(
            Replay(
                session=ident,
                handlerId=handler,
                events=tuple(
                    ReplayEvent(e.seq, e.name, e.fields, snaps.get(e.task_id or "")) for e in chunk
                ),
                tasks=outstanding if i == 0 else (),
                drained=not outstanding,
                first=i == 0,
                last=i == len(chunks) - 1,
            )
        )
