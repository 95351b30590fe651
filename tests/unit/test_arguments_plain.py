"""The plain call's reused request (``_arguments._plain``): same result as a full check, and
never reused across configurations, kinds or methods, nor for a call that gives more. No sockets."""

from __future__ import annotations

from typing import Any

import pytest

from urlsession_module._arguments import _plain, task_args
from urlsession_module._configuration import make_values
from urlsession_module._state import TaskKind
from urlsession_module.exceptions import InvalidArgumentTypeError, InvalidArgumentValueError

URL = "http://127.0.0.1:8000/plain"
ONE = make_values({"HTTPHeaderFields": {"X-Config": "one"}})
TWO = make_values({"HTTPHeaderFields": {"X-Config": "two"}})


def call(kind: TaskKind, config: Any, a: dict[str, Any]) -> Any:
    return task_args("dataTask", kind, (a,), {}, config)


def test_a_repeated_plain_call_reuses_the_checked_request() -> None:
    """The second call with the same URL and method gets the very request the first built."""
    _plain.clear()
    first = call(TaskKind.DATA, ONE, {"url": URL, "method": "get"})
    second = call(TaskKind.DATA, ONE, {"url": URL, "method": "get", "priority": 1})
    assert second.request is first.request
    assert (second.request.method, second.request.header("X-Config")) == ("GET", "one")
    assert (first.priority, second.priority) == (0.5, 1.0)


def test_the_request_is_never_shared_across_configurations_kinds_or_methods() -> None:
    _plain.clear()
    one = call(TaskKind.DATA, ONE, {"url": URL, "method": "GET"})
    two = call(TaskKind.DATA, TWO, {"url": URL, "method": "GET"})
    post = call(TaskKind.DATA, ONE, {"url": URL})
    download = call(TaskKind.DOWNLOAD, ONE, {"url": URL})
    assert two.request.header("X-Config") == "two"
    assert (post.request.method, download.request.method) == ("POST", "GET")
    assert len({id(r.request) for r in (one, two, post, download)}) == 4


@pytest.mark.parametrize(
    ("extra", "error", "argument"),
    [
        ({"priority": 2}, InvalidArgumentValueError, "priority"),
        ({"earliestBeginDate": "soon"}, InvalidArgumentTypeError, "earliestBeginDate"),
        ({"taskDescription": 1}, InvalidArgumentTypeError, "taskDescription"),
    ],
)
def test_a_reused_request_still_checks_the_other_arguments(
    extra: dict[str, Any], error: type[Exception], argument: str
) -> None:
    _plain.clear()
    call(TaskKind.DATA, ONE, {"url": URL, "method": "GET"})
    with pytest.raises(error) as info:
        call(TaskKind.DATA, ONE, {"url": URL, "method": "GET", **extra})
    assert getattr(info.value, "argument", None) == argument


def test_bad_urls_and_methods_are_refused_every_time_and_never_kept() -> None:
    _plain.clear()
    for _ in range(2):
        with pytest.raises(InvalidArgumentValueError):
            call(TaskKind.DATA, ONE, {"url": URL, "method": "B AD"})
        with pytest.raises(Exception, match="url"):
            call(TaskKind.DATA, ONE, {"url": "ftp://127.0.0.1/x"})
    assert not _plain


def test_a_call_with_headers_or_data_is_checked_in_full_and_not_kept() -> None:
    _plain.clear()
    a = call(TaskKind.DATA, ONE, {"url": URL, "requestHeaders": {"X-Config": "call"}})
    b = call(TaskKind.DATA, ONE, {"url": URL, "data": "x"})
    assert (a.request.header("X-Config"), b.request.body) == ("call", b"x")
    assert not _plain
