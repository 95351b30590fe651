"""A small file several processes share, and a store kept in memory over such a file.

The cookie and credential stores both work this way; only how their content is read and written
differs, so the locking, refreshing and replacing is written once, here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path


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
