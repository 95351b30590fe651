"""Where the package keeps things on disk, and ``Blob``, Titanium's handle on a file or bytes.

Everything lives under one private state directory: ``$URLSESSION_HOME`` when set, else the
user's data directory for the package. Directories are made 0700 and files 0600, because
downloads, cookies and the background journal can hold a user's secrets.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
from pathlib import Path

import platformdirs

from .exceptions import InvalidArgumentTypeError

__all__ = ["Blob", "private_dir", "state_dir"]

APP_NAME = "urlsession_module"


def state_dir() -> Path:
    """The state directory, created private (0700) on first use."""
    env = os.environ.get("URLSESSION_HOME")
    root = Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP_NAME))
    return private_dir(root)


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) and make sure the leaf is 0700 whatever the umask."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (path.stat().st_mode & 0o777) != 0o700:
        path.chmod(0o700)
    return path


def safe_name(text: str, fallback: str = "_") -> str:
    """A file-system-safe rendering of an identifier or a server's file name (bounded length)."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return keep.strip(".")[:120] or fallback


def background_key(identifier: str) -> str:
    """The folder name of a background session's downloads (host and transfer process agree)."""
    return f"background-{safe_name(identifier)}"


def part_name(task_id: str) -> str:
    """The file a task's download grows in until it is complete (and a resume continues)."""
    return f".{safe_name(task_id)}.part"


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
        """Move a file Blob to ``destination`` (atomic on one file system) and follow it there."""
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
        self._path = dest
        return self

    def copy(self, destination: str | os.PathLike[str]) -> Blob:
        """Copy to ``destination``; returns a Blob of the copy, this one stays where it is."""
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
