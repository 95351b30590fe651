"""A request and its response head as plain data: what a task asks for and what it got.

Both cross the process boundary to the background transfer process, so they are frozen attrs
values with no behaviour beyond reading them. The task machine (``_state``) keeps them; the
transport builds and reads them.
"""

from __future__ import annotations

import attrs

__all__ = ["Headers", "Request", "ResponseInfo", "resume_validator"]

Headers = tuple[tuple[str, str], ...]


class _Headed:
    """Case-insensitive header lookup for the two messages that carry headers."""

    __slots__ = ()
    headers: Headers

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        low = name.lower()
        for key, value in self.headers:
            if key.lower() == low:
                return value
        return None


@attrs.frozen
class Request(_Headed):
    """A request as plain data (it crosses the process boundary to the transfer process).

    The body is either ``body`` (bytes) or ``body_path`` (a file streamed from disk).
    """

    method: str
    url: str
    headers: Headers = ()
    body: bytes | None = attrs.field(
        default=None, repr=lambda b: f"<{len(b)} bytes>" if b else "None"
    )
    body_path: str | None = None
    body_length: int = 0
    # The task's credential (its ``credential``, or the user info the caller wrote in the URL),
    # kept beside the request and never in its URL: no repr, event or log line shows it.
    credential: tuple[str, str] | None = attrs.field(default=None, repr=False)

    @property
    def has_body(self) -> bool:
        return self.body is not None or self.body_path is not None


@attrs.frozen
class ResponseInfo(_Headed):
    """What URLResponse tells: the final URL, status and headers, and what protocol carried it
    (``networkProtocolName``, Apple's URLSessionTaskTransactionMetrics names: 'http/1.1', 'h2',
    'h3')."""

    url: str
    statusCode: int
    headers: Headers = ()
    networkProtocolName: str = "http/1.1"

    @property
    def resume_validator(self) -> str | None:
        """What If-Range can check: a strong ETag, else Last-Modified; None means never resume."""
        return resume_validator(self.header("etag"), self.header("last-modified"))

    @property
    def allHeaderFields(self) -> dict[str, str]:
        return dict(self.headers)


def resume_validator(etag: str | None, last_modified: str | None) -> str | None:
    """A weak ETag cannot guard a Range request (RFC 9110 13.1.5): fall back to the date."""
    if etag and not etag.startswith("W/"):
        return etag
    return last_modified
