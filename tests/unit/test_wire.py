"""The background wire's messages and task snapshot: plain data both ways, checked on parse (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from urlsession_module._background._fields import MessageError, WireError
from urlsession_module._background._snapshot import TaskSnapshot
from urlsession_module._background._wire import (
    Ack,
    Action,
    Attach,
    Control,
    Create,
    CreateReply,
    ErrorReply,
    EventMessage,
    Invalidate,
    Message,
    OkReply,
    Replay,
    ReplayEvent,
    Shutdown,
    Status,
    StatusReply,
    parse,
    parse_reply,
    request_req,
)
from urlsession_module._state import Request, ResponseInfo, TaskKind, TaskState
from urlsession_module._urls import without_userinfo

REQUEST = Request(
    "POST",
    "http://127.0.0.1:8000/up",
    (("Content-Type", "text/plain"),),
    body_path="/tmp/x",
    body_length=3,
)
SNAP = TaskSnapshot(
    id="bg1",
    kind=TaskKind.UPLOAD,
    state=TaskState.RUNNING,
    request=REQUEST,
    current_request=REQUEST,
    priority=0.75,
    description="d",
    begin_at=12.5,
    received=4,
    expected_receive=10,
    sent=3,
    expected_send=3,
    response=ResponseInfo("http://127.0.0.1:8000/up", 200, (("ETag", '"a"'),)),
    error=(-1001, "timed out"),
)


def _json_round_trip(d: dict[str, Any]) -> Any:
    return json.loads(json.dumps(d))


@pytest.mark.parametrize(
    "message",
    [
        Attach("s", {"timeoutIntervalForRequest": 5.0}, req=1),
        Create("s", TaskKind.DATA, REQUEST, 0.25, "desc", 99.0, req=2),
        Control("bg1", Action.SUSPEND),
        Ack("s", 41),
        Invalidate("s", cancel=True, req=3),
        Status(req=4),
        Shutdown(req=5),
    ],
    ids=lambda m: m.op,
)
def test_requests_round_trip_through_json(message: Message) -> None:
    """Every request becomes plain JSON data and parses back to an equal value."""
    assert parse(_json_round_trip(message.to_dict()), from_host=True) == message


@pytest.mark.parametrize(
    "message",
    [
        EventMessage("s", 7, "sessioncompleted", {"taskIdentifier": "bg1"}, SNAP),
        EventMessage("s", 0, "sessioneventscompleted", {"sessionIdentifier": "s"}),
        Replay("s", "s-1", (ReplayEvent(3, "downloadcompleted", {"a": 1}, SNAP),), (SNAP,), False),
    ],
    ids=lambda m: m.op,
)
def test_pushed_messages_round_trip_through_json(message: Message) -> None:
    """Events and replays the transfer process pushes parse back to equal values on the host."""
    assert parse(_json_round_trip(message.to_dict()), from_host=False) == message


def test_replies_parse_as_the_request_expects() -> None:
    """A reply is read as the request's reply class; a refusal as an ErrorReply with its code."""
    status = StatusReply(4, 123, (SNAP,), {"s": 2})
    assert parse_reply(_json_round_trip(status.to_dict()), Status) == status
    created = CreateReply(2, SNAP)
    assert parse_reply(_json_round_trip(created.to_dict()), Create) == created
    assert parse_reply(OkReply(9).to_dict(), Shutdown) == OkReply(9)
    refused = ErrorReply(2, WireError.NOT_ATTACHED)
    parsed = parse_reply(_json_round_trip(refused.to_dict()), Create)
    assert isinstance(parsed, ErrorReply) and parsed.code is WireError.NOT_ATTACHED
    assert parsed.message == WireError.NOT_ATTACHED.text


def test_error_reply_with_an_unknown_code_reads_as_internal() -> None:
    """A code this version does not know is not an exception on the host: it reads as 'internal'."""
    reply = ErrorReply.from_dict({"op": "reply", "req": 1, "ok": False, "code": "martian"})
    assert reply.code is WireError.INTERNAL and reply.message


def test_snapshot_round_trip_and_defaults() -> None:
    """The one snapshot class: to_dict/from_dict round-trip; a minimal dict gets the defaults."""
    assert TaskSnapshot.from_dict(_json_round_trip(SNAP.to_dict())) == SNAP
    minimal = TaskSnapshot.from_dict(
        {
            "id": "bg2",
            "kind": "download",
            "state": "suspended",
            "request": {"method": "GET", "url": "https://h/x"},
        }
    )
    assert minimal.current_request == minimal.request and minimal.expected_receive == -1
    assert minimal.response is None and minimal.error is None


def test_snapshot_redacted_shows_no_credentials() -> None:
    """A redacted snapshot has no user info in its URLs and no credential headers."""
    request = Request(
        "GET",
        "http://bguser:bg-pass@127.0.0.1:9/x",
        (("Authorization", "Basic Zm9v"), ("Cookie", "a=b"), ("Accept", "*/*")),
    )
    snap = TaskSnapshot(
        id="bg3",
        kind=TaskKind.DATA,
        state=TaskState.RUNNING,
        request=request,
        current_request=request,
        response=ResponseInfo("http://bguser:bg-pass@127.0.0.1:9/x", 200),
    )
    text = json.dumps(snap.redacted().to_dict())
    assert "bg-pass" not in text and "bguser" not in text and "Zm9v" not in text
    assert "a=b" not in text and "*/*" in text
    assert without_userinfo("https://h:1/p?q") == "https://h:1/p?q"


@pytest.mark.parametrize(
    ("d", "field"),
    [
        (
            {
                "op": "create",
                "session": "s",
                "kind": "bogus",
                "request": {"method": "GET", "url": "http://h/"},
            },
            "kind",
        ),
        ({"op": "create", "session": "s", "kind": "data"}, "request"),
        (
            {
                "op": "create",
                "session": "s",
                "kind": "data",
                "request": {"method": "GET", "url": "ftp://h/"},
            },
            "url",
        ),
        (
            {
                "op": "create",
                "session": "s",
                "kind": "data",
                "request": {"method": "GET", "url": "http://h/", "body": "x"},
            },
            "request",
        ),
        (
            {
                "op": "create",
                "session": "s",
                "kind": "data",
                "request": {"method": "GET", "url": "http://h/", "headers": [["a"]]},
            },
            "headers",
        ),
        (
            {
                "op": "create",
                "session": "s",
                "kind": "data",
                "request": {"method": "GET", "url": "http://h/"},
                "priority": 2,
            },
            "priority",
        ),
        (
            {
                "op": "create",
                "session": "s",
                "kind": "data",
                "request": {"method": "GET", "url": "http://h/"},
                "begin_at": "soon",
            },
            "begin_at",
        ),
        ({"op": "ack", "session": "s", "upto": True}, "upto"),
        ({"op": "ack", "session": "s", "upto": -1}, "upto"),
        ({"op": "ack", "session": "", "upto": 1}, "session"),
        ({"op": "attach", "session": "s", "config": []}, "config"),
        ({"op": "control", "task": "bg1", "action": "explode"}, "action"),
        ({"op": "frobnicate"}, "op"),
        ({"nop": 1}, "op"),
        ([1, 2], "op"),
    ],
)
def test_bad_messages_are_refused_naming_the_field(d: Any, field: str) -> None:
    """A malformed request raises MessageError whose words name the field at fault."""
    with pytest.raises(MessageError, match=f"{field}'"):
        parse(d, from_host=True)


def test_request_req_finds_the_number_of_an_unparsable_request() -> None:
    """Even a request that cannot be parsed is answered: its req is read on its own."""
    assert request_req({"op": "create", "req": 12, "kind": "bogus"}) == 12
    assert request_req({"op": "create", "req": True}) is None
    assert request_req("junk") is None


def test_create_refuses_an_in_memory_body() -> None:
    """Bodies cross as files (body_path), never as bytes in a message."""
    with pytest.raises(MessageError, match="body_path"):
        Create("s", TaskKind.DATA, Request("POST", "http://h/", body=b"x", body_length=1)).to_dict()
