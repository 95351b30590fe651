"""The replay a (re)attached host receives: its missed events, in chunks, each task's snapshot once.

A replay can hold 10,000 events. Sent as one message it costs the transfer process one huge
encode and the host one huge decode, with every event held twice in memory at the peak. So it
goes in chunks of :data:`CHUNK` events, in order (``first``/``last`` frame them), all written
before the attach is answered: the host has every missed event queued for delivery by the time
``createSession`` returns, and starts delivering the first chunk while it reads the next.

The journal stores each event's fields and each task's request as JSON text. A replay used to
decode all of it, make a :class:`TaskSnapshot` per task, and encode it all again: two thirds of
a 10,000-event replay's time, for bytes that come out as they went in. So a chunk's frame is put
together from the stored text (:meth:`~._journal.Journal.replay_page`, a chunk's worth at a
time, so the first chunk is on its way before the last is read); only a task whose
machine runs in this process now, or whose stored request is not what the journal writes,
still goes through :class:`TaskSnapshot` (the host reads the same JSON object either way).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Container, Iterator
from typing import Any, Protocol

from .._state import TaskKind
from .._state._background import journal_task_state
from ._journal import Journal, TaskRecord
from ._protocol import Encoded
from ._snapshot import DEFAULT_PRIORITY
from ._wire import Message, TaskSnapshot

__all__ = ["CHUNK", "send_replay"]

CHUNK = 1000

# What the journal writes, and the host reads, as JSON; made once (a replay encodes thousands).
_ENC = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_KINDS = frozenset(k.value for k in TaskKind)


_Rows = list[tuple[int, str | None, str, str]]  # outbox rows: seq, task, name, fields (JSON)


class _Peer(Protocol):
    def send(self, message: Message) -> None: ...


def send_replay(
    host: _Peer,
    ident: str,
    journal: Journal,
    snapshot: Callable[[TaskRecord], TaskSnapshot],
    outstanding: tuple[TaskSnapshot, ...],
    live: Container[str] = (),
) -> None:
    """Send ``ident``'s unacknowledged events to ``host`` (the caller holds the publish lock).

    ``live``: the tasks whose machine runs now; their snapshot comes from ``snapshot``, which
    knows the machine (the journal knows no progress and no response).
    """
    handler: str | None = f"{ident}-{uuid.uuid4().hex[:8]}"
    tasks = _ENC([t.to_dict() for t in outstanding])  # (with the first chunk only)
    drained = _ENC(not outstanding)
    after, first, more = 0, True, True
    while more:  # a page read, put together and sent at a time: the host starts on the first
        chunk, rows, more = journal.replay_page(ident, after, CHUNK)
        if first and not chunk:
            handler = None  # nothing missed: no handler to name
        snaps: dict[str, str] = {}
        requests: dict[str, int] = {}  # each distinct stored request of the chunk, sent once
        for row in rows:
            snap = _snapshot_json(row, live, journal, snapshot, requests)
            if snap is not None:  # (a task gone meanwhile: its events name no task, as before)
                snaps[row[0]] = snap
        frame = "".join(
            (
                f'{{"op":"replay","session":{_ENC(ident)},"handlerId":{_ENC(handler)}',
                ',"requests":[',
                ",".join(requests),
                '],"snapshots":{',
                ",".join(_chunk_snapshots(chunk, snaps)),
                '},"events":[',
                ",".join(_events(chunk, snaps)),
                f'],"tasks":{tasks if first else "[]"},"drained":{drained}',
                f',"first":{_ENC(first)},"last":{_ENC(not more)}}}',
            )
        )
        host.send(Encoded(frame.encode()))
        if chunk:
            after = chunk[-1][0]
        first = False


def _chunk_snapshots(chunk: _Rows, snaps: dict[str, str]) -> Iterator[str]:
    """``"id":{snapshot}`` for each task the chunk's events speak of, once."""
    seen: set[str] = set()
    for _seq, task_id, _name, _fields in chunk:
        if task_id is not None and task_id not in seen and task_id in snaps:
            seen.add(task_id)
            yield f"{_ENC(task_id)}:{snaps[task_id]}"


def _events(chunk: _Rows, snaps: dict[str, str]) -> Iterator[str]:
    """``[seq, name, fields, task]`` each, the fields as the journal stored them."""
    for seq, task_id, name, fields in chunk:
        task = _ENC(task_id) if task_id is not None and task_id in snaps else "null"
        yield f"[{int(seq)},{_ENC(name)},{fields},{task}]"


def _snapshot_json(
    row: tuple[Any, ...],
    live: Container[str],
    journal: Journal,
    snapshot: Callable[[TaskRecord], TaskSnapshot],
    requests: dict[str, int],
) -> str | None:
    """A task's snapshot as JSON: what ``TaskSnapshot.to_dict`` gives for a task with no running
    machine, naming its stored request by its index in ``requests`` (added there if new) and
    leaving out what the host reads as the default when it is absent (no progress, response,
    error, redirect); or, through ``snapshot``, the full one for the others."""
    task_id, kind, state, request, priority, description, begin_at, body_length = row
    if request is None or task_id in live:  # (None: not the request the journal writes)
        rec = journal.task(task_id)
        return None if rec is None else _ENC(snapshot(rec).to_dict())
    index = requests.setdefault(request, len(requests))
    kind = kind if kind in _KINDS else TaskKind.DATA.value
    parts = [
        f'{{"id":{_ENC(task_id)},"kind":"{kind}","state":"{journal_task_state(state).value}"',
        f',"request":{index}',
    ]
    if priority != DEFAULT_PRIORITY:
        parts.append(f',"priority":{_ENC(priority)}')
    if description is not None:
        parts.append(f',"description":{_ENC(description)}')
    if begin_at is not None:
        parts.append(f',"begin_at":{_ENC(begin_at)}')
    if body_length:
        parts.append(f',"expected_send":{int(body_length)}')
    parts.append("}")
    return "".join(parts)
