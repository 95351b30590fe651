"""A response the HTTP cache serves, or stores while it is read, in urllib3's clothes."""

from __future__ import annotations

import http.client
from typing import cast

import urllib3
from urllib3.connection import HTTPConnection

from .._stores import Stored
from ._bodies import ChunkReader
from ._wire import Waiter


class CachedResponse(urllib3.HTTPResponse):
    """A response the cache serves (``upstream`` None) or one it stores while it is read.

    Stored bodies keep their Content-Encoding, so this decodes them as a response from the
    wire would be. With an ``upstream``, its connection is the one a cancel shuts and the one
    that goes back to the pool.
    """

    def __init__(
        self, stored: Stored, method: str, upstream: urllib3.BaseHTTPResponse | None = None
    ) -> None:
        headers = [(k, v) for k, v in stored.headers if k.lower() != "transfer-encoding"]
        length = urllib3.HTTPHeaderDict(headers).get("Content-Length", "")
        expected = 0 if method == "HEAD" else int(length) if length.isdigit() else None
        self._reader = ChunkReader(stored.chunks, expected)
        super().__init__(
            body=self._reader,
            headers=urllib3.HTTPHeaderDict(headers),
            status=stored.status,
            reason=http.client.responses.get(stored.status),
            preload_content=False,
            decode_content=True,
            request_method=method,
        )
        self._upstream = upstream

    @property
    def connection(self) -> HTTPConnection | None:
        upstream = self._upstream
        return None if upstream is None else getattr(upstream, "connection", None)

    def body_waiter(self) -> Waiter | None:
        """The upstream's (see ``CurlResponse.body_waiter``): a stored body never waits."""
        upstream = self._upstream
        wait = getattr(upstream, "body_waiter", None)
        return None if wait is None else cast("Waiter | None", wait())

    def release_conn(self) -> None:
        self._reader.finish()
        if self._upstream is not None:
            self._upstream.release_conn()

    def drain_conn(self) -> None:
        super().drain_conn()
        if self._upstream is not None:
            self._upstream.drain_conn()

    def close(self) -> None:
        super().close()
        if self._upstream is not None:
            self._upstream.close()
