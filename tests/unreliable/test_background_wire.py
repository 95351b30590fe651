"""Issue 16's fields on the background wire and in the journal, without a transfer process:
a task's own rate and resume data's validator cross as checked plain data, and a task's
retryPolicy count is kept across a reopened journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from urlsession_module._background._fields import MessageError
from urlsession_module._background._journal import QUEUED, Journal, TaskRecord
from urlsession_module._background._wire import Action, Control, Create, parse
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
def test_a_bad_rate_is_refused_naming_it(rate: object, words: str) -> None:
    d = Create("s", TaskKind.DOWNLOAD, REQUEST, id="bg9").to_dict()
    d["rate"] = rate
    with pytest.raises(MessageError, match=f"'rate'.*{words}"):
        parse(d, from_host=True)


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
    j.update_task("bg1", policy_retries=2)
    j.close()
    again = Journal(path)
    got = again.task("bg1")
    again.close()
    assert got is not None
    assert (got.rate, got.policy_retries, got.validator) == (1000, 2, '"v0"')
