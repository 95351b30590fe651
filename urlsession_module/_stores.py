"""A session's stores: cookies, the HTTP cache and credentials, as URLSession keeps them.

Default and background sessions share one persistent set under ``<state dir>/stores`` (files
0600, the directory 0700); the background transfer process opens the same set, so two processes
touch it. Cookies and credentials are small files that every writer rewrites under an ``flock``
after reloading what another process may have written (reload-before-merge), with an atomic
replace, so a reader never sees half a file. The cache is a SQLite database (WAL), which is
multi-process safe on its own. Each ephemeral session has its own set in memory.

- **Cookies** live in an :mod:`http.cookiejar` jar, which is handed small adapter objects for a
  request and a response (the ``MockRequest``/``MockResponse`` pattern of ``requests``).
- **The HTTP cache** is hishel's sans-IO RFC 9111 core (its states decide what is fresh, what to
  revalidate and what may be stored) over its SQLite storage, with a small memory tier in front
  (URLCache's memory capacity) so that a repeated hit reads no SQLite; this module maps
  ``requestCachePolicy`` onto it and tells the transport what to send and what to serve.
- **Credentials** answer a ``401`` Basic challenge. They are kept by protection space (scheme,
  host, port, realm) and come from the URL's user info, the task's ``credential`` or the
  configuration's; those three only ever answer the origin of the task's first request. They
  are never logged.

:class:`Exchange` is one task's way through the stores: what each hop adds to its request, what
each response teaches them. It knows nothing of sockets; the transport asks and tells.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import fcntl
import http.cookiejar
import ipaddress
import itertools
import json
import logging
import os
import re
import sqlite3
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from email.message import Message
from email.utils import formatdate
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import attrs
import hishel

from ._configuration import ConfigValues
from ._state import Request
from ._storage import private_dir
from ._urls import CREDENTIAL_HEADERS, origin

__all__ = [
    "CacheLookup",
    "CookieStore",
    "Credential",
    "CredentialStore",
    "Exchange",
    "HTTPCache",
    "Stored",
    "Stores",
    "basic_realms",
    "memory_stores",
    "persistent_stores",
    "redact",
    "with_userinfo",
    "without_userinfo",
]

log = logging.getLogger(__name__)

STORES_DIR = "stores"
COOKIES_NAME = "cookies.lwp"
CREDENTIALS_NAME = "credentials.json"
CACHE_NAME = "cache.sqlite3"
LOCK_NAME = "stores.lock"

# URLCache's rule: an entry may take at most 5% of the cache.
DISK_CACHE_SIZE = 50 * 1024 * 1024
MEMORY_CACHE_SIZE = 10 * 1024 * 1024
ENTRY_SHARE = 0.05
# URLCache's memory capacity (4 MB on macOS): recently read entries, so a hit needs no SQLite.
MEMORY_TIER_SIZE = 4 * 1024 * 1024

Credential = tuple[str, str]  # (user, password)
Space = tuple[str, str, int, str]  # (scheme, host, port, realm)
Headers = list[tuple[str, str]]

# A request that asks for a part or a condition of its own talks to the server, not the cache.
_OWN_CONDITIONS = frozenset(
    {"range", "if-range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since"}
)
_CACHE_OPTIONS = hishel.CacheOptions(shared=False)  # a private cache, like URLCache
_STALE_OK = hishel.CacheOptions(shared=False, allow_stale=True)


# -- URLs and origins --------------------------------------------------------------------------


def without_userinfo(url: str) -> str:
    """``url`` as it goes on the wire: user info is a credential, answered from the stores."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def redact(url: str) -> str:
    """``url`` fit for a log line: user info (a credential) is never written out."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _userinfo(url: str) -> Credential | None:
    parts = urlsplit(url)
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


def with_userinfo(url: str, credential: Credential | None) -> str:
    """``url`` carrying ``credential`` as its user info (how a task's credential travels)."""
    if credential is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user, password = (quote(c, safe="") for c in credential)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _same_domain(host: str, main: str) -> bool:
    """``onlyFromMainDocumentDomain``: the host is the main document's, or one domain holds the other."""
    host, main = host.lower(), main.lower()
    if host == main:
        return True
    if _is_ip(host) or _is_ip(main):
        return False
    return host.endswith("." + main) or main.endswith("." + host)


# -- a small file shared between processes ---------------------------------------------------------


class _SharedFile:
    """A file several processes read and rewrite: ``flock`` to write, atomic replace, mode 0600."""

    def __init__(self, path: Path, lock_path: Path) -> None:
        self.path = path
        self._lock_path = lock_path

    def stamp(self) -> tuple[int, int, int] | None:
        """What identifies the file's current content (None: there is no file)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, text: str) -> None:
        """Replace the content at once (a reader sees the old file or the new one, never half)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


# -- cookies -------------------------------------------------------------------------------------


class _CookieRequest:
    """What ``http.cookiejar`` asks of a request (``urllib.request.Request``'s interface)."""

    def __init__(self, url: str, main_url: str | None = None) -> None:
        self._url = without_userinfo(url)
        parts = urlsplit(self._url)
        self.type = parts.scheme.lower()
        self.host = parts.netloc
        self.origin_req_host = (urlsplit(main_url or url).hostname or "").lower()
        self.unverifiable = False
        self.cookie: str | None = None

    def get_full_url(self) -> str:
        return self._url

    def get_host(self) -> str:
        return self.host

    def get_type(self) -> str:
        return self.type

    def get_origin_req_host(self) -> str:
        return self.origin_req_host

    def is_unverifiable(self) -> bool:
        return self.unverifiable

    def has_header(self, name: str) -> bool:
        return False  # the user's own Cookie header is merged by the caller

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self.host if name.lower() == "host" else default

    def header_items(self) -> list[tuple[str, str]]:
        return []

    def add_unredirected_header(self, name: str, value: str) -> None:
        if name.lower() == "cookie":
            self.cookie = value

    def as_request(self) -> urllib.request.Request:
        # The jar only calls the methods above; typeshed names the class it expects.
        return cast(urllib.request.Request, self)


class _CookieResponse:
    """What ``http.cookiejar`` asks of a response: ``info().get_all('Set-Cookie')``."""

    def __init__(self, set_cookies: Iterable[str]) -> None:
        self._msg = Message()
        for value in set_cookies:
            self._msg["Set-Cookie"] = value

    def info(self) -> Message:
        return self._msg


class _SharedStore:
    """What a store kept in memory and, with a file, shared with other processes does the same
    way whatever it holds: every read first takes what another process wrote (the file's stamp
    changed), every write happens under the file's ``flock`` after such a refresh
    (reload-before-merge) and replaces the file. Subclasses say how their content is emptied
    (:meth:`_reset`), read from the file (:meth:`_load`) and written (:meth:`_dump`).
    """

    def __init__(self, file: _SharedFile | None = None) -> None:
        self._file = file
        self._lock = threading.RLock()
        self._stamp: tuple[int, int, int] | None = None
        self._reset()

    def _reset(self) -> None:
        raise NotImplementedError

    def _load(self, file: _SharedFile) -> None:
        """Read the file into the (just emptied) content; an unreadable file leaves it empty."""
        raise NotImplementedError

    def _dump(self) -> str:
        raise NotImplementedError

    def _refresh(self) -> None:
        """Take what another process (or session) wrote since we last looked."""
        if self._file is None:
            return
        stamp = self._file.stamp()
        if stamp == self._stamp:
            return
        self._reset()
        if stamp is not None:
            self._load(self._file)
        self._stamp = stamp

    def _change(self, change: Callable[[], bool | None]) -> None:
        """Apply ``change`` to the content; with a file, on top of what it holds now, then save
        it (unless ``change`` answers False: it changed nothing)."""
        with self._lock:
            if self._file is None:
                change()
                return
            with self._file.locked():
                self._refresh()
                if change() is not False:
                    self._file.write(self._dump())
                    self._stamp = self._file.stamp()

    def clear(self) -> None:
        with self._lock:
            if self._file is None:
                self._reset()
                return
            with self._file.locked():
                self._reset()
                self._file.remove()
                self._stamp = None


class CookieStore(_SharedStore):
    """An ``http.cookiejar`` jar; with a file, shared with other processes (reload-before-merge)."""

    def _reset(self) -> None:
        self._jar = http.cookiejar.LWPCookieJar()

    def _load(self, file: _SharedFile) -> None:
        try:
            self._jar.load(str(file.path), ignore_discard=True)
        except (OSError, http.cookiejar.LoadError) as exc:
            log.warning("cookie file %s unreadable, starting empty: %s", file.path, exc)
            self._reset()

    def _dump(self) -> str:
        return "#LWP-Cookies-2.0\n" + self._jar.as_lwp_str(
            ignore_discard=True, ignore_expires=False
        )

    def header(self, url: str) -> str | None:
        """The ``Cookie`` value the jar has for ``url`` (None: no cookie applies)."""
        with self._lock:
            self._refresh()
            request = _CookieRequest(url)
            self._jar.add_cookie_header(request.as_request())
            return request.cookie

    def extract(self, url: str, set_cookies: list[str], main_url: str | None = None) -> None:
        """Store the cookies a response to ``url`` set (the caller applied the accept policy)."""
        if not set_cookies:
            return
        request = _CookieRequest(url, main_url).as_request()
        response = cast(Any, _CookieResponse(set_cookies))
        self._change(lambda: self._jar.extract_cookies(response, request))


# -- credentials -----------------------------------------------------------------------------------


class CredentialStore(_SharedStore):
    """Credentials by protection space; with a file (0600), shared with other processes."""

    def __repr__(self) -> str:
        return f"<CredentialStore {len(self._items)} spaces>"  # never the secrets

    def _reset(self) -> None:
        self._items: dict[Space, Credential] = {}

    def _load(self, file: _SharedFile) -> None:
        text = file.read()
        if not text:
            return
        items: dict[Space, Credential] = {}
        try:
            for e in json.loads(text)["credentials"]:
                space = (str(e["scheme"]), str(e["host"]), int(e["port"]), str(e["realm"]))
                items[space] = (str(e["user"]), str(e["password"]))
        except (ValueError, KeyError, TypeError):
            log.warning("credential file %s unreadable, starting empty", file.path)
            return
        self._items = items

    def _dump(self) -> str:
        entries = [
            {"scheme": s, "host": h, "port": p, "realm": r, "user": u, "password": pw}
            for (s, h, p, r), (u, pw) in self._items.items()
        ]
        return json.dumps({"version": 1, "credentials": entries})

    def get(self, space: Space) -> Credential | None:
        with self._lock:
            self._refresh()
            return self._items.get(space)

    def set(self, space: Space, credential: Credential) -> None:
        def put() -> bool:
            if self._items.get(space) == credential:
                return False  # already so: the file is not rewritten
            self._items[space] = credential
            return True

        self._change(put)


# A challenge list: ``Digest realm="a", nonce="b", Basic realm="c"``: schemes, then their params.
_AUTH_PARAM = re.compile(r'\s*,?\s*([^\s=,"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*')
_AUTH_SCHEME = re.compile(r'\s*,?\s*([^\s=,"]+)(?=\s|,|$)')


def basic_realms(challenges: Iterable[str]) -> list[str]:
    """The realms of the Basic challenges among ``WWW-Authenticate`` values, in order."""
    realms: list[str] = []
    for value in challenges:
        pos, scheme = 0, ""
        while pos < len(value):
            m = _AUTH_PARAM.match(value, pos)
            if m:
                if scheme == "basic" and m[1].lower() == "realm":
                    raw = m[2]
                    if raw.startswith('"'):
                        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                    realms[-1] = raw
                pos = m.end()
                continue
            m = _AUTH_SCHEME.match(value, pos)
            if not m or m.end() == pos:
                break
            scheme = m[1].lower()
            if scheme == "basic":
                realms.append("")
            pos = m.end()
    return realms


def basic_authorization(credential: Credential) -> str:
    user, password = credential
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# -- the HTTP cache --------------------------------------------------------------------------------


@attrs.define
class Stored:
    """A response the cache serves: status, headers, and its body (as stored: still encoded)."""

    status: int
    headers: Headers
    chunks: Iterator[bytes] = attrs.field(repr=False)


def _hishel_headers(headers: Iterable[tuple[str, str]]) -> hishel.Headers:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        out.setdefault(name.lower(), []).append(value)
    return hishel.Headers(out)


def _pairs(headers: hishel.Headers) -> Headers:
    return [(name, value) for name in headers for value in headers.get_list(name) or []]


def _stored(response: hishel.Response) -> Stored:
    stream = response.stream
    chunks: Iterator[bytes] = iter(()) if stream is None else cast(Iterator[bytes], stream)
    return Stored(response.status_code, _pairs(response.headers), chunks)


def _vary_matches(request: hishel.Request, entry: hishel.Entry) -> bool:
    vary = entry.response.headers.get("vary")
    if not vary:
        return True
    for name in (v.strip() for v in vary.split(",")):
        if name == "*" or request.headers.get(name) != entry.request.headers.get(name):
            return False
    return True


def _same_representation(entry: hishel.Entry, headers: hishel.Headers) -> bool:
    """Whether a new 200 carries the very bytes ``entry`` holds: the same strong ETag (RFC 9110
    8.8.1: a strong validator changes whenever the bytes do), length and content coding."""
    stored = entry.response.headers
    etag = headers.get("etag")
    return (
        etag is not None
        and not etag.startswith("W/")
        and stored.get("etag") == etag
        and stored.get("content-length") == headers.get("content-length")
        and stored.get("content-encoding") == headers.get("content-encoding")
    )


def _worth_storing(headers: hishel.Headers) -> bool:
    """A response with neither freshness nor a validator could only ever be fetched again."""
    cc = (headers.get("cache-control") or "").lower()
    return any(h in headers for h in ("expires", "etag", "last-modified")) or "max-age" in cc


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


class CacheLookup:
    """One request through hishel's RFC 9111 states: ask before sending, tell after."""

    def __init__(self, cache: HTTPCache, request: hishel.Request, policy: str) -> None:
        self._cache = cache
        self._request = request
        self._key = request.url
        self.hit: Stored | None = None
        self.unavailable = False  # returnCacheDataDontLoad and nothing stored
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

    def response(
        self, status: int, headers: Headers, body: Callable[[], Iterator[bytes]]
    ) -> Outcome:
        """Tell the cache what came back; ``body`` gives the raw (still encoded) body on demand."""
        cache = self._cache
        kept = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        state: Any = self._state.next(hishel.Response(status, _hishel_headers(kept)))
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
                if "date" not in response.headers:  # RFC 9110 6.6.1: a cache records when
                    response.headers["date"] = formatdate(usegmt=True)
                # The new response replaces what was stored for the same request (two entries
                # of one second would leave "the most recent one" to chance).
                variant = [
                    entry
                    for entry in cache.entries(self._key)
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
                response.stream = body()
                entry = storage.create_entry(self._request, response, self._key)
                chunks = cast(Iterator[bytes], entry.response.stream)
                return Outcome(chunks=cache._writing(self._key, entry.id.bytes, chunks))
            elif isinstance(state, hishel.CacheMiss):
                self._state = state  # a 304 that freshened nothing: ask plainly
                return Outcome(resend=True)
            else:  # CouldNotBeStored
                return Outcome()


def _entry_with(entry: hishel.Entry, **response: Any) -> hishel.Entry:
    """``entry`` with some fields of its response replaced (hishel's values are dataclasses,
    shared between threads: never changed in place)."""
    return dataclasses.replace(entry, response=dataclasses.replace(entry.response, **response))


class _MemoryTier:
    """Entries recently read from SQLite, bodies and all, least recently used out first.

    URLCache keeps such a memory cache in front of its disk cache; here it spares a hit the
    SQLite reads that cost most of a small cached GET (one query for the entries, one per body
    chunk, and hishel's lock shared by every thread). It only ever holds what SQLite said: it
    forgets a key before any write to its entries (:meth:`HTTPCache.changing`) and takes the
    same new headers SQLite is given when an entry is refreshed (:meth:`HTTPCache.refresh`), so
    a lookup answers as SQLite would have, except for what another process wrote meanwhile — as
    with URLCache, whose memory cache is its process's own.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: collections.OrderedDict[str, tuple[list[tuple[hishel.Entry, bytes]], int]]
        self._items = collections.OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.version = 0  # bumped by every change: a read that overlapped one is not kept

    def get(self, key: str) -> list[hishel.Entry] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
        return [_entry_with(e, stream=iter((b,))) for e, b in item[0]]

    def put(self, key: str, entries: list[tuple[hishel.Entry, bytes]], version: int) -> None:
        size = sum(len(body) + 1024 for _, body in entries)  # 1 KiB: headers and bookkeeping
        with self._lock:
            if version != self.version or key in self._items:
                return
            self._items[key] = (entries, size)
            self._size += size
            while self._size > self._capacity and self._items:
                self._size -= self._items.popitem(last=False)[1][1]

    def refresh(self, key: str, entry_id: uuid.UUID, headers: hishel.Headers) -> None:
        """The entry's new headers (SQLite has them already); its body is unchanged."""
        with self._lock:
            self.version += 1  # a read that overlapped this may hold the old headers
            item = self._items.get(key)
            if item is None:
                return
            entries, size = item
            entries = [
                (_entry_with(e, headers=headers) if e.id == entry_id else e, body)
                for e, body in entries
            ]
            self._items[key] = (entries, size)

    def forget(self, key: str | None = None) -> None:
        """Forget ``key`` (every key when None)."""
        with self._lock:
            self.version += 1
            if key is None:
                self._items.clear()
                self._size = 0
            else:
                item = self._items.pop(key, None)
                if item is not None:
                    self._size -= item[1]


class HTTPCache:
    """hishel's SQLite storage: a 0600 file shared by processes, or a private in-memory database.

    A small memory tier in front of it (:class:`_MemoryTier`) answers repeated hits.
    """

    def __init__(self, path: Path | None, max_size: int) -> None:
        self.path = path
        self._max_size = max_size
        self._lock = threading.Lock()
        self._storage: hishel.SqliteStorage | None = None
        self._connection: sqlite3.Connection | None = None
        # Entries this process is writing, and those of them a clear() condemned meanwhile.
        self._being_written: set[bytes] = set()
        self._condemned: set[bytes] = set()
        self._memory = _MemoryTier(min(MEMORY_TIER_SIZE, max_size))
        self._memory_entry = int(min(MEMORY_TIER_SIZE, max_size) * ENTRY_SHARE)
        self.closed = False

    @property
    def storage(self) -> hishel.SqliteStorage:
        """Opened on first use, so a session that never caches opens no database."""
        with self._lock:
            if self.closed:
                raise RuntimeError("the session's cache is closed")
            if self._storage is None:
                target = ":memory:"
                if self.path is not None:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                    os.close(fd)  # made 0600 before SQLite opens it: its -wal/-shm copy that mode
                    target = str(self.path)
                self._connection = sqlite3.connect(
                    target, check_same_thread=False, isolation_level=None
                )
                self._storage = hishel.SqliteStorage(
                    connection=self._connection,
                    max_size=self._max_size,
                    max_stream_size=int(self._max_size * ENTRY_SHARE),
                )
            return self._storage

    def entries(self, key: str) -> list[hishel.Entry]:
        """What is stored under ``key``: from the memory tier, else from SQLite (and kept there
        when every body is small enough)."""
        found = self._memory.get(key)
        if found is not None:
            return found
        version = self._memory.version
        entries = self.storage.get_entries(key)
        if not entries:
            return entries
        kept: list[tuple[hishel.Entry, bytes]] = []
        out: list[hishel.Entry] = []
        for entry in entries:
            stream = cast(Iterator[bytes], entry.response.stream or iter(()))
            parts: list[bytes] = []
            size = 0
            try:
                for chunk in stream:
                    parts.append(chunk)
                    size += len(chunk)
                    if size > self._memory_entry:
                        break
                else:
                    body = b"".join(parts)
                    kept.append((_entry_with(entry, stream=None), body))
                    out.append(_entry_with(entry, stream=iter((body,))))
                    continue
            except RuntimeError:  # deleted while read (hishel): as if it had not been there
                continue
            rest = itertools.chain(parts, stream)  # too big to keep: the rest comes from SQLite
            out.append(_entry_with(entry, stream=rest))
        if len(kept) == len(out):
            self._memory.put(key, kept, version)
        return out

    def refresh(self, key: str, entry_id: uuid.UUID, headers: hishel.Headers) -> None:
        """An entry keeps its body and takes new headers (a 304, or the same bytes sent again),
        in SQLite and in the memory tier alike."""
        self.storage.update_headers(entry_id, headers)
        self._memory.refresh(key, entry_id, headers)

    def changing(self, key: str) -> None:
        """``key``'s entries are about to change: the memory tier lets go of them first."""
        self._memory.forget(key)

    def lookup(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], policy: str
    ) -> CacheLookup:
        request = hishel.Request(method, url, _hishel_headers(headers))
        return CacheLookup(self, request, policy)

    def _writing(self, key: str, entry_id: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The body as hishel saves it; an entry a clear() condemned is deleted once written.

        The memory tier forgets ``key`` again when the entry is complete: a read made while it
        was being written did not see it.
        """
        with self._lock:
            self._being_written.add(entry_id)
        try:
            yield from chunks
        finally:
            with self._lock:
                self._being_written.discard(entry_id)
                condemned = entry_id in self._condemned
                self._condemned.discard(entry_id)
            self._memory.forget(key)
            if condemned:
                self._execute(("DELETE FROM entries WHERE id = ?", (entry_id,)))

    def _execute(self, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
        with self._lock:
            conn = self._connection
        if conn is None:
            return
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, ())
            try:
                conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:  # no tables yet, or busy: nothing to lose
                log.debug("cache: %s: %s", sql, exc)

    def clear(self) -> None:
        """Every entry gone, from disk too (secure_delete zeroes the freed pages).

        An entry still being written here is left to its writer (deleting its row under it would
        fail each of its writes) and deleted when it is done.
        """
        if self.closed:
            return
        self._memory.forget()
        if self.path is not None and self._connection is None and self.path.exists():
            self.storage  # noqa: B018  (open it: the file holds entries of an earlier run)
        with self._lock:
            busy = sorted(self._being_written)
            self._condemned.update(busy)
        keep = ", ".join("?" * len(busy))
        self._execute(
            "PRAGMA secure_delete=ON",
            (f"DELETE FROM streams WHERE entry_id NOT IN ({keep})", tuple(busy)),
            (f"DELETE FROM entries WHERE id NOT IN ({keep})", tuple(busy)),
            "PRAGMA wal_checkpoint(TRUNCATE)",
        )

    def flush(self) -> None:
        """SQLite's log folded into its file; the memory tier (a transient cache) emptied."""
        self._memory.forget()
        if self.path is not None:
            self._execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self.closed = True
            storage, self._storage, self._connection = self._storage, None, None
        self._memory.forget()
        if storage is not None:
            storage.close()


# -- one session's stores, and one task's way through them --------------------------------------


class Stores:
    """Cookies, cache and credentials of a session (shared by default and background sessions)."""

    def __init__(
        self,
        cookies: CookieStore,
        cache: HTTPCache,
        credentials: CredentialStore,
        directory: Path | None = None,
    ) -> None:
        self.cookies = cookies
        self.cache = cache
        self.credentials = credentials
        self.directory = directory
        self._refs = 0
        self._key: str | None = None

    def exchange(self, url: str, config: ConfigValues) -> Exchange:
        return Exchange(self, config, url)

    def flush(self) -> None:
        """Everything written is on disk already; fold the cache's log into its file."""
        self.cache.flush()

    def clear(self) -> None:
        """Empty cookies, cache and credentials (their files are removed or emptied).

        Each store is emptied even if another one fails; the first failure is raised after.
        """
        failure: BaseException | None = None
        for clear in (self.cookies.clear, self.credentials.clear, self.cache.clear):
            try:
                clear()
            except (OSError, sqlite3.Error) as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def release(self) -> None:
        """One user fewer; the last one closes the stores."""
        with _shared_lock:
            self._refs -= 1
            if self._refs > 0:
                return
            if self._key is not None and _shared.get(self._key) is self:
                del _shared[self._key]
        self.cache.close()

    def __repr__(self) -> str:
        where = str(self.directory) if self.directory is not None else "memory"
        return f"<Stores {where}>"


_shared: dict[str, Stores] = {}
_shared_lock = threading.Lock()


def persistent_stores(home: Path) -> Stores:
    """The stores of default and background sessions under state directory ``home``.

    One object per directory in a process (every default session of it shares it); call
    :meth:`Stores.release` once per call when done.
    """
    key = os.path.realpath(home)
    with _shared_lock:
        stores = _shared.get(key)
        if stores is None:
            directory = private_dir(Path(key) / STORES_DIR)
            lock = directory / LOCK_NAME
            stores = Stores(
                CookieStore(_SharedFile(directory / COOKIES_NAME, lock)),
                HTTPCache(directory / CACHE_NAME, DISK_CACHE_SIZE),
                CredentialStore(_SharedFile(directory / CREDENTIALS_NAME, lock)),
                directory,
            )
            stores._key = key
            _shared[key] = stores
        stores._refs += 1
        return stores


def memory_stores() -> Stores:
    """An ephemeral session's own stores; nothing touches the disk."""
    stores = Stores(CookieStore(), HTTPCache(None, MEMORY_CACHE_SIZE), CredentialStore())
    stores._refs = 1
    return stores


class Exchange:
    """One task's requests through the stores: what each hop adds, what each response teaches.

    ``url`` is the task's first request (its "main document" for the cookie accept policy). Its
    user info (or the task's ``credential``, which travels as user info) and the configuration's
    ``credential`` answer challenges from that origin only; the credential store answers each
    origin with what was stored for it.
    """

    def __init__(self, stores: Stores, config: ConfigValues, url: str) -> None:
        self._stores = stores
        self._config = config
        self._main_host = (urlsplit(url).hostname or "").lower()
        self._origin = origin(url)
        self._task_credential = _userinfo(url)
        self._pending: tuple[Space, Credential] | None = None

    # -- cookies ---------------------------------------------------------------------------------

    def request_headers(self, request: Request) -> Headers:
        """Headers the stores add to this hop (they replace the request's own of the same name)."""
        if not self._config.httpShouldSetCookies:
            return []
        try:
            jar = self._stores.cookies.header(request.url)
        except OSError as exc:
            log.warning("could not read the cookie store: %s", exc)
            return []
        if jar is None:
            return []
        own = request.header("Cookie")
        if not own:
            return [("Cookie", jar)]
        # The request's own cookies first; the jar adds those of other names.
        names = {part.split("=", 1)[0].strip() for part in own.split(";")}
        extra = [p.strip() for p in jar.split(";") if p.split("=", 1)[0].strip() not in names]
        return [("Cookie", "; ".join([own, *extra]))] if extra else []

    def response_received(self, url: str, headers: Iterable[tuple[str, str]]) -> None:
        """Every response of every hop goes past here: its cookies, by the accept policy."""
        if not self._config.httpShouldSetCookies:
            return
        set_cookies = [v for k, v in headers if k.lower() == "set-cookie"]
        if not set_cookies:
            return
        policy = self._config.httpCookieAcceptPolicy
        if policy == "never":
            return
        host = (urlsplit(url).hostname or "").lower()
        if policy == "onlyFromMainDocumentDomain" and not _same_domain(host, self._main_host):
            log.debug("cookies from %s refused: not the main document's domain", host)
            return
        try:
            self._stores.cookies.extract(url, set_cookies, None)
        except OSError as exc:  # a store that cannot be written never fails the transfer
            log.warning("could not store cookies from %s: %s", host, exc)

    # -- credentials -----------------------------------------------------------------------------

    def authorization(self, request: Request, challenges: list[str]) -> str | None:
        """The ``Authorization`` to retry a 401 with, or None (no Basic challenge we can answer).

        A request that carries its own Authorization header is the user's business: never retried.
        """
        if request.header("Authorization") is not None:
            return None
        realms = basic_realms(challenges)
        if not realms:
            return None
        scheme, host, port = origin(request.url)
        here = (scheme, host, port) == self._origin
        for realm in realms:
            space = (scheme, host, port, realm)
            credential = (
                _userinfo(request.url)
                or (self._task_credential if here else None)
                or self._stored_credential(space)
                or (self._config.credential if here else None)
            )
            if credential is not None:
                self._pending = (space, credential)
                log.debug("answering a Basic challenge from %s://%s:%d", scheme, host, port)
                return basic_authorization(credential)
        return None

    def _stored_credential(self, space: Space) -> Credential | None:
        try:
            return self._stores.credentials.get(space)
        except OSError as exc:
            log.warning("could not read the credential store: %s", exc.strerror or exc)
            return None

    def authenticated(self, status: int) -> None:
        """The retry's status: a credential that was not refused is kept for its space."""
        pending, self._pending = self._pending, None
        if pending is not None and status != 401:
            try:
                self._stores.credentials.set(*pending)
            except OSError as exc:
                log.warning("could not store a credential: %s", exc.strerror or type(exc).__name__)

    # -- cache -----------------------------------------------------------------------------------

    def cache_lookup(self, request: Request) -> CacheLookup | None:
        """The cache's view of this request, or None when it goes to the server as it is."""
        if self._stores.cache.closed or any(
            name.lower() in _OWN_CONDITIONS for name, _ in request.headers
        ):
            return None
        headers = [(k, v) for k, v in request.headers if k.lower() not in CREDENTIAL_HEADERS]
        url = without_userinfo(request.url).split("#", 1)[0]
        return self._stores.cache.lookup(
            request.method, url, headers, self._config.requestCachePolicy
        )
