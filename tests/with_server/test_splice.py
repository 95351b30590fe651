"""Plain-HTTP download bodies go from the socket to the file with ``splice``, and say so.

Each test spies on :class:`BodySplice` to know which road the bytes took: a test that meant to
check the splice and silently went through Python reads would prove nothing.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from urlsession_module import ErrorCode
from urlsession_module._transport import _connections
from urlsession_module.testing import LocalServer, content_sha256

from ._util import file_sha256

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

# The splice path is the urllib3 engine's (http.client's socket under the response).
pytestmark = pytest.mark.engine("urllib3")

N = 3_000_000
RATE = 30_000_000  # bytes/s: the body comes in many reads, not one


def downloaded(rec: Any, tid: str) -> str:
    done = rec.completed(tid, 20)
    assert done.success and done.statusCode == 200, (done.errorCode, done.message)
    (completed,) = rec.of(tid, "downloadcompleted")
    return str(completed.data.nativePath)


def test_a_plain_http_body_is_spliced_intact(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """The body reaches the file through the pipe, byte for byte, with its progress counted."""
    moves = mocker.spy(_connections.BodySplice, "move")
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}"))
    path = downloaded(rec, tid)
    assert moves.call_count > 1
    assert file_sha256(path) == content_sha256(N)
    progress = rec.of(tid, "downloadprogress")
    assert progress[-1].totalBytesWritten == N == session.getTask(tid).countOfBytesReceived
    assert sum(e.bytesWritten for e in progress) == N


def test_the_connection_is_reused_after_a_spliced_body(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """http.client's bookkeeping is kept: the connection goes back to the pool for the next."""
    moves = mocker.spy(_connections.BodySplice, "move")
    session = make_session()
    rec = recorder(session)
    accepted = server.connections_accepted
    for i in range(2):
        tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}&n={i}"))
        assert file_sha256(downloaded(rec, tid)) == content_sha256(N)
    assert moves.call_count > 2
    assert server.connections_accepted - accepted == 1


def test_a_body_cut_short_under_splice_is_connection_lost(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """The server closes halfway through: -1005, and no file is left behind."""
    moves = mocker.spy(_connections.BodySplice, "move")
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/drop?length={N}&after={N // 2}"))
    done = rec.completed(tid, 20)
    assert (done.success, done.errorCode) == (False, ErrorCode.NETWORK_CONNECTION_LOST)
    assert moves.call_count >= 1
    assert rec.of(tid, "downloadcompleted") == []
    assert sorted(session.downloadDirectory.iterdir()) == []


def test_a_stall_under_splice_times_out(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """Bytes stop coming: the request timeout holds while waiting to splice (-1001)."""
    moves = mocker.spy(_connections.BodySplice, "move")
    session = make_session(timeoutIntervalForRequest=0.5)
    rec = recorder(session)
    t0 = time.monotonic()
    tid = session.downloadTask(url=server.url(f"/stall?length={N}&after={N // 2}&hang=10"))
    done = rec.completed(tid, 20)
    assert (done.success, done.errorCode) == (False, ErrorCode.TIMED_OUT)
    assert time.monotonic() - t0 < 5
    assert moves.call_count >= 1
    assert sorted(session.downloadDirectory.iterdir()) == []


def test_cancel_under_splice(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """A cancel wakes the wait for the socket: -999 at once, no file."""
    moves = mocker.spy(_connections.BodySplice, "move")
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate=2000000"))
    task = session.getTask(tid)
    deadline = time.monotonic() + 10
    while moves.call_count < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert moves.call_count >= 2
    t0 = time.monotonic()
    task.cancel()
    done = rec.completed(tid, 5)
    assert (done.success, done.errorCode) == (False, ErrorCode.CANCELLED)
    assert time.monotonic() - t0 < 1
    assert sorted(session.downloadDirectory.iterdir()) == []


@pytest.mark.parametrize("refused_by", ["socket", "file"])
def test_when_the_kernel_refuses_a_splice_the_bytes_are_copied(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    mocker: Any,
    refused_by: str,
) -> None:
    """A socket the kernel will not splice from is read as usual; a file system that takes no
    splice is written through Python. Either way the file is intact."""
    real_splice = os.splice

    def splice(src: int, dst: int, count: int, *args: Any, **kwargs: Any) -> int:
        from_socket = bool(kwargs.get("flags", 0) & os.SPLICE_F_NONBLOCK)
        if from_socket == (refused_by == "socket"):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_splice(src, dst, count, *args, **kwargs)

    refusals = mocker.patch("os.splice", side_effect=splice)
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{N}?rate={RATE}"))
    assert file_sha256(downloaded(rec, tid)) == content_sha256(N)
    assert refusals.call_count >= 1


def test_tls_bodies_are_not_spliced(
    tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """Encrypted bytes must come up to be decrypted: a TLS download takes the ordinary road."""
    opened = mocker.spy(_connections.BodySplice, "open")
    session = make_session(caBundle=tls_server.ca_bundle)
    rec = recorder(session)
    tid = session.downloadTask(url=tls_server.url(f"/bytes/{N}?rate={RATE}"))
    assert file_sha256(downloaded(rec, tid)) == content_sha256(N)
    assert opened.call_count == 1
    assert opened.spy_return is None
