"""snake_case spellings of Titanium's argument names, for Python users."""

from __future__ import annotations

import pytest

import urlsession_module as URLSession
from urlsession_module._validate import snake_case


@pytest.mark.parametrize(
    ("titanium", "python"),
    [
        ("requestHeaders", "request_headers"),
        ("HTTPHeaderFields", "http_header_fields"),
        ("httpMaximumConnectionsPerHost", "http_maximum_connections_per_host"),
        ("proxyURL", "proxy_url"),
        ("timeoutIntervalForRequest", "timeout_interval_for_request"),
        ("delegateQueue", "delegate_queue"),
    ],
)
def test_snake_case_names(titanium: str, python: str) -> None:
    """Titanium's camelCase names map to the snake_case a Python user would type."""
    assert snake_case(titanium) == python


def test_configuration_accepts_snake_case() -> None:
    """createSessionConfiguration takes snake_case keywords and stores them under Apple's names."""
    cfg = URLSession.createSessionConfiguration(
        timeout_interval_for_request=5, http_header_fields={"X-A": "1"}, type="ephemeral"
    )
    assert cfg.timeoutIntervalForRequest == 5.0
    assert cfg.HTTPHeaderFields == {"X-A": "1"}


def test_both_spellings_refused() -> None:
    """Giving the same argument under both spellings is refused, naming it."""
    with pytest.raises(URLSession.InvalidArgumentValueError) as info:
        URLSession.createSessionConfiguration(
            {"timeoutIntervalForRequest": 5}, timeout_interval_for_request=6
        )
    assert info.value.argument == "timeout_interval_for_request"


def test_task_arguments_accept_snake_case(tmp_path: object) -> None:
    """Task calls check snake_case arguments like the Titanium ones (a bad header still raises)."""
    session = URLSession.createSession()
    try:
        with pytest.raises(URLSession.InvalidArgumentTypeError) as info:
            session.dataTask(url="http://127.0.0.1:9/", request_headers={"X": 1})  # type: ignore[dict-item]
        assert info.value.argument == "requestHeaders"
    finally:
        session.finishTasksAndInvalidate()
        assert session.waitForInvalidation(5)
