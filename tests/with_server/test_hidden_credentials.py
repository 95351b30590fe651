"""Credentials never in URLs or reprs (issue 15, item 5): the hidden-value test.

A known password is given every way a user can give one (a task's ``credential``, user info
written in the URL, the configuration's ``credential``), the tasks authenticate for real against
the local server (whose ``/auth/basic-hashed`` URL holds only the password's SHA-256), and then
every repr, event, log line, stderr line and state file is searched for the password and its
Basic token. Only two files may hold it: the credential store and the background journal, each
0600.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

USER = "user"
PASSWORD = "s3cr3t-pass"
CONFIG_PASSWORD = "c0nfig-s3cr3t"
ALLOWED = ("credentials.json", "journal.sqlite3")  # (and the journal's -wal/-shm files)


def _path(password: str) -> str:
    """A realm per password: the store keeps one credential per protection space."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f"/auth/basic-hashed?user={USER}&password_sha256={digest}&realm=r{digest[:8]}"


def _secrets() -> list[str]:
    out = []
    for password in (PASSWORD, CONFIG_PASSWORD):
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        out += [password, token]
    return out


def _texts_of(event: Any) -> list[str]:
    return [repr(event), *(repr(event[k]) for k in event)]


def _state_files(home: Path) -> tuple[list[Path], list[Path]]:
    """(files that must not hold a secret, files allowed to)."""
    plain, allowed = [], []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        (allowed if path.name.startswith(ALLOWED) else plain).append(path)
    return plain, allowed


def _assert_hidden(texts: list[str], files: list[Path]) -> None:
    for secret in _secrets():
        for text in texts:
            assert secret not in text, text
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


def test_password_appears_nowhere_but_the_credential_store(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    state_home: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    session = make_session(credential={"user": USER, "password": CONFIG_PASSWORD})
    rec = recorder(session)
    url = server.url(_path(PASSWORD))
    given = session.dataTask(url=url, method="GET", credential={"user": USER, "password": PASSWORD})
    written = session.dataTask(url=url.replace("://", f"://{USER}:{PASSWORD}@"), method="GET")
    from_config = session.dataTask(url=server.url(_path(CONFIG_PASSWORD)), method="GET")
    for tid in (given, written, from_config):
        assert rec.completed(tid).statusCode == 200
    texts: list[str] = [repr(session), repr(session.configuration)]
    for tid in (given, written):
        task = session.getTask(tid)
        assert task is not None
        assert task.originalRequest.url == url and task.currentRequest.url == url
        texts += [repr(task), repr(task.originalRequest), repr(task.currentRequest)]
        texts += [repr(task.response), str(task.originalRequest.url)]
    for event in rec.events:
        texts += _texts_of(event)
    texts += [r.getMessage() for r in caplog.records]
    out, err = capfd.readouterr()
    texts += [out, err]
    plain, allowed = _state_files(state_home)
    _assert_hidden(texts, plain)
    store = [p for p in allowed if p.name == "credentials.json"]
    assert store, "the credential store was written"
    assert PASSWORD.encode() in store[0].read_bytes()
    assert CONFIG_PASSWORD.encode() in store[0].read_bytes()
    assert stat.S_IMODE(os.stat(store[0]).st_mode) == 0o600


def test_background_journal_keeps_the_credential_in_its_0600_file_only(
    server: LocalServer,
    transfer: Any,
    recorder: MakeRecorder,
    state_home: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.with_server.test_background import _bg_session

    caplog.set_level(logging.DEBUG)
    session = _bg_session("com.test.hidden")
    rec = recorder(session)
    url = server.url(_path(PASSWORD))
    tid = session.downloadTask(url=url, credential={"user": USER, "password": PASSWORD})
    assert rec.completed(tid).statusCode == 200
    task = session.getTask(tid)
    assert task is not None and task.originalRequest.url == url
    texts = [repr(task), repr(task.originalRequest), repr(task.currentRequest)]
    for event in rec.events:
        texts += _texts_of(event)
    texts += [r.getMessage() for r in caplog.records]
    transfer.pid()
    plain, allowed = _state_files(state_home)
    _assert_hidden(texts, plain)
    journal = [p for p in allowed if p.name.startswith("journal.sqlite3")]
    assert journal
    for path in journal:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    session.invalidateAndCancel()
    assert session.waitForInvalidation(10)
