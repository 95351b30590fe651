"""A replay's frames are put together from the journal's JSON text: the host must read exactly
what decoding, snapshotting and encoding again gave (``Replay.to_dict``), chunk by chunk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from urlsession_module._background import _replay
from urlsession_module._background._attempt import snapshot
from urlsession_module._background._journal import QUEUED, Journal, TaskRecord
from urlsession_module._background._protocol import encode
from urlsession_module._background._wire import (
    Message,
    MessageError,
    Replay,
    ReplayEvent,
    TaskSnapshot,
    parse,
)


class _Host:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, message: Message) -> None:
        self.frames.append(encode(message))


def _fill(j: Journal, requests: list[dict[str, Any]]) -> list[TaskRecord]:
    recs = []
    for i, request in enumerate(requests):
        n = j.new_task_number()
        rec = TaskRecord(
            id=f"bg{n}",
            number=n,
            session="s",
            kind=("download", "data", "upload", "nonsense")[i % 4],
            request=request,
            state=QUEUED,
            priority=(0.25, 0.5, 1.0)[i % 3],
            description=None if i % 2 else f'task "{i}" é\n',
            begin_at=None if i % 3 else 1.5e9 + i,
        )
        j.add_task(rec)
        j.append_event("s", rec.id, "downloadprogress", {"n": i, "f": 0.1 * i, "s": "\u2603"})
        if i % 2:
            j.complete_task(rec.id, "s", [("sessioncompleted", {"ok": True, "x": None})], 200, 0)
        recs.append(rec)
    j.append_event("s", None, "sessionlevel", {"what": [1, 2.5, "three"]})
    return recs


def _expected(j: Journal, outstanding: tuple[TaskSnapshot, ...]) -> list[dict[str, Any]]:
    """The frames as the replay made them before: decode, snapshot, Replay.to_dict."""
    events = j.pending_events("s")
    snaps = {rec.id: snapshot(rec, None) for rec in j.tasks_with_pending("s")}
    chunks = [events[i : i + _replay.CHUNK] for i in range(0, len(events), _replay.CHUNK)]
    return [
        Replay(
            session="s",
            handlerId="h",
            events=tuple(
                ReplayEvent(e.seq, e.name, e.fields, snaps.get(e.task_id or "")) for e in chunk
            ),
            tasks=outstanding if i == 0 else (),
            drained=not outstanding,
            first=i == 0,
            last=i == len(chunks) - 1,
        ).to_dict()
        for i, chunk in enumerate(chunks)
    ]


def _same(host: _Host, expected: list[dict[str, Any]]) -> None:
    """The host reads the same Replay from each frame as from ``Replay.to_dict``'s (whose
    snapshots carry their requests whole and every field), and the rest is the same JSON."""
    got = _got(host)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert parse(g, from_host=False) == parse(e, from_host=False)
        assert {k: v for k, v in g.items() if k not in ("requests", "snapshots")} == {
            k: v for k, v in e.items() if k != "snapshots"
        }
        assert g["snapshots"].keys() == e["snapshots"].keys()


def _got(host: _Host) -> list[dict[str, Any]]:
    out = []
    for frame in host.frames:
        d = json.loads(frame)
        assert d["handlerId"].startswith("s-")
        d["handlerId"] = "h"
        out.append(d)
    return out


REQUEST = {
    "method": "GET",
    "url": "http://127.0.0.1/x?a=1",
    "headers": [["User-Agent", "t"], ["X-Q", 'a"b\\c']],
    "body_path": None,
    "body_length": 0,
}


@pytest.mark.parametrize("count", [1, 7, _replay.CHUNK + 3])
def test_a_replay_is_the_frames_decoding_and_encoding_gave(tmp_path: Path, count: int) -> None:
    """Same JSON objects as Replay.to_dict, chunk for chunk, and each parses as a Replay."""
    j = Journal(tmp_path / "j.sqlite3")
    requests = [
        {**REQUEST, "url": f"http://127.0.0.1/{i}", "body_length": i % 5} for i in range(count)
    ]
    recs = _fill(j, requests)
    outstanding = tuple(snapshot(r, None) for r in recs[:2])
    host = _Host()
    _replay.send_replay(host, "s", j, lambda r: snapshot(r, None), outstanding)
    _same(host, _expected(j, outstanding))
    assert len(host.frames) == -(-(2 * count - count // 2 + 1) // _replay.CHUNK)
    for frame in host.frames:
        assert isinstance(parse(json.loads(frame), from_host=False), Replay)
    j.close()


def test_odd_stored_requests_and_live_tasks_take_the_slow_path(tmp_path: Path) -> None:
    """A stored request that is not what the journal writes, or a task whose machine runs now,
    gets its snapshot from ``snapshot`` (which falls back, or knows the machine)."""
    j = Journal(tmp_path / "j.sqlite3")
    odd: list[dict[str, Any]] = [
        {"method": "GET"},  # no URL
        {**REQUEST, "body_length": -1},
        {**REQUEST, "body_length": 1.5},
        {**REQUEST, "body": "x"},
        {**REQUEST, "headers": "nope"},
        REQUEST,
    ]
    recs = _fill(j, odd)
    asked: list[str] = []

    def snap(rec: TaskRecord) -> TaskSnapshot:
        asked.append(rec.id)
        return snapshot(rec, None)

    host = _Host()
    _replay.send_replay(host, "s", j, snap, (), live={recs[-1].id})
    _same(host, _expected(j, ()))
    assert sorted(asked) == sorted(r.id for r in recs)
    j.close()


def test_a_chunks_tasks_that_share_a_request_carry_it_once(tmp_path: Path) -> None:
    """A loop's tasks share one request: each chunk sends it once, the snapshots name it, and
    the host's snapshots share one Request."""
    j = Journal(tmp_path / "j.sqlite3")
    count = _replay.CHUNK + 3
    _fill(j, [REQUEST] * (count - 1) + [{**REQUEST, "url": "http://127.0.0.1/other"}])
    host = _Host()
    _replay.send_replay(host, "s", j, lambda r: snapshot(r, None), ())
    _same(host, _expected(j, ()))
    frames = _got(host)
    assert [len(f["requests"]) for f in frames] == [1, 2]
    replay = parse(frames[0], from_host=False)
    assert isinstance(replay, Replay)
    requests = {id(e.task.request) for e in replay.events if e.task is not None}
    assert len(requests) == 1
    j.close()


def test_a_snapshot_naming_no_sent_request_is_refused() -> None:
    """An index that is not in ``requests`` is refused by name, either way."""
    for d in ({**SNAPSHOT, "request": 0}, {**SNAPSHOT, "request": -1}):
        with pytest.raises(MessageError, match="'request'"):
            TaskSnapshot.from_dict(d)
        with pytest.raises(MessageError, match="'request'"):
            TaskSnapshot.checked_from_dict(d)


def test_a_replay_of_nothing_is_one_empty_last_chunk(tmp_path: Path) -> None:
    """No event: one frame still says the replay is over (the host waits for ``last``)."""
    j = Journal(tmp_path / "j.sqlite3")
    host = _Host()
    _replay.send_replay(host, "s", j, lambda r: snapshot(r, None), ())
    (d,) = [json.loads(f) for f in host.frames]
    assert d["events"] == [] and d["snapshots"] == {} and d["handlerId"] is None
    assert d["first"] and d["last"] and d["drained"]
    j.close()


SNAPSHOT = {
    "id": "bg7",
    "kind": "download",
    "state": "running",
    "request": {**REQUEST, "credential": ["u", "p"]},
    "current_request": None,
    "priority": 1,
    "description": "d",
    "begin_at": 12,
    "received": 5,
    "expected_receive": -1,
    "sent": 0,
    "expected_send": 3,
    "response": {"url": "http://127.0.0.1/x", "statusCode": 200, "headers": [["A", "b"]]},
    "error": None,
    "session": "s",
    "journal_state": None,
}

GOOD: list[dict[str, Any]] = [
    SNAPSHOT,
    {**SNAPSHOT, "priority": 0.25, "begin_at": None, "description": None, "response": None},
    {k: v for k, v in SNAPSHOT.items() if k not in ("received", "priority", "sent", "error")},
    {**SNAPSHOT, "current_request": {**REQUEST, "url": "http://127.0.0.1/moved"}},
    {**SNAPSHOT, "error": [-1001, "timed out"]},
    {**SNAPSHOT, "request": {"method": "GET", "url": "http://h/", "headers": []}},
]

BAD: list[dict[str, Any]] = [
    {**SNAPSHOT, "id": 7},
    {**SNAPSHOT, "kind": "nonsense"},
    {**SNAPSHOT, "state": ["running"]},
    {**SNAPSHOT, "priority": True},
    {**SNAPSHOT, "priority": float("nan")},
    {**SNAPSHOT, "begin_at": "soon"},
    {**SNAPSHOT, "received": -1},
    {**SNAPSHOT, "expected_receive": -2},
    {**SNAPSHOT, "sent": 1.0},
    {**SNAPSHOT, "session": 1},
    {**SNAPSHOT, "request": {**REQUEST, "headers": [["A"]]}},
    {**SNAPSHOT, "request": {**REQUEST, "headers": [["A", 1]]}},
    {**SNAPSHOT, "request": {**REQUEST, "body_length": -3}},
    {**SNAPSHOT, "request": {**REQUEST, "body": "x"}},
    {**SNAPSHOT, "request": {**REQUEST, "credential": ["u"]}},
    {**SNAPSHOT, "request": {**REQUEST, "method": None}},
    {**SNAPSHOT, "response": {"url": "u", "statusCode": "200"}},
    {**SNAPSHOT, "error": [1]},
]


@pytest.mark.parametrize("d", GOOD)
def test_the_quick_snapshot_read_is_the_checked_one(d: dict[str, Any]) -> None:
    """from_dict's quick path (no call per field) gives what the field-by-field one gives."""
    assert TaskSnapshot.from_dict(d) == TaskSnapshot.checked_from_dict(d)


@pytest.mark.parametrize("d", BAD)
def test_a_bad_snapshot_is_refused_by_name_either_way(d: dict[str, Any]) -> None:
    """What the quick path does not take goes to the checked one, which names the field."""
    with pytest.raises(MessageError) as quick:
        TaskSnapshot.from_dict(d)
    with pytest.raises(MessageError) as checked:
        TaskSnapshot.checked_from_dict(d)
    assert str(quick.value) == str(checked.value) and "'" in str(quick.value)


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 300_000])
def test_a_data_tasks_body_is_read_back_whole(tmp_path: Path, size: int) -> None:
    """The host reads a replayed data task's body from its file: one read when it is short,
    until the end when it is not (sizes around the first read's)."""
    from urlsession_module._background._host import _with_response_text

    body = "é" * (size // 2) + "x" * (size % 2)
    path = tmp_path / "bg1"
    path.write_text(body, encoding="utf-8")
    path.chmod(0o600)
    got = _with_response_text({"taskIdentifier": "bg1", "responseFile": str(path)})
    assert got == {"taskIdentifier": "bg1", "responseText": body}
