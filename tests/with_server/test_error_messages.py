"""One test per row of the transport's error table: the code and the exact message a user sees.

Messages are Foundation's description, then the host and port and what happened in plain
words: never a Python class name, a repr or a tuple. Faults are real (127.0.0.1 servers that
refuse, reset, lie or stall); the few rows no server can reach are raised at the fault point
(the pool's ``urlopen``) with pytest-mock.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from pytest_mock import MockerFixture
from urllib3.exceptions import HTTPError, LocationValueError

from urlsession_module import ErrorCode
from urlsession_module._transport import _connections
from urlsession_module.testing import LocalServer

from ._util import closed_port, raw_server, read_request_head

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
E = ErrorCode

# What a message must never hold: class names, reprs, tuples, errno brackets.
_INTERNAL = re.compile(
    r"Error\b|Exception|Connection\(|HTTPResponse|<[a-z_.]+ object|\(\(|\[Errno|\\x[0-9a-f]{2}|'"
)


def _message(session: Any, rec: Any, url: str, code: ErrorCode, *, download: bool = False) -> str:
    tid = session.downloadTask(url=url) if download else session.dataTask(url=url)
    done = rec.completed(tid, 30)
    assert (done.success, done.errorCode) == (False, code), done.message
    assert not _INTERNAL.search(done.message), done.message
    return str(done.message)


def _expected(code: ErrorCode, where: str, detail: str) -> str:
    return f"{code.description} ({where}: {detail})"


def _reset(conn: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# --------------------------------------------------------------------------- connecting


def test_name_resolution(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """NameResolutionError → -1003, naming the host that does not resolve."""
    session = make_session()
    message = _message(
        session, recorder(session), "http://nonexistent.invalid/", E.CANNOT_FIND_HOST
    )
    assert message == _expected(
        E.CANNOT_FIND_HOST, "nonexistent.invalid:80", "the name does not resolve"
    )


def test_refused(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """NewConnectionError (refused) → -1004 with the OS's words."""
    session = make_session()
    port = closed_port()
    message = _message(
        session, recorder(session), f"http://127.0.0.1:{port}/x", E.CANNOT_CONNECT_TO_HOST
    )
    assert message == _expected(E.CANNOT_CONNECT_TO_HOST, f"127.0.0.1:{port}", "connection refused")


def test_connect_timeout(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """ConnectTimeoutError → -1001: a listener whose backlog is full drops our SYN."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue (never accepted)
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        session = make_session(timeoutIntervalForRequest=0.5)
        message = _message(session, recorder(session), f"http://127.0.0.1:{port}/x", E.TIMED_OUT)
    finally:
        for s in fillers:
            s.close()
        listener.close()
    assert message == _expected(
        E.TIMED_OUT, f"127.0.0.1:{port}", "no connection within the idle timeout"
    )


def test_proxy_unreachable(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """ProxyError → -1004: the configured proxy refuses."""
    port = closed_port()
    session = make_session(proxyURL=f"http://127.0.0.1:{port}")
    message = _message(
        session, recorder(session), "http://example.invalid/x", E.CANNOT_CONNECT_TO_HOST
    )
    assert message == _expected(
        E.CANNOT_CONNECT_TO_HOST,
        "example.invalid:80",
        f"the proxy 127.0.0.1:{port}: connection refused",
    )


# --------------------------------------------------------------------------- TLS


def test_untrusted_certificate(
    tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """SSLError (verification) → -1202 with the TLS library's reason in words."""
    session = make_session()
    message = _message(
        session, recorder(session), tls_server.url("/echo"), E.SERVER_CERTIFICATE_UNTRUSTED
    )
    assert message == _expected(
        E.SERVER_CERTIFICATE_UNTRUSTED,
        f"localhost:{tls_server.port}",
        "unable to get local issuer certificate",
    )


def test_tls_to_a_plain_server(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """ssl.SSLError (not a certificate) → -1200: https:// to a plain HTTP port."""
    session = make_session()
    url = f"https://127.0.0.1:{server.port}/echo"
    message = _message(session, recorder(session), url, E.SECURE_CONNECTION_FAILED)
    assert message == _expected(
        E.SECURE_CONNECTION_FAILED, f"127.0.0.1:{server.port}", "wrong version number"
    )


@pytest.mark.engine("urllib3")  # urllib3's exceptions, injected where urllib3 raises them
def test_bare_ssl_error(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: MockerFixture
) -> None:
    """An ssl.SSLError urllib3 did not wrap → -1200 with its reason in words."""
    error = ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] bad record")
    error.reason = "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"
    mocker.patch.object(_connections._Pool, "urlopen", side_effect=error)
    session = make_session()
    message = _message(session, recorder(session), server.url("/x"), E.SECURE_CONNECTION_FAILED)
    assert message == _expected(
        E.SECURE_CONNECTION_FAILED,
        f"127.0.0.1:{server.port}",
        "decryption failed or bad record mac",
    )


# --------------------------------------------------------------------------- the response head


def _serving(payload: bytes, *, reset: bool = False) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(payload)
        if reset:
            _reset(conn)

    return handler


HEAD_FAULTS = [
    (
        "garbage-status-line",
        b"\x00\x01\x02 not http\r\n\r\n",
        E.BAD_SERVER_RESPONSE,
        "the response does not start with an HTTP status line",
    ),
    (
        "closed-without-response",
        b"",
        E.NETWORK_CONNECTION_LOST,
        "the server closed the connection without a response",
    ),
    (
        "header-line-too-long",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
        E.BAD_SERVER_RESPONSE,
        "a response header line is too long",
    ),
    (
        "head-too-large",
        b"HTTP/1.1 200 OK\r\n" + b"X-Many: header\r\n" * 1_001 + b"\r\n",
        E.BAD_SERVER_RESPONSE,
        "response head too large",
    ),
    (
        "too-many-interims",
        b"HTTP/1.1 103 Early Hints\r\n\r\n" * 200,
        E.BAD_SERVER_RESPONSE,
        "too many interim (1xx) responses",
    ),
    (
        "conflicting-lengths",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        E.BAD_SERVER_RESPONSE,
        "invalid or conflicting headers",
    ),
]


@pytest.mark.parametrize(
    ("payload", "code", "detail"), [f[1:] for f in HEAD_FAULTS], ids=[f[0] for f in HEAD_FAULTS]
)
def test_response_head_faults(
    make_session: MakeSession, recorder: MakeRecorder, payload: bytes, code: ErrorCode, detail: str
) -> None:
    """ProtocolError / HTTPException / InvalidHeader rows: what was wrong with the head."""
    session = make_session()
    with raw_server(_serving(payload)) as srv:
        message = _message(session, recorder(session), srv.url("/x"), code)
    assert message == _expected(code, f"127.0.0.1:{srv.port}", detail)


def test_reset_before_the_response(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """A reset instead of a response → -1005, said as a reset."""
    session = make_session()
    with raw_server(_serving(b"", reset=True)) as srv:
        message = _message(session, recorder(session), srv.url("/x"), E.NETWORK_CONNECTION_LOST)
    assert message == _expected(
        E.NETWORK_CONNECTION_LOST, f"127.0.0.1:{srv.port}", "the connection was reset"
    )


def test_idle_timeout_waiting_for_the_head(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """ReadTimeoutError → -1001: nothing came within timeoutIntervalForRequest."""
    session = make_session(timeoutIntervalForRequest=0.5)
    message = _message(session, recorder(session), server.url("/slow?delay=3"), E.TIMED_OUT)
    assert message == _expected(
        E.TIMED_OUT, f"127.0.0.1:{server.port}", "no data within the idle timeout"
    )


# --------------------------------------------------------------------------- the body


def test_body_cut_short(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """IncompleteRead (http.client's, unwrapped) → -1005: fewer bytes than Content-Length."""
    session = make_session()
    payload = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some"
    with raw_server(_serving(payload)) as srv:
        message = _message(session, recorder(session), srv.url("/x"), E.NETWORK_CONNECTION_LOST)
    assert message == _expected(
        E.NETWORK_CONNECTION_LOST,
        f"127.0.0.1:{srv.port}",
        "the connection closed before the whole body came",
    )


def test_bad_chunk_size(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """A chunk-size line that is not hex → -1011."""
    session = make_session()
    payload = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-hex\r\n"
    with raw_server(_serving(payload)) as srv:
        message = _message(session, recorder(session), srv.url("/x"), E.BAD_SERVER_RESPONSE)
    assert message == _expected(
        E.BAD_SERVER_RESPONSE, f"127.0.0.1:{srv.port}", "invalid chunked encoding"
    )


def test_reset_in_the_body(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """ConnectionResetError while the body is read → -1005, said as a reset."""
    session = make_session()
    payload = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000
    with raw_server(_serving(payload, reset=True)) as srv:
        message = _message(session, recorder(session), srv.url("/x"), E.NETWORK_CONNECTION_LOST)
    assert message == _expected(
        E.NETWORK_CONNECTION_LOST, f"127.0.0.1:{srv.port}", "the connection was reset"
    )


def test_corrupt_gzip(make_session: MakeSession, recorder: MakeRecorder) -> None:
    """DecodeError → -1015: Content-Encoding gzip over bytes that are not."""
    session = make_session()
    body = b"this is not gzip at all " * 40
    payload = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with raw_server(_serving(payload)) as srv:
        message = _message(session, recorder(session), srv.url("/x"), E.CANNOT_DECODE_RAW_DATA)
    assert message == _expected(
        E.CANNOT_DECODE_RAW_DATA, f"127.0.0.1:{srv.port}", "the compressed body does not decode"
    )


def test_stalled_download_body(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """TimeoutError (the splice's own wait) → -1001: a download body that stalls."""
    session = make_session(timeoutIntervalForRequest=0.5)
    url = server.url("/stall?length=100000&after=1000&hang=3")
    message = _message(session, recorder(session), url, E.TIMED_OUT, download=True)
    assert message == _expected(
        E.TIMED_OUT, f"127.0.0.1:{server.port}", "no data within the idle timeout"
    )


# --------------------------------------------------------------------------- URLs and the rest


def test_unparsable_redirect(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A ValueError from URL parsing (a redirect to ``http://[::1``) → -1000."""
    session = make_session()
    url = server.url(f"/redirect-to?url={quote('http://[::1')}&code=302")
    message = _message(session, recorder(session), url, E.BAD_URL)
    assert message == _expected(
        E.BAD_URL, f"127.0.0.1:{server.port}", "the URL cannot be parsed or sent"
    )


INJECTED = [
    (
        "location-value",
        LocationValueError("No host specified."),
        E.BAD_URL,
        "the URL has no usable host",
    ),
    (
        "gaierror",
        socket.gaierror(-2, "Name or service not known"),
        E.CANNOT_FIND_HOST,
        "the name does not resolve",
    ),
    (
        "refused",
        ConnectionRefusedError(111, "Connection refused"),
        E.CANNOT_CONNECT_TO_HOST,
        "connection refused",
    ),
    ("bare-timeout", TimeoutError("timed out"), E.TIMED_OUT, "no data within the idle timeout"),
    (
        "broken-pipe",
        BrokenPipeError(32, "Broken pipe"),
        E.NETWORK_CONNECTION_LOST,
        "the server closed the connection while the request was sent",
    ),
    (
        "bare-http-exception",
        http.client.HTTPException("response head too large"),
        E.BAD_SERVER_RESPONSE,
        "response head too large",
    ),
    ("urllib3-http-error", HTTPError("something urllib3 said"), E.UNKNOWN, "unexpected HTTP error"),
]


@pytest.mark.engine("urllib3")  # urllib3's exceptions, injected where urllib3 raises them
@pytest.mark.parametrize(
    ("error", "code", "detail"), [i[1:] for i in INJECTED], ids=[i[0] for i in INJECTED]
)
def test_rows_reached_by_injection(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    mocker: MockerFixture,
    error: BaseException,
    code: ErrorCode,
    detail: str,
) -> None:
    """Rows no local server can make: raised where urllib3 would raise them."""
    mocker.patch.object(_connections._Pool, "urlopen", side_effect=error)
    session = make_session()
    message = _message(session, recorder(session), server.url("/x"), code)
    assert message == _expected(code, f"127.0.0.1:{server.port}", detail)


@pytest.mark.engine("urllib3")  # urllib3's exceptions, injected where urllib3 raises them
def test_anything_else_is_unknown_without_details(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: MockerFixture
) -> None:
    """An exception no row knows → -1, naming only the host (the rest goes to the debug log)."""
    mocker.patch.object(_connections._Pool, "urlopen", side_effect=RuntimeError("internal <x>"))
    session = make_session()
    message = _message(session, recorder(session), server.url("/x"), E.UNKNOWN)
    assert message == f"{E.UNKNOWN.description} (127.0.0.1:{server.port})"


# --------------------------------------------------------------------------- the transport's own


def test_resource_deadline(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The transport's own TransferError (here the resource deadline) is framed like the rows."""
    session = make_session(timeoutIntervalForResource=1.0, timeoutIntervalForRequest=5.0)
    url = server.url("/bytes/3000000?rate=1000000")
    message = _message(session, recorder(session), url, E.TIMED_OUT)
    assert message == _expected(
        E.TIMED_OUT, f"127.0.0.1:{server.port}", "the resource timeout passed"
    )


def test_redirect_to_another_scheme(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A redirect the transport will not follow names its target (and the host that sent it)."""
    session = make_session()
    url = server.url("/redirect-to?url=ftp://127.0.0.1/file.txt&code=302")
    message = _message(session, recorder(session), url, E.UNSUPPORTED_URL)
    assert message == _expected(
        E.UNSUPPORTED_URL, f"127.0.0.1:{server.port}", "a redirect to ftp://127.0.0.1/file.txt"
    )
