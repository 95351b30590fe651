"""A response head as it comes off the wire: in pieces, with interim heads before it and
trailers after its body, from a raw server on 127.0.0.1 (both engines).

The curl engine takes the head's lines in once per ``socket_action`` (libcurl's header callback
appends each line to a list, ``Transfer.scan_head`` reads it): these pin down what that must
keep doing whatever the lines' timing.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from ._util import raw_server, read_request_head

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def _sending(*pieces: bytes, gap: float = 0.0) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        for piece in pieces:
            conn.sendall(piece)
            time.sleep(gap)

    return handler


def test_trailers_are_not_headers(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """A chunked body's trailers neither join the head nor end the task."""
    session = make_session()
    rec = recorder(session)
    with raw_server(
        _sending(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Head: yes\r\nTransfer-Encoding: chunked\r\n"
            b"Trailer: X-Tail\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-Tail: 1\r\nX-Tail-Too: 2\r\n\r\n",
            gap=0.05,
        )
    ) as srv:
        tid = session.dataTask(url=srv.url("/t"), method="GET")
        task = session.getTask(tid)
        done = rec.completed(tid)
    assert (done.success, done.statusCode, done.responseText) == (True, 200, "hello")
    assert task.response.header("x-head") == "yes"
    assert task.response.header("x-tail") is None
    assert task.response.header("link") is None  # the interim head's


def test_a_head_that_trickles_in_is_not_idle(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Head lines 0.3 s apart for 1.5 s, with a 0.8 s idle timeout: each line is a sign of life."""
    session = make_session(timeoutIntervalForRequest=0.8)
    rec = recorder(session)
    lines = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Line-%d: x\r\n" % i for i in range(4)]
    with raw_server(_sending(*lines, b"Content-Length: 2\r\n\r\nok", gap=0.3)) as srv:
        done = rec.completed(session.dataTask(url=srv.url("/t"), method="GET"))
    assert (done.success, done.statusCode, done.responseText) == (True, 200, "ok")


def test_a_head_split_inside_its_lines(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """A head whose pieces end mid-line (and one piece holding the end of the head and the
    whole body) reads as the same head."""
    session = make_session()
    rec = recorder(session)
    with raw_server(
        _sending(
            b"HTTP/1.1 20", b"0 OK\r\nX-A: o", b"ne\r\nContent-Len", b"gth: 3\r\n\r\nabc", gap=0.05
        )
    ) as srv:
        done = rec.completed(session.dataTask(url=srv.url("/t"), method="GET"))
    assert (done.success, done.statusCode, done.responseText) == (True, 200, "abc")
