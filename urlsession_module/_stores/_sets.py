"""One session's set of stores: the persistent set default and background sessions share (one
object per state directory in a process), or an ephemeral session's own in memory."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from .._config_values import ConfigValues
from .._storage import check_private_file, private_dir
from ._cache import DISK_CACHE_SIZE, MEMORY_CACHE_SIZE, HTTPCache, sqlite_files
from ._cookies import CookieStore
from ._credentials import CredentialStore
from ._exchange import Exchange
from ._shared import _SharedFile

STORES_DIR = "stores"
COOKIES_NAME = "cookies.lwp"
CREDENTIALS_NAME = "credentials.json"
CACHE_NAME = "cache.sqlite3"
LOCK_NAME = "stores.lock"


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
            _check_files(directory)
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


def _check_files(directory: Path) -> None:
    """Refuse, before a session uses them, store files that are links or not ours.

    Each file is opened without following links whenever it is used, too; checking them all
    here makes a planted link fail the session's creation (a :class:`StateDirectoryError`)
    rather than one of its tasks' cookies later (the files are not made here: the cache's
    database is made when the session first caches).
    """
    names = (COOKIES_NAME, CREDENTIALS_NAME, LOCK_NAME)
    for path in [*(directory / name for name in names), *sqlite_files(directory / CACHE_NAME)]:
        check_private_file(path)


def memory_stores() -> Stores:
    """An ephemeral session's own stores; nothing touches the disk."""
    stores = Stores(CookieStore(), HTTPCache(None, MEMORY_CACHE_SIZE), CredentialStore())
    stores._refs = 1
    return stores
