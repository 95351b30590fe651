"""Limits a hostile server cannot talk its way past: body caps (-1103) and interim floods."""

from __future__ import annotations

import os
import socket
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from urlsession_module import ErrorCode
from urlsession_module.testing import LocalServer, content_sha256

from ._util import file_sha256, raw_server, read_request_head, sha256

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

MIB = 1 << 20
CAP = 4 * MIB


def _gzip_member(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


# 1 GiB of zeros as 1024 gzip members of 1 MiB each (a gzip body may hold several members, and
# urllib3 decodes them all): about 1 MB on the wire, built in milliseconds.
BOMB = _gzip_member(bytes(MIB)) * 1024


def _bomb_handler(conn: socket.socket) -> None:
    read_request_head(conn)
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(BOMB)}\r\n\r\n"
    )
    conn.sendall(head.encode() + BOMB)


def _failed_with_1103(rec: Any, tid: str, started: float) -> Any:
    done = rec.completed(tid, 30)
    assert (done.success, done.errorCode) == (False, ErrorCode.DATA_LENGTH_EXCEEDS_MAXIMUM)
    assert done.message.startswith("resource exceeds maximum size (127.0.0.1:")
    assert time.monotonic() - started < 10
    return done


@pytest.mark.parametrize(
    ("download", "cap"),
    [(False, "maximumResponseDataLength"), (True, "maximumDownloadLength")],
    ids=["data", "download"],
)
def test_gzip_bomb_fails_with_minus_1103(
    make_session: MakeSession, recorder: MakeRecorder, download: bool, cap: str
) -> None:
    """1 MB of gzip that inflates to 1 GiB stops at a 4 MiB cap with -1103, not success: no
    more than the cap is taken, no responseText, no file left."""
    session = make_session(**{cap: CAP})
    rec = recorder(session)
    with raw_server(_bomb_handler) as srv:
        started = time.monotonic()
        url = srv.url("/bomb")
        tid = session.downloadTask(url=url) if download else session.dataTask(url=url)
        done = _failed_with_1103(rec, tid, started)
    assert done.message.endswith(f": the body is larger than {cap}, {CAP} bytes)")
    if not download:
        assert done.responseText == ""
    assert sum(e.bytesWritten for e in rec.of(tid, "downloadprogress")) <= CAP
    assert rec.of(tid, "downloadcompleted") == []
    assert os.listdir(session.downloadDirectory) == []


@pytest.mark.parametrize("download", [False, True], ids=["data", "download"])
@pytest.mark.parametrize(
    "framing", ["", "?chunked=1", "?gzip=1"], ids=["length", "chunked", "gzip"]
)
def test_body_one_byte_over_the_cap_fails_with_minus_1103(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    framing: str,
    download: bool,
) -> None:
    """One byte over the cap fails (at the head when the length is announced); a download
    leaves no file."""
    session = make_session(maximumResponseDataLength=MIB, maximumDownloadLength=MIB)
    rec = recorder(session)
    started = time.monotonic()
    url = server.url(f"/bytes/{MIB + 1}{framing}")
    tid = session.downloadTask(url=url) if download else session.dataTask(url=url)
    done = _failed_with_1103(rec, tid, started)
    assert done.statusCode == 200
    assert os.listdir(session.downloadDirectory) == []


@pytest.mark.parametrize(
    "framing", ["", "&chunked=1", "&gzip=1"], ids=["length", "chunked", "gzip"]
)
def test_bodies_at_the_cap_succeed(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, framing: str
) -> None:
    """A body of exactly the cap is whole, for data tasks and downloads alike."""
    session = make_session(maximumResponseDataLength=MIB, maximumDownloadLength=MIB)
    rec = recorder(session)
    url = server.url(f"/bytes/{MIB}?type={quote('text/plain; charset=latin-1')}{framing}")
    data = session.dataTask(url=url)
    down = session.downloadTask(url=url)
    done = rec.completed(data, 30)
    assert done.success, done.message
    assert sha256(done.responseText.encode("latin-1")) == content_sha256(MIB)
    finished = rec.completed(down, 30)
    assert finished.success, finished.message
    (completed,) = rec.of(down, "downloadcompleted")
    assert file_sha256(completed.data.nativePath) == content_sha256(MIB)


def test_text_is_decoded_across_block_boundaries(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Text decoded as it streams gives the same responseText as decoding the whole body."""
    text = "h\u00e9llo w\u00f6rld \u20ac " * 50_000  # multi-byte characters across reads
    session = make_session()
    rec = recorder(session)

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        body = text.encode("utf-8")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
        conn.sendall(head.encode())
        for i in range(0, len(body), 4099):  # odd slices: characters split between sends
            conn.sendall(body[i : i + 4099])

    with raw_server(handler) as srv:
        done = rec.completed(session.dataTask(url=srv.url("/text")), 30)
    assert done.success and done.responseText == text


# --------------------------------------------------------------------------- interim responses

EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"


def test_slow_interim_flood_ends_at_the_resource_deadline(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """103s sent forever, never idle, still end the task with -1001 at the resource deadline."""

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        for _ in range(400):  # 20 s at most, far past the deadline
            conn.sendall(EARLY_HINTS)
            time.sleep(0.05)

    session = make_session(timeoutIntervalForResource=2.0, timeoutIntervalForRequest=1.0)
    rec = recorder(session)
    with raw_server(handler) as srv:
        started = time.monotonic()
        done = rec.completed(session.dataTask(url=srv.url("/hints")), 15)
        elapsed = time.monotonic() - started
    assert (done.success, done.errorCode) == (False, ErrorCode.TIMED_OUT), done.message
    assert elapsed < 2.0 + 1.5


def test_fast_interim_flood_is_a_bad_server_response(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A burst of more interim responses than any real server sends fails at once with -1011."""

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        for _ in range(10_000):
            conn.sendall(EARLY_HINTS)

    session = make_session(timeoutIntervalForResource=30.0)
    rec = recorder(session)
    with raw_server(handler) as srv:
        started = time.monotonic()
        done = rec.completed(session.dataTask(url=srv.url("/hints")), 15)
        elapsed = time.monotonic() - started
    assert (done.success, done.errorCode) == (False, ErrorCode.BAD_SERVER_RESPONSE), done.message
    assert "too many interim (1xx) responses" in done.message
    assert elapsed < 5


def test_a_few_interim_responses_are_skipped(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Two 103s and a 100 before the final response are skipped, as Foundation does."""

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        final = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        conn.sendall(EARLY_HINTS * 2 + b"HTTP/1.1 100 Continue\r\n\r\n" + final)

    session = make_session()
    rec = recorder(session)
    with raw_server(handler) as srv:
        done = rec.completed(session.dataTask(url=srv.url("/hints")), 15)
    assert (done.success, done.statusCode, done.responseText) == (True, 200, "ok")
