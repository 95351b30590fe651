"""Where the package keeps things on disk, and ``Blob``, Titanium's handle on a file or bytes.

Everything lives under one private state directory: ``$URLSESSION_HOME`` when set, else the
user's data directory for the package. Directories are made 0700 and files 0600, because
downloads, cookies and the background journal can hold a user's secrets. Files the user asks
for (a Blob moved or copied out) are the user's: they follow the umask like any other.
"""

from __future__ import annotations

import contextlib
import errno
import mimetypes
import os
import shutil
import stat
from pathlib import Path

import platformdirs

from .exceptions import InvalidArgumentTypeError, StateDirectoryError

__all__ = [
    "Blob",
    "check_private_file",
    "open_private",
    "private_dir",
    "state_dir",
    "state_home",
]

APP_NAME = "urlsession_module"


def state_home() -> Path:
    """Where the state directory is (not created): ``$URLSESSION_HOME`` or the user's data dir."""
    env = os.environ.get("URLSESSION_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP_NAME))


def state_dir() -> Path:
    """The state directory, created private (0700) on first use; refused if it is not ours."""
    return private_dir(state_home())


def private_dir(path: Path) -> Path:
    """Make ``path`` and its missing parents 0700 whatever the umask, and check it is ours.

    As ssh refuses a loose ``~/.ssh``: an existing directory owned by another user, or a symbolic
    link inside the state directory, is refused (:class:`StateDirectoryError`), because whoever
    owns it could swap in the files a host trusts (the transfer key and socket) or read what it
    keeps. A directory we own is made 0700 again if its mode drifted.
    """
    path = Path(os.path.abspath(path))
    home = Path(os.path.abspath(state_home()))
    if path == home or home in path.parents:
        # Inside the state home every component is checked, without following links, before
        # anything is made under it; the home itself (and the way to it) may be a link the user
        # made, but what it points to must be ours.
        steps = [home, *(p for p in reversed(path.parents) if home in p.parents)]
        if path != home:
            steps.append(path)
        _make_parents(home)
    else:
        steps = [path]
        _make_parents(path)
    for directory in steps:
        with contextlib.suppress(FileExistsError):  # another process may make it meanwhile
            os.mkdir(directory, 0o700)
        _check_private_dir(directory, follow=directory == home)
    return path


def _make_parents(path: Path) -> None:
    """Missing parents on the way to a private directory are made 0700 too, not by the umask."""
    missing: list[Path] = []
    probe = path.parent
    while not os.path.lexists(probe) and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(made, 0o700)


def _check_private_dir(path: Path, *, follow: bool) -> None:
    st = os.stat(path) if follow else os.lstat(path)
    if not follow and stat.S_ISLNK(st.st_mode):
        raise StateDirectoryError(str(path), "is a symbolic link")
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirectoryError(str(path), "is not a directory")
    if st.st_uid != os.geteuid():
        raise StateDirectoryError(str(path), f"is owned by another user (uid {st.st_uid})")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


def open_private(path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    """``os.open`` for a file in the state directory: never through a symbolic link, only ours.

    A planted ``transfer.pid`` link would otherwise make a privileged transfer process overwrite
    the file it points to; a file another user owns could be swapped under us. A file we own
    whose mode drifted is made 0600 again. Returns the descriptor (the caller closes it).
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateDirectoryError(os.fspath(path), "is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise StateDirectoryError(
                os.fspath(path), f"is owned by another user (uid {st.st_uid})"
            )
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_private_file(path: str | os.PathLike[str]) -> None:
    """Refuse an existing state file (a socket, a key) that is a link or not ours; absent is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise StateDirectoryError(os.fspath(path), "is a symbolic link")
    if st.st_uid != os.geteuid():
        raise StateDirectoryError(os.fspath(path), f"is owned by another user (uid {st.st_uid})")


# A name made here is at most this many bytes in UTF-8: a download's file name is two of them
# and a dash (``<task>-<server's name>``), which must fit the 255 bytes file systems allow a path
# component. Counted in bytes, not characters: 120 Chinese characters are 360 bytes.
NAME_BYTES = 120
# An extension this short (in bytes) survives a cut name, so the file's type still shows.
_KEPT_SUFFIX_BYTES = 16


def safe_name(text: str, fallback: str = "_") -> str:
    """A file-system-safe rendering of an identifier or a server's file name.

    Letters and digits of any script are kept; at most :data:`NAME_BYTES` bytes of UTF-8, cut
    between characters (never inside one), keeping a short extension when the name is cut.
    """
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".")
    return _cut_utf8(keep, NAME_BYTES) or fallback


def _cut_utf8(name: str, limit: int) -> str:
    if len(name.encode()) <= limit:
        return name
    stem, dot, suffix = name.rpartition(".")
    suffix_bytes = len(suffix.encode())
    if dot and stem and 0 < suffix_bytes <= _KEPT_SUFFIX_BYTES:
        return f"{_utf8_prefix(stem, limit - suffix_bytes - 1)}.{suffix}"
    return _utf8_prefix(name, limit)


def _utf8_prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that is at most ``limit`` bytes in UTF-8 (whole characters:
    a character cut in two at the limit is dropped)."""
    return text.encode()[:limit].decode("utf-8", errors="ignore")


def background_key(identifier: str) -> str:
    """The folder name of a background session's downloads (host and transfer process agree)."""
    return f"background-{safe_name(identifier)}"


def part_name(task_id: str) -> str:
    """The file a task's download grows in until it is complete (and a resume continues)."""
    return f".{safe_name(task_id)}.part"


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``os.umask`` sets it
    too, so reading it that way races with other threads creating files meanwhile)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


class Blob:
    """``Titanium.Blob``: bytes in memory or a file on disk, with its length and MIME type.

    A downloaded file stays where the package put it until the host moves it (``move``) or the
    session's ``reset()`` runs; ``copy`` leaves it in place.
    """

    def __init__(
        self,
        data: bytes | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        mimeType: str | None = None,
    ) -> None:
        if (data is None) == (path is None):
            raise InvalidArgumentTypeError("data", "a Blob needs exactly one of bytes or a path")
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentTypeError("data", f"'data' must be bytes (got {data!r})")
        self._data = bytes(data) if data is not None else None
        self._path = os.fspath(path) if path is not None else None
        guessed = mimetypes.guess_type(self._path)[0] if self._path else None
        self.mimeType: str = mimeType or guessed or "application/octet-stream"

    @classmethod
    def fromFile(cls, path: str | os.PathLike[str], mimeType: str | None = None) -> Blob:
        return cls(path=path, mimeType=mimeType)

    @property
    def nativePath(self) -> str | None:
        """The file's path, or None for an in-memory Blob."""
        return self._path

    @property
    def file(self) -> str | None:
        return self._path

    @property
    def length(self) -> int:
        if self._data is not None:
            return len(self._data)
        assert self._path is not None
        return os.path.getsize(self._path)

    size = length

    def read(self) -> bytes:
        """The whole content. For large files prefer ``open()``, which streams."""
        if self._data is not None:
            return self._data
        assert self._path is not None
        with open(self._path, "rb") as f:
            return f.read()

    bytes = read

    def open(self) -> object:
        """A binary file object for streaming a file Blob (an in-memory one gets a BytesIO)."""
        if self._data is not None:
            import io

            return io.BytesIO(self._data)
        assert self._path is not None
        return open(self._path, "rb")

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", errors="replace")

    def toString(self) -> str:
        return self.text

    def move(self, destination: str | os.PathLike[str]) -> Blob:
        """Move a file Blob to ``destination`` (atomic on one file system) and follow it there.

        The moved file gets the mode of a file the user makes (0666 less the umask), like a copy.
        """
        if self._path is None:
            self._write_to(destination)
            return self
        dest = os.fspath(destination)
        if os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(self._path))
        try:
            os.replace(self._path, dest)
        except OSError:
            shutil.move(self._path, dest)
        # The file now is the user's, no longer the package's private download: it takes the
        # mode a file the user made would have (0666 less the umask), as ``copy`` gives.
        os.chmod(dest, 0o666 & ~_umask())
        self._path = dest
        return self

    def copy(self, destination: str | os.PathLike[str]) -> Blob:
        """Copy to ``destination``; returns a Blob of the copy, this one stays where it is.

        A new file gets 0666 less the umask (an existing one keeps its mode, as ``cp`` does).
        """
        if self._path is None:
            self._write_to(destination)
            return Blob(path=destination, mimeType=self.mimeType)
        dest = os.fspath(destination)
        if os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(self._path))
        shutil.copyfile(self._path, dest)
        return Blob(path=dest, mimeType=self.mimeType)

    def _write_to(self, destination: str | os.PathLike[str]) -> None:
        assert self._data is not None
        tmp = f"{os.fspath(destination)}.part"
        with open(tmp, "wb") as f:
            f.write(self._data)
        os.replace(tmp, destination)

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        where = f"path={self._path!r}" if self._path else f"{len(self._data or b'')} bytes"
        return f"<Blob {where} mimeType={self.mimeType!r}>"
