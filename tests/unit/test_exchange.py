"""``Exchange``: one task's way through the stores, driven with no socket (the transport's part).

What each hop adds to its request (cookies, an Authorization for a 401), what each response
teaches the stores (cookies by the accept policy, a credential that was not refused), and what
the cache is asked.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from urlsession_module._config_values import make_values
from urlsession_module._state import Request
from urlsession_module._stores import (
    CacheLookup,
    CookieStore,
    CredentialStore,
    Exchange,
    HTTPCache,
    Stores,
    memory_stores,
)
from urlsession_module._stores._shared import _SharedFile

A = "http://a.example:8001"
B = "http://b.example:8002"
CHALLENGE = ['Basic realm="r"']


@pytest.fixture
def stores() -> Iterator[Stores]:
    """An ephemeral session's stores: in memory, nothing on disk."""
    made = memory_stores()
    yield made
    made.release()


def exchange(stores: Stores, url: str = f"{A}/start", **config: Any) -> Exchange:
    return stores.exchange(url, make_values(config))


def get(url: str, *headers: tuple[str, str]) -> Request:
    return Request("GET", url, tuple(headers))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- cookies ---------------------------------------------------------------------------------


def test_a_cookie_set_by_a_response_goes_with_the_next_request(stores: Stores) -> None:
    """Set-Cookie on one hop is sent as Cookie on the next request to that host."""
    ex = exchange(stores)
    assert ex.request_headers(get(f"{A}/x")) == []
    ex.response_received(f"{A}/start", [("Set-Cookie", "sid=1; Path=/")])
    assert ex.request_headers(get(f"{A}/x")) == [("Cookie", "sid=1")]


def test_the_requests_own_cookies_come_first_and_win(stores: Stores) -> None:
    """The request's own Cookie header is kept first; the jar adds only other names."""
    ex = exchange(stores)
    ex.response_received(A, [("Set-Cookie", "sid=jar; Path=/"), ("Set-Cookie", "lang=en; Path=/")])
    merged = ex.request_headers(get(f"{A}/x", ("Cookie", "sid=own")))
    assert merged == [("Cookie", "sid=own; lang=en")]
    assert ex.request_headers(get(f"{A}/x", ("Cookie", "sid=own; lang=fr"))) == []


def test_should_set_cookies_false_neither_stores_nor_sends(stores: Stores) -> None:
    """httpShouldSetCookies=False: responses teach the jar nothing and requests get nothing."""
    exchange(stores, httpShouldSetCookies=False).response_received(A, [("Set-Cookie", "a=1")])
    assert exchange(stores).request_headers(get(f"{A}/x")) == []
    exchange(stores).response_received(A, [("Set-Cookie", "b=2; Path=/")])
    assert exchange(stores, httpShouldSetCookies=False).request_headers(get(f"{A}/x")) == []


@pytest.mark.parametrize(
    ("policy", "host", "stored"),
    [
        ("never", "a.example", False),
        ("always", "b.example", True),
        ("onlyFromMainDocumentDomain", "b.example", False),
        ("onlyFromMainDocumentDomain", "sub.a.example", True),
        ("onlyFromMainDocumentDomain", "a.example", True),
    ],
)
def test_the_accept_policy_decides_what_is_stored(
    stores: Stores, policy: str, host: str, stored: bool
) -> None:
    """never / always / onlyFromMainDocumentDomain (the main document's domain, or one holding
    the other) against a task whose first request went to a.example."""
    ex = exchange(stores, httpCookieAcceptPolicy=policy)
    ex.response_received(f"http://{host}/p", [("Set-Cookie", "k=v; Path=/")])
    sent = exchange(stores).request_headers(get(f"http://{host}/p"))
    assert sent == ([("Cookie", "k=v")] if stored else [])


def test_ip_hosts_are_never_one_domain_of_another(stores: Stores) -> None:
    """127.0.0.1 does not 'hold' 0.0.1 or any other host: only the same IP is the main domain."""
    ex = exchange(stores, url="http://127.0.0.1:8001/start")
    ex.response_received("http://0.1:8001/p", [("Set-Cookie", "k=v; Path=/")])
    ex.response_received("http://127.0.0.1:8002/p", [("Set-Cookie", "mine=1; Path=/")])
    assert exchange(stores).request_headers(get("http://127.0.0.1:8002/p")) == [
        ("Cookie", "mine=1")
    ]


# -- credentials -----------------------------------------------------------------------------


def test_user_info_of_the_first_request_answers_its_origin_only(stores: Stores) -> None:
    """The task URL's user info answers a Basic challenge from its origin, not from another."""
    ex = exchange(stores, url="http://u:p@a.example:8001/start")
    assert ex.authorization(get(f"{A}/start"), CHALLENGE) == basic("u", "p")
    assert ex.authorization(get(f"{B}/next"), CHALLENGE) is None


def test_the_configuration_credential_answers_the_first_origin_only(stores: Stores) -> None:
    """``credential`` of the configuration: the same rule as the URL's user info."""
    ex = exchange(stores, credential={"user": "cu", "password": "cp"})
    assert ex.authorization(get(f"{A}/x"), CHALLENGE) == basic("cu", "cp")
    assert ex.authorization(get(f"{B}/x"), CHALLENGE) is None


def test_a_credential_not_refused_is_stored_for_its_space(stores: Stores) -> None:
    """authenticated(200) keeps it for (scheme, host, port, realm); a later task to that origin
    gets it from the store alone; authenticated(401) keeps nothing."""
    first = exchange(stores, url="http://u:p@a.example:8001/start")
    first.authorization(get(f"{A}/start"), CHALLENGE)
    first.authenticated(401)
    assert exchange(stores).authorization(get(f"{A}/x"), CHALLENGE) is None
    first.authorization(get(f"{A}/start"), CHALLENGE)
    first.authenticated(200)
    assert stores.credentials.get(("http", "a.example", 8001, "r")) == ("u", "p")
    later = exchange(stores, url=f"{B}/start")  # another first origin: the store still answers A
    assert later.authorization(get(f"{A}/x"), CHALLENGE) == basic("u", "p")
    assert later.authorization(get(f"{A}/x"), ['Basic realm="other"']) is None


def test_strongest_scheme_answered_and_never_with_the_users_own_header(stores: Stores) -> None:
    """Digest is answered before Basic (issue 15); a scheme we cannot answer gets nothing; a
    request carrying its own Authorization is never retried."""
    ex = exchange(stores, url="http://u:p@a.example:8001/start")
    assert ex.authorization(get(f"{A}/start"), ["Negotiate", "NTLM"]) is None
    own = get(f"{A}/start", ("Authorization", "Bearer t"))
    assert ex.authorization(own, CHALLENGE) is None
    answer = ex.authorization(get(f"{A}/start"), ['Digest realm="d", nonce="n", Basic realm="b"'])
    assert answer is not None and answer.startswith('Digest username="u", realm="d", nonce="n"')
    assert ex.authorization(get(f"{A}/start"), ['Basic realm="b"']) == basic("u", "p")


def test_an_unusable_credential_file_is_logged_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A credential file that is refused (a link) costs the answer from the store, not the task;
    the log says so without the secret."""
    (tmp_path / "victim").write_text("{}")
    (tmp_path / "credentials.json").symlink_to(tmp_path / "victim")
    credentials = CredentialStore(_SharedFile(tmp_path / "credentials.json", tmp_path / "lock"))
    stores = Stores(CookieStore(), HTTPCache(None, 1 << 20), credentials)
    ex = exchange(stores, url="http://u:s3cret@a.example:8001/start")
    with caplog.at_level(logging.WARNING):
        assert ex.authorization(get(f"{B}/x"), CHALLENGE) is None
        assert ex.authorization(get(f"{A}/start"), CHALLENGE) == basic("u", "s3cret")
        ex.authenticated(200)
    assert "could not" in caplog.text and "s3cret" not in caplog.text
    assert (tmp_path / "victim").read_text() == "{}"
    stores.cache.close()


# -- the cache -------------------------------------------------------------------------------


def test_a_request_with_its_own_conditions_goes_past_the_cache(stores: Stores) -> None:
    """Range and the conditional headers are the request's own business: no cache lookup."""
    ex = exchange(stores)
    for name, value in [("Range", "bytes=0-1"), ("If-None-Match", '"e"'), ("if-range", '"e"')]:
        assert ex.cache_lookup(get(f"{A}/x", (name, value))) is None
    assert isinstance(ex.cache_lookup(get(f"{A}/x")), CacheLookup)


def test_a_closed_cache_is_not_asked(stores: Stores) -> None:
    """After the session's cache closed, requests go to the server as they are."""
    stores.cache.close()
    assert exchange(stores).cache_lookup(get(f"{A}/x")) is None


def test_the_cache_key_has_no_credential_and_no_fragment(stores: Stores) -> None:
    """A lookup is keyed by the URL without user info and fragment, and the request it keeps
    carries no credential header."""
    lookup = exchange(stores).cache_lookup(
        get("http://u:p@a.example:8001/x?q=1#part", ("Authorization", "Basic x"), ("Accept", "*"))
    )
    assert lookup is not None
    assert lookup._key == f"{A}/x?q=1"
    kept = lookup._request.headers
    assert kept.get("authorization") is None and kept.get("accept") == "*"
    assert (lookup.hit, lookup.unavailable) == (None, False)


def test_return_cache_data_dont_load_with_nothing_stored_is_unavailable(stores: Stores) -> None:
    """returnCacheDataDontLoad and an empty cache: the lookup says unavailable, sends nothing."""
    lookup = exchange(stores, requestCachePolicy="returnCacheDataDontLoad").cache_lookup(
        get(f"{A}/x")
    )
    assert lookup is not None and lookup.unavailable and lookup.send_headers == []
