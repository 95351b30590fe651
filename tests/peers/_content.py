"""The deterministic bytes every peer serves, so a test can check a download without a second copy.

A repeated 1 MiB pattern that looks random enough that no layer compresses or dedupes it, made
once per process: nginx's static files are written with it, and the hypercorn peer's ``/bytes/N``
streams it, so ``pattern_bytes(n)`` is what either sends for ``n`` bytes.
"""

from __future__ import annotations

import functools

__all__ = ["BLOCK", "pattern", "pattern_bytes"]

BLOCK = 1 << 20


@functools.cache
def pattern() -> bytes:
    """One 1 MiB block of the pattern (computed once: it takes ~0.1 s in pure Python)."""
    return bytes((i * 2654435761 >> 13) & 0xFF for i in range(BLOCK))


def pattern_bytes(size: int, offset: int = 0) -> bytes:
    """The pattern's bytes at ``[offset, offset + size)``."""
    block = pattern()
    out = bytearray()
    while len(out) < size:
        start = (offset + len(out)) % BLOCK
        out += block[start : start + size - len(out)]
    return bytes(out)
