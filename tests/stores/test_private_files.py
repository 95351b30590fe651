"""The state directory is private: every directory 0700, every file 0600, nothing followed or adopted.

Issue 19.7/19.10 and 13.7: the stores' files (cookies, credentials, the cache database and its
-wal/-shm, the lock, temporary files) go through ``open_private``/``private_dir``; an entry that is
a symbolic link or another user's is refused, and nothing is written through it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from urlsession_module import StateDirectoryError
from urlsession_module._storage import private_dir
from urlsession_module._stores import (
    CACHE_NAME,
    COOKIES_NAME,
    CREDENTIALS_NAME,
    LOCK_NAME,
    STORES_DIR,
    persistent_stores,
)
from urlsession_module.testing import LocalServer

from ._util import cookies_of, get, tag

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000 for the test: a file or directory the package leaves to the umask shows 0666/0777.

    The background transfer process started during the test inherits it too.
    """
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


def flushed(session: Any) -> None:
    """``session.flush()`` and wait for its callback (bounded)."""
    done = threading.Event()
    session.flush(lambda _result: done.set())
    assert done.wait(10), "flush did not call back"


def use_everything(server: LocalServer, session: Any, rec: Any) -> None:
    """Download a file, store a cache entry, a cookie and a credential, then flush."""
    mark = tag()
    done = rec.completed(session.downloadTask(url=server.url(f"/bytes/5000?m={mark}")), 30)
    assert done.success, (done.errorCode, done.message)
    hit = get(session, rec, server.url(f"/cache?max_age=600&etag={mark}"))
    assert hit.success and hit.statusCode == 200
    assert get(session, rec, server.url(f"/cookies/set?c{mark}=1&max_age=600")).success
    auth = get(session, rec, server.url(f"/auth/basic?user=u&password=p&m={mark}"))
    assert auth.statusCode == 401  # no credential yet
    auth = get(session, rec, server.url(f"/auth/basic?m={mark}").replace("://", "://user:passwd@"))
    assert auth.statusCode == 200
    flushed(session)


def modes(home: Path) -> dict[str, str]:
    """Every entry under ``home`` (and home) that is not private: path -> what it is."""
    wrong: dict[str, str] = {}
    for entry in [home, *home.rglob("*")]:
        st = os.lstat(entry)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            wrong[str(entry)] = "a symbolic link"
        elif stat.S_ISDIR(st.st_mode) and mode != 0o700:
            wrong[str(entry)] = f"directory {mode:o}"
        elif not stat.S_ISDIR(st.st_mode) and mode & 0o077:
            wrong[str(entry)] = f"file {mode:o}"
        elif st.st_uid != os.geteuid():
            wrong[str(entry)] = f"owned by uid {st.st_uid}"
    return wrong


@pytest.mark.usefixtures("open_umask", "transfer_process")
def test_every_state_entry_is_private_after_all_three_kinds_ran(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """After default, ephemeral and background sessions downloaded, cached, set cookies and
    flushed, under umask 000, every directory is 0700 and every file 0600 (no group/other bit)."""
    for config in ({}, {"type": "ephemeral"}, {"identifier": f"com.test.private.{tag()}"}):
        session = make_session(**config)
        use_everything(server, session, recorder(session))
    stores = state_home / STORES_DIR
    assert (stores / COOKIES_NAME).exists() and (stores / CREDENTIALS_NAME).exists()
    assert any(stores.glob("cache.sqlite3*"))
    downloads = {p.name.split("-")[0] for p in (state_home / "downloads").iterdir()}
    assert {"default", "background"} <= downloads  # (the ephemeral folder goes with its session)
    assert any(state_home.glob("transfer*"))  # the background transfer process ran here
    assert modes(state_home) == {}


@pytest.mark.usefixtures("open_umask")
def test_stores_files_made_under_umask_000_are_0600(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """The stores alone (no background process): cookies, credentials, lock, cache and its
    -wal/-shm are 0600 and the directories 0700 even when the umask would give 0666/0777."""
    session = make_session()
    use_everything(server, session, recorder(session))
    names = {p.name for p in (state_home / STORES_DIR).iterdir()}
    assert {COOKIES_NAME, CREDENTIALS_NAME, "stores.lock", "cache.sqlite3"} <= names
    assert modes(state_home) == {}


# -- refused: another user's, or a link ---------------------------------------------------------


@contextlib.contextmanager
def refused(problem: str) -> Iterator[None]:
    """The block raises StateDirectoryError saying ``problem`` (its message is ``args[0]``)."""
    with pytest.raises(StateDirectoryError) as caught:
        yield
    assert problem in caught.value.args[0]


def session_refused_or_unharmed(make_session: MakeSession, server: LocalServer, rec: Any) -> None:
    """Use a session over a refused state entry: the session (or its download call) is refused,
    or it keeps its stores in memory; whichever, the caller then checks that nothing was written
    where the refused entry is or points."""
    try:
        session = make_session()
    except StateDirectoryError:
        return
    recorder = rec(session)
    get(session, recorder, server.url("/cookies/set?planted=1&max_age=600"))
    with contextlib.suppress(StateDirectoryError):  # downloads are refused at the call
        recorder.completed(session.downloadTask(url=server.url(f"/bytes/100?m={tag()}")), 30)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another uid")
@pytest.mark.parametrize("owned", ["home", STORES_DIR])
def test_a_state_directory_owned_by_another_user_is_refused(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    state_home: Path,
    owned: str,
) -> None:
    """A state (or stores) directory another uid owns is not adopted: the stores refuse it with
    StateDirectoryError, it keeps its owner and mode, and gets nothing new."""
    (state_home / STORES_DIR).mkdir(parents=True, mode=0o700)
    theirs = state_home if owned == "home" else state_home / STORES_DIR
    os.chown(theirs, 12345, 12345)
    os.chmod(theirs, 0o755)
    before = sorted(p.name for p in theirs.rglob("*"))
    with refused("owned by another user"):
        persistent_stores(state_home)
    session_refused_or_unharmed(make_session, server, recorder)
    assert (os.stat(theirs).st_uid, stat.S_IMODE(os.stat(theirs).st_mode)) == (12345, 0o755)
    assert sorted(p.name for p in theirs.rglob("*")) == before


@pytest.mark.parametrize("name", [STORES_DIR, "downloads"])
def test_a_symlinked_state_subdirectory_is_refused(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    state_home: Path,
    tmp_path: Path,
    name: str,
) -> None:
    """A ``stores`` or ``downloads`` symbolic link in the state directory is refused with
    StateDirectoryError, and nothing lands where it points."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state_home.mkdir(mode=0o700)
    (state_home / name).symlink_to(elsewhere)
    with refused("symbolic link"):
        private_dir(state_home / name / "default")
    if name == STORES_DIR:
        with refused("symbolic link"):
            persistent_stores(state_home)
    session_refused_or_unharmed(make_session, server, recorder)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "name", [COOKIES_NAME, CREDENTIALS_NAME, LOCK_NAME, CACHE_NAME, f"{CACHE_NAME}-wal"]
)
def test_a_planted_symlink_in_place_of_a_store_file_is_refused(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    state_home: Path,
    tmp_path: Path,
    name: str,
) -> None:
    """A link planted where a store file goes: the stores refuse it (StateDirectoryError) and the
    file it points to is neither read nor written."""
    target = tmp_path / "victim"
    target.write_text("precious\n")
    (state_home / STORES_DIR).mkdir(parents=True, mode=0o700)
    (state_home / STORES_DIR / name).symlink_to(target)
    with refused("symbolic link"):
        persistent_stores(state_home)
    session_refused_or_unharmed(make_session, server, recorder)
    assert target.read_text() == "precious\n"
    assert os.stat(target).st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name", [COOKIES_NAME, LOCK_NAME])
def test_a_symlink_planted_while_a_session_runs_is_never_written_through(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    state_home: Path,
    tmp_path: Path,
    name: str,
) -> None:
    """A store file swapped for a link while a session runs: the next cookie is not stored
    through it (the store refuses the link; the task still succeeds)."""
    session = make_session()
    rec = recorder(session)
    assert cookies_of(get(session, rec, server.url("/cookies/set?first=1&max_age=600")))
    target = tmp_path / "victim"
    target.write_text("precious\n")
    planted = state_home / STORES_DIR / name
    planted.unlink()
    planted.symlink_to(target)
    done = get(session, rec, server.url("/cookies/set?second=2&max_age=600"))
    assert done.success and done.statusCode == 200
    assert target.read_text() == "precious\n"
    assert planted.is_symlink()
