"""The sans-IO task machine (``_state``): transitions, counters, event order. No threads, no IO."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urlsession_module._events import (
    BackgroundTransfer,
    DownloadCompleted,
    DownloadProgress,
    Payload,
    SessionCompleted,
    SessionEventsCompleted,
    UploadProgress,
    payload_from_dict,
)
from urlsession_module._state import (
    BodyReceived,
    BodySent,
    Cancel,
    DownloadFinished,
    Failed,
    Finished,
    Input,
    Redirected,
    Request,
    ResponseInfo,
    ResponseStarted,
    Resume,
    Suspend,
    TaskKind,
    TaskMachine,
    TaskState,
)
from urlsession_module.exceptions import ErrorCode, TaskStateError

URL = "http://127.0.0.1:8000/bytes/100"
GET = Request("GET", URL)
POST = Request("POST", URL, body=b"x" * 40, body_length=40)
RESP = ResponseInfo(URL, 200, (("Content-Length", "100"),))

R, S, X, C = TaskState.RUNNING, TaskState.SUSPENDED, TaskState.CANCELING, TaskState.COMPLETED
INPUT_TYPES: tuple[type, ...] = (
    Suspend,
    Resume,
    Cancel,
    Redirected,
    BodySent,
    ResponseStarted,
    BodyReceived,
    DownloadFinished,
    Finished,
    Failed,
)

# The contract written out independently of _state.TRANSITIONS: state -> input -> next state.
# A missing input is illegal in that state.
EXPECTED: dict[TaskState, dict[type, TaskState]] = {
    R: {
        Suspend: S,
        Resume: R,
        Cancel: X,
        Redirected: R,
        BodySent: R,
        ResponseStarted: R,
        BodyReceived: R,
        DownloadFinished: R,
        Finished: C,
        Failed: C,
    },
    S: {Suspend: S, Resume: R, Cancel: X, Failed: C},
    X: {
        Suspend: X,
        Resume: X,
        Cancel: X,
        Redirected: X,
        BodySent: X,
        ResponseStarted: X,
        BodyReceived: X,
        DownloadFinished: X,
        Finished: C,
        Failed: C,
    },
    C: {Suspend: C, Resume: C, Cancel: C},
}

# One well-formed input of each type, and the kind of task it makes sense for.
SAMPLES: dict[type, tuple[Input, TaskKind]] = {
    Suspend: (Suspend(), TaskKind.DOWNLOAD),
    Resume: (Resume(), TaskKind.DOWNLOAD),
    Cancel: (Cancel(), TaskKind.DOWNLOAD),
    Redirected: (Redirected(Request("GET", URL + "?next")), TaskKind.DOWNLOAD),
    BodySent: (BodySent(4), TaskKind.UPLOAD),
    ResponseStarted: (ResponseStarted(RESP, 100, 0), TaskKind.DOWNLOAD),
    BodyReceived: (BodyReceived(5), TaskKind.DOWNLOAD),
    DownloadFinished: (DownloadFinished("/tmp/file.bin"), TaskKind.DOWNLOAD),
    Finished: (Finished("ok"), TaskKind.DATA),
    Failed: (Failed(ErrorCode.TIMED_OUT, "slow"), TaskKind.DATA),
}


def machine(kind: TaskKind = TaskKind.DATA, session_identifier: str | None = None) -> TaskMachine:
    request = POST if kind is TaskKind.UPLOAD else GET
    return TaskMachine("task-1", kind, request, session_identifier)


def machine_in(state: TaskState, kind: TaskKind) -> TaskMachine:
    """A machine with a response and some body, driven into ``state``."""
    m = machine(kind)
    m.send(ResponseStarted(RESP, 100))
    m.send(BodyReceived(10))
    if state is S:
        m.send(Suspend())
    elif state is X:
        m.send(Cancel())
    elif state is C:
        m.send(Failed(ErrorCode.NETWORK_CONNECTION_LOST))
    assert m.state is state
    return m


def snapshot(m: TaskMachine) -> dict[str, Any]:
    """Everything the machine holds (all immutable values, so a shallow copy is exact)."""
    return dict(vars(m))


def feed(m: TaskMachine, *inputs: Input) -> list[Payload]:
    out: list[Payload] = []
    for event in inputs:
        out.extend(m.send(event))
    return out


# -- the transitions table --------------------------------------------------------------------


@pytest.mark.parametrize("state", list(TaskState), ids=str)
@pytest.mark.parametrize("input_type", INPUT_TYPES, ids=lambda t: t.__name__)
def test_transition_table(state: TaskState, input_type: type) -> None:
    """Every input in every state goes where the table says, or raises and changes nothing."""
    event, kind = SAMPLES[input_type]
    m = machine_in(state, kind)
    before = snapshot(m)
    expected = EXPECTED[state].get(input_type)
    if expected is None:
        with pytest.raises(TaskStateError, match=input_type.__name__):
            m.send(event)
        assert snapshot(m) == before
        assert m.state is state
    else:
        m.send(event)
        assert m.state is expected


def test_task_state_values_are_apple_names() -> None:
    """TaskState is a str enum with URLSessionTask.State's names."""
    assert [s.value for s in TaskState] == ["running", "suspended", "canceling", "completed"]
    assert TaskState.RUNNING == "running"
    assert str(TaskState.CANCELING) == "canceling"


@pytest.mark.parametrize(
    "inputs",
    [
        pytest.param([BodyReceived(1)], id="body-before-response"),
        pytest.param([Finished()], id="finished-before-response"),
        pytest.param([ResponseStarted(RESP), BodySent(-1)], id="negative-sent"),
        pytest.param([ResponseStarted(RESP), BodyReceived(-1)], id="negative-received"),
        pytest.param([ResponseStarted(RESP), ResponseStarted(RESP, offset=1)], id="offset-too-big"),
        pytest.param([ResponseStarted(RESP), ResponseStarted(RESP, offset=-1)], id="offset<0"),
        pytest.param([ResponseStarted(RESP), Failed(0)], id="failed-with-code-0"),
        pytest.param([ResponseStarted(RESP), DownloadFinished("/f")], id="file-for-data-task"),
    ],
)
def test_bad_inputs_raise_and_change_nothing(inputs: list[Input]) -> None:
    """An input the state allows but whose content is wrong raises and changes nothing."""
    m = machine(TaskKind.DATA)
    feed(m, *inputs[:-1])
    before = snapshot(m)
    with pytest.raises(TaskStateError):
        m.send(inputs[-1])
    assert snapshot(m) == before


def test_download_needs_its_file_before_finished() -> None:
    """A download cannot finish well before DownloadFinished; refusing it changes nothing."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 3), BodyReceived(3))
    before = snapshot(m)
    with pytest.raises(TaskStateError, match="without its file"):
        m.send(Finished())
    assert snapshot(m) == before


def test_duplicate_download_finished_refused() -> None:
    """A second DownloadFinished is refused and changes nothing."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 3), BodyReceived(3), DownloadFinished("/f"))
    before = snapshot(m)
    with pytest.raises(TaskStateError):
        m.send(DownloadFinished("/g"))
    assert snapshot(m) == before
    assert m.location == "/f"


@pytest.mark.parametrize(
    "late",
    [BodyReceived(1), ResponseStarted(RESP, 3), Redirected(GET), BodySent(1)],
    ids=lambda e: type(e).__name__,
)
def test_nothing_from_the_wire_after_the_download_file(late: Input) -> None:
    """After DownloadFinished only the end may come: no progress after downloadcompleted."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 3), BodyReceived(3), DownloadFinished("/f"))
    before = snapshot(m)
    with pytest.raises(TaskStateError):
        m.send(late)
    assert snapshot(m) == before
    [done] = m.send(Finished())
    assert isinstance(done, SessionCompleted) and done.success


# -- event order ------------------------------------------------------------------------------


def test_data_task_events() -> None:
    """A data task emits no progress for received bytes, then one successful sessioncompleted."""
    m = machine(TaskKind.DATA)
    out = feed(m, ResponseStarted(RESP, 5), BodyReceived(2), BodyReceived(3), Finished("hello"))
    assert out == [
        SessionCompleted(
            taskIdentifier="task-1",
            success=True,
            errorCode=0,
            message="",
            statusCode=200,
            responseText="hello",
            networkProtocolName="http/1.1",
        )
    ]
    assert m.state is C and m.finished
    assert m.count_received == 5


def test_data_task_without_text_reports_empty_response_text() -> None:
    """A data task that finished with no text reports responseText '' (never missing)."""
    m = machine(TaskKind.DATA)
    [done] = feed(m, ResponseStarted(RESP, 0), Finished(None))
    assert isinstance(done, SessionCompleted)
    assert done.responseText == ""


def test_upload_task_events() -> None:
    """An upload reports uploadprogress per block with running totals, then sessioncompleted."""
    m = machine(TaskKind.UPLOAD)
    out = feed(m, BodySent(16), BodySent(16), BodySent(8), ResponseStarted(RESP, 2))
    out += feed(m, BodyReceived(2), Finished("ok"))
    assert [type(p) for p in out] == [UploadProgress] * 3 + [SessionCompleted]
    assert [(p.bytesSent, p.totalBytesSent) for p in out[:3]] == [(16, 16), (16, 32), (8, 40)]
    assert all(p.totalBytesExpectedToSend == 40 for p in out[:3])
    assert out[-1].responseText == "ok"
    assert (m.count_sent, m.count_expected_to_send) == (40, 40)


def test_download_task_event_order() -> None:
    """A download: downloadprogress per chunk, then downloadcompleted, then sessioncompleted."""
    m = machine(TaskKind.DOWNLOAD, "com.example.bg")
    out = feed(
        m,
        ResponseStarted(RESP, 100),
        BodyReceived(60),
        BodyReceived(40),
        DownloadFinished("/tmp/f.bin", "text/plain"),
        Finished("ignored for downloads"),
    )
    assert [type(p) for p in out] == [
        DownloadProgress,
        DownloadProgress,
        DownloadCompleted,
        SessionCompleted,
    ]
    assert [(p.bytesWritten, p.totalBytesWritten) for p in out[:2]] == [(60, 60), (40, 100)]
    assert all(p.totalBytesExpectedToWrite == 100 for p in out[:2])
    assert out[2] == DownloadCompleted(
        taskIdentifier="task-1",
        location="/tmp/f.bin",
        mimeType="text/plain",
        sessionIdentifier="com.example.bg",
    )
    assert out[3].responseText is None and out[3].success
    assert all(p.sessionIdentifier == "com.example.bg" for p in out)
    assert m.location == "/tmp/f.bin"


def test_total_expected_is_minus_one_when_unknown() -> None:
    """Without a Content-Length, totalBytesExpectedToWrite is -1 (also on a resumed response)."""
    m = machine(TaskKind.DOWNLOAD)
    [p] = feed(m, ResponseStarted(RESP, -1), BodyReceived(7))
    assert isinstance(p, DownloadProgress)
    assert p.totalBytesExpectedToWrite == -1
    assert m.count_expected_to_receive == -1
    [p] = feed(m, ResponseStarted(RESP, -1, offset=7), BodyReceived(1))
    assert isinstance(p, DownloadProgress)
    assert (p.totalBytesWritten, p.totalBytesExpectedToWrite) == (8, -1)


def test_expected_to_receive_before_response_is_unknown() -> None:
    """Before a response, countOfBytesExpectedToReceive is -1 and received is 0."""
    m = machine(TaskKind.DOWNLOAD)
    assert (m.count_received, m.count_expected_to_receive) == (0, -1)
    assert m.response is None and m.error is None


def test_exactly_one_session_completed_and_nothing_after() -> None:
    """After sessioncompleted nothing from the wire is accepted, and no second one comes."""
    m = machine(TaskKind.DATA)
    [done] = feed(m, ResponseStarted(RESP, 1), BodyReceived(1), Finished("x"))
    assert isinstance(done, SessionCompleted)
    for late in (
        Finished("again"),
        Failed(ErrorCode.CANCELLED),
        BodyReceived(1),
        ResponseStarted(RESP),
        BodySent(1),
        Redirected(GET),
    ):
        before = snapshot(m)
        with pytest.raises(TaskStateError):
            m.send(late)
        assert snapshot(m) == before
    assert feed(m, Cancel(), Suspend(), Resume()) == []  # Apple ignores controls on a done task
    assert m.state is C
    assert m.error is None


# -- cancel and suspend -----------------------------------------------------------------------


def test_cancel_reports_minus_999_even_if_finished_arrives() -> None:
    """A cancelled task completes with -999 'cancelled' even when the wire then says Finished."""
    m = machine(TaskKind.DATA)
    feed(m, ResponseStarted(RESP, 10), BodyReceived(4), Cancel())
    assert m.state is X
    assert feed(m, BodyReceived(6)) == []  # bytes in flight are accepted, reported to nobody
    [done] = m.send(Finished("complete body"))
    assert isinstance(done, SessionCompleted)
    assert (done.success, done.errorCode, done.message) == (False, -999, "cancelled")
    assert done.statusCode == 200
    assert done.responseText == ""
    assert m.error is not None and m.error.code == ErrorCode.CANCELLED
    assert m.state is C


def test_cancel_overrides_the_wire_error_code() -> None:
    """A cancelled task that then fails for another reason still reports -999."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, Cancel())
    [done] = m.send(Failed(ErrorCode.NETWORK_CONNECTION_LOST, "reset"))
    assert isinstance(done, SessionCompleted)
    assert (done.errorCode, done.message, done.statusCode) == (-999, "cancelled", 0)
    assert done.responseText is None  # a download has no responseText


def test_canceling_task_reports_no_progress() -> None:
    """While canceling, progress and downloadcompleted are not reported."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 10), Cancel())
    out = feed(m, BodyReceived(5), BodySent(1), DownloadFinished("/f"), Finished())
    assert [type(p) for p in out] == [SessionCompleted]
    assert out[0].errorCode == -999
    assert m.location is None


def test_suspended_task_refuses_body_bytes() -> None:
    """A suspended task refuses body bytes (and other wire input) until resumed."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 10), BodyReceived(4), Suspend())
    before = snapshot(m)
    for wire in (BodyReceived(1), BodySent(1), ResponseStarted(RESP), Finished()):
        with pytest.raises(TaskStateError, match="suspended"):
            m.send(wire)
        assert snapshot(m) == before
    m.send(Resume())
    [p] = m.send(BodyReceived(6))
    assert isinstance(p, DownloadProgress)
    assert p.totalBytesWritten == 10


def test_suspended_task_can_fail_and_be_cancelled() -> None:
    """A suspended task may fail (resource deadline) or be cancelled, reporting once."""
    m = machine(TaskKind.DATA)
    feed(m, Suspend())
    [done] = m.send(Failed(ErrorCode.TIMED_OUT))
    assert isinstance(done, SessionCompleted)
    assert (done.errorCode, done.message) == (-1001, "The request timed out.")
    m2 = machine(TaskKind.DATA)
    feed(m2, Suspend(), Cancel())
    assert m2.state is X
    [done2] = m2.send(Failed(ErrorCode.CANCELLED))
    assert isinstance(done2, SessionCompleted)
    assert done2.errorCode == -999


def test_failed_message_defaults_to_foundation_wording() -> None:
    """Failed without a message reports Foundation's description; with one, that message."""
    m = machine(TaskKind.DATA)
    [done] = m.send(Failed(ErrorCode.CANNOT_CONNECT_TO_HOST))
    assert isinstance(done, SessionCompleted)
    assert done.message == "Could not connect to the server."
    m2 = machine(TaskKind.DATA)
    [done2] = m2.send(Failed(ErrorCode.CANNOT_FIND_HOST, "no such host: x.invalid"))
    assert isinstance(done2, SessionCompleted)
    assert done2.message == "no such host: x.invalid"
    assert m2.error is not None and m2.error.message == "no such host: x.invalid"


def test_http_error_status_is_not_a_transfer_error() -> None:
    """A 404 finishes with success=True and statusCode 404."""
    m = machine(TaskKind.DATA)
    not_found = ResponseInfo(URL, 404)
    [done] = feed(m, ResponseStarted(not_found, 9), BodyReceived(9), Finished("not found"))
    assert isinstance(done, SessionCompleted)
    assert (done.success, done.errorCode, done.statusCode) == (True, 0, 404)


# -- resume with Range, redirects, counters ---------------------------------------------------


def test_range_resume_continues_the_counters() -> None:
    """ResponseStarted(offset=n) continues from n bytes: totals include what was there."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 100), BodyReceived(30))
    assert m.send(ResponseStarted(RESP, 70, offset=30)) == []
    assert (m.count_received, m.count_expected_to_receive) == (30, 100)
    [p] = m.send(BodyReceived(70))
    assert isinstance(p, DownloadProgress)
    assert (p.bytesWritten, p.totalBytesWritten, p.totalBytesExpectedToWrite) == (70, 100, 100)


def test_range_resume_at_a_smaller_offset() -> None:
    """An offset below what was received keeps only the first bytes (the rest comes again)."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 100), BodyReceived(50))
    m.send(ResponseStarted(RESP, 80, offset=20))
    assert (m.count_received, m.count_expected_to_receive) == (20, 100)


def test_response_that_starts_over_resets_received() -> None:
    """A response with offset 0 (server ignored Range) starts the counters over."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 100), BodyReceived(40))
    m.send(ResponseStarted(ResponseInfo(URL, 200), 100))
    assert (m.count_received, m.count_expected_to_receive) == (0, 100)
    [p] = m.send(BodyReceived(10))
    assert isinstance(p, DownloadProgress)
    assert p.totalBytesWritten == 10


def test_resume_offset_beyond_received_refused() -> None:
    """A resume offset beyond the bytes the task has is refused and changes nothing."""
    m = machine(TaskKind.DOWNLOAD)
    feed(m, ResponseStarted(RESP, 100), BodyReceived(10))
    before = snapshot(m)
    with pytest.raises(TaskStateError, match="offset"):
        m.send(ResponseStarted(RESP, 90, offset=11))
    assert snapshot(m) == before


def test_redirect_updates_current_request_and_send_counters() -> None:
    """A redirect makes the new request current and resets the bytes-sent counters."""
    m = machine(TaskKind.UPLOAD)
    feed(m, BodySent(40))
    assert m.count_sent == 40
    new = Request("GET", URL + "?moved")
    assert m.send(Redirected(new)) == []
    assert m.current_request is new
    assert m.original_request is POST
    assert (m.count_sent, m.count_expected_to_send) == (0, 0)
    again = Request("POST", URL, body=b"y" * 7, body_length=7)
    m.send(Redirected(again))
    assert m.count_expected_to_send == 7


def test_counters_start_from_the_request() -> None:
    """countOfBytesExpectedToSend is the body length, 0 without a body."""
    assert machine(TaskKind.UPLOAD).count_expected_to_send == 40
    assert machine(TaskKind.DATA).count_expected_to_send == 0
    path_body = Request("PUT", URL, body_path="/tmp/x", body_length=12)
    assert TaskMachine("t", TaskKind.UPLOAD, path_body).count_expected_to_send == 12


def test_data_task_with_body_reports_upload_progress() -> None:
    """A data task that sends a body reports uploadprogress, as Titanium's didSendBodyData."""
    m = TaskMachine("t", TaskKind.DATA, POST)
    [p] = m.send(BodySent(40))
    assert isinstance(p, UploadProgress)
    assert (p.totalBytesSent, p.totalBytesExpectedToSend) == (40, 40)


# -- payloads as SPEC section 5 ---------------------------------------------------------------


def test_progress_payload_fields() -> None:
    """downloadprogress/uploadprogress carry Titanium's fields, sessionIdentifier only when set."""
    dp = DownloadProgress("t", 1, 2, -1)
    assert dp.name == "downloadprogress"
    assert dp.to_dict() == {
        "taskIdentifier": "t",
        "bytesWritten": 1,
        "totalBytesWritten": 2,
        "totalBytesExpectedToWrite": -1,
    }
    up = UploadProgress("t", 1, 2, 3, sessionIdentifier="bg")
    assert up.name == "uploadprogress"
    assert up.to_dict() == {
        "taskIdentifier": "t",
        "bytesSent": 1,
        "totalBytesSent": 2,
        "totalBytesExpectedToSend": 3,
        "sessionIdentifier": "bg",
    }


def test_session_completed_fields_for_data_and_download() -> None:
    """sessioncompleted has responseText for data/upload tasks only."""
    data = machine(TaskKind.DATA).send(Failed(ErrorCode.TIMED_OUT))[0]
    assert set(data.to_dict()) == {
        "taskIdentifier",
        "success",
        "errorCode",
        "message",
        "statusCode",
        "responseText",
    }
    dl = machine(TaskKind.DOWNLOAD, "bg").send(Failed(ErrorCode.TIMED_OUT))[0]
    assert dl.to_dict() == {
        "taskIdentifier": "task-1",
        "success": False,
        "errorCode": -1001,
        "message": "The request timed out.",
        "statusCode": 0,
        "sessionIdentifier": "bg",
    }


def test_download_completed_payload_carries_the_file() -> None:
    """downloadcompleted's payload holds the file's path and type; delivery makes the Blob."""
    p = DownloadCompleted("t", "/tmp/f", "image/png")
    assert p.name == "downloadcompleted"
    assert p.to_dict() == {"taskIdentifier": "t", "location": "/tmp/f", "mimeType": "image/png"}


def test_session_level_payloads() -> None:
    """sessioneventscompleted and backgroundtransfer carry sessionIdentifier (and handlerId)."""
    assert SessionEventsCompleted("bg").to_dict() == {"sessionIdentifier": "bg"}
    assert SessionEventsCompleted.name == "sessioneventscompleted"
    bt = BackgroundTransfer("bg", "h-1")
    assert (bt.name, bt.to_dict()) == (
        "backgroundtransfer",
        {"sessionIdentifier": "bg", "handlerId": "h-1"},
    )


@pytest.mark.parametrize(
    "payload",
    [
        DownloadProgress("t", 1, 2, 3, "bg"),
        UploadProgress("t", 1, 2, 3),
        DownloadCompleted("t", "/f", "text/plain", "bg"),
        SessionCompleted("t", True, 0, "", 200, "body"),
        SessionCompleted("t", False, -999, "cancelled", 0, None, "bg"),
        SessionEventsCompleted("bg"),
        BackgroundTransfer("bg", "h"),
    ],
    ids=lambda p: p.name,
)
def test_payload_round_trips_through_a_dict(payload: Payload) -> None:
    """payload_from_dict(name, to_dict()) rebuilds the same payload (the process boundary)."""
    assert payload_from_dict(payload.name, payload.to_dict()) == payload


def test_payloads_are_frozen() -> None:
    """Payloads are immutable values."""
    p = DownloadProgress("t", 1, 2, 3)
    with pytest.raises(AttributeError):
        p.bytesWritten = 5  # type: ignore[misc]


# -- property: random input sequences ---------------------------------------------------------

_requests = st.builds(
    Request,
    method=st.sampled_from(["GET", "POST"]),
    url=st.just(URL),
    body=st.one_of(st.none(), st.binary(max_size=8)),
    body_length=st.integers(0, 8),
)
_BY_TYPE: dict[type, st.SearchStrategy[Any]] = {
    Suspend: st.just(Suspend()),
    Resume: st.just(Resume()),
    Cancel: st.just(Cancel()),
    Redirected: st.builds(Redirected, _requests),
    BodySent: st.builds(BodySent, st.sampled_from([0, 1, 8, 40, -1])),
    ResponseStarted: st.builds(
        ResponseStarted,
        st.builds(ResponseInfo, st.just(URL), st.sampled_from([200, 206, 404, 500])),
        st.integers(-1, 100),
        st.sampled_from([0, 0, 0, 0, 5, 30, -1]),  # mostly 0: other offsets are mostly refused
    ),
    BodyReceived: st.builds(BodyReceived, st.sampled_from([0, 1, 8, 40, -1])),
    DownloadFinished: st.builds(DownloadFinished, st.sampled_from(["/tmp/a", "/tmp/b"])),
    Finished: st.builds(Finished, st.one_of(st.none(), st.text(max_size=5))),
    Failed: st.builds(
        Failed, st.sampled_from([0, -1, -999, -1001, -1005, -3000]), st.text(max_size=5)
    ),
}


# Inputs that end or stall a task come less often than wire progress, so runs get somewhere.
# (Hypothesis leans towards the first choices of a sampled_from: progress comes first.)
_WEIGHT: dict[type, int] = {
    ResponseStarted: 3,
    BodyReceived: 3,
    DownloadFinished: 2,
    BodySent: 2,
    Resume: 2,
    Redirected: 1,
    Finished: 1,
    Suspend: 1,
    Cancel: 1,
    Failed: 1,
}


_any_input: st.SearchStrategy[Input] = st.sampled_from(
    [t for t in _WEIGHT for _ in range(_WEIGHT[t])]
).flatmap(lambda t: _BY_TYPE[t])


def _next_input(state: TaskState) -> st.SearchStrategy[Input]:
    """Any input at all, or (twice as often) one of a type the state allows."""
    allowed = [t for t in _WEIGHT if t in EXPECTED[state] for _ in range(_WEIGHT[t])]
    legal = st.sampled_from(allowed).flatmap(lambda t: _BY_TYPE[t])
    return st.one_of(legal, legal, _any_input)


@settings(max_examples=500, deadline=None, database=None)
@given(
    kind=st.sampled_from(list(TaskKind)),
    session_identifier=st.one_of(st.none(), st.just("bg")),
    steps=st.integers(1, 40),
    data=st.data(),
)
def test_random_inputs_keep_the_promises(
    kind: TaskKind, session_identifier: str | None, steps: int, data: st.DataObject
) -> None:
    """Whatever is fed: refused input changes nothing; at most one sessioncompleted, last."""
    m = TaskMachine("t", kind, GET, session_identifier)
    emitted: list[Payload] = []
    cancelled = False
    after_end = 0
    for _ in range(steps):
        if m.finished:
            after_end += 1
            if after_end > 4:  # a few late inputs are enough to see they change nothing
                break
        event = data.draw(_next_input(m.state))
        before = snapshot(m)
        try:
            out = m.send(event)
        except TaskStateError:
            assert snapshot(m) == before
            continue
        allowed = EXPECTED[before["state"]]
        assert type(event) in allowed, f"{type(event).__name__} accepted while {before['state']}"
        handed_over = "downloadcompleted" in [p.name for p in emitted]
        if isinstance(event, Cancel) and handed_over and before["state"] is R:
            # Foundation: once the file was handed over, a cancel changes nothing.
            assert m.state is R and out == []
            continue
        assert m.state is allowed[type(event)]
        if isinstance(event, Cancel) and before["state"] is not C:
            cancelled = True
        emitted.extend(out)
        assert m.finished == any(isinstance(p, SessionCompleted) for p in emitted)

    completed = [i for i, p in enumerate(emitted) if isinstance(p, SessionCompleted)]
    assert len(completed) <= 1
    if completed:
        assert completed[0] == len(emitted) - 1, "sessioncompleted must be the last event"
        done = emitted[-1]
        assert isinstance(done, SessionCompleted)
        if cancelled:
            assert (done.success, done.errorCode) == (False, -999)
        assert done.success == (done.errorCode == 0)
        assert (done.responseText is None) == (kind is TaskKind.DOWNLOAD)
    assert all(p.sessionIdentifier == session_identifier for p in emitted)
    assert all(getattr(p, "taskIdentifier", "t") == "t" for p in emitted)

    names = [p.name for p in emitted]
    if kind is TaskKind.DOWNLOAD:
        assert names.count("downloadcompleted") <= 1
        if "downloadcompleted" in names:
            after = names[names.index("downloadcompleted") + 1 :]
            assert set(after) <= {"sessioncompleted"}, "progress after downloadcompleted"
        if completed and emitted[-1].success:  # type: ignore[attr-defined]
            assert "downloadcompleted" in names
    else:
        assert "downloadprogress" not in names
        assert "downloadcompleted" not in names


def test_cancel_after_downloadcompleted_changes_nothing() -> None:
    """Once the file was handed over, a cancel is ignored and the task ends as a success."""
    from urlsession_module._state import (
        Cancel,
        DownloadFinished,
        Finished,
        Request,
        ResponseInfo,
        ResponseStarted,
        TaskKind,
        TaskMachine,
        TaskState,
    )

    m = TaskMachine("t", TaskKind.DOWNLOAD, Request("GET", "http://127.0.0.1/x"))
    m.send(ResponseStarted(ResponseInfo("http://127.0.0.1/x", 200), 0))
    m.send(DownloadFinished("/tmp/x"))
    assert m.send(Cancel()) == []
    assert m.state is TaskState.RUNNING
    (done,) = m.send(Finished())
    assert done.success and done.errorCode == 0


# -- holding the wire while suspended (feed / control) ----------------------------------------------


def _download() -> TaskMachine:
    m = TaskMachine("t1", TaskKind.DOWNLOAD, GET)
    m.feed(ResponseStarted(RESP, expected=100))
    return m


def _names(steps: list[tuple[Input, list[Payload]]]) -> list[tuple[str, list[str]]]:
    return [(type(e).__name__, [p.name for p in out]) for e, out in steps]


def test_wire_inputs_while_suspended_are_held_and_applied_on_resume() -> None:
    """What the wire says while suspended is held, in order, and reported on resume."""
    m = _download()
    m.control(Suspend())
    assert m.feed(BodyReceived(60)) == [] and m.feed(BodyReceived(40)) == []
    assert (m.held, m.count_received) == (2, 0)
    steps = m.control(Resume())
    assert _names(steps) == [
        ("Resume", []),
        ("BodyReceived", ["downloadprogress"]),
        ("BodyReceived", ["downloadprogress"]),
    ]
    assert (m.held, m.count_received, m.state) == (0, 100, R)


def test_suspend_again_keeps_holding() -> None:
    """A second Suspend while suspended applies nothing held."""
    m = _download()
    m.control(Suspend())
    m.feed(BodyReceived(10))
    assert _names(m.control(Suspend())) == [("Suspend", [])]
    assert m.held == 1


def test_cancel_while_suspended_absorbs_what_was_held() -> None:
    """After a cancel, held inputs are applied silently; a held Finished ends the task as -999."""
    m = _download()
    m.control(Suspend())
    m.feed(BodyReceived(100))
    m.feed(DownloadFinished("/tmp/x"))
    m.feed(Finished())
    steps = m.control(Cancel())
    assert _names(steps) == [
        ("Cancel", []),
        ("BodyReceived", []),
        ("DownloadFinished", []),
        ("Finished", ["sessioncompleted"]),
    ]
    (done,) = steps[-1][1]
    assert isinstance(done, SessionCompleted) and done.errorCode == ErrorCode.CANCELLED
    assert m.state is C


def test_a_failure_while_suspended_ends_the_task_and_drops_what_was_held() -> None:
    """Failed is not held: the task ends now, and what was held no longer counts."""
    m = _download()
    m.control(Suspend())
    m.feed(BodyReceived(50))
    steps = m.feed(Failed(ErrorCode.TIMED_OUT, "the resource timeout passed"))
    assert _names(steps) == [("Failed", ["sessioncompleted"])]
    assert (m.held, m.count_received, m.state) == (0, 0, C)


def test_feed_while_running_applies_at_once() -> None:
    """Not suspended: feed is send, reported as one step."""
    m = _download()
    steps = m.feed(BodyReceived(5))
    assert _names(steps) == [("BodyReceived", ["downloadprogress"])]
    assert m.held == 0


def test_an_illegal_control_raises_and_applies_nothing_held() -> None:
    """An illegal input through control raises and changes nothing, held inputs included."""
    m = _download()
    m.control(Suspend())
    m.feed(BodyReceived(5))
    with pytest.raises(TaskStateError):
        m.control(BodySent(1))  # not a control, and not allowed while suspended
    assert (m.state, m.held, m.count_received) == (S, 1, 0)


def test_header_lookup_is_one_helper_for_requests_and_responses() -> None:
    """Request.header and ResponseInfo.header: case-insensitive, first value, None if absent."""
    req = Request("GET", URL, (("X-A", "1"), ("x-a", "2")))
    assert (req.header("x-a"), req.header("X-B")) == ("1", None)
    assert (RESP.header("content-length"), RESP.header("etag")) == ("100", None)
    assert Request.header is ResponseInfo.header
