"""The HTTP cache's storage: hishel's SQLite (a 0600 file shared by processes, or a private
in-memory database) with a small memory tier in front of it, as URLCache has."""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import itertools
import logging
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import hishel

from .._storage import open_private
from ._lookup import CacheLookup, _hishel_headers

log = logging.getLogger(__name__)

# URLCache's rule: an entry may take at most 5% of the cache.
DISK_CACHE_SIZE = 50 * 1024 * 1024
MEMORY_CACHE_SIZE = 10 * 1024 * 1024
ENTRY_SHARE = 0.05
# URLCache's memory capacity (4 MB on macOS): recently read entries, so a hit needs no SQLite.
MEMORY_TIER_SIZE = 4 * 1024 * 1024
_DECISIONS = 64  # hishel's storage answers kept (see HTTPCache.decided)

# What SQLite keeps beside a database file (WAL mode: -wal and -shm; -journal if it ever leaves it).
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_files(path: Path) -> list[Path]:
    """The database file and the files SQLite keeps beside it."""
    return [path, *(path.with_name(path.name + side) for side in SQLITE_SIDE_FILES)]


def make_private_database(path: Path) -> None:
    """Create (or check) the database file 0600 before SQLite opens it, and check what it keeps
    beside it: SQLite follows links and gives its -wal/-shm the database file's mode, so a link
    planted at any of them, or another user's file, is refused here
    (:class:`~urlsession_module.exceptions.StateDirectoryError`), and a mode that drifted is
    made 0600 again."""
    for file in sqlite_files(path):
        flags = os.O_RDWR | os.O_CREAT if file == path else os.O_RDONLY
        try:
            os.close(open_private(file, flags))
        except FileNotFoundError:
            continue  # SQLite makes it when it needs it, with the database file's mode


def _entry_with(entry: hishel.Entry, **response: Any) -> hishel.Entry:
    """``entry`` with some fields of its response replaced (hishel's values are dataclasses,
    shared between threads: never changed in place). ``dataclasses.replace``'s result, made
    from each class's init fields directly (replace looked them up per call: a few µs a task,
    which reads entries and refreshes one on every response it sees)."""
    made: hishel.Entry = _replaced(entry, response=_replaced(entry.response, **response))
    return made


_INIT_FIELDS: dict[type, tuple[str, ...]] = {}


def _replaced(obj: Any, **changes: Any) -> Any:
    cls = type(obj)
    names = _INIT_FIELDS.get(cls)
    if names is None:
        names = _INIT_FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    values = {name: getattr(obj, name) for name in names}
    values.update(changes)
    return cls(**values)


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

    def get(self, key: str, bodies: bool = True) -> list[hishel.Entry] | None:
        """The entries under ``key``; without ``bodies``, as kept (no stream: read-only)."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
        if not bodies:
            return [e for e, _ in item[0]]
        return [_entry_with(e, stream=iter((b,))) for e, b in item[0]]

    def holds(self, key: str) -> bool:
        with self._lock:
            return key in self._items

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
            item = self._items.get(key)
            if item is None:
                self.version += 1  # a read that overlapped this may hold the old headers
                return
            entries, size = item
            for e, _ in entries:
                if e.id == entry_id and (
                    e.response.headers is headers or e.response.headers == headers
                ):
                    return  # the same headers again (a burst within one second): no change
            self.version += 1  # a read that overlapped this may hold the old headers
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


class _WriteBehind:
    """Header refreshes written to SQLite behind the tasks, on the cache's own thread.

    Apple's URLCache writes on its own queue too. A refresh (a 304, or the same bytes sent
    again) is taken by the memory tier at once, and its SQLite write waits here: one pending
    write per entry (a newer one replaces it, so 2,000 tasks refreshing one entry make a few
    writes), at most ``LIMIT`` entries (past that the task writes itself), read through by
    :meth:`overlay` so SQLite's older headers are never served meanwhile. The thread exists
    while there is work and a moment after; :meth:`flush` writes what waits on the caller's
    thread and lets the thread go (a session's invalidation, the cache's flush and close, and
    the process's exit).
    """

    LIMIT = 256
    LINGER = 0.1  # how long the thread lets refreshes gather (and waits before it leaves)

    def __init__(self, write: Callable[[uuid.UUID, hishel.Headers], None]) -> None:
        self._write = write
        self._pending: dict[uuid.UUID, hishel.Headers] = {}
        self._lock = threading.Condition()
        self._order = threading.Lock()  # taken before popping: writes land in refresh order
        self._thread: threading.Thread | None = None
        self._stop = False

    def put(self, entry_id: uuid.UUID, headers: hishel.Headers) -> None:
        with self._lock:
            if len(self._pending) < self.LIMIT or entry_id in self._pending:
                self._pending[entry_id] = headers
                if self._thread is None:
                    self._stop = False
                    self._thread = threading.Thread(
                        target=self._run, name="urlsession-cache", daemon=True
                    )
                    self._thread.start()
                return  # no wake-up: the thread takes what gathered when its wait ends
        with self._order:  # full: this task writes (back-pressure, still in order)
            self._write_one(entry_id, headers)

    def overlay(self, entry_id: uuid.UUID) -> hishel.Headers | None:
        with self._lock:
            return self._pending.get(entry_id)

    def discard(self) -> None:
        """Forget what waits (the entries are being deleted)."""
        with self._order, self._lock:
            self._pending.clear()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._stop:  # let refreshes gather: one write per entry per interval
                    self._lock.wait(self.LINGER)
                if not self._pending:
                    self._thread = None  # under the lock: the next put starts a thread
                    return
            with self._order:
                with self._lock:
                    items = list(self._pending.items())
                    self._pending.clear()
                for entry_id, headers in items:
                    self._write_one(entry_id, headers)

    def _write_one(self, entry_id: uuid.UUID, headers: hishel.Headers) -> None:
        try:
            self._write(entry_id, headers)
        except (sqlite3.Error, RuntimeError) as exc:  # closed, or the entry went meanwhile
            log.debug("cache: refreshing %s: %s", entry_id, exc)

    def flush(self) -> None:
        """Write what waits now, here; the thread leaves (joined, bounded)."""
        with self._order:
            with self._lock:
                items = list(self._pending.items())
                self._pending.clear()
                self._stop = True
                self._lock.notify_all()
                thread = self._thread
            for entry_id, headers in items:
                self._write_one(entry_id, headers)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)


_live_caches: weakref.WeakSet[HTTPCache] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for cache in list(_live_caches):
        cache.flush_writes()


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
        self._behind = _WriteBehind(lambda entry_id, h: self.storage.update_headers(entry_id, h))
        # hishel's storage decisions for plain misses, by request and response (see
        # CacheLookup._answer): the same answer for every response alike, worked out once.
        self._decisions: dict[tuple[Any, ...], Any] = {}
        self.closed = False
        _live_caches.add(self)

    @property
    def storage(self) -> hishel.SqliteStorage:
        """Opened on first use, so a session that never caches opens no database."""
        with self._lock:
            if self.closed:
                raise RuntimeError("the session's cache is closed")
            if self._storage is None:
                target = ":memory:"
                if self.path is not None:
                    make_private_database(self.path)
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

    def entries(self, key: str, bodies: bool = True) -> list[hishel.Entry]:
        """What is stored under ``key``: from the memory tier, else from SQLite (and kept there
        when every body is small enough). ``bodies=False``: only the entries' ids, requests
        and heads will be read (the memory tier's own, not copies with a stream each)."""
        found = self._memory.get(key, bodies)
        if found is not None:
            return found
        version = self._memory.version
        entries = self.storage.get_entries(key)
        if not entries:
            return entries
        for i, entry in enumerate(entries):
            newer = self._behind.overlay(entry.id)  # a refresh not yet written
            if newer is not None:
                entries[i] = _entry_with(entry, headers=newer)
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

    def decision(self, memo: tuple[Any, ...]) -> Any:
        """hishel's answer kept for a response like this one (None: not asked yet)."""
        return self._decisions.get(memo)

    def decided(self, memo: tuple[Any, ...], state: Any) -> None:
        """Keep hishel's answer for ``memo``: a few heads at a time (each the same but for a
        ``Date`` that moves on every second), so the oldest go first."""
        decisions = self._decisions
        if len(decisions) >= _DECISIONS:
            with contextlib.suppress(KeyError, StopIteration, RuntimeError):  # (another thread)
                del decisions[next(iter(decisions))]
        decisions[memo] = state

    def in_memory(self, key: str) -> bool:
        """Whether ``key``'s entries are in the memory tier (reading them needs no SQLite)."""
        return self._memory.holds(key)

    def refresh(self, key: str, entry_id: uuid.UUID, headers: hishel.Headers) -> None:
        """An entry keeps its body and takes new headers (a 304, or the same bytes sent again),
        in the memory tier now and in SQLite behind the task (:class:`_WriteBehind`)."""
        self._memory.refresh(key, entry_id, headers)
        self._behind.put(entry_id, headers)

    def flush_writes(self) -> None:
        """Every refresh waiting to be written goes to SQLite now (a session's end, exit)."""
        if not self.closed:
            self._behind.flush()

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
        self._behind.discard()
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
        self.flush_writes()
        self._memory.forget()
        if self.path is not None:
            self._execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.flush_writes()
        with self._lock:
            self.closed = True
            storage, self._storage, self._connection = self._storage, None, None
        self._memory.forget()
        if storage is not None:
            storage.close()
