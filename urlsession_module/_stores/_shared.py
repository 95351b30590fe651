"""A small file several processes share, and a store kept in memory over such a file.

The cookie and credential stores both work this way; only how their content is read and written
differs, so the locking, refreshing and replacing is written once, here.

Every file here (the content, its lock, the temporary file of a rewrite) is opened with
:func:`open_private`: never through a symbolic link, never another user's, always 0600 whatever
the umask. A link planted in the stores directory would otherwise have a (perhaps privileged)
host write its cookies or passwords wherever the link points.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .._storage import open_private


class _SharedFile:
    """A file several processes read and rewrite: ``flock`` to write, atomic replace, mode 0600.

    A symbolic link or another user's file where the file, its lock or its temporary file goes
    is refused (:class:`~urlsession_module.exceptions.StateDirectoryError`, an ``OSError``).
    """

    def __init__(self, path: Path, lock_path: Path) -> None:
        self.path = path
        self._lock_path = lock_path

    def stamp(self) -> tuple[int, int, int] | None:
        """What identifies the file's current content (None: there is no file)."""
        try:
            st = os.lstat(self.path)  # a link planted here changes the stamp; reading refuses it
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = open_private(self._lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> str | None:
        """The content (None: there is no file)."""
        try:
            fd = open_private(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, encoding="utf-8") as f:
            return f.read()

    def write(self, text: str) -> None:
        """Replace the content at once (a reader sees the old file or the new one, never half)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
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


#: How long a read trusts the file's stamp it last looked at. Every task reads the cookie jar,
#: and an ``lstat`` per task was ~6 % of a small task's time on the curl network thread
#: (py-spy, scenario b); a burst of tasks now looks once per window. What another process
#: wrote shows this much later at most (Apple's stores, too, sync between processes in the
#: background); a write always looks first (reload before merge), and this process's own
#: sessions share one store object, so they see each other's changes at once.
_TRUST = 0.01
_clock = time.monotonic  # (a test's clock replaces it)


class _SharedStore:
    """What a store kept in memory and, with a file, shared with other processes does the same
    way whatever it holds: a read first takes what another process wrote (the file's stamp
    changed; looked at once per ``_TRUST`` at most), every write happens under the file's
    ``flock`` after such a refresh (reload-before-merge, always) and replaces the file. Subclasses say how their content is emptied
    (:meth:`_reset`), read from the file (:meth:`_load`) and written (:meth:`_dump`).
    """

    def __init__(self, file: _SharedFile | None = None) -> None:
        self._file = file
        self._lock = threading.RLock()
        self._stamp: tuple[int, int, int] | None = None
        self._trusted_until = 0.0  # (monotonic) a read before this skips looking at the file
        self._reset()

    def _reset(self) -> None:
        raise NotImplementedError

    def _load(self, file: _SharedFile) -> None:
        """Read the file into the (just emptied) content; an unreadable file leaves it empty."""
        raise NotImplementedError

    def _dump(self) -> str:
        raise NotImplementedError

    def _refresh(self, *, always: bool = False) -> None:
        """Take what another process wrote since we last looked (a read: unless it looked
        within ``_TRUST``; ``always``: a write, which must merge with the latest)."""
        if self._file is None:
            return
        now = _clock()
        if not always and now < self._trusted_until:
            return
        stamp = self._file.stamp()
        self._trusted_until = now + _TRUST
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
                self._refresh(always=True)
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
