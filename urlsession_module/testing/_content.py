"""Deterministic content served by the local test server.

The byte at absolute position ``i`` depends on ``i`` only, so a client that
resumes, splits or re-assembles a download can be checked against
:func:`content_bytes` / :func:`content_sha256` without keeping a copy of the
original. The pattern is pseudo-random (sha256 in counter mode), so a splice at
the wrong offset or a duplicated chunk changes the digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache

__all__ = ["PATTERN_SIZE", "content_bytes", "content_sha256", "iter_content", "iter_views"]

#: Length of the repeated pattern block (1 MiB); also the largest zero-copy slice.
PATTERN_SIZE = 1 << 20

_SEED = b"urlsession_module.testing content v1\x00"


def _build_pattern() -> bytes:
    """Build the 1 MiB pattern once; sha256 counter mode keeps it seed-stable everywhere."""
    digest_size = hashlib.sha256().digest_size
    return b"".join(
        hashlib.sha256(_SEED + i.to_bytes(8, "big")).digest()
        for i in range(PATTERN_SIZE // digest_size)
    )


_PATTERN = _build_pattern()
# Two copies back to back: any slice of <= PATTERN_SIZE bytes that starts inside the
# first copy is contiguous, so serving never has to copy or join at a block boundary.
_DOUBLED = memoryview(_PATTERN + _PATTERN)


def _check(n: int, offset: int) -> None:
    """Reject negative sizes early: they would silently yield nothing."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")


def iter_views(n: int, offset: int = 0, chunk: int = PATTERN_SIZE) -> Iterator[memoryview]:
    """Yield zero-copy read-only slices of content ``[offset, offset + n)``.

    ``chunk`` is clamped to ``[1, PATTERN_SIZE]``; this is what the server writes
    to sockets, so no per-request buffers are allocated.
    """
    _check(n, offset)
    chunk = max(1, min(chunk, PATTERN_SIZE))
    pos = offset
    end = offset + n
    while pos < end:
        size = min(chunk, end - pos)
        start = pos % PATTERN_SIZE
        yield _DOUBLED[start : start + size]
        pos += size


def content_bytes(n: int, offset: int = 0) -> bytes:
    """Return content bytes ``[offset, offset + n)`` (what ``/bytes/<total>`` serves there)."""
    return b"".join(iter_views(n, offset))


def iter_content(n: int, offset: int = 0, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """Yield content ``[offset, offset + n)`` as ``bytes`` pieces of at most ``chunk`` bytes."""
    _check(n, offset)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if chunk <= PATTERN_SIZE:
        for view in iter_views(n, offset, chunk):
            yield bytes(view)
        return
    pos = offset
    end = offset + n
    while pos < end:
        size = min(chunk, end - pos)
        yield content_bytes(size, pos)
        pos += size


@lru_cache(maxsize=256)
def content_sha256(n: int) -> str:
    """Hex sha256 of ``content_bytes(n)``, streamed so 1 GiB needs no 1 GiB buffer; cached."""
    _check(n, 0)
    h = hashlib.sha256()
    for view in iter_views(n):
        h.update(view)
    return h.hexdigest()
