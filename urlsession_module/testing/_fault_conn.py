"""One connection of the fault server as a scenario sees it: read a request, send, wait, reset.

:class:`FaultConnection` speaks HTTP/1.1 by hand over a plain (or TLS) socket: it reads a whole
request, head and body, so a client's failure is always about the response; it sends exactly
the bytes a scenario asks for; its waits end as soon as the server stops or the client leaves.
The scenarios themselves are in :mod:`._scenarios`, the server in :mod:`._faults`.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from ._content import iter_views

if TYPE_CHECKING:
    from ._faults import FaultServer

__all__ = ["IO_TIMEOUT", "MAX_HANG", "Disconnected", "FaultConnection", "FaultRequest", "Query"]

IO_TIMEOUT = 10.0  # a client that stops reading does not pin a thread for longer
MAX_HANG = 60.0
_MAX_HEAD = 256 * 1024
_POLL = 0.05


@dataclass(frozen=True)
class FaultRequest:
    """One request as the fault server read it, so tests can assert what the client sent."""

    scenario: str
    method: str
    target: str  # path and query, as received
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body_length: int
    connection: int  # the number of the connection it came on (1 for the first accepted)


class Disconnected(Exception):
    """The client went away (or the server is stopping): the scenario ends here."""


class Query:
    """Typed access to a scenario's query parameters, with defaults."""

    def __init__(self, query: str) -> None:
        self._q = parse_qs(query, keep_blank_values=True)

    def text(self, name: str, default: str) -> str:
        values = self._q.get(name)
        return values[-1] if values else default

    def integer(self, name: str, default: int) -> int:
        try:
            return int(self.text(name, str(default)))
        except ValueError:
            return default

    def seconds(self, name: str, default: float) -> float:
        try:
            return float(self.text(name, str(default)))
        except ValueError:
            return default


class FaultConnection:
    """One accepted connection as a scenario sees it: read a request, send, wait, reset."""

    def __init__(self, server: FaultServer, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self._server = server
        self._buf = b""

    # -- reading ---------------------------------------------------------------------------------

    def _recv(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except (OSError, ValueError) as exc:
            raise Disconnected(repr(exc)) from None
        if not data:
            raise Disconnected("client closed")
        return data

    def read_request(self) -> tuple[str, str, dict[str, str], int] | None:
        """Read one request (head and body); None when the client closed between requests."""
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > _MAX_HEAD:
                raise Disconnected("request head too long")
            try:
                self._buf += self._recv()
            except Disconnected:
                if self._buf:
                    raise
                return None
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 2:
            raise Disconnected(f"not an HTTP request: {lines[0]!r}")
        method, target = parts[0], parts[1]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        length = 0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            length = self._drain_chunked()
        elif headers.get("content-length", "").isdigit():
            length = int(headers["content-length"])
            self._drain(length)
        return method, target, headers, length

    def _drain(self, n: int) -> None:
        """Skip ``n`` body bytes without keeping them (uploads may be large)."""
        while len(self._buf) < n:
            n -= len(self._buf)
            self._buf = self._recv()
        self._buf = self._buf[n:]

    def _drain_chunked(self) -> int:
        total = 0
        while True:
            while b"\r\n" not in self._buf:
                self._buf += self._recv()
            line, _, self._buf = self._buf.partition(b"\r\n")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while b"\r\n" not in self._buf:  # trailers end with an empty line
                    self._buf += self._recv()
                self._buf = self._buf.partition(b"\r\n")[2]
                return total
            self._drain(size + 2)
            total += size

    # -- writing ---------------------------------------------------------------------------------

    @property
    def server_base_url(self) -> str:
        return self._server.base_url

    def send(self, data: bytes | memoryview) -> None:
        if self._server.stopping:
            raise Disconnected("server stopping")
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:
            raise Disconnected(repr(exc)) from None

    def send_head(self, status: int, reason: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send_content(self, n: int, offset: int = 0) -> None:
        """``n`` bytes of the deterministic content (what ``LocalServer``'s /bytes serves)."""
        for view in iter_views(n, offset, 64 * 1024):
            self.send(view)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds`` (at most 60 s); raise once the server stops or the client left.

        A stalled scenario must not outlive its client: a client that gave up (timed out,
        cancelled) ends the wait, so the connection's thread ends with it.
        """
        deadline = time.monotonic() + min(seconds, MAX_HANG)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._server.wait_stop(min(remaining, _POLL)):
                raise Disconnected("server stopping")
            if self._peer_closed():
                raise Disconnected("client closed while the server stalled")

    def _peer_closed(self) -> bool:
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            # The plain socket's recv, also under TLS: peek at the wire without TLS state.
            return bool(readable) and not socket.socket.recv(self.sock, 1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

    def reset(self) -> None:
        """Close with an RST instead of a FIN: the client sees ECONNRESET."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.sock.close()
