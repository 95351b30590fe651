"""The error-mapping rows this suite added or changed, one test each, without sockets."""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    DecodeError,
    InvalidChunkLength,
    InvalidHeader,
    NewConnectionError,
    ProtocolError,
)

from urlsession_module import ErrorCode, TransferError
from urlsession_module._transport import map_exception

E = ErrorCode


def _raised(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def test_corrupt_known_encoding_is_minus_1015() -> None:
    """A gzip/deflate body that does not decode is -1015 (cannot decode raw data), as Apple says."""
    exc = DecodeError("Received response with content-encoding: gzip, but failed to decode it.")
    assert map_exception(exc).code == E.CANNOT_DECODE_RAW_DATA


def test_conflicting_content_lengths_are_minus_1011() -> None:
    """urllib3's InvalidHeader (e.g. two Content-Lengths that disagree) is a bad server response."""
    exc = InvalidHeader("Content-Length contained multiple unmatching values (10, 20)")
    assert map_exception(exc).code == E.BAD_SERVER_RESPONSE


def test_non_hex_chunk_size_is_minus_1011_from_urllib3() -> None:
    """urllib3's InvalidChunkLength (inside its ProtocolError) is bad framing, not a lost line."""

    class Response:  # what InvalidChunkLength reads from the response it is about
        length_remaining = 5

        def tell(self) -> int:
            return 0

    inner = InvalidChunkLength(Response(), b"zz\r\n")  # type: ignore[arg-type]
    assert map_exception(ProtocolError("Connection broken", inner)).code == E.BAD_SERVER_RESPONSE


def _chunk_size_error(line: bytes) -> BaseException:
    """What http.client's chunked reader raises when ``line`` is where a chunk size should be."""

    def read_chunk_size() -> None:
        try:
            int(line, 16)
        except ValueError:
            raise http.client.IncompleteRead(b"")  # noqa: B904 (exactly what http.client does)

    return _raised(read_chunk_size)


@pytest.mark.parametrize(
    ("line", "code"),
    [(b"zz-not-hex\r\n", E.BAD_SERVER_RESPONSE), (b"", E.NETWORK_CONNECTION_LOST)],
    ids=["garbage-line", "connection-ended"],
)
def test_http_client_chunk_size_errors(line: bytes, code: int) -> None:
    """http.client's IncompleteRead(b''): garbage chunk-size line → -1011, EOF there → -1005."""
    assert map_exception(_chunk_size_error(line)).code == code


def test_reset_during_tls_handshake_is_minus_1200() -> None:
    """A connection reset raised from inside ssl's handshake is a secure-connection failure."""

    def handshake() -> None:
        raise ConnectionResetError(104, "Connection reset by peer")

    # Run it under a function named like ssl's, in a file named ssl.py, as the real one is.
    code = compile("def do_handshake(fn):\n    fn()\n", "/usr/lib/python3/ssl.py", "exec")
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    exc = _raised(lambda: namespace["do_handshake"](handshake))
    assert (
        map_exception(ProtocolError("Connection aborted.", exc)).code == E.SECURE_CONNECTION_FAILED
    )
    assert map_exception(exc).code == E.SECURE_CONNECTION_FAILED


def test_reset_after_the_handshake_stays_minus_1005() -> None:
    """The same reset raised anywhere else is a lost connection."""
    exc = _raised(lambda: (_ for _ in ()).throw(ConnectionResetError(104, "reset")))
    assert (
        map_exception(ProtocolError("Connection aborted.", exc)).code == E.NETWORK_CONNECTION_LOST
    )
    assert map_exception(exc).code == E.NETWORK_CONNECTION_LOST


@pytest.mark.parametrize(
    "parse",
    [
        lambda: urljoin("http://127.0.0.1/", "http://[::1"),
        lambda: urlsplit("http://127.0.0.1:99999/").port,
    ],
    ids=["bad-ipv6", "port-out-of-range"],
)
def test_unparsable_redirect_target_is_minus_1000(parse: Any) -> None:
    """A ValueError from URL parsing (a redirect's Location) is -1000, not an unknown error."""
    assert map_exception(_raised(parse)).code == E.BAD_URL


def test_other_value_errors_stay_unknown() -> None:
    """A ValueError from anywhere else, or a UnicodeError, is still -1 (not blamed on a URL)."""
    assert map_exception(_raised(lambda: int("x"))).code == E.UNKNOWN
    assert map_exception(_raised(lambda: "€".encode("latin-1"))).code == E.UNKNOWN


def test_transfer_error_comes_back_fresh_without_traceback() -> None:
    """map_exception returns a new TransferError: no traceback (so no frames) is kept alive."""
    original = _raised(lambda: (_ for _ in ()).throw(TransferError(E.TIMED_OUT, "late")))
    mapped = map_exception(original)
    assert (mapped.code, mapped.message) == (E.TIMED_OUT, "late")
    assert mapped is not original and mapped.__traceback__ is None


def test_certificate_errors_keep_their_codes() -> None:
    """Expired → -1201; other verification failures → -1202 (unchanged rows, for the record)."""
    expired = ssl.SSLCertVerificationError(1, "certificate has expired")
    expired.verify_code = 10
    mismatch = ssl.SSLCertVerificationError(1, "Hostname mismatch")
    mismatch.verify_code = 62
    assert map_exception(expired).code == E.SERVER_CERTIFICATE_HAS_BAD_DATE
    assert map_exception(mismatch).code == E.SERVER_CERTIFICATE_UNTRUSTED


@pytest.mark.parametrize(
    ("https", "cause", "code"),
    [
        (True, ConnectionResetError(104, "Connection reset by peer"), E.SECURE_CONNECTION_FAILED),
        (False, ConnectionResetError(104, "Connection reset by peer"), E.NETWORK_CONNECTION_LOST),
        (True, ConnectionRefusedError(111, "Connection refused"), E.CANNOT_CONNECT_TO_HOST),
        (False, ConnectionRefusedError(111, "Connection refused"), E.CANNOT_CONNECT_TO_HOST),
    ],
)
def test_a_reset_seen_while_connecting_is_not_cannot_connect(
    https: bool, cause: OSError, code: ErrorCode
) -> None:
    """Under load the client can first see a server's reset when it checks its connect: the
    connection was made (a refusal says so), so it is the handshake failing (https) or the
    connection lost (http), as when the reset comes a moment later — not -1004."""
    conn = (HTTPSConnection if https else HTTPConnection)("localhost", 1)

    def connect() -> None:
        try:
            raise cause
        except OSError as e:
            raise NewConnectionError(conn, f"Failed to establish a new connection: {e}") from e

    assert map_exception(_raised(connect)).code == code
