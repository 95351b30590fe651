"""Files a download makes and files the user asks for: names cut by bytes, modes by the umask.

Issue 19.9: a server-chosen non-ASCII name of 120 characters is more than the 255 bytes a path
component may take; the download failed with -3005 after its whole body arrived. Issue 19.19: the
user's own files (``Blob.move``/``Blob.copy`` results) follow the umask like any file the user
makes; only the state directory is private.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from urlsession_module.testing import LocalServer

from ._util import tag

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def download(session: Any, rec: Any, url: str) -> Any:
    """Run a download task; its downloadcompleted event (the task must succeed)."""
    tid = session.downloadTask(url=url)
    done = rec.completed(tid, 30)
    assert done.success, (done.errorCode, done.message)
    (completed,) = rec.of(tid, "downloadcompleted")
    return completed


def disposition_url(server: LocalServer, filename: str) -> str:
    """A URL whose response names ``filename`` (RFC 6266 ``filename*``, UTF-8) for the download."""
    value = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    return server.url(f"/headers?{urlencode({'Content-Disposition': value, 'm': tag()})}")


@pytest.mark.parametrize(
    "filename",
    ["é" * 120, "日" * 120, "日本語" * 40 + ".pdf", "Ωμέγα" * 24 + ".tar", "x" * 300],
    ids=["latin-120", "cjk-120", "cjk-with-extension", "greek-with-extension", "ascii-300"],
)
def test_a_long_non_ascii_server_name_is_cut_by_bytes(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, filename: str
) -> None:
    """A server-chosen name longer than 255 bytes in UTF-8 no longer fails the download (-3005):
    the file's name (with the task's prefix) is at most 255 bytes, whole characters, and starts
    with the server's name; a short extension is kept."""
    session = make_session()
    completed = download(session, recorder(session), disposition_url(server, filename))
    path = Path(completed.data.nativePath)
    assert path.read_bytes() == b"ok"
    assert len(os.fsencode(path.name)) <= 255
    given = path.name[len(completed.taskIdentifier) + 1 :]  # <task>-<server's name>
    assert path.name == f"{completed.taskIdentifier}-{given}"
    stem, dot, suffix = filename.rpartition(".")
    if dot:
        assert given.endswith("." + suffix)
        assert stem.startswith(given[: -len(suffix) - 1])
    else:
        assert filename.startswith(given)
    assert len(given) >= 30


# -- the user's own files follow the umask ----------------------------------------------------


@pytest.fixture
def umask_027() -> Iterator[int]:
    """A umask the package's own 0600 differs from: the user's files are then 0640."""
    old = os.umask(0o027)
    try:
        yield 0o640
    finally:
        os.umask(old)


def test_blob_move_gives_a_file_of_the_umask(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    tmp_path: Path,
    umask_027: int,
) -> None:
    """A downloaded file moved where the user asked is the user's: 0666 less the umask (it was
    the package's 0600), to a new name, onto an existing file and into a directory alike."""
    session = make_session()
    rec = recorder(session)
    existing = tmp_path / "existing.bin"
    existing.write_bytes(b"old")
    os.chmod(existing, 0o600)
    folder = tmp_path / "folder"
    folder.mkdir()
    for destination in (tmp_path / "new.bin", existing, folder):
        blob = download(session, rec, server.url(f"/bytes/100?m={tag()}")).data
        assert stat.S_IMODE(os.stat(blob.nativePath).st_mode) == 0o600  # still the package's
        moved = blob.move(destination)
        assert stat.S_IMODE(os.stat(moved.nativePath).st_mode) == umask_027, destination
        assert moved.length == 100


def test_blob_copy_gives_a_file_of_the_umask(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    tmp_path: Path,
    umask_027: int,
) -> None:
    """A copy of a downloaded file is the user's new file: 0666 less the umask; the download
    itself stays private (0600)."""
    session = make_session()
    blob = download(session, recorder(session), server.url(f"/bytes/100?m={tag()}")).data
    copy = blob.copy(tmp_path / "copy.bin")
    assert stat.S_IMODE(os.stat(copy.nativePath).st_mode) == umask_027
    assert stat.S_IMODE(os.stat(blob.nativePath).st_mode) == 0o600
    assert copy.read() == blob.read()
