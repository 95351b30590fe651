"""Requests as the wire sees them (``_transport._requests``): Foundation's header merge and
redirect rules, without sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from urlsession_module import ErrorCode, TransferError
from urlsession_module._state import Request
from urlsession_module._transport import build_request, redirect_request
from urlsession_module._transport._requests import USER_AGENT

BODY = b'{"a": 1}'


def _names(request: Request) -> list[str]:
    return [name.lower() for name, _ in request.headers]


# --------------------------------------------------------------------------- build_request


def test_defaults_then_configuration_then_call_whatever_the_case() -> None:
    """A call header replaces a configuration header of any case, which replaces a default."""
    request = build_request(
        "GET",
        "http://h/x",
        {"accept": "text/plain", "X-Config": "c"},
        {"ACCEPT": "application/json", "user-agent": "mine"},
    )
    assert request.header("Accept") == "application/json"
    assert request.header("User-Agent") == "mine"
    assert request.header("X-Config") == "c"
    assert sorted(_names(request)) == sorted(set(_names(request)))  # each header once


def test_defaults() -> None:
    """Without configuration, the package's User-Agent, Accept */* and gzip/deflate go out."""
    request = build_request("GET", "http://h/x", {}, {})
    assert request.header("User-Agent") == USER_AGENT
    assert request.header("Accept") == "*/*"
    assert request.header("Accept-Encoding") == "gzip, deflate"
    assert (
        build_request("GET", "http://h/x", {}, {}, accept_encoding=False).header("Accept-Encoding")
        is None
    )


def test_bodiless_request_has_no_length_nor_default_type() -> None:
    """A GET gets no Content-Length (even if asked) and no default Content-Type."""
    request = build_request(
        "GET", "http://h/x", {}, {"Content-Length": "5"}, content_type="text/plain"
    )
    assert request.header("Content-Length") is None
    assert request.header("Content-Type") is None
    assert not request.has_body and request.body_length == 0


def test_body_sets_length_and_drops_transfer_encoding() -> None:
    """A body's length is computed; Transfer-Encoding from the caller is dropped."""
    request = build_request(
        "POST",
        "http://h/x",
        {},
        {"Transfer-Encoding": "chunked", "content-length": "999"},
        body=BODY,
        content_type="application/json",
    )
    assert request.header("Content-Length") == str(len(BODY))
    assert request.header("Transfer-Encoding") is None
    assert request.header("Content-Type") == "application/json"
    assert (request.body, request.body_length) == (BODY, len(BODY))


def test_explicit_content_type_wins() -> None:
    """The caller's Content-Type (any case) beats the one the body's kind suggests."""
    request = build_request(
        "POST", "http://h/x", {}, {"content-type": "text/csv"}, body=b"a,b", content_type="x/y"
    )
    assert request.header("Content-Type") == "text/csv"


def test_file_body_length_comes_from_the_file(tmp_path: Path) -> None:
    """A file body is described by its path and size, not read."""
    path = tmp_path / "up.bin"
    path.write_bytes(b"x" * 1234)
    request = build_request("PUT", "http://h/x", {}, {}, body_path=str(path))
    assert (request.body, request.body_path, request.body_length) == (None, str(path), 1234)
    assert request.header("Content-Length") == "1234"


def test_credential_travels_beside_the_request_never_in_its_url() -> None:
    """A task credential is kept beside the request (issue 15): not in its URL, its repr or a
    header; user info the caller wrote in the URL becomes that credential and leaves the URL."""
    request = build_request("GET", "http://h/x", {}, {}, credential=("a b", "p@ss:w"))
    assert request.url == "http://h/x"
    assert request.credential == ("a b", "p@ss:w")
    assert "p@ss" not in repr(request)
    assert request.header("Authorization") is None
    written = build_request("GET", "http://u:s3cr3t@h/x", {}, {})
    assert (written.url, written.credential) == ("http://h/x", ("u", "s3cr3t"))
    assert "s3cr3t" not in repr(written)


def test_credential_follows_a_same_origin_redirect_only() -> None:
    request = build_request("GET", "http://h/x", {}, {}, credential=("u", "p"))
    assert redirect_request(request, 302, "/y").credential == ("u", "p")
    assert redirect_request(request, 302, "http://other/y").credential is None


# --------------------------------------------------------------------------- redirect_request

CREDENTIALS = (
    ("Authorization", "Bearer t"),
    ("Cookie", "s=1"),
    ("Proxy-Authorization", "Basic x"),
)


def _post(url: str = "http://a.test/start") -> Request:
    return Request(
        "POST",
        url,
        (("Content-Type", "application/json"), ("Content-Length", str(len(BODY))), *CREDENTIALS),
        BODY,
        None,
        len(BODY),
    )


@pytest.mark.parametrize(
    ("status", "method", "final", "keeps_body"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (301, "PUT", "PUT", True),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (303, "HEAD", "HEAD", False),
        (307, "POST", "POST", True),
        (308, "PUT", "PUT", True),
    ],
)
def test_method_and_body_follow_foundation(
    status: int, method: str, final: str, keeps_body: bool
) -> None:
    """301/302 turn POST into GET, 303 turns all but HEAD into GET; 307/308 keep both."""
    base = _post()
    request = Request(method, base.url, base.headers, base.body, None, base.body_length)
    if method == "HEAD":
        request = Request("HEAD", base.url, base.headers)
    after = redirect_request(request, status, "/next")
    assert (after.method, after.url) == (final, "http://a.test/next")
    assert after.has_body is keeps_body
    assert (after.header("Content-Type") is not None) is keeps_body
    assert (after.header("Content-Length") is not None) is keeps_body


def test_credentials_stay_within_the_origin() -> None:
    """Same origin keeps Authorization, Cookie, Proxy-Authorization; another origin drops them."""
    same = redirect_request(_post(), 307, "http://a.test/other")
    assert all(same.header(name) == value for name, value in CREDENTIALS)
    for target in ("http://b.test/x", "https://a.test/x", "http://a.test:8080/x"):
        other = redirect_request(_post(), 307, target)
        assert all(other.header(name) is None for name, _ in CREDENTIALS), target
        assert other.body == BODY  # 307: only the credentials go


def test_userinfo_in_location_is_dropped() -> None:
    """A Location with user info never makes it into the next request (no planted credential)."""
    after = redirect_request(_post(), 302, "http://attacker:s3cret@b.test:81/auth")
    assert after.url == "http://b.test:81/auth"
    scheme_relative = redirect_request(_post(), 302, "//evil:pw@b.test/x")
    assert scheme_relative.url == "http://b.test/x"


def test_relative_location_keeps_the_task_credential() -> None:
    """A relative Location resolves against the current URL, its own user info included."""
    after = redirect_request(Request("GET", "http://u:p@a.test/dir/x"), 302, "y?q=1")
    assert after.url == "http://u:p@a.test/dir/y?q=1"


@pytest.mark.parametrize("location", ["ftp://a.test/f", "file:///etc/passwd", "https:///nohost"])
def test_unsupported_targets_are_minus_1002(location: str) -> None:
    """Only http(s) with a host can be followed: anything else is -1002, naming the target."""
    with pytest.raises(TransferError) as info:
        redirect_request(Request("GET", "http://a.test/"), 302, location)
    assert info.value.code == ErrorCode.UNSUPPORTED_URL
    assert info.value.message.startswith("a redirect to ")
