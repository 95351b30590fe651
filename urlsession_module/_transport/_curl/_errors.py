"""libcurl's results as URLSession codes: one table, most specific first.

After swift-corelibs-foundation's mapping (``URLSession/libcurl/EasyHandle.swift``): a
``CURLcode`` names what went wrong at one layer (resolving, connecting, TLS, the exchange), and
each becomes the code Foundation gives for the same thing, with the same plain words the urllib3
engine's table uses (``_transport/_errors.py``), so a fault ends a task with the same code and
the same kind of message on either engine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from ...exceptions import ErrorCode, TransferError

# CURLcode values (libcurl's curl.h); pycurl names only some of them.
OK = 0
UNSUPPORTED_PROTOCOL = 1
URL_MALFORMAT = 3
COULDNT_RESOLVE_PROXY = 5
COULDNT_RESOLVE_HOST = 6
COULDNT_CONNECT = 7
WEIRD_SERVER_REPLY = 8
HTTP2 = 16
PARTIAL_FILE = 18
WRITE_ERROR = 23
READ_ERROR = 26
OPERATION_TIMEDOUT = 28
SSL_CONNECT_ERROR = 35
ABORTED_BY_CALLBACK = 42
GOT_NOTHING = 52
SEND_ERROR = 55
SEND_FAIL_REWIND = 65
RECV_ERROR = 56
SSL_CERTPROBLEM = 58
PEER_FAILED_VERIFICATION = 60
BAD_CONTENT_ENCODING = 61
FILESIZE_EXCEEDED = 63
SSL_CACERT_BADFILE = 77
HTTP2_STREAM = 92
HTTP3 = 95
QUIC_CONNECT_ERROR = 96
PROXY = 97
TOO_LARGE = 100

Choice = Callable[["Outcome"], tuple[ErrorCode, str]]


class Outcome:
    """What libcurl said when a transfer ended: its code, its error buffer, the OS's errno,
    whether a connection was made, and through which proxy (for the message)."""

    __slots__ = ("code", "connected", "message", "os_errno", "proxy", "secure")

    def __init__(
        self,
        code: int,
        message: str,
        os_errno: int,
        connected: bool,
        proxy: str | None,
        secure: bool = False,
    ) -> None:
        self.secure = secure
        self.code = code
        self.message = message
        self.os_errno = os_errno
        self.connected = connected
        self.proxy = proxy


def _os_words(o: Outcome, fallback: str) -> str:
    return os.strerror(o.os_errno).lower() if o.os_errno else fallback


def _reset(o: Outcome) -> bool:
    return bool(o.os_errno) and "reset" in os.strerror(o.os_errno).lower()


def _connect(o: Outcome) -> tuple[ErrorCode, str]:
    if _reset(o):
        # The connection was made (a refusal would say so) and dropped at once: during the TLS
        # handshake for https (-1200), as the urllib3 engine says; lost for http.
        if o.secure:
            return (
                ErrorCode.SECURE_CONNECTION_FAILED,
                "the connection broke during the TLS handshake",
            )
        return ErrorCode.NETWORK_CONNECTION_LOST, "the connection was reset"
    if o.proxy:
        words = _os_words(o, "refused or failed")
        return ErrorCode.CANNOT_CONNECT_TO_HOST, f"the proxy {o.proxy}: {words}"
    return ErrorCode.CANNOT_CONNECT_TO_HOST, _os_words(o, "the connection failed")


def _proxy(o: Outcome) -> tuple[ErrorCode, str]:
    return ErrorCode.CANNOT_CONNECT_TO_HOST, f"the proxy {o.proxy or ''}: refused or failed"


def _timeout(o: Outcome) -> tuple[ErrorCode, str]:
    if not o.connected:
        return ErrorCode.TIMED_OUT, "no connection within the idle timeout"
    return ErrorCode.TIMED_OUT, "no data within the idle timeout"


def _tls(o: Outcome) -> tuple[ErrorCode, str]:
    words = o.message.lower()
    if _reset(o) or "reset" in words or "unexpected eof" in words or "syscall" in words:
        return ErrorCode.SECURE_CONNECTION_FAILED, "the connection broke during the TLS handshake"
    return ErrorCode.SECURE_CONNECTION_FAILED, _tls_reason(o)


def _verify(o: Outcome) -> tuple[ErrorCode, str]:
    words = o.message.lower()
    if "expired" in words or "not yet valid" in words:
        return ErrorCode.SERVER_CERTIFICATE_HAS_BAD_DATE, _tls_reason(o)
    return ErrorCode.SERVER_CERTIFICATE_UNTRUSTED, _tls_reason(o)


def _tls_reason(o: Outcome) -> str:
    """libcurl's error buffer keeps OpenSSL's words after its own prefix."""
    text = o.message
    for marker in ("verify result:", "SSL certificate problem:", "certificate verify failed:"):
        at = text.find(marker)
        if at >= 0:
            text = text[at + len(marker) :]
            break
    else:
        # "TLS connect error: error:0A00010B:SSL routines::wrong version number"
        text = text.rsplit(":", 1)[-1]
    text = re.sub(r"\s*\(\d+\)$", "", text.strip())  # OpenSSL's verify code, e.g. "(20)"
    return text.strip().lower() or "the TLS handshake failed"


def _received(o: Outcome) -> tuple[ErrorCode, str]:
    words = o.message.lower()
    if "chunk" in words:
        return ErrorCode.BAD_SERVER_RESPONSE, "invalid chunked encoding"
    if _reset(o) or "reset" in words:
        return ErrorCode.NETWORK_CONNECTION_LOST, "the connection was reset"
    return ErrorCode.NETWORK_CONNECTION_LOST, _os_words(o, "the connection was lost")


def _sent(o: Outcome) -> tuple[ErrorCode, str]:
    if _reset(o):
        return ErrorCode.NETWORK_CONNECTION_LOST, "the connection was reset"
    return (
        ErrorCode.NETWORK_CONNECTION_LOST,
        "the server closed the connection while the request was sent",
    )


def _weird(o: Outcome) -> tuple[ErrorCode, str]:
    words = o.message.lower()
    if "content-length" in words:
        return ErrorCode.BAD_SERVER_RESPONSE, "invalid or conflicting headers"
    if "status line" in words or "http/0.9" in words:
        return ErrorCode.BAD_SERVER_RESPONSE, "the response does not start with an HTTP status line"
    if "too large" in words or "too long" in words:
        return ErrorCode.BAD_SERVER_RESPONSE, "response head too large"
    return ErrorCode.BAD_SERVER_RESPONSE, "the response is not valid HTTP"


def _unsupported(o: Outcome) -> tuple[ErrorCode, str]:
    if o.connected or "http/0.9" in o.message.lower():  # a reply libcurl cannot read as HTTP
        return ErrorCode.BAD_SERVER_RESPONSE, "the response does not start with an HTTP status line"
    return ErrorCode.UNSUPPORTED_URL, "the scheme is not supported"


def _fixed(code: ErrorCode, words: str) -> Choice:
    return lambda _o: (code, words)


_LOST = ErrorCode.NETWORK_CONNECTION_LOST

# Each row: the CURLcodes, then how to choose the code and words (the message adds host:port).
_TABLE: tuple[tuple[set[int], Choice], ...] = (
    ({COULDNT_RESOLVE_HOST}, _fixed(ErrorCode.CANNOT_FIND_HOST, "the name does not resolve")),
    ({COULDNT_RESOLVE_PROXY, PROXY}, _proxy),
    ({COULDNT_CONNECT, QUIC_CONNECT_ERROR}, _connect),
    ({OPERATION_TIMEDOUT}, _timeout),
    ({PEER_FAILED_VERIFICATION}, _verify),
    ({SSL_CONNECT_ERROR, SSL_CERTPROBLEM, SSL_CACERT_BADFILE}, _tls),
    (
        {BAD_CONTENT_ENCODING},
        _fixed(ErrorCode.CANNOT_DECODE_RAW_DATA, "the compressed body does not decode"),
    ),
    ({PARTIAL_FILE}, _fixed(_LOST, "the connection closed before the whole body came")),
    ({GOT_NOTHING}, _fixed(_LOST, "the server closed the connection without a response")),
    ({WEIRD_SERVER_REPLY, TOO_LARGE}, _weird),
    ({RECV_ERROR, HTTP2, HTTP2_STREAM, HTTP3}, _received),
    ({SEND_ERROR}, _sent),
    (
        {SEND_FAIL_REWIND},
        _fixed(_LOST, "the connection was lost and the request cannot be sent again"),
    ),
    ({URL_MALFORMAT}, _fixed(ErrorCode.BAD_URL, "the URL cannot be parsed or sent")),
    ({UNSUPPORTED_PROTOCOL}, _unsupported),
    ({FILESIZE_EXCEEDED}, _fixed(ErrorCode.DATA_LENGTH_EXCEEDS_MAXIMUM, "the body is too large")),
)


def curl_error(o: Outcome) -> TransferError:
    """The URLSession error for a transfer libcurl ended with ``o.code`` (never 0).

    The message is the detail only: the transport frames it with Foundation's description and
    the host and port (:func:`~.._errors.map_exception`), as for every engine.
    """
    for codes, choose in _TABLE:
        if o.code in codes:
            code, words = choose(o)
            return TransferError(code, words)
    return TransferError(ErrorCode.UNKNOWN, o.message.lower() or "the transfer failed")
