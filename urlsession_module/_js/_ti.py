"""The Titanium services behind ``Ti.App.Properties`` and ``Ti.Filesystem``, headless.

Plain Python objects the JavaScript side reaches through the bridge (their public methods and
properties are what app code sees). Properties persist per app id in the state directory, in a
0600 file written whole and renamed into place, so a run that dies mid-write leaves the old
file; files the app writes through ``Ti.Filesystem`` are the app's own and follow the umask.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .._storage import Blob, open_private, private_dir, safe_name, state_dir
from ..exceptions import InvalidArgumentTypeError

__all__ = ["AppProperties", "File", "Filesystem", "app_dir"]


def app_dir(app_id: str) -> Path:
    """The app's own private directory in the state directory: ``js/<app id>``."""
    return private_dir(state_dir() / "js" / safe_name(app_id))


def _name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgumentTypeError("name", f"'name' must be a non-empty string (got {name!r})")
    return name


class AppProperties:
    """``Ti.App.Properties``: typed get/set of named values, persisted per app id."""

    apiName = "Ti.App.Properties"

    def __init__(self, app_id: str) -> None:
        self._path = app_dir(app_id) / "properties.json"
        try:
            with open(self._path, encoding="utf-8") as f:
                loaded = json.load(f)
            self._values: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        except FileNotFoundError:
            self._values = {}
        except (OSError, ValueError):  # a damaged file: start empty rather than not at all
            self._values = {}

    def _save(self) -> None:
        tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self._values, f)
        os.replace(tmp, self._path)

    def _get(self, name: object, default: Any, kind: type | None) -> Any:
        value = self._values.get(_name(name))
        if value is None:
            return default
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        if kind is bool:
            return bool(value)
        if kind is str:
            return value if isinstance(value, str) else json.dumps(value)
        return value

    def _set(self, name: object, value: Any) -> None:
        self._values[_name(name)] = value
        self._save()

    def getString(self, name: str, default: str | None = None) -> Any:
        return self._get(name, default, str)

    def getInt(self, name: str, default: int | None = None) -> Any:
        return self._get(name, default, int)

    def getDouble(self, name: str, default: float | None = None) -> Any:
        return self._get(name, default, float)

    def getBool(self, name: str, default: bool | None = None) -> Any:
        return self._get(name, default, bool)

    def getObject(self, name: str, default: Any = None) -> Any:
        return self._get(name, default, None)

    def getList(self, name: str, default: list[Any] | None = None) -> Any:
        return self._get(name, default, None)

    def setString(self, name: str, value: Any) -> None:
        self._set(name, None if value is None else str(value))

    def setInt(self, name: str, value: Any) -> None:
        self._set(name, None if value is None else int(value))

    def setDouble(self, name: str, value: Any) -> None:
        self._set(name, None if value is None else float(value))

    def setBool(self, name: str, value: Any) -> None:
        self._set(name, None if value is None else bool(value))

    def setObject(self, name: str, value: Any) -> None:
        self._set(name, value)

    def setList(self, name: str, value: Any) -> None:
        if value is not None and not isinstance(value, list):
            raise InvalidArgumentTypeError("value", f"'value' must be an array (got {value!r})")
        self._set(name, value)

    def hasProperty(self, name: str) -> bool:
        return _name(name) in self._values

    def removeProperty(self, name: str) -> None:
        if self._values.pop(_name(name), None) is not None:
            self._save()

    def removeAllProperties(self) -> None:
        self._values.clear()
        self._save()

    def listProperties(self) -> list[str]:
        return sorted(self._values)


class File:
    """``Ti.Filesystem.File``: a path, and what app code does with it."""

    apiName = "Ti.Filesystem.File"

    def __init__(self, path: str) -> None:
        self._path = os.path.normpath(path)

    @property
    def nativePath(self) -> str:
        return self._path

    @property
    def name(self) -> str:
        return os.path.basename(self._path)

    @property
    def size(self) -> int:
        return os.path.getsize(self._path) if os.path.isfile(self._path) else 0

    @property
    def parent(self) -> File:
        return File(os.path.dirname(self._path))

    def exists(self) -> bool:
        return os.path.exists(self._path)

    def isFile(self) -> bool:
        return os.path.isfile(self._path)

    def isDirectory(self) -> bool:
        return os.path.isdir(self._path)

    def resolve(self) -> str:
        return self._path

    def read(self) -> Blob | None:
        """The file as a Blob (read when asked), or null when there is no such file."""
        return Blob(path=self._path) if os.path.isfile(self._path) else None

    def write(self, data: Any, append: bool = False) -> bool:
        """Write a Blob, a File or a string; ``append`` adds to the end. True when written."""
        if isinstance(data, File):
            data = data.read()
        mode = "ab" if append else "wb"
        if isinstance(data, Blob):
            with data.open() as src, open(self._path, mode) as dst:  # type: ignore[attr-defined]
                shutil.copyfileobj(src, dst)
            return True
        if data is None:
            raise InvalidArgumentTypeError(
                "data", "'data' must be a Blob, File or string (got null)"
            )
        text = data if isinstance(data, str) else json.dumps(data)
        with open(self._path, mode) as f:
            f.write(text.encode("utf-8"))
        return True

    def getDirectoryListing(self) -> list[str] | None:
        return sorted(os.listdir(self._path)) if os.path.isdir(self._path) else None

    def createDirectory(self, recursive: bool = True) -> bool:
        if os.path.isdir(self._path):
            return False
        os.makedirs(self._path) if recursive else os.mkdir(self._path)
        return True

    def createFile(self) -> bool:
        if os.path.exists(self._path):
            return False
        open(self._path, "xb").close()
        return True

    def deleteFile(self) -> bool:
        if not os.path.isfile(self._path):
            return False
        os.unlink(self._path)
        return True

    def deleteDirectory(self, recursive: bool = False) -> bool:
        if not os.path.isdir(self._path):
            return False
        shutil.rmtree(self._path) if recursive else os.rmdir(self._path)
        return True

    def copy(self, destination: str) -> bool:
        shutil.copyfile(self._path, destination)
        return True

    def move(self, destination: str) -> bool:
        shutil.move(self._path, destination)
        self._path = os.path.normpath(destination)
        return True

    def rename(self, name: str) -> bool:
        return self.move(os.path.join(os.path.dirname(self._path), name))

    def toString(self) -> str:
        return self._path


class Filesystem:
    """``Ti.Filesystem``: the app's data directory (kept), a temporary one (gone after the run)."""

    apiName = "Ti.Filesystem"
    separator = os.sep
    lineEnding = os.linesep
    MODE_READ = 0
    MODE_WRITE = 1
    MODE_APPEND = 2

    def __init__(self, app_id: str) -> None:
        self._data = private_dir(app_dir(app_id) / "data")
        self._temp: str | None = None

    @property
    def applicationDataDirectory(self) -> str:
        return str(self._data)

    @property
    def applicationSupportDirectory(self) -> str:
        return str(self._data)

    @property
    def tempDirectory(self) -> str:
        if self._temp is None:
            self._temp = tempfile.mkdtemp(prefix="urlsession-js-")
        return self._temp

    def getFile(self, *parts: Any) -> File:
        """A File for the path the parts make (a ``file://`` prefix and doubled '/' allowed)."""
        if not parts or not all(isinstance(p, str) for p in parts):
            raise InvalidArgumentTypeError("path", f"'path' must be strings (got {list(parts)!r})")
        joined = os.path.join(*(p.removeprefix("file://") for p in parts))
        return File(joined)

    def createTempFile(self) -> File:
        fd, path = tempfile.mkstemp(dir=self.tempDirectory)
        os.close(fd)
        return File(path)

    def createTempDirectory(self) -> File:
        return File(tempfile.mkdtemp(dir=self.tempDirectory))

    def isExternalStoragePresent(self) -> bool:
        return False

    def close(self) -> None:
        """Remove the temporary directory (the data directory is the app's and stays)."""
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
