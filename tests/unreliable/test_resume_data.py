"""Resume data on both engines: cancelByProducingResumeData, a failed download's resumeData,
downloadTask({'resumeData'}) with Range + If-Range, a resource that changed, bad resume data."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from urlsession_module.exceptions import InvalidArgumentValueError
from urlsession_module.testing import FaultServer, LocalServer, content_sha256
from urlsession_module.testing._content import content_bytes
from urlsession_module.testing._scenarios import FLAKY_SHIFT

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
ENGINES = pytest.mark.parametrize("eng", ["curl", "urllib3"])


def _cancel_for_resume_data(session: Any, rec: Any, tid: str, after: int) -> str | None:
    rec.wait_for(
        lambda ev: any(
            e.type == "downloadprogress"
            and e.taskIdentifier == tid
            and e.totalBytesWritten >= after
            for e in ev
        ),
        20,
    )
    got: list[dict[str, Any]] = []
    called = threading.Event()

    def callback(answer: dict[str, Any]) -> None:
        got.append(answer)
        called.set()

    session.getTask(tid).cancelByProducingResumeData(callback)
    assert called.wait(10)
    done = rec.completed(tid, 10)
    assert done.errorCode == -999
    data = got[0]["resumeData"]
    assert data is None or isinstance(data, str)
    return data


@ENGINES
def test_cancel_then_continue_with_range_and_if_range(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    size = 2 * 1024 * 1024
    session = make_session(engine=eng)
    rec = recorder(session)
    marker = uuid.uuid4().hex
    url = server.url(f"/bytes/{size}?rate={1024 * 1024}&m={marker}")
    tid = session.downloadTask(url=url)
    data = _cancel_for_resume_data(session, rec, tid, 300_000)
    assert data is not None
    json.dumps({"resumeData": data})  # JSON-safe
    again = session.downloadTask({"resumeData": data})
    done = rec.completed(again, 30)
    assert done.success, done.message
    blob = rec.of(again, "downloadcompleted")[0].data
    assert hashlib.sha256(blob.read()).hexdigest() == content_sha256(size)
    ranged = [r for r in server.requests if marker in r.path and "range" in r.headers]
    assert len(ranged) == 1 and ranged[0].headers["if-range"]
    first = int(ranged[0].headers["range"][6:-1])
    assert first >= 300_000
    progress = rec.of(again, "downloadprogress")
    assert progress[0].totalBytesWritten > first  # counts what the resume data held
    with pytest.raises(InvalidArgumentValueError) as info:  # used up: its file moved on
        session.downloadTask({"resumeData": data})
    assert info.value.argument == "resumeData"


@ENGINES
@pytest.mark.parametrize("changes", [0, 1])
def test_failed_download_carries_resume_data(
    eng: str, changes: int, faults: FaultServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """An RST mid-body: sessioncompleted has resumeData; continuing it gives exactly the
    resource, also when it changed meanwhile (If-Range: the whole new version)."""
    n = 300_000
    key = uuid.uuid4().hex
    session = make_session(engine=eng)
    rec = recorder(session)
    url = faults.url("flaky-download", length=n, after=120_000, key=key, changes=changes)
    failed = rec.completed(session.downloadTask(url=url), 20)
    assert not failed.success and failed.errorCode == -1005
    assert isinstance(failed.resumeData, str)
    again = session.downloadTask(resumeData=failed.resumeData)
    done = rec.completed(again, 20)
    assert done.success, done.message
    data = rec.of(again, "downloadcompleted")[0].data.read()
    assert data == content_bytes(n, FLAKY_SHIFT * changes)
    tries = [r for r in faults.requests if key in r.target]
    assert tries[1].headers["range"] == "bytes=120000-"
    assert tries[1].headers["if-range"] == '"v0"'


@ENGINES
def test_no_validator_means_no_resume_data(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    session = make_session(engine=eng)
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/stall?length=400000&after=100000&hang=20"))
    assert _cancel_for_resume_data(session, rec, tid, 1) is None


def _good_data(server: LocalServer, make_session: MakeSession, recorder: MakeRecorder) -> str:
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{1 << 20}?rate={512 * 1024}"))
    data = _cancel_for_resume_data(session, rec, tid, 100_000)
    assert data is not None
    return data


def test_bad_resume_data_is_refused_at_the_call(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    data = _good_data(server, make_session, recorder)
    session = make_session()
    record = json.loads(base64.urlsafe_b64decode(data))
    forged = dict(record, record=dict(record["record"], url="http://127.0.0.1:1/other"))
    bad = [
        "not resume data",
        base64.urlsafe_b64encode(b'{"record": {}, "mac": "00"}').decode(),
        base64.urlsafe_b64encode(json.dumps(forged).encode()).decode(),
    ]
    for value in bad:
        with pytest.raises(InvalidArgumentValueError) as info:
            session.downloadTask(resumeData=value)
        assert info.value.argument == "resumeData"
    with pytest.raises(InvalidArgumentValueError) as info:
        session.dataTask(url=server.url("/bytes/1"), resumeData=data)
    assert info.value.argument == "resumeData"
    os.unlink(record["record"]["path"])
    with pytest.raises(InvalidArgumentValueError, match="gone") as info:
        session.downloadTask(resumeData=data)
    assert info.value.argument == "resumeData"
    assert session.tasks == [] if hasattr(session, "tasks") else True
