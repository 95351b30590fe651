"""The hand-over's messages on the wire (issue 17): leases, host-named creates, acknowledgements,
replays in chunks. Sans-IO: plain JSON in and out, every field checked on parse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from urlsession_module._background._snapshot import TaskSnapshot
from urlsession_module._background._wire import (
    Create,
    Journaled,
    Lease,
    LeaseReply,
    MessageError,
    Replay,
    ReplayEvent,
    parse,
    parse_reply,
)
from urlsession_module._state import Request, TaskKind, TaskState

REQUEST = Request("GET", "http://h/x", (("Accept", "*/*"),))
SNAP = TaskSnapshot("bg7", TaskKind.DOWNLOAD, TaskState.COMPLETED, REQUEST, REQUEST)


def _round(d: dict[str, Any]) -> Any:
    return json.loads(json.dumps(d))


def test_a_host_named_create_and_a_lease_round_trip() -> None:
    """A hand-over carries the host's identifier and no req; a lease asks for a block."""
    create = Create("s", TaskKind.DOWNLOAD, REQUEST, id="bg12")
    assert parse(_round(create.to_dict()), from_host=True) == create
    lease = Lease(256, req=3)
    assert parse(_round(lease.to_dict()), from_host=True) == lease
    reply = LeaseReply(3, 1025, 256)
    assert parse_reply(_round(reply.to_dict()), Lease) == reply


@pytest.mark.parametrize("bad", ["12", "bg", "bgx1", "bg-1", "bg\u0661\u0662", "task1"])
def test_a_create_with_an_identifier_not_of_a_lease_is_refused(bad: str) -> None:
    """Only 'bg' and ASCII digits: anything else never reaches the journal."""
    d = Create("s", TaskKind.DATA, REQUEST, id="bg1").to_dict()
    d["id"] = bad
    with pytest.raises(MessageError, match="'id'"):
        parse(d, from_host=True)


@pytest.mark.parametrize("count", [0, -1, 1 << 20])
def test_a_lease_of_a_silly_size_is_refused(count: int) -> None:
    with pytest.raises(MessageError, match="'count'"):
        parse({"op": "lease", "count": count, "req": 1}, from_host=True)


def test_journaled_round_trips_and_checks_its_lists() -> None:
    """The batch acknowledgement names the durable tasks and the refused ones with why."""
    message = Journaled(("bg1", "bg2"), (("bg3", "disk is full"),))
    assert parse(_round(message.to_dict()), from_host=False) == message
    with pytest.raises(MessageError, match="'ids'"):
        parse({"op": "journaled", "ids": [1], "failed": []}, from_host=False)
    with pytest.raises(MessageError, match="'failed'"):
        parse({"op": "journaled", "ids": [], "failed": [["bg1"]]}, from_host=False)


def test_a_replay_chunk_sends_each_snapshot_once() -> None:
    """Two events of one task carry its snapshot once; the chunk flags survive the trip."""
    events = (
        ReplayEvent(1, "downloadcompleted", {"taskIdentifier": "bg7"}, SNAP),
        ReplayEvent(2, "sessioncompleted", {"taskIdentifier": "bg7"}, SNAP),
    )
    replay = Replay("s", "s-1", events, (), True, first=False, last=True)
    d = _round(replay.to_dict())
    assert list(d["snapshots"]) == ["bg7"] and d["snapshots"]["bg7"]["current_request"] is None
    assert parse(d, from_host=False) == replay


def test_a_replay_event_naming_an_unsent_snapshot_is_malformed() -> None:
    d = _round(Replay("s", None, (ReplayEvent(1, "x", {}, SNAP),), (), True).to_dict())
    d["snapshots"] = {}
    with pytest.raises(MessageError, match="'events'"):
        parse(d, from_host=False)
