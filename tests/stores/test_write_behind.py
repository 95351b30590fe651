"""The cache's header refreshes are written behind the task (``_stores._cache._WriteBehind``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hishel
import pytest

from urlsession_module._stores._cache import HTTPCache

KEY = "http://127.0.0.1/a"


def _headers(etag: str) -> hishel.Headers:
    return hishel.Headers({"etag": [etag], "content-length": ["3"]})


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[tuple[HTTPCache, Any]]:
    c = HTTPCache(tmp_path / "cache.sqlite3", 10 << 20)
    request = hishel.Request("GET", KEY, hishel.Headers({}))
    response = hishel.Response(200, _headers('"1"'), stream=iter([b"abc"]))
    entry = c.storage.create_entry(request, response, KEY)
    assert list(entry.response.stream or ()) == [b"abc"]  # saved as it is read
    yield c, entry.id
    c.close()


def _sqlite_etag(c: HTTPCache) -> str | None:
    [entry] = c.storage.get_entries(KEY)
    return entry.response.headers.get("etag")


def test_a_refresh_is_seen_at_once_and_written_by_flush(cache: tuple[HTTPCache, Any]) -> None:
    """The refresh is read back at once (memory tier, or SQLite's row with the pending headers
    laid over it) though SQLite still has the old row; flush_writes writes it."""
    c, entry_id = cache
    c._behind.LINGER = 30.0  # the thread would not write before flush
    c.refresh(KEY, entry_id, _headers('"2"'))
    assert _sqlite_etag(c) == '"1"'
    c.changing(KEY)  # the memory tier forgets: the next read goes to SQLite
    [entry] = c.entries(KEY)
    assert entry.response.headers.get("etag") == '"2"'
    c.flush_writes()
    assert _sqlite_etag(c) == '"2"'
    assert c._behind._thread is None  # flush lets the thread go


def test_refreshes_of_one_entry_are_coalesced(
    cache: tuple[HTTPCache, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 refreshes of one entry while the writer waits: one SQLite write, the last headers."""
    c, entry_id = cache
    c._behind.LINGER = 30.0
    writes: list[str | None] = []
    real = c.storage.update_headers

    def counted(eid: Any, headers: hishel.Headers) -> Any:
        writes.append(headers.get("etag"))
        return real(eid, headers)

    monkeypatch.setattr(c.storage, "update_headers", counted)
    for i in range(200):
        c.refresh(KEY, entry_id, _headers(f'"{i}"'))
    c.flush_writes()
    assert writes == ['"199"']
    assert _sqlite_etag(c) == '"199"'


def test_the_writer_thread_writes_by_itself_and_leaves(cache: tuple[HTTPCache, Any]) -> None:
    """Without a flush the cache's own thread writes within its interval, then leaves."""
    c, entry_id = cache
    c._behind.LINGER = 0.05
    c.refresh(KEY, entry_id, _headers('"3"'))
    thread = c._behind._thread
    assert thread is not None and thread.name == "urlsession-cache"
    thread.join(5.0)
    assert not thread.is_alive()
    assert _sqlite_etag(c) == '"3"'


def test_close_writes_what_waits(tmp_path: Path) -> None:
    """Closing the cache (the last session's end) writes pending refreshes first."""
    c = HTTPCache(tmp_path / "c.sqlite3", 10 << 20)
    request = hishel.Request("GET", KEY, hishel.Headers({}))
    entry = c.storage.create_entry(
        request, hishel.Response(200, _headers('"1"'), stream=iter([b"abc"])), KEY
    )
    list(entry.response.stream or ())
    c._behind.LINGER = 30.0
    c.refresh(KEY, entry.id, _headers('"4"'))
    c.close()
    again = HTTPCache(tmp_path / "c.sqlite3", 10 << 20)
    try:
        assert _sqlite_etag(again) == '"4"'
    finally:
        again.close()
    assert not [t for t in threading.enumerate() if t.name == "urlsession-cache"]
