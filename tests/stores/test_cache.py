"""The HTTP cache of data tasks (RFC 9111, hishel's core) and the four requestCachePolicy values."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from urlsession_module import ErrorCode
from urlsession_module._stores import CACHE_NAME, STORES_DIR
from urlsession_module.testing import LocalServer, content_bytes

from ._util import get, seen, tag

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def cache_url(server: LocalServer, query: str) -> tuple[str, str]:
    """A /cache URL of this test's own, and the marker that finds its requests."""
    marker = tag()
    return server.url(f"/cache?m={marker}&{query}"), marker


def fetch(session: Any, rec: Any, url: str, **args: Any) -> tuple[int, str]:
    event = get(session, rec, url, **args)
    assert event.success, (event.errorCode, event.message)
    return event.statusCode, event.responseText


def test_fresh_response_is_served_from_the_cache(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Within max-age the second request never reaches the server, and reads the same body."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600")
    first = fetch(session, rec, url)
    assert fetch(session, rec, url) == first
    assert first[0] == 200
    assert len(seen(server, marker)) == 1


def test_expires_gives_freshness_too(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """An Expires in the future makes the response fresh; one in the past does not."""
    session = make_session()
    rec = recorder(session)
    fresh, fresh_marker = cache_url(server, "expires=600")
    stale, stale_marker = cache_url(server, "expires=-600")
    for url in (fresh, fresh, stale, stale):
        fetch(session, rec, url)
    assert len(seen(server, fresh_marker)) == 1
    assert len(seen(server, stale_marker)) == 2


def test_revalidation_with_etag_reports_the_cached_body_as_200(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A stale entry is revalidated with If-None-Match; the 304 gives the cached body, status 200."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "etag=v1&no_cache=1")
    first = fetch(session, rec, url)
    second = fetch(session, rec, url)
    assert second == first  # the server's 304 had no body: this one is the stored one
    asked = seen(server, marker)
    assert len(asked) == 2
    assert "if-none-match" not in asked[0].headers
    assert asked[1].headers["if-none-match"] == '"v1"'


def test_revalidation_with_last_modified(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Without an ETag, Last-Modified is the validator (If-Modified-Since)."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "last_modified=1&max_age=0")
    first = fetch(session, rec, url)
    assert fetch(session, rec, url) == first
    second = seen(server, marker)[1]
    assert second.headers["if-modified-since"] == "Wed, 21 Oct 2015 07:28:00 GMT"


def test_no_store_is_never_cached(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Cache-Control: no-store: every request goes to the server, whatever max-age says."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600&no_store=1&etag=x")
    first, second = fetch(session, rec, url), fetch(session, rec, url)
    assert first != second
    assert len(seen(server, marker)) == 2
    assert all("if-none-match" not in r.headers for r in seen(server, marker))


def test_vary_keeps_one_entry_per_variant(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A response that varies on a header is reused only for a request with the same value."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600&vary=X-Lang")
    en = fetch(session, rec, url, requestHeaders={"X-Lang": "en"})
    fr = fetch(session, rec, url, requestHeaders={"X-Lang": "fr"})
    assert en[1].endswith("X-Lang=en") and fr[1].endswith("X-Lang=fr")
    assert fetch(session, rec, url, requestHeaders={"X-Lang": "en"}) == en
    assert len(seen(server, marker)) == 2


@pytest.mark.parametrize("framing", ["gzip=1", "chunked=1", "gzip=1&chunked=1", "nolength=1"])
def test_bodies_are_stored_as_sent_and_decoded_on_a_hit(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, framing: str
) -> None:
    """Encoded, chunked or close-delimited bodies are stored whole and read back the same."""
    session = make_session()
    rec = recorder(session)
    marker = tag()
    url = server.url(f"/bytes/5000?{framing}&m={marker}")  # Last-Modified: heuristically fresh
    first = fetch(session, rec, url)
    assert fetch(session, rec, url) == first
    assert first[1] == content_bytes(5000).decode("utf-8", errors="replace")
    assert len(seen(server, marker)) == 1


def test_unsafe_method_goes_through_and_invalidates(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A POST is never answered by the cache, and a successful one drops the URL's entry."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600")
    first = fetch(session, rec, url)
    fetch(session, rec, url, method="POST", data="x")
    assert fetch(session, rec, url) != first
    assert [r.method for r in seen(server, marker)] == ["GET", "POST", "GET"]


def test_download_and_own_conditions_bypass_the_cache(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Downloads are not cached; a request with its own If-None-Match sees the server's 304."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600&etag=v1")
    fetch(session, rec, url)
    status, _ = fetch(session, rec, url, requestHeaders={"If-None-Match": '"v1"'})
    assert status == 304
    for _ in range(2):
        assert rec.completed(session.downloadTask(url=url), 30).statusCode == 200
    assert len(seen(server, marker)) == 4


def test_policy_reload_ignoring_local_cache_data(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """reloadIgnoringLocalCacheData loads even when fresh, and stores what it got."""
    url, marker = cache_url(server, "max_age=600")
    default = make_session()
    rec = recorder(default)
    old = fetch(default, rec, url)
    reload = make_session(requestCachePolicy="reloadIgnoringLocalCacheData")
    new = fetch(reload, recorder(reload), url)
    assert new != old
    assert fetch(default, rec, url) == new  # the reload's response replaced the entry
    assert len(seen(server, marker)) == 2


def test_policy_return_cache_data_else_load(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """returnCacheDataElseLoad serves a stale entry without asking; loads what it does not have."""
    url, marker = cache_url(server, "max_age=0&etag=v1")
    session = make_session(requestCachePolicy="returnCacheDataElseLoad")
    rec = recorder(session)
    first = fetch(session, rec, url)  # nothing stored yet: loaded
    assert fetch(session, rec, url) == first
    assert len(seen(server, marker)) == 1


def test_policy_return_cache_data_dont_load(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """returnCacheDataDontLoad serves a stale entry, and fails with -1008 when there is none."""
    url, marker = cache_url(server, "max_age=0")
    default = make_session()
    first = fetch(default, recorder(default), url)
    session = make_session(requestCachePolicy="returnCacheDataDontLoad")
    rec = recorder(session)
    assert fetch(session, rec, url) == first
    missing, missing_marker = cache_url(server, "max_age=600")
    failed = get(session, rec, missing)
    assert not failed.success
    assert failed.errorCode == ErrorCode.RESOURCE_UNAVAILABLE == -1008
    assert len(seen(server, marker)) == 1
    assert seen(server, missing_marker) == []


def test_policy_use_protocol_refetches_a_stale_entry_without_validator(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """useProtocolCachePolicy (the default): a stale entry with no validator is loaded again."""
    session = make_session(requestCachePolicy="useProtocolCachePolicy")
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=0")
    assert fetch(session, rec, url) != fetch(session, rec, url)
    assert len(seen(server, marker)) == 2


def test_ephemeral_cache_is_private_and_in_memory(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """An ephemeral session caches in memory: another session does not see it, no file is made."""
    url, marker = cache_url(server, "max_age=600")
    one, two = make_session(type="ephemeral"), make_session(type="ephemeral")
    rec_one = recorder(one)
    first = fetch(one, rec_one, url)
    assert fetch(one, rec_one, url) == first
    assert fetch(two, recorder(two), url) != first
    assert len(seen(server, marker)) == 2
    assert not (state_home / STORES_DIR).exists()


def test_cache_persists_across_processes(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    other_process: Callable[..., list[dict[str, Any]]],
) -> None:
    """What a default session of another process stored is served here without the network."""
    url, marker = cache_url(server, "max_age=600")
    (stored,) = other_process(url)
    session = make_session()
    assert fetch(session, recorder(session), url) == (200, stored["text"])
    assert len(seen(server, marker)) == 1


def test_reset_empties_the_cache(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """After reset() no entry is left, in the database file either."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600")
    first = fetch(session, rec, url)
    done = threading.Event()
    session.reset(lambda result: done.set())
    assert done.wait(10)
    db = sqlite3.connect(state_home / STORES_DIR / CACHE_NAME)
    try:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone() == (0,)
    finally:
        db.close()
    assert fetch(session, rec, url) != first
    assert len(seen(server, marker)) == 2


# -- the memory tier: repeated hits without SQLite -------------------------------------------------


def _sqlite_reads(mocker: Any) -> Any:
    import hishel

    return mocker.spy(hishel.SqliteStorage, "get_entries")


def test_a_repeated_hit_reads_no_sqlite(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """The first hit reads the entry from SQLite and keeps it; later hits come from memory."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600")
    first = fetch(session, rec, url)  # a miss: stored
    assert fetch(session, rec, url) == first  # a hit, from SQLite
    reads = _sqlite_reads(mocker)
    for _ in range(3):
        assert fetch(session, rec, url) == first
    assert reads.call_count == 0
    assert len(seen(server, marker)) == 1


def test_the_memory_tier_lets_go_of_what_changes(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """An entry held in memory is dropped with the one in SQLite: a POST invalidates both."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600")
    first = fetch(session, rec, url)
    assert fetch(session, rec, url) == first
    assert fetch(session, rec, url) == first  # from memory now
    fetch(session, rec, url, method="POST", data="x")
    assert fetch(session, rec, url) != first
    assert [r.method for r in seen(server, marker)] == ["GET", "POST", "GET"]


def test_revalidated_entries_are_not_served_stale_from_memory(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """no-cache: every use revalidates, whether the entry was read from SQLite or memory."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "etag=v1&no_cache=1")
    first = fetch(session, rec, url)
    for _ in range(3):
        assert fetch(session, rec, url) == first
    asked = seen(server, marker)
    assert len(asked) == 4
    assert [r.headers.get("if-none-match") for r in asked] == [None, '"v1"', '"v1"', '"v1"']


def test_flush_empties_the_memory_tier(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """flush() clears transient caches (SPEC): the next hit reads SQLite again, and is right."""
    session = make_session()
    rec = recorder(session)
    url, marker = cache_url(server, "max_age=600")
    first = fetch(session, rec, url)
    fetch(session, rec, url)
    done = threading.Event()
    session.flush(lambda result: done.set())
    assert done.wait(10)
    reads = _sqlite_reads(mocker)
    assert fetch(session, rec, url) == first
    assert reads.call_count == 1
    assert len(seen(server, marker)) == 1


def test_memory_tier_is_bounded_and_ignores_reads_a_write_overlapped() -> None:
    """Least recently used keys go first past the capacity; a read that a forget() overlapped
    (it may hold what was just replaced) is not kept."""
    import uuid

    import hishel

    from urlsession_module._stores import _MemoryTier

    def entry() -> hishel.Entry:
        return hishel.Entry(uuid.uuid4(), hishel.Request("GET", "http://x/"), hishel.Response(200))

    tier = _MemoryTier(capacity=3 * (1024 + 100))
    for key in ("a", "b", "c"):
        tier.put(key, [(entry(), bytes(100))], tier.version)
    assert tier.get("a") is not None  # a is now the most recently used
    tier.put("d", [(entry(), bytes(100))], tier.version)
    assert tier.get("b") is None and tier.get("a") is not None and tier.get("d") is not None
    got = tier.get("a")
    assert got is not None and b"".join(got[0].response.stream) == bytes(100)  # type: ignore[arg-type]
    before = tier.version
    tier.forget("c")
    tier.put("e", [(entry(), b"")], before)
    assert tier.get("e") is None


def test_the_same_representation_sent_again_refreshes_instead_of_storing() -> None:
    """A 200 with the stored entry's strong ETag (and length and coding) carries the same bytes:
    the entry takes its headers, nothing is written twice. Another ETag, or a weak one, is a
    new representation and is stored."""
    from urlsession_module._stores import HTTPCache

    cache = HTTPCache(None, 10 * 1024 * 1024)
    url = "http://127.0.0.1:1/r"

    def answer(etag: str, body: bytes, policy: str, seq: int) -> bool:
        """Send a response through a lookup; True when it was stored as a new entry."""
        lookup = cache.lookup("GET", url, [], policy)
        headers = [
            ("ETag", etag),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "max-age=600"),
            ("X-Seq", str(seq)),
        ]
        outcome = lookup.response(200, headers, lambda: iter((body,)))
        if outcome.chunks is None:
            return False
        assert b"".join(outcome.chunks) == body
        return True

    def served() -> tuple[bytes, str | None]:
        hit = cache.lookup("GET", url, [], "useProtocolCachePolicy").hit
        assert hit is not None
        return b"".join(hit.chunks), dict(hit.headers).get("x-seq")

    try:
        assert answer('"a"', b"one", "reloadIgnoringLocalCacheData", 1)
        assert served() == (b"one", "1")
        assert not answer('"a"', b"one", "reloadIgnoringLocalCacheData", 2)
        assert served() == (b"one", "2")  # new headers, the stored body
        assert answer('"b"', b"two", "reloadIgnoringLocalCacheData", 3)
        assert served() == (b"two", "3")
        assert answer('W/"w"', b"333", "reloadIgnoringLocalCacheData", 4)
        assert answer('W/"w"', b"444", "reloadIgnoringLocalCacheData", 5)
        assert served() == (b"444", "5")
        assert len(cache.storage.get_entries(url)) == 1
    finally:
        cache.close()


def test_responses_alike_share_one_storage_decision_and_change_nothing_twice() -> None:
    """A burst of plain misses whose responses are alike (same head, same Date) asks hishel's
    storage rules once and leaves the memory tier's entry as it was; a response without Date
    is dated when it comes (never shared), and a different head is decided afresh."""
    from urlsession_module._stores import HTTPCache

    cache = HTTPCache(None, 10 * 1024 * 1024)
    url = "http://127.0.0.1:1/alike"
    policy = "reloadIgnoringLocalCacheData"

    def answer(headers: list[tuple[str, str]]) -> bool:
        outcome = cache.lookup("GET", url, [], policy).response(
            200, headers, lambda: iter((b"one",))
        )
        if outcome.chunks is None:
            return False
        assert b"".join(outcome.chunks) == b"one"
        return True

    def served() -> list[tuple[str, str]]:
        hit = cache.lookup("GET", url, [], "useProtocolCachePolicy").hit
        assert hit is not None and b"".join(hit.chunks) == b"one"
        return hit.headers

    now = time.time()
    first_date, second_date = formatdate(now - 2, usegmt=True), formatdate(now - 1, usegmt=True)
    head = [
        ("ETag", '"a"'),
        ("Content-Length", "3"),
        ("Cache-Control", "max-age=600"),
        ("Date", first_date),
    ]
    try:
        assert answer(list(head))
        assert len(cache._decisions) == 1
        first = served()
        version = cache._memory.version
        for _ in range(3):
            assert not answer(list(head))  # the same bytes: refreshed with the same headers
        assert len(cache._decisions) == 1 and cache._memory.version == version
        assert served() == first
        later = [*head[:3], ("Date", second_date)]
        assert not answer(later)
        assert len(cache._decisions) == 2 and cache._memory.version > version
        assert ("date", second_date) in served()
        assert not answer(head[:3])  # no Date: dated as it comes, decided every time
        assert len(cache._decisions) == 2
        assert dict(served())["date"] != second_date
        assert answer([("ETag", '"b"'), *head[1:]])  # another representation: stored
        assert len(cache.storage.get_entries(url)) == 1
    finally:
        cache.close()
