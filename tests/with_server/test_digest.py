"""Digest (issue 15, item 2) against PyPI's httpbin: MD5 and SHA-256, ``auth`` and ``auth-int``,
a wrong password, ``stale=true``, and never across origins.

Runs on the default engine; ``.ci/run`` runs this file again with ``--engine urllib3``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.peers.wsgi import Httpbin
from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

USER, PASSWORD = "digest-user", "d1gest-Pass"
CREDENTIAL = {"user": USER, "password": PASSWORD}


def _get(session: Any, recorder: MakeRecorder, url: str, **task: Any) -> Any:
    rec = recorder(session)
    return rec.completed(session.dataTask(url=url, method="GET", **task))


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
@pytest.mark.parametrize("qop", ["auth", "auth-int"])
def test_digest_answered_with_the_task_credential(
    algorithm: str,
    qop: str,
    httpbin_peer: Httpbin,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    url = httpbin_peer.url(f"/digest-auth/{qop}/{USER}/{PASSWORD}/{algorithm}")
    done = _get(make_session(), recorder, url, credential=CREDENTIAL)
    assert done.statusCode == 200, (done.errorCode, done.message)
    assert json.loads(done.responseText) == {"authenticated": True, "user": USER}


def test_digest_answered_with_the_configuration_credential_and_user_info(
    httpbin_peer: Httpbin, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    path = f"/digest-auth/auth/{USER}/{PASSWORD}/SHA-256"
    session = make_session(credential=CREDENTIAL)
    assert _get(session, recorder, httpbin_peer.url(path)).statusCode == 200
    written = httpbin_peer.url(path).replace("://", f"://{USER}:{quote(PASSWORD)}@")
    assert _get(make_session(), recorder, written).statusCode == 200


def test_wrong_password_ends_with_the_servers_401(
    httpbin_peer: Httpbin, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    url = httpbin_peer.url(f"/digest-auth/auth/{USER}/{PASSWORD}/MD5")
    done = _get(make_session(), recorder, url, credential={"user": USER, "password": "nope"})
    assert (done.statusCode, done.success) == (401, True)
    assert "nope" not in done.message


def test_stale_nonce_is_renewed_once(
    httpbin_peer: Httpbin,
    make_session: MakeSession,
    recorder: MakeRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """httpbin's ``stale_after=0`` answers every Digest attempt ``stale=TRUE``: the task renews
    the nonce once, then ends with that 401 (no loop)."""
    caplog.set_level(logging.DEBUG, logger="urlsession_module")
    url = httpbin_peer.url(f"/digest-auth/auth/{USER}/{PASSWORD}/MD5/0")
    session = make_session()
    rec = recorder(session)
    tid = session.dataTask(url=url, method="GET", credential=CREDENTIAL)
    done = rec.completed(tid)
    assert done.statusCode == 401
    task = session.getTask(tid)
    assert task is not None
    assert "stale=true" in (task.response.header("WWW-Authenticate") or "").lower()
    renewals = [r for r in caplog.records if "stale Digest" in r.getMessage()]
    assert len(renewals) == 1


def test_digest_never_answered_across_a_cross_origin_redirect(
    httpbin_peer: Httpbin,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """The task's credential is for its first origin: the other origin's challenge stays 401."""
    target = httpbin_peer.url(f"/digest-auth/auth/{USER}/{PASSWORD}/MD5")
    url = server.url(f"/redirect-to?url={quote(target, safe='')}")
    done = _get(make_session(), recorder, url, credential=CREDENTIAL)
    assert done.statusCode == 401
