"""One request through the HTTP cache: hishel's sans-IO RFC 9111 states, asked before sending
and told what came back; ``requestCachePolicy`` mapped onto them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, cast

import attrs
import hishel

if TYPE_CHECKING:
    from ._cache import HTTPCache

Headers = list[tuple[str, str]]

_CACHE_OPTIONS = hishel.CacheOptions(shared=False)  # a private cache, like URLCache
_STALE_OK = hishel.CacheOptions(shared=False, allow_stale=True)


@attrs.define
class Stored:
    """A response the cache serves: status, headers, and its body (as stored: still encoded)."""

    status: int
    headers: Headers
    chunks: Iterator[bytes] = attrs.field(repr=False)


class _Headers(hishel.Headers):
    """hishel's headers with a dict's ``get`` and ``in``: hishel's type is an ABC mapping
    whose ``get`` and ``in`` go through ``__getitem__`` and a caught ``KeyError`` for every
    header that is not there, a dozen times per response its spec machine reads."""

    def get(self, key: str, default: Any = None) -> Any:
        values = self._headers.get(key.lower())
        return default if values is None else ", ".join(values)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._headers


def _hishel_headers(headers: Iterable[tuple[str, str]]) -> hishel.Headers:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        low = name.lower()
        values = out.get(low)
        if values is None:
            out[low] = [value]
        else:
            values.append(value)
    made = _Headers.__new__(_Headers)
    made._headers = out  # (hishel's __init__ would copy every list once more)
    return made


def _pairs(headers: hishel.Headers) -> Headers:
    return [(name, value) for name in headers for value in headers.get_list(name) or []]


def _stored(response: hishel.Response) -> Stored:
    stream = response.stream
    chunks: Iterator[bytes] = iter(()) if stream is None else cast(Iterator[bytes], stream)
    return Stored(response.status_code, _pairs(response.headers), chunks)


def _value(headers: hishel.Headers, name: str) -> str | None:
    """``headers.get(name)`` (``name`` in lower case) without the ``KeyError`` hishel's ABC
    ``get`` raises and catches for a header that is not there; hishel keeps its headers in
    ``_headers`` by lower-case name, read directly (``get_list`` lowers the name each call)."""
    values = headers._headers.get(name)
    if values is None:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


def _vary_matches(request: hishel.Request, entry: hishel.Entry) -> bool:
    vary = _value(entry.response.headers, "vary")
    if not vary:
        return True
    for name in (v.strip().lower() for v in vary.split(",")):
        if name == "*" or _value(request.headers, name) != _value(entry.request.headers, name):
            return False
    return True


def _same_representation(entry: hishel.Entry, headers: hishel.Headers) -> bool:
    """Whether a new 200 carries the very bytes ``entry`` holds: the same strong ETag (RFC 9110
    8.8.1: a strong validator changes whenever the bytes do), length and content coding."""
    stored = entry.response.headers
    etag = _value(headers, "etag")
    return (
        etag is not None
        and not etag.startswith("W/")
        and _value(stored, "etag") == etag
        and _value(stored, "content-length") == _value(headers, "content-length")
        and _value(stored, "content-encoding") == _value(headers, "content-encoding")
    )


def _worth_storing(headers: hishel.Headers) -> bool:
    """A response with neither freshness nor a validator could only ever be fetched again."""
    cc = (_value(headers, "cache-control") or "").lower()
    return (
        any(headers.get_list(h) is not None for h in ("expires", "etag", "last-modified"))
        or "max-age" in cc
    )


def _shareable(state: Any) -> bool:
    """Whether hishel's answer may be kept for later responses alike (:meth:`CacheLookup._answer`):
    only the final answers, and only for a response with its own ``Date`` (one without gets
    the time it came, written into the state's headers)."""
    return (
        type(state) in (hishel.StoreAndUse, hishel.CouldNotBeStored)
        and state.response.headers.get_list("date") is not None
    )


@attrs.define
class Outcome:
    """What the transport does with a response after the cache has seen it.

    ``stored``: serve this instead (a 304 freshened it); ``store``: serve the response, reading its
    body through ``chunks`` (which saves it); ``resend``: ask again without conditions; none of
    them: use the response as it is.
    """

    stored: Stored | None = None
    chunks: Iterator[bytes] | None = attrs.field(default=None, repr=False)
    resend: bool = False


_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def reads_storage(method: str, policy: str) -> bool:
    """Whether a lookup for this request may read SQLite (every policy but a safe request's
    ``reloadIgnoringLocalCacheData``, which asks the server without looking): the transport
    does such work off an engine's network thread."""
    return policy != "reloadIgnoringLocalCacheData" or method.upper() not in _SAFE


class CacheLookup:
    """One request through hishel's RFC 9111 states: ask before sending, tell after."""

    def __init__(self, cache: HTTPCache, request: hishel.Request, policy: str) -> None:
        self._cache = cache
        self._request = request
        self._key = request.url
        self.hit: Stored | None = None
        self.unavailable = False  # returnCacheDataDontLoad and nothing stored
        self._seen: tuple[int, Headers, Any] | None = None  # (see _answer)
        self._state: hishel.CacheMiss | hishel.NeedRevalidation
        unsafe = request.method.upper() not in ("GET", "HEAD", "OPTIONS", "TRACE")
        if policy == "reloadIgnoringLocalCacheData" and not unsafe:
            self._state = hishel.CacheMiss(request=request, options=_CACHE_OPTIONS)
            return
        stale_ok = policy in ("returnCacheDataElseLoad", "returnCacheDataDontLoad")
        entries = cache.entries(self._key)
        state = hishel.IdleClient(options=_STALE_OK if stale_ok else _CACHE_OPTIONS).next(
            request, entries
        )
        if isinstance(state, hishel.FromCache):
            self.hit = _stored(state.entry.response)
            return
        if stale_ok and isinstance(state, hishel.NeedRevalidation):
            # "Use cached data regardless of its age or expiration date."
            for entry in state.revalidating_entries:
                if _vary_matches(request, entry):
                    self.hit = _stored(entry.response)
                    return
        if policy == "returnCacheDataDontLoad":
            self.unavailable = True
        self._state = state

    @property
    def send_headers(self) -> Headers:
        """The validators to add to the request (If-None-Match, If-Modified-Since)."""
        if self.hit is not None or self.unavailable:
            return []
        sent = self._state.request.headers
        return [
            (name, value)
            for name in sent
            if self._request.headers.get(name) is None
            for value in sent.get_list(name) or []
        ]

    def _answer(self, status: int, headers: Headers) -> Any:
        """hishel's first state for this response (worked out once: ``touches_storage`` and
        ``response`` both need it, for the same ``headers`` object).

        A plain miss (a safe request that looked at no entry: ``reloadIgnoringLocalCacheData``)
        asks hishel the same question for every response of a URL, and the answer depends on
        nothing but the request's method, whether it carries ``Authorization``, and the
        response's status and headers: the cache keeps it (:meth:`HTTPCache.decision`), so a
        burst of tasks whose responses are alike (the same head but for ``Date``, which changes
        once a second) runs hishel's storage rules once a second, not once a task."""
        seen = self._seen
        if seen is not None and seen[0] == status and seen[1] is headers:
            return seen[2]
        memo: tuple[Any, ...] | None = None
        miss = self._state
        if (
            type(miss) is hishel.CacheMiss
            and not miss.entries_to_invalidate
            and miss.options is _CACHE_OPTIONS
        ):
            request = self._request
            memo = (request.method, "authorization" in request.headers, status, *headers)
            state = self._cache.decision(memo)
            if state is not None:
                self._seen = (status, headers, state)
                return state
        kept = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        state = miss.next(hishel.Response(status, _hishel_headers(kept)))
        if memo is not None and _shareable(state):
            self._cache.decided(memo, state)
        self._seen = (status, headers, state)
        return state

    def touches_storage(self, status: int, headers: Headers) -> bool:
        """Whether telling the cache this response may read or write SQLite: stored entries
        to invalidate (an unsafe method's response), or a response to store whose key the
        memory tier does not hold. A response that will not be stored, or that refreshes what
        the memory tier holds (written behind), does not. The transport tells the cache such a
        response off an engine's network thread."""
        state = self._answer(status, headers)
        while isinstance(state, hishel.InvalidateEntries):  # (next() only hands on a state)
            if state.entry_ids:
                return True
            state = state.next()
        if isinstance(state, hishel.StoreAndUse):
            if not _worth_storing(state.response.headers) or status in (206, 304):
                return False
            return not self._cache.in_memory(self._key)
        return False

    def response(
        self, status: int, headers: Headers, body: Callable[[], Iterator[bytes]]
    ) -> Outcome:
        """Tell the cache what came back; ``body`` gives the raw (still encoded) body on demand."""
        cache = self._cache
        state: Any = self._answer(status, headers)
        self._seen = None
        while True:
            if isinstance(state, hishel.InvalidateEntries):
                cache.changing(self._key)
                for entry_id in state.entry_ids:
                    cache.storage.remove_entry(entry_id)
                state = state.next()
            elif isinstance(state, hishel.NeedToBeUpdated):
                for entry in state.updating_entries:
                    cache.refresh(self._key, entry.id, entry.response.headers)
                state = state.next()
            elif isinstance(state, hishel.FromCache):
                return Outcome(stored=_stored(state.entry.response))
            elif isinstance(state, hishel.StoreAndUse):
                response = state.response
                if not _worth_storing(response.headers) or status in (206, 304):
                    return Outcome()
                if response.headers.get_list("date") is None:
                    # RFC 9110 6.6.1: a response without Date is dated when the cache got it
                    # (such a state is never shared: see _shareable)
                    response.headers["date"] = formatdate(usegmt=True)
                # The new response replaces what was stored for the same request (two entries
                # of one second would leave "the most recent one" to chance).
                variant = [
                    entry
                    for entry in cache.entries(self._key, bodies=False)
                    if entry.request.method == self._request.method
                    and _vary_matches(self._request, entry)
                ]
                twin = next((e for e in variant if _same_representation(e, response.headers)), None)
                if twin is not None:
                    # What is stored, sent again: keep its body, take the new headers (as a
                    # 304 would have done) rather than write the same bytes once more. Other
                    # entries of the variant (two tasks that stored at once) go.
                    others = [e for e in variant if e is not twin]
                    if others:
                        cache.changing(self._key)
                        for entry in others:
                            cache.storage.remove_entry(entry.id)
                    cache.refresh(self._key, twin.id, response.headers)
                    return Outcome()
                cache.changing(self._key)
                storage = cache.storage
                for entry in variant:
                    storage.remove_entry(entry.id)
                # (a copy with its own headers: the state may be shared, see _answer)
                response = hishel.Response(
                    response.status_code, _hishel_headers(_pairs(response.headers))
                )
                response.stream = body()
                entry = storage.create_entry(self._request, response, self._key)
                chunks = cast(Iterator[bytes], entry.response.stream)
                return Outcome(chunks=cache._writing(self._key, entry.id.bytes, chunks))
            elif isinstance(state, hishel.CacheMiss):
                self._state = state  # a 304 that freshened nothing: ask plainly
                return Outcome(resend=True)
            else:  # CouldNotBeStored
                return Outcome()
