"""Argument shaping (``_arguments``): a task call made into a plain request. No sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from urlsession_module import Blob, EventQueue
from urlsession_module._arguments import (
    DATA_KEYS,
    DOWNLOAD_KEYS,
    check_timeout,
    dispatcher_for,
    task_args,
)
from urlsession_module._configuration import make_values
from urlsession_module._dispatch import LoopDispatcher, ThreadDispatcher
from urlsession_module._state import TaskKind
from urlsession_module.exceptions import (
    InvalidArgumentTypeError,
    InvalidArgumentValueError,
    UploadFileNotFoundError,
)

URL = "http://127.0.0.1:8000/x"
CONFIG = make_values({"HTTPHeaderFields": {"X-Config": "c", "X-Both": "config"}})


def shape(kind: TaskKind = TaskKind.DATA, *args: Any, **kwargs: Any) -> Any:
    name = {TaskKind.DATA: "dataTask", TaskKind.UPLOAD: "uploadTask"}.get(kind, "downloadTask")
    return task_args(name, kind, args, kwargs, CONFIG)


def test_a_data_task_with_json_headers_and_scheduling_facts() -> None:
    """dict data goes as JSON; the call's headers win over the configuration's."""
    a = shape(
        url=URL,
        data={"a": 1},
        requestHeaders={"x-both": "call"},
        priority=1,
        earliestBeginDate=1e9,
        taskDescription="d",
    )
    assert (a.kind, a.priority, a.begin, a.description) == (TaskKind.DATA, 1.0, 1e9, "d")
    r = a.request
    assert (r.method, r.url, json.loads(r.body or b"")) == ("POST", URL, {"a": 1})
    assert r.header("content-type") == "application/json"
    assert (r.header("X-Config"), r.header("X-Both")) == ("c", "call")


def test_titanium_dict_and_snake_case_keywords_are_the_same_call() -> None:
    """One dict, or keywords under Titanium's or Python's spelling, shape the same task."""
    by_dict = shape(TaskKind.DOWNLOAD, {"url": URL, "requestHeaders": {"A": "1"}})
    by_snake = shape(TaskKind.DOWNLOAD, url=URL, request_headers={"A": "1"})
    assert by_dict == by_snake
    assert by_dict.request.method == "GET" and by_dict.request.body is None


@pytest.mark.parametrize(
    ("data", "body", "ctype"),
    [
        (None, None, None),
        ("héllo", "héllo".encode(), "text/plain; charset=utf-8"),
        (b"\x00\x01", b"\x00\x01", "application/octet-stream"),
        (Blob(b"xy", mimeType="image/png"), b"xy", "image/png"),
    ],
)
def test_data_bodies(data: Any, body: bytes | None, ctype: str | None) -> None:
    """What each kind of ``data`` becomes, and its content type."""
    r = shape(url=URL, data=data).request
    assert (r.body, r.header("content-type")) == (body, ctype)


def test_an_upload_path_is_made_absolute_at_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path is resolved against the caller's directory now (issue 19.12)."""
    (tmp_path / "photo.jpg").write_bytes(b"jpeg")
    monkeypatch.chdir(tmp_path)
    for data in ("photo.jpg", Path("photo.jpg"), Blob(path="photo.jpg")):
        r = shape(TaskKind.UPLOAD, url=URL, data=data, method="PUT").request
        assert r.body_path == str(tmp_path / "photo.jpg"), data
        assert r.body is None
    upload = shape(TaskKind.UPLOAD, url=URL, data="photo.jpg").request
    assert upload.header("content-type") == "image/jpeg"


def test_a_missing_upload_file_is_refused_at_the_call(tmp_path: Path) -> None:
    """A path that names no file raises UploadFileNotFoundError before anything starts."""
    with pytest.raises(UploadFileNotFoundError):
        shape(TaskKind.UPLOAD, url=URL, data=str(tmp_path / "nope"))
    with pytest.raises(InvalidArgumentValueError) as info:
        shape(TaskKind.UPLOAD, url=URL)
    assert info.value.argument == "data"


@pytest.mark.parametrize(
    ("kwargs", "argument", "error"),
    [
        ({"url": URL, "priority": 1.5}, "priority", InvalidArgumentValueError),
        ({"url": URL, "priority": True}, "priority", InvalidArgumentValueError),
        ({"url": URL, "earliestBeginDate": "soon"}, "earliestBeginDate", InvalidArgumentTypeError),
        (
            {"url": URL, "earliestBeginDate": float("inf")},
            "earliestBeginDate",
            InvalidArgumentValueError,
        ),
        ({"url": URL, "taskDescription": 3}, "taskDescription", InvalidArgumentTypeError),
        ({"url": URL, "data": object()}, "data", InvalidArgumentTypeError),
        ({"url": URL, "data": {"x": object()}}, "data", InvalidArgumentTypeError),
        ({"url": "ftp://x/"}, "url", InvalidArgumentValueError),
        ({"url": URL, "bogus": 1}, "bogus", InvalidArgumentValueError),
    ],
)
def test_bad_arguments_name_themselves(
    kwargs: dict[str, Any], argument: str, error: type[Exception]
) -> None:
    """Each refusal names the argument, as the error tree promises."""
    with pytest.raises(error) as info:
        shape(TaskKind.DATA, **kwargs)
    assert info.value.argument == argument  # type: ignore[attr-defined]


def test_a_download_takes_no_data_or_method() -> None:
    """``data`` and ``method`` are not downloadTask arguments."""
    assert "data" not in DOWNLOAD_KEYS and "data" in DATA_KEYS
    with pytest.raises(InvalidArgumentValueError) as info:
        shape(TaskKind.DOWNLOAD, url=URL, method="POST")
    assert info.value.argument == "method"


def test_a_naive_begin_date_is_local_time() -> None:
    """A naive datetime means local time, as everywhere in Python; aware ones keep their zone."""
    naive = dt.datetime(2030, 1, 2, 3, 4, 5)
    aware = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert shape(url=URL, earliestBeginDate=naive).begin == naive.astimezone().timestamp()
    assert shape(url=URL, earliestBeginDate=aware).begin == aware.timestamp()


def test_timeouts() -> None:
    """A wait's timeout: None or seconds; anything else names 'timeout' and the call."""
    assert (check_timeout("w", None), check_timeout("w", 2), check_timeout("w", 0.5)) == (
        None,
        2.0,
        0.5,
    )
    for bad in ("1", True, [1]):
        with pytest.raises(InvalidArgumentTypeError, match=r"^w\(\): 'timeout'"):
            check_timeout("w", bad)
    with pytest.raises(InvalidArgumentValueError):
        check_timeout("w", float("nan"))


def test_delegate_queues() -> None:
    """None, an EventQueue or an asyncio loop; anything else names 'delegateQueue'."""
    assert isinstance(dispatcher_for(None), ThreadDispatcher)
    queue = EventQueue()
    assert dispatcher_for(queue) is queue
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(dispatcher_for(loop), LoopDispatcher)
    finally:
        loop.close()
    with pytest.raises(InvalidArgumentTypeError) as info:
        dispatcher_for("main")
    assert info.value.argument == "delegateQueue"
