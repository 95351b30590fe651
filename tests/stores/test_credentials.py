"""Credentials: a 401 Basic challenge answered once, by protection space, never to another origin."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from urlsession_module._stores import CREDENTIALS_NAME, STORES_DIR
from urlsession_module.testing import LocalServer

from ._util import get, seen, tag

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

USER, PASSWORD = "alice", "s3cret-pa55"


def auth_path(marker: str, password: str = PASSWORD, realm: str = "vault") -> str:
    return f"/auth/basic?user={USER}&password={password}&realm={realm}&m={marker}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def authorizations(server: LocalServer, marker: str) -> list[str | None]:
    """The Authorization each request carrying ``marker`` had (None: none)."""
    return [r.headers.get("authorization") for r in seen(server, marker)]


def test_userinfo_answers_the_challenge(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The URL's user info answers a 401 (retried once); it is never sent before a challenge."""
    session = make_session()
    marker = tag()
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}{auth_path(marker)}"
    done = get(session, recorder(session), url)
    assert (done.success, done.statusCode) == (True, 200)
    assert json.loads(done.responseText) == {"authenticated": True, "user": USER}
    assert authorizations(server, marker) == [None, basic(USER, PASSWORD)]


def test_task_credential_answers_the_challenge(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A task's credential argument answers the challenge of its URL's origin."""
    session = make_session()
    marker = tag()
    done = get(
        session,
        recorder(session),
        server.url(auth_path(marker)),
        credential={"user": USER, "password": PASSWORD},
    )
    assert done.statusCode == 200
    assert authorizations(server, marker) == [None, basic(USER, PASSWORD)]


def test_configuration_credential_answers_the_challenge(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The configuration's credential answers the challenge of each task's first origin."""
    session = make_session(credential={"user": USER, "password": PASSWORD})
    marker = tag()
    assert get(session, recorder(session), server.url(auth_path(marker))).statusCode == 200
    assert authorizations(server, marker) == [None, basic(USER, PASSWORD)]


def test_credential_that_worked_is_stored_for_its_protection_space(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A later task with no credential is answered from the store, for that realm only."""
    session = make_session()
    rec = recorder(session)
    first = tag()
    credential = {"user": USER, "password": PASSWORD}
    assert get(session, rec, server.url(auth_path(first)), credential=credential).statusCode == 200
    later = tag()
    assert get(session, rec, server.url(auth_path(later))).statusCode == 200
    assert authorizations(server, later) == [None, basic(USER, PASSWORD)]
    other_realm = tag()
    assert get(session, rec, server.url(auth_path(other_realm, realm="else"))).statusCode == 401
    assert authorizations(server, other_realm) == [None]


def test_wrong_credentials_report_the_401(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A refused credential is tried once; the task succeeds with statusCode 401, nothing stored."""
    session = make_session()
    rec = recorder(session)
    marker = tag()
    done = get(
        session, rec, server.url(auth_path(marker)), credential={"user": USER, "password": "no"}
    )
    assert (done.success, done.errorCode, done.statusCode) == (True, 0, 401)
    assert authorizations(server, marker) == [None, basic(USER, "no")]
    again = tag()
    assert get(session, rec, server.url(auth_path(again))).statusCode == 401
    assert authorizations(server, again) == [None]


def test_own_authorization_header_is_not_retried(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A request with its own Authorization header gets the server's answer as it is."""
    session = make_session(credential={"user": USER, "password": PASSWORD})
    marker = tag()
    done = get(
        session,
        recorder(session),
        server.url(auth_path(marker)),
        requestHeaders={"Authorization": basic(USER, "wrong")},
    )
    assert done.statusCode == 401
    assert authorizations(server, marker) == [basic(USER, "wrong")]


@pytest.mark.parametrize("source", ["userinfo", "task", "configuration"])
def test_credentials_not_sent_after_a_cross_origin_redirect(
    server: LocalServer,
    other_server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    source: str,
) -> None:
    """A credential for the first origin never answers a challenge of the origin redirected to."""
    credential = {"user": USER, "password": PASSWORD}
    session = make_session(**({"credential": credential} if source == "configuration" else {}))
    marker = tag()
    target = other_server.url(auth_path(marker))
    url = server.url(f"/redirect-to?url={quote(target)}&m={marker}")
    if source == "userinfo":
        url = url.replace("http://", f"http://{USER}:{PASSWORD}@")
    args = {"credential": credential} if source == "task" else {}
    done = get(session, recorder(session), url, **args)
    assert (done.success, done.statusCode) == (True, 401)
    assert authorizations(other_server, marker) == [None]
    assert authorizations(server, marker) == [None]


def test_upload_body_goes_again_with_the_credential(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """An upload answered with 401 is sent again, body and all, and counted afresh."""
    session = make_session()
    rec = recorder(session)
    marker = tag()
    body = b"x" * 100_000
    tid = session.uploadTask(
        url=server.url(auth_path(marker)),
        data=body,
        credential={"user": USER, "password": PASSWORD},
    )
    done = rec.completed(tid, 30)
    assert done.statusCode == 200
    assert [r.body_length for r in seen(server, marker)] == [len(body), len(body)]
    assert session.getTask(tid).countOfBytesSent == len(body)


def test_persistent_credentials_file_and_other_processes(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    state_home: Path,
    other_process: Callable[..., list[dict[str, Any]]],
) -> None:
    """A default session keeps credentials in a 0600 file another process answers with."""
    session = make_session()
    credential = {"user": USER, "password": PASSWORD}
    get(session, recorder(session), server.url(auth_path(tag())), credential=credential)
    path = state_home / STORES_DIR / CREDENTIALS_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    (entry,) = json.loads(path.read_text())["credentials"]
    assert (entry["scheme"], entry["host"], entry["port"], entry["realm"]) == (
        "http",
        "127.0.0.1",
        server.port,
        "vault",
    )
    marker = tag()
    (result,) = other_process(server.url(auth_path(marker)))
    assert result["statusCode"] == 200
    (ephemeral,) = other_process(server.url(auth_path(tag())), type="ephemeral")
    assert ephemeral["statusCode"] == 401


def test_ephemeral_credentials_stay_in_memory(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """An ephemeral session's credentials are its own: no file, no other session uses them."""
    one, two = make_session(type="ephemeral"), make_session(type="ephemeral")
    rec_one = recorder(one)
    credential = {"user": USER, "password": PASSWORD}
    assert get(one, rec_one, server.url(auth_path(tag())), credential=credential).statusCode == 200
    assert get(one, rec_one, server.url(auth_path(tag()))).statusCode == 200
    assert get(two, recorder(two), server.url(auth_path(tag()))).statusCode == 401
    assert not (state_home / STORES_DIR).exists()


def test_reset_forgets_credentials(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """After reset() the store is empty and its file gone."""
    session = make_session()
    rec = recorder(session)
    credential = {"user": USER, "password": PASSWORD}
    get(session, rec, server.url(auth_path(tag())), credential=credential)
    done = threading.Event()
    session.reset(lambda result: done.set())
    assert done.wait(10)
    assert not (state_home / STORES_DIR / CREDENTIALS_NAME).exists()
    assert get(session, rec, server.url(auth_path(tag()))).statusCode == 401


def test_credentials_are_never_logged(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No log record, at any level and of any library, holds a password or its Basic token."""
    caplog.set_level(logging.DEBUG)
    session = make_session(credential={"user": USER, "password": "from-config"})
    rec = recorder(session)

    def hashed(password: str, realm: str) -> str:
        digest = hashlib.sha256(password.encode()).hexdigest()
        return f"/auth/basic-hashed?user={USER}&password_sha256={digest}&realm={realm}"

    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}{hashed(PASSWORD, 'one')}"
    assert get(session, rec, url).statusCode == 200
    assert get(session, rec, server.url(hashed("from-config", "two"))).statusCode == 200
    assert "from-config" not in repr(session.configuration._values)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "answering a Basic challenge" in text
    for secret in (PASSWORD, "from-config"):
        assert secret not in text
    for token in (basic(USER, PASSWORD), basic(USER, "from-config")):
        assert token.split()[1] not in text
