"""URL checks at the call: what ``_validate.http_url`` refuses before any network."""

from __future__ import annotations

import pytest

from urlsession_module._validate import http_url
from urlsession_module.exceptions import InvalidArgumentValueError


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\t:8000/x",
        "http://127.0.0.1:8000/a\tb",
        "http://exa\x0bmple.com/",
        "http://example.com/\x1fx",
        "http://example.com/\x7f",
        "http://exa mple.com/",
        "http://example.com/\u00a0x",
        "http://example.com/\u2028x",
    ],
    ids=["tab-in-host", "tab-in-path", "vtab", "unit-separator", "del", "space", "nbsp", "ls"],
)
def test_whitespace_and_control_characters_are_refused_at_the_call(url: str) -> None:
    """A URL with white space or a control character inside is refused, naming 'url'."""
    with pytest.raises(InvalidArgumentValueError) as info:
        http_url("url", url)
    assert info.value.argument == "url"
    assert "'url' must not contain whitespace or control characters" in str(info.value)


def test_surrounding_whitespace_is_still_trimmed() -> None:
    """Blanks around a URL are trimmed as before (a copy-pasted URL keeps working)."""
    assert http_url("url", "  http://127.0.0.1:8000/x  ") == "http://127.0.0.1:8000/x"
