"""Helpers shared by the with_server tests: digests, bounded waits, raw-socket fault servers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from urlsession_module.testing._base import ServerBase

# Exact payload fields of SPEC §5 (``sessionIdentifier`` is added for a background session).
DOWNLOADPROGRESS_FIELDS = {
    "taskIdentifier",
    "bytesWritten",
    "totalBytesWritten",
    "totalBytesExpectedToWrite",
}
UPLOADPROGRESS_FIELDS = {
    "taskIdentifier",
    "bytesSent",
    "totalBytesSent",
    "totalBytesExpectedToSend",
}
DOWNLOADCOMPLETED_FIELDS = {"taskIdentifier", "data"}
SESSIONCOMPLETED_FIELDS = {"taskIdentifier", "success", "errorCode", "message", "statusCode"}
# A task that got a response also says what protocol carried it, and its metrics (issue 16).
ANSWERED_FIELDS = SESSIONCOMPLETED_FIELDS | {"networkProtocolName", "metrics"}
EVENT_ATTRIBUTES = {"type", "source", "bubbles", "cancelBubble"}


def fields(event: Any) -> set[str]:
    """The payload fields of an event, without the attributes every Event has."""
    return set(event) - EVENT_ATTRIBUTES


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def echoed(event: Any) -> Any:
    """The JSON that /echo (or /upload) answered, from a sessioncompleted event."""
    assert event.success, (event.errorCode, event.message)
    return json.loads(event.responseText)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` (for state no event announces) until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {what or predicate}")
        time.sleep(0.01)


def session_threads(before: set[threading.Thread] | None = None) -> list[str]:
    """Names of live session threads (task workers, delivery, timers), new since ``before``."""
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("urlsession-") and (before is None or t not in before)
    ]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def read_request_head(conn: socket.socket) -> bytes:
    """Read up to the end of a request head (good enough for bodiless test requests)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class RawServer(ServerBase):
    """A raw TCP server on 127.0.0.1 whose ``handler(conn)`` answers each connection.

    For faults the real server cannot make (an invalid status line, a close without notice).
    Built on the testing servers' base: one thread per connection; ``stop()`` closes
    everything and joins within a bounded time.
    """

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        super().__init__(name="RawServer", backlog=16)
        self._handler = handler

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}{path}"

    def _serve(self, number: int, sock: socket.socket, addr: Any) -> None:
        sock.settimeout(5.0)
        with contextlib.suppress(OSError):
            self._handler(sock)


@contextlib.contextmanager
def raw_server(handler: Callable[[socket.socket], None]) -> Iterator[RawServer]:
    with RawServer(handler) as srv:
        yield srv
