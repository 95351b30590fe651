"""urllib3's and the OS's errors as URLSession codes: one table, most specific first."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import traceback
from collections.abc import Callable, Iterator

from urllib3.connection import HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    InvalidChunkLength,
    InvalidHeader,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from .._urls import Origin
from ..exceptions import ErrorCode, TransferError
from ._tls import exception_alert_code


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (urllib3 puts causes in args and ``reason``)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for inner in (*e.args, getattr(e, "reason", None), e.__cause__, e.__context__):
            if isinstance(inner, BaseException):
                todo.append(inner)


def _ssl_code(exc: BaseException) -> ErrorCode:
    for e in _causes(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            if e.verify_code in (9, 10):  # X509_V_ERR_CERT_NOT_YET_VALID / _HAS_EXPIRED
                return ErrorCode.SERVER_CERTIFICATE_HAS_BAD_DATE
            return ErrorCode.SERVER_CERTIFICATE_UNTRUSTED
        if isinstance(e, ssl.CertificateError):
            return ErrorCode.SERVER_CERTIFICATE_UNTRUSTED
    return ErrorCode.SECURE_CONNECTION_FAILED


def _raised_in(exc: BaseException, modules: tuple[str, ...], functions: tuple[str, ...]) -> bool:
    """Whether ``exc`` was raised inside one of ``functions`` of a file ending in ``modules``."""
    return any(
        frame.f_code.co_name in functions
        and frame.f_code.co_filename.replace(os.sep, "/").endswith(modules)
        for frame, _line in traceback.walk_tb(exc.__traceback__)
    )


def _in_tls_handshake(exc: BaseException) -> bool:
    """A connection that broke while the TLS handshake ran (Foundation says -1200 for that)."""
    return any(
        isinstance(e, OSError)
        and _raised_in(e, ("/ssl.py",), ("do_handshake", "_create", "wrap_socket"))
        for e in _causes(exc)
    )


def _protocol_code(exc: BaseException) -> ErrorCode:
    if _in_tls_handshake(exc):
        return ErrorCode.SECURE_CONNECTION_FAILED
    for e in _causes(exc):
        if isinstance(e, InvalidChunkLength) or _bad_chunk_size(e):
            return ErrorCode.BAD_SERVER_RESPONSE  # a chunk-size line that is not hex: framing
        if isinstance(e, http.client.IncompleteRead):
            return ErrorCode.NETWORK_CONNECTION_LOST
        if isinstance(e, (http.client.BadStatusLine, http.client.LineTooLong)):
            if isinstance(e, http.client.RemoteDisconnected):
                return ErrorCode.NETWORK_CONNECTION_LOST
            return ErrorCode.BAD_SERVER_RESPONSE
        if isinstance(e, http.client.HTTPException) and not isinstance(
            e, http.client.IncompleteRead
        ):
            return ErrorCode.BAD_SERVER_RESPONSE
    return ErrorCode.NETWORK_CONNECTION_LOST


def _bad_chunk_size(exc: BaseException) -> bool:
    """http.client's IncompleteRead for a chunk-size line that is there but not hexadecimal.

    http.client raises ``IncompleteRead(b'')`` both when the connection ends where a chunk-size
    line should be (lost: -1005) and when that line is garbage (bad framing: -1011); only the
    ``int(line, 16)`` error it was raised from tells them apart.
    """
    context = exc.__context__
    return (
        isinstance(exc, http.client.IncompleteRead)
        and not exc.partial
        and isinstance(context, ValueError)
        and "base 16" in str(context)
        and not str(context).endswith("b''")
    )


def _connection_code(exc: BaseException) -> ErrorCode:
    if _in_tls_handshake(exc):
        return ErrorCode.SECURE_CONNECTION_FAILED
    return ErrorCode.NETWORK_CONNECTION_LOST


def _new_connection_code(exc: BaseException) -> ErrorCode:
    """A connection that failed as it was made. A reset means it *was* made (a refusal would
    have said so) and the server dropped it at once: under load the client may only see it when
    it checks the connect's result. That is the TLS handshake failing for https (-1200, as when
    the reset comes a moment later), the connection lost for http."""
    if any(isinstance(e, ConnectionResetError) for e in _causes(exc)):
        if isinstance(getattr(exc, "conn", None), HTTPSConnection):
            return ErrorCode.SECURE_CONNECTION_FAILED
        return ErrorCode.NETWORK_CONNECTION_LOST
    return ErrorCode.CANNOT_CONNECT_TO_HOST


# Where a ValueError means "this URL cannot be used": a redirect's Location that does not parse
# (``http://[::1``, a port out of range) or that http.client refuses to put on the wire.
_URL_PARSERS = ("/urllib/parse.py", "/urllib3/util/url.py", "/http/client.py")
_URL_FUNCTIONS = (
    "urlsplit",
    "urlparse",
    "urljoin",
    "port",
    "_check_bracketed_host",
    "_checknetloc",
    "parse_url",
    "_validate_path",
    "_validate_host",
)


def _value_code(exc: BaseException) -> ErrorCode:
    if not isinstance(exc, UnicodeError) and _raised_in(exc, _URL_PARSERS, _URL_FUNCTIONS):
        return ErrorCode.BAD_URL
    return ErrorCode.UNKNOWN


def _reason(exc: BaseException) -> str:
    """What the OS said, in its words ("connection refused"), if some cause carries an errno."""
    for e in _causes(exc):
        if isinstance(e, OSError) and e.errno and not isinstance(e, ssl.SSLError):
            return os.strerror(e.errno).lower()
    return ""


def _tls_reason(exc: BaseException) -> str:
    """The TLS library's reason in words: "self-signed certificate", "wrong version number"."""
    for e in _causes(exc):
        message = getattr(e, "verify_message", None)
        if isinstance(e, ssl.SSLCertVerificationError) and message:
            return str(message)
        reason = getattr(e, "reason", None)
        if isinstance(e, ssl.SSLError) and isinstance(reason, str) and reason:
            return reason.lower().replace("_", " ")
    return _reason(exc)


def _protocol_detail(exc: BaseException) -> str:
    """What went wrong on the wire, in words (the exception classes only choose the words)."""
    if _in_tls_handshake(exc):
        return "the connection broke during the TLS handshake"
    for e in _causes(exc):
        if isinstance(e, InvalidChunkLength) or _bad_chunk_size(e):
            return "invalid chunked encoding"
        if isinstance(e, http.client.IncompleteRead):
            return "the connection closed before the whole body came"
        if isinstance(e, http.client.RemoteDisconnected):
            return "the server closed the connection without a response"
        if isinstance(e, http.client.BadStatusLine):
            return "the response does not start with an HTTP status line"
        if isinstance(e, http.client.LineTooLong):
            return "a response header line is too long"
        if isinstance(e, ConnectionResetError):
            return "the connection was reset"
        if isinstance(e, BrokenPipeError):
            return "the server closed the connection while the request was sent"
    for e in _causes(exc):  # our own head checks raise HTTPException with plain words
        if type(e) is http.client.HTTPException and e.args and isinstance(e.args[0], str):
            return e.args[0]
    return _reason(exc)


def _proxy_detail(exc: BaseException) -> str:
    """The proxy's own address and what it did: the task's host was never reached."""
    for e in _causes(exc):
        conn = getattr(e, "conn", None)
        host, port = getattr(conn, "host", None), getattr(conn, "port", None)
        if host and port:
            return f"the proxy {host}:{port}: {_reason(exc) or 'refused or failed'}"
    return "the proxy refused or failed"


_Code = ErrorCode | Callable[[BaseException], ErrorCode]
_Detail = Callable[[BaseException], str]


def _fixed(text: str) -> _Detail:
    return lambda _exc: text


# Most specific first: NameResolutionError < NewConnectionError < ConnectTimeoutError.
# Each row: the exception, its code (or how to choose it), and the words that say what happened
# (the message adds the host and port the task was talking to).
_ERROR_TABLE: tuple[tuple[type[BaseException], _Code, _Detail], ...] = (
    (NameResolutionError, ErrorCode.CANNOT_FIND_HOST, _fixed("the name does not resolve")),
    (NewConnectionError, _new_connection_code, _reason),
    (ConnectTimeoutError, ErrorCode.TIMED_OUT, _fixed("no connection within the idle timeout")),
    (ReadTimeoutError, ErrorCode.TIMED_OUT, _fixed("no data within the idle timeout")),
    (SSLError, _ssl_code, _tls_reason),
    (ssl.SSLError, _ssl_code, _tls_reason),
    (ProxyError, ErrorCode.CANNOT_CONNECT_TO_HOST, _proxy_detail),
    # A known encoding (gzip, deflate) whose data does not decode: Foundation's -1015;
    # -1016 is for an encoding it does not know, which urllib3 passes through undecoded.
    (DecodeError, ErrorCode.CANNOT_DECODE_RAW_DATA, _fixed("the compressed body does not decode")),
    # e.g. two Content-Lengths that disagree
    (InvalidHeader, ErrorCode.BAD_SERVER_RESPONSE, _fixed("invalid or conflicting headers")),
    (LocationValueError, ErrorCode.BAD_URL, _fixed("the URL has no usable host")),
    (ProtocolError, _protocol_code, _protocol_detail),
    (http.client.HTTPException, _protocol_code, _protocol_detail),
    (socket.gaierror, ErrorCode.CANNOT_FIND_HOST, _fixed("the name does not resolve")),
    (ConnectionRefusedError, ErrorCode.CANNOT_CONNECT_TO_HOST, _reason),
    (TimeoutError, ErrorCode.TIMED_OUT, _fixed("no data within the idle timeout")),
    (ConnectionError, _connection_code, _protocol_detail),
    (ValueError, _value_code, _fixed("the URL cannot be parsed or sent")),
    (HTTPError, ErrorCode.UNKNOWN, _fixed("unexpected HTTP error")),
)


def map_exception(exc: BaseException, where: Origin | None = None) -> TransferError:
    """The URLSession error for an exception raised while transferring.

    The message is Foundation's description of the code, then in parentheses the host and port
    (``where``, the origin the task was talking to) and what happened, in plain words: never an
    exception's class name or repr (those go to the debug log with the traceback).

    Always a fresh exception without a traceback: the caught one holds the transfer's frames
    (its response, hence its connection pool), and a caller that keeps the answer in a local
    would otherwise make a reference cycle that keeps the connection open until the garbage
    collector runs, past the session's invalidation.
    """
    if isinstance(exc, TransferError):
        # The transport's own (a deadline, a cap, a redirect it will not follow) say what
        # happened; framed like every row once the host is known, unless already framed.
        known = ErrorCode(exc.code) if exc.code in ErrorCode._value2member_map_ else None
        if where is None or known is None or exc.message.startswith(known.description):
            return TransferError(exc.code, exc.message)
        return TransferError(known, _message(known, where, exc.message))
    alert = exception_alert_code(exc)  # a server's TLS alert about our client certificate
    if alert is not None:
        return TransferError(alert, _message(alert, where, "the server refused the TLS handshake"))
    for kind, code, detail in _ERROR_TABLE:
        if isinstance(exc, kind):
            resolved = code(exc) if callable(code) else code
            return TransferError(resolved, _message(resolved, where, detail(exc)))
    return TransferError(ErrorCode.UNKNOWN, _message(ErrorCode.UNKNOWN, where, ""))


def _message(code: ErrorCode, where: Origin | None, detail: str) -> str:
    parts = [f"{where[1]}:{where[2]}" if where and where[1] else "", detail]
    said = ": ".join(p for p in parts if p)
    return f"{code.description} ({said})" if said else code.description


def file_error(code: ErrorCode, exc: OSError, path: str) -> TransferError:
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else "error")
    return TransferError(code, f"{code.description} ({reason}: {path})")


def dead_connection(exc: ProtocolError) -> bool:
    return any(
        isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
        for e in _causes(exc)
    )
