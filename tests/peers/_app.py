"""The small httpbin-like ASGI app the hypercorn peer serves over HTTP/3, HTTP/2 and HTTP/1.1.

Plain ASGI, no framework: it runs inside hypercorn's process, and anything heavier would only slow
the peer's start. The routes are the few an engine's HTTP/3 tests need:

- ``GET /get``: JSON with the method, path, query, headers and the HTTP version hypercorn saw
  (``"3"`` over QUIC), so a test can tell from the server side which protocol carried it.
- ``GET /headers``: the request headers as JSON (``{"headers": {...}}``, httpbin's shape).
- ``GET /bytes/N``: N bytes of :func:`tests.peers._content.pattern_bytes`, streamed in 64 KiB
  chunks with a Content-Length (N at most 256 MiB).
- ``GET /status/N``: an empty response with status N.
- ``* /echo``: the request body back, with the request's content type and ``x-received-length``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.peers._content import pattern_bytes

__all__ = ["app"]

CHUNK = 64 * 1024
MAX_BYTES = 256 << 20

Scope = dict[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    """Route by path; lifespan is acknowledged so hypercorn logs no error about it."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    parts = path.strip("/").split("/")
    if path == "/get":
        await _json(send, 200, _describe(scope))
    elif path == "/headers":
        await _json(send, 200, {"headers": _describe(scope)["headers"]})
    elif len(parts) == 2 and parts[0] == "bytes" and parts[1].isdigit():
        await _bytes(send, min(int(parts[1]), MAX_BYTES))
    elif len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
        await _plain(send, int(parts[1]), b"")
    elif path == "/echo":
        await _echo(scope, receive, send)
    else:
        await _plain(send, 404, b"not found\n")


def _describe(scope: Scope) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").title()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode("latin-1"),
        "headers": headers,
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
    }


async def _json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body, sort_keys=True).encode()
    await _plain(send, status, data, b"application/json")


async def _plain(send: Any, status: int, body: bytes, ctype: bytes = b"text/plain") -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _bytes(send: Any, size: int) -> None:
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(size).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        more = sent + n < size
        await send(
            {"type": "http.response.body", "body": pattern_bytes(n, sent), "more_body": more}
        )
        sent += n
    if size == 0:
        await send({"type": "http.response.body", "body": b""})


async def _echo(scope: Scope, receive: Any, send: Any) -> None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client went away
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    ctype = dict(scope["headers"]).get(b"content-type", b"application/octet-stream")
    headers = [
        (b"content-type", ctype),
        (b"content-length", str(len(body)).encode()),
        (b"x-received-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": bytes(body)})
