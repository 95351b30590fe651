"""The local test server's validators and ranges, checked without a socket."""

from __future__ import annotations

import pytest

from urlsession_module.testing import _conditional as cond
from urlsession_module.testing._content import content_bytes


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=10-19", (10, 20)),
        ("bytes=10-", (10, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=-1000", (0, 100)),
        ("bytes=5-1000", (5, 100)),
        (" BYTES = 1-1 ", (1, 2)),
        ("items=1-2", None),
        ("bytes=1-2,4-5", None),
        ("bytes=5", None),
        ("bytes=x-2", None),
        ("bytes=5-4", None),
        ("bytes=--1", None),
    ],
)
def test_parse_range(header: str, expected: tuple[int, int] | None) -> None:
    """One bytes= range becomes (start, end_exclusive); what RFC 9110 lets us ignore is None."""
    assert cond.parse_range(header, 100) == expected


@pytest.mark.parametrize(
    ("header", "total"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=-5", 0)]
)
def test_parse_range_unsatisfiable(header: str, total: int) -> None:
    """A valid range that selects nothing is unsatisfiable (the route answers 416)."""
    with pytest.raises(cond.UnsatisfiableRangeError):
        cond.parse_range(header, total)


def test_etag_matches_weakly_and_with_star() -> None:
    """If-None-Match: '*' or any listed tag, W/ ignored on both sides."""
    assert cond.etag_matches("*", '"a"')
    assert cond.etag_matches('"x", W/"a"', '"a"')
    assert cond.etag_matches('"a"', 'W/"a"')
    assert not cond.etag_matches('"b"', '"a"')


def test_same_date() -> None:
    """HTTP dates compare as instants; an unparsable date never matches."""
    assert cond.same_date(cond.LAST_MODIFIED, cond.LAST_MODIFIED_DT)
    assert not cond.same_date("Thu, 22 Oct 2015 07:28:00 GMT", cond.LAST_MODIFIED_DT)
    assert not cond.same_date("yesterday", cond.LAST_MODIFIED_DT)


def test_compressed_and_iter_source() -> None:
    """Compressed copies decompress to the content; iter_source slices either source."""
    import gzip
    import zlib

    assert gzip.decompress(cond.compressed(5000, "gzip")) == content_bytes(5000)
    assert zlib.decompress(cond.compressed(5000, "deflate")) == content_bytes(5000)
    assert b"".join(cond.iter_source(None, 10, 5000, 777)) == content_bytes(4990, 10)
    data = b"0123456789"
    assert [bytes(v) for v in cond.iter_source(data, 2, 9, 3)] == [b"234", b"567", b"8"]
