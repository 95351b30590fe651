"""Issue 16's fields on the background wire and in the journal, without a transfer process:
a task's own rate and resume data's validator cross as checked plain data, and a task's
retryPolicy count is kept across a reopened journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from urlsession_module._background._fields import MessageError
from urlsession_module._background._journal import QUEUED, Journal, TaskRecord
from urlsession_module._background._wire import Action, Control, Create, SetRate, parse
from urlsession_module._state import Request, TaskKind

REQUEST = Request("GET", "http://127.0.0.1:8000/bytes/10")


def test_create_carries_rate_and_validator_both_ways() -> None:
    m = Create("s", TaskKind.DOWNLOAD, REQUEST, id="bg7", validator='"v0"', rate=4096)
    back = parse(json.loads(json.dumps(m.to_dict())), from_host=True)
    assert back == m
    plain = Create("s", TaskKind.DOWNLOAD, REQUEST, id="bg8").to_dict()
    assert "rate" not in plain and "validator" not in plain  # frames stay as small as before
    assert parse(plain, from_host=True) == Create("s", TaskKind.DOWNLOAD, REQUEST, id="bg8")


@pytest.mark.parametrize(("rate", "words"), [(0, "at least 1"), (-3, "at least 1"), ("1M", "int")])
@pytest.mark.parametrize("message", ["create", "rate"])
def test_a_bad_rate_is_refused_naming_it(rate: object, words: str, message: str) -> None:
    if message == "create":
        d = Create("s", TaskKind.DOWNLOAD, REQUEST, id="bg9").to_dict()
    else:
        d = SetRate("s", 4096).to_dict()
    d["rate"] = rate
    with pytest.raises(MessageError, match=f"'rate'.*{words}"):
        parse(d, from_host=True)


@pytest.mark.parametrize("rate", [None, 1, 64 * 1024])
def test_a_session_rate_crosses_as_plain_data(rate: int | None) -> None:
    """setMaximumBytesPerSecond of a background session: None lifts the limit."""
    m = SetRate("com.example.bg", rate)
    assert parse(json.loads(json.dumps(m.to_dict())), from_host=True) == m


def test_cancel_producing_resume_data_is_an_action() -> None:
    m = Control("bg1", Action.CANCEL_RESUMABLE)
    assert parse(m.to_dict(), from_host=True) == m


def test_rate_and_retry_count_outlive_a_reopened_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    j = Journal(path)
    rec = TaskRecord(
        id="bg1",
        number=1,
        session="s",
        kind="download",
        request={"method": "GET", "url": "http://127.0.0.1/x", "headers": []},
        state=QUEUED,
        rate=1000,
        validator='"v0"',
    )
    j.add_tasks([rec])
    j.update_task("bg1", policy_retries=2, metrics='{"kept": 1}')
    j.close()
    again = Journal(path)
    got = again.task("bg1")
    again.close()
    assert got is not None
    assert (got.rate, got.policy_retries, got.validator) == (1000, 2, '"v0"')
    assert got.metrics == '{"kept": 1}'


def test_carried_metrics_go_on_from_the_journaled_record() -> None:
    """What a retried background attempt records into: the earlier attempts' record, read
    back as it was written, then its own request; a record it did not write is refused."""
    from urlsession_module._transport._metrics import TaskMetrics

    first = TaskMetrics()
    first.begin().fields["remotePort"] = 8000
    first.redirects = 1
    record = json.loads(json.dumps(first.to_dict()))
    again = TaskMetrics.carried(record)
    again.begin()
    out = again.to_dict()
    assert out["taskInterval"]["start"] == first.start
    assert out["redirectCount"] == 1
    assert out["transactionMetrics"][0] == record["transactionMetrics"][0]
    assert len(out["transactionMetrics"]) == 2
    for bad in ({}, {"taskInterval": {}}, {**record, "transactionMetrics": [{"x": 1}]}):
        with pytest.raises(ValueError, match="not a metrics record"):
            TaskMetrics.carried(bad)


def test_a_task_retried_for_long_keeps_its_first_and_latest_requests() -> None:
    """Metrics keep at most MOST_KEPT transactions: the first, then the latest."""
    from urlsession_module._transport._metrics import MOST_KEPT, TaskMetrics

    m = TaskMetrics()
    for i in range(MOST_KEPT + 50):
        m.begin().fields["remotePort"] = i
    ports = [tx["remotePort"] for tx in m.to_dict()["transactionMetrics"]]
    assert len(ports) == MOST_KEPT
    assert ports[0] == 0 and ports[1:] == list(range(51, MOST_KEPT + 50))
