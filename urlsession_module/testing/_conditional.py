"""HTTP validators, ranges and encodings for LocalServer's content routes.

Pure functions over header values (no sockets): ``Last-Modified`` and ETag matching, the
single ``bytes=`` Range the server honours, and the compressed copies of the deterministic
content that ``/bytes?gzip=1`` and ``?deflate=1`` replay.
"""

from __future__ import annotations

import email.utils
import zlib
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache

from ._content import iter_views

__all__ = [
    "LAST_MODIFIED",
    "LAST_MODIFIED_DT",
    "UnsatisfiableRangeError",
    "compressed",
    "etag_matches",
    "iter_source",
    "parse_range",
    "same_date",
]

#: Fixed ``Last-Modified`` of ``/bytes``: the content never changes (use ``?etag=`` to fake it).
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_DT = email.utils.parsedate_to_datetime(LAST_MODIFIED)


class UnsatisfiableRangeError(Exception):
    """The Range header cannot be satisfied: answered with 416."""


@lru_cache(maxsize=8)
def compressed(n: int, kind: str) -> bytes:
    """Compress content once per (size, kind): gzip/deflate responses are replayed often."""
    wbits = 31 if kind == "gzip" else 15  # 16+15: gzip container, 15: zlib-wrapped deflate
    comp = zlib.compressobj(6, zlib.DEFLATED, wbits)
    parts = [comp.compress(view) for view in iter_views(n)]
    parts.append(comp.flush())
    return b"".join(parts)


def iter_source(data: bytes | None, start: int, end: int, chunk: int) -> Iterator[memoryview]:
    """Zero-copy slices of either the deterministic content (``data is None``) or ``data``."""
    if data is None:
        yield from iter_views(end - start, start, chunk)
        return
    view = memoryview(data)
    for pos in range(start, end, chunk):
        yield view[pos : min(pos + chunk, end)]


def parse_range(header: str, total: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range into ``(start, end_exclusive)``.

    Returns None when the header should be ignored (syntax error, multiple ranges,
    other unit), as RFC 9110 allows; raises UnsatisfiableRangeError for a valid but
    unsatisfiable range.
    """
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    try:
        if not first:
            suffix = int(last)
            if suffix < 0:
                return None
            if suffix == 0 or total == 0:
                raise UnsatisfiableRangeError
            return max(0, total - suffix), total
        start = int(first)
        last_pos = int(last) if last else None
    except ValueError:
        return None
    if start < 0 or (last_pos is not None and last_pos < start):
        return None
    if start >= total:
        raise UnsatisfiableRangeError
    return start, total if last_pos is None else min(last_pos + 1, total)


def same_date(value: str, reference: datetime) -> bool:
    """Compare an HTTP date with the reference; unparsable dates never match."""
    try:
        return email.utils.parsedate_to_datetime(value) == reference
    except (TypeError, ValueError, IndexError):
        return False


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match semantics: ``*`` or any listed tag, weak comparison."""
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))
