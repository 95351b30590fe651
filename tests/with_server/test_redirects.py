"""Redirects, headers and bodies the way Foundation's URLSession sends them (SPEC §5)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import urlsession_module as URLSession
from urlsession_module.testing import LocalServer, content_bytes, content_sha256

from ._util import echoed, file_sha256, sha256

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

BODY = b'{"payload": "redirect me"}'
CREDENTIALS = {
    "Authorization": "Bearer secret-token",
    "Cookie": "session=abc123",
    "Proxy-Authorization": "Basic cHJveHk6cHc=",
}


@pytest.fixture(scope="module")
def other_server() -> Iterator[LocalServer]:
    """A second server: another port, so another origin."""
    with LocalServer() as srv:
        yield srv


def run(session: Any, rec: Any, **args: Any) -> Any:
    """Start a data task and return its sessioncompleted event."""
    return rec.completed(session.dataTask(**args))


def header_list(echo: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echo["header_list"] if k.lower() == name.lower()]


# --------------------------------------------------------------------------- methods and bodies


@pytest.mark.parametrize(
    ("code", "method", "final_method", "keeps_body"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (301, "PUT", "PUT", True),
        (302, "PATCH", "PATCH", True),
        (302, "DELETE", "DELETE", True),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (303, "DELETE", "GET", False),
        (307, "POST", "POST", True),
        (307, "PUT", "PUT", True),
        (308, "POST", "POST", True),
        (308, "PATCH", "PATCH", True),
    ],
)
def test_redirect_method_and_body_follow_foundation(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    code: int,
    method: str,
    final_method: str,
    keeps_body: bool,
) -> None:
    """301/302 turn POST into GET, 303 makes any method GET without body, 307/308 keep both."""
    session = make_session()
    rec = recorder(session)
    done = run(
        session,
        rec,
        url=server.url(f"/redirect/1?code={code}"),
        method=method,
        data=BODY,
        requestHeaders={"Content-Type": "application/json", "X-Kept": "yes"},
    )
    assert done.statusCode == 200
    echo = echoed(done)
    assert echo["path"] == "/redirect/0"
    assert echo["method"] == final_method
    assert echo["headers"]["x-kept"] == "yes"
    if keeps_body:
        assert echo["body_sha256"] == sha256(BODY)
        assert echo["headers"]["content-type"] == "application/json"
        assert echo["headers"]["content-length"] == str(len(BODY))
    else:
        assert echo["body_length"] == 0
        assert "content-type" not in echo["headers"]
        assert "content-length" not in echo["headers"]


def test_307_resends_a_streamed_file_body(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, tmp_path: Path
) -> None:
    """A 307 repeats an upload from a file: the second server sees every byte again."""
    path = tmp_path / "body.bin"
    path.write_bytes(content_bytes(700_000))
    session = make_session()
    rec = recorder(session)
    tid = session.uploadTask(url=server.url("/redirect/2?code=307"), data=str(path), method="PUT")
    done = rec.completed(tid)
    echo = echoed(done)
    assert (echo["method"], echo["path"]) == ("PUT", "/redirect/0")
    assert echo["body_length"] == 700_000
    assert echo["body_sha256"] == content_sha256(700_000)
    progress = rec.of(tid, "uploadprogress")
    assert progress[-1].totalBytesSent == 700_000  # counted again on the last hop


@pytest.mark.parametrize("code", [300, 304])
def test_300_and_304_are_not_followed(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, code: int
) -> None:
    """A 300 or 304 with a Location is the final response."""
    session = make_session()
    rec = recorder(session)
    server.clear_requests()
    done = run(session, rec, url=server.url(f"/redirect/1?code={code}"), method="GET")
    assert (done.success, done.statusCode) == (True, code)
    assert [r.path for r in server.requests] == [f"/redirect/1?code={code}"]


@pytest.mark.parametrize(
    "location",
    ["echo?via=relative", "./echo?via=dot", "../echo?via=parent", "/echo?via=root"],
)
def test_relative_locations_resolve_against_current_url(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, location: str
) -> None:
    """A relative Location resolves against the URL that answered with it."""
    session = make_session()
    rec = recorder(session)
    url = server.url(f"/redirect-to?url={quote(location)}&code=302")
    echo = echoed(run(session, rec, url=url, method="GET"))
    assert echo["path"] == "/echo"
    assert echo["query"]["via"] == [location.split("=")[1]]


@pytest.mark.parametrize("absolute", [False, True])
def test_redirect_chain_updates_current_request(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, absolute: bool
) -> None:
    """After a chain of redirects currentRequest is the last hop; originalRequest is unchanged."""
    session = make_session()
    rec = recorder(session)
    flag = "?absolute=1" if absolute else ""
    done = run(session, rec, url=server.url(f"/redirect/3{flag}"), method="GET")
    task = done.source
    assert task.originalRequest.url == server.url(f"/redirect/3{flag}")
    assert task.currentRequest.url == server.url(f"/redirect/0{flag}")
    assert task.response.statusCode == 200
    assert echoed(done)["path"] == "/redirect/0"


# --------------------------------------------------------------------------- credentials


def test_credentials_not_sent_to_another_origin(
    server: LocalServer,
    other_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """Authorization, Cookie and Proxy-Authorization are dropped on a cross-origin redirect."""
    session = make_session(HTTPHeaderFields={"Cookie": CREDENTIALS["Cookie"]})
    rec = recorder(session)
    target = other_server.url("/echo")
    server.clear_requests()
    done = run(
        session,
        rec,
        url=server.url(f"/redirect-to?url={quote(target)}&code=307"),
        method="POST",
        data=BODY,
        requestHeaders={
            "Authorization": CREDENTIALS["Authorization"],
            "proxy-authorization": CREDENTIALS["Proxy-Authorization"],
            "X-Other": "kept",
        },
    )
    echo = echoed(done)
    assert echo["headers"]["host"] == f"127.0.0.1:{other_server.port}"
    for name in CREDENTIALS:
        assert name.lower() not in echo["headers"], name
    assert echo["headers"]["x-other"] == "kept"
    assert echo["body_sha256"] == sha256(BODY)  # 307: only the credentials go
    (first,) = server.requests  # the first origin did get them
    assert first.headers["authorization"] == CREDENTIALS["Authorization"]
    assert first.headers["cookie"] == CREDENTIALS["Cookie"]


def test_credentials_dropped_between_hosts_of_one_port(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """127.0.0.1 and localhost are different origins even on one port."""
    session = make_session()
    rec = recorder(session)
    target = f"http://localhost:{server.port}/echo"
    echo = echoed(
        run(
            session,
            rec,
            url=server.url(f"/redirect-to?url={quote(target)}"),
            method="GET",
            requestHeaders=CREDENTIALS,
        )
    )
    assert echo["headers"]["host"] == f"localhost:{server.port}"
    assert not {name.lower() for name in CREDENTIALS} & set(echo["headers"])


@pytest.mark.parametrize("absolute", [False, True])
def test_credentials_kept_on_same_origin_redirect(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, absolute: bool
) -> None:
    """A redirect within one origin keeps the credentials."""
    session = make_session(HTTPHeaderFields={"Authorization": CREDENTIALS["Authorization"]})
    rec = recorder(session)
    flag = "?absolute=1" if absolute else ""
    echo = echoed(
        run(
            session,
            rec,
            url=server.url(f"/redirect/2{flag}"),
            method="GET",
            requestHeaders={
                "Cookie": CREDENTIALS["Cookie"],
                "Proxy-Authorization": CREDENTIALS["Proxy-Authorization"],
            },
        )
    )
    for name, value in CREDENTIALS.items():
        assert header_list(echo, name) == [value]


def test_userinfo_in_a_redirect_is_never_used_nor_stored(
    server: LocalServer,
    other_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    state_home: Path,
) -> None:
    """A Location with user info cannot plant a credential: B's 401 is not answered with it,
    the credential store keeps nothing for B, and a later task to B sends no Authorization."""
    session = make_session()
    rec = recorder(session)
    auth = "/auth/basic?user=attacker&password=s3cret&realm=planted"
    target = f"http://attacker:s3cret@127.0.0.1:{other_server.port}{auth}"
    other_server.clear_requests()
    done = run(session, rec, url=server.url(f"/redirect-to?url={quote(target)}&code=302"))
    assert (done.success, done.statusCode) == (True, 401)
    later = run(session, rec, url=other_server.url(auth))
    assert later.statusCode == 401
    reached = [r for r in other_server.requests if r.path.startswith("/auth/basic")]
    assert len(reached) == 2
    assert all("authorization" not in r.headers for r in reached)
    store = state_home / "stores" / "credentials.json"
    assert not store.exists() or "s3cret" not in store.read_text()


# --------------------------------------------------------------------------- headers


def test_request_headers_replace_configuration_headers_whatever_the_case(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A requestHeaders entry replaces a configuration header of the same name; sent once."""
    session = make_session(
        HTTPHeaderFields={"X-Api-Key": "from-config", "X-Config-Only": "c", "User-Agent": "cfg"}
    )
    rec = recorder(session)
    echo = echoed(
        run(
            session,
            rec,
            url=server.url("/echo"),
            method="GET",
            requestHeaders={
                "x-api-key": "from-call",
                "USER-AGENT": "call-agent",
                "Accept": "text/x",
            },
        )
    )
    assert header_list(echo, "X-Api-Key") == ["from-call"]
    assert header_list(echo, "User-Agent") == ["call-agent"]
    assert header_list(echo, "Accept") == ["text/x"]
    assert header_list(echo, "X-Config-Only") == ["c"]
    names = [k.lower() for k, _ in echo["header_list"]]
    assert len(names) == len(set(names))  # nothing goes out twice


def test_configuration_headers_sent_when_not_overridden(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """HTTPHeaderFields are added to every request, downloads included."""
    session = make_session(HTTPHeaderFields={"X-Everywhere": "1"})
    rec = recorder(session)
    server.clear_requests()
    tid = session.downloadTask(url=server.url("/bytes/10"))
    assert rec.completed(tid).success
    assert (
        echoed(run(session, rec, url=server.url("/echo"), method="GET"))["headers"]["x-everywhere"]
        == "1"
    )
    (download,) = [r for r in server.requests if r.path == "/bytes/10"]
    assert download.method == "GET"
    assert download.headers["x-everywhere"] == "1"


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PUT"])
def test_no_content_type_on_bodiless_request(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, method: str
) -> None:
    """A request without a body gets no default Content-Type (and no body)."""
    session = make_session()
    rec = recorder(session)
    echo = echoed(run(session, rec, url=server.url("/echo"), method=method))
    assert echo["method"] == method
    assert "content-type" not in echo["headers"]
    assert echo["body_length"] == 0
    assert echo["headers"].get("content-length", "0") == "0"


@pytest.mark.parametrize(
    ("data", "body", "ctype"),
    [
        ({"a": [1, 2]}, b'{"a": [1, 2]}', "application/json"),
        ([1, "two"], b'[1, "two"]', "application/json"),
        ("héllo", "héllo".encode(), "text/plain; charset=utf-8"),
        (b"\x00\x01raw", b"\x00\x01raw", "application/octet-stream"),
        (URLSession.Blob(b"<b/>", mimeType="text/xml"), b"<b/>", "text/xml"),
    ],
    ids=["dict", "list", "str", "bytes", "blob"],
)
def test_data_task_bodies(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    data: Any,
    body: bytes,
    ctype: str,
) -> None:
    """dict/list go as JSON, str as UTF-8 text, bytes and Blobs as they are."""
    session = make_session()
    rec = recorder(session)
    echo = echoed(run(session, rec, url=server.url("/echo"), data=data))
    assert echo["method"] == "POST"
    assert echo["body_sha256"] == sha256(body)
    assert header_list(echo, "Content-Type") == [ctype]
    assert header_list(echo, "Content-Length") == [str(len(body))]


def test_explicit_content_type_wins_whatever_the_case(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A Content-Type given by the caller replaces the one derived from the data."""
    session = make_session()
    rec = recorder(session)
    echo = echoed(
        run(
            session,
            rec,
            url=server.url("/echo"),
            data={"x": 1},
            requestHeaders={"content-type": "application/vnd.api+json"},
        )
    )
    assert header_list(echo, "Content-Type") == ["application/vnd.api+json"]


def test_data_task_with_file_blob_streams_it(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, tmp_path: Path
) -> None:
    """A file Blob as a data task's body is sent whole, with its MIME type."""
    path = tmp_path / "page.html"
    path.write_bytes(content_bytes(300_000))
    session = make_session()
    rec = recorder(session)
    echo = echoed(run(session, rec, url=server.url("/echo"), data=URLSession.Blob(path=path)))
    assert echo["body_sha256"] == content_sha256(300_000)
    assert header_list(echo, "Content-Type") == ["text/html"]


# --------------------------------------------------------------------------- content coding


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_encoded_download_is_decoded(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, coding: str
) -> None:
    """A gzip/deflate download is written decoded: the file is the original content."""
    n = 900_000
    session = make_session()
    rec = recorder(session)
    server.clear_requests()
    tid = session.downloadTask(url=server.url(f"/bytes/{n}?{coding}=1"))
    assert rec.completed(tid).success
    (completed,) = rec.of(tid, "downloadcompleted")
    assert completed.data.length == n
    assert file_sha256(completed.data.nativePath) == content_sha256(n)
    assert server.requests[-1].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_encoded_data_is_decoded(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, coding: str
) -> None:
    """A gzip/deflate data task body reaches responseText decoded (latin-1 keeps every byte)."""
    n = 200_000
    session = make_session()
    rec = recorder(session)
    ctype = quote("text/plain; charset=iso-8859-1")
    done = run(session, rec, url=server.url(f"/bytes/{n}?{coding}=1&type={ctype}"), method="GET")
    assert done.responseText.encode("latin-1") == content_bytes(n)
    assert done.source.countOfBytesReceived == n


def test_json_response_text_parses(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """responseText of a JSON endpoint is the JSON document as text."""
    session = make_session()
    rec = recorder(session)
    done = run(session, rec, url=server.url("/echo?x=%E2%9C%93"), method="GET")
    assert json.loads(done.responseText)["query"] == {"x": ["✓"]}
