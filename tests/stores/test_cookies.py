"""Cookies: one persistent jar for default sessions, one in memory per ephemeral session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pytest_mock import MockerFixture

from urlsession_module._stores import COOKIES_NAME, STORES_DIR
from urlsession_module._stores._cookies import CookieStore
from urlsession_module._stores._shared import _SharedFile
from urlsession_module.testing import LocalServer

from ._util import cookies_of, get, seen, tag
from .conftest import HOST_SCRIPT

# (the module: the package's own ``_shared`` is the table of shared stores)
_shared = sys.modules[_SharedFile.__module__]

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


def localhost(server: LocalServer, path: str) -> str:
    """The same server under another host name: another origin, and another cookie domain."""
    return f"http://localhost:{server.port}{path}"


def test_cookie_round_trip(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A cookie the server sets is sent back on the next request."""
    session = make_session()
    rec = recorder(session)
    assert get(session, rec, server.url("/cookies/set?flavour=oat")).statusCode == 200
    assert cookies_of(get(session, rec, server.url("/cookies"))) == {"flavour": "oat"}


def test_default_sessions_share_one_jar(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A cookie one default session took is sent by another default session."""
    first, second = make_session(), make_session()
    get(first, recorder(first), server.url("/cookies/set?shared=1"))
    assert cookies_of(get(second, recorder(second), server.url("/cookies"))) == {"shared": "1"}


def test_reset_empties_the_jar(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """After reset() calls back, no cookie is sent and the jar's file is gone."""
    session = make_session()
    rec = recorder(session)
    get(session, rec, server.url("/cookies/set?gone=soon&max_age=600"))
    assert (state_home / STORES_DIR / COOKIES_NAME).exists()
    done = threading.Event()
    session.reset(lambda result: done.set() if result == {"completed": True} else None)
    assert done.wait(10)
    assert not (state_home / STORES_DIR / COOKIES_NAME).exists()
    assert cookies_of(get(session, rec, server.url("/cookies"))) == {}


def test_ephemeral_sessions_are_isolated(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """Each ephemeral session has its own jar in memory: no other session sees it, no file."""
    one, two = make_session(type="ephemeral"), make_session(type="ephemeral")
    rec_one, rec_two = recorder(one), recorder(two)
    get(one, rec_one, server.url("/cookies/set?who=one&max_age=600"))
    get(two, rec_two, server.url("/cookies/set?who=two&max_age=600"))
    assert cookies_of(get(one, rec_one, server.url("/cookies"))) == {"who": "one"}
    assert cookies_of(get(two, rec_two, server.url("/cookies"))) == {"who": "two"}
    assert not (state_home / STORES_DIR).exists()
    default = make_session()
    assert cookies_of(get(default, recorder(default), server.url("/cookies"))) == {}


def test_should_set_cookies_false_neither_sends_nor_stores(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """httpShouldSetCookies=False: the jar's cookies are not sent, Set-Cookie is not stored."""
    default = make_session()
    get(default, recorder(default), server.url("/cookies/set?stored=1"))
    session = make_session(httpShouldSetCookies=False)
    rec = recorder(session)
    assert cookies_of(get(session, rec, server.url("/cookies"))) == {}
    get(session, rec, server.url("/cookies/set?ignored=1"))
    assert cookies_of(get(default, recorder(default), server.url("/cookies"))) == {"stored": "1"}


def test_own_cookie_header_is_merged_with_the_jar(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A requestHeaders Cookie goes first, the jar adds cookies of other names; one header."""
    session = make_session()
    rec = recorder(session)
    get(session, rec, server.url("/cookies/set?jar=1&mine=from-jar"))
    echo = json.loads(
        get(session, rec, server.url("/echo"), requestHeaders={"Cookie": "mine=own"}).responseText
    )
    assert [v for k, v in echo["header_list"] if k.lower() == "cookie"] == ["mine=own; jar=1"]


@pytest.mark.parametrize(
    ("policy", "stored_from_other_domain"),
    [("always", True), ("onlyFromMainDocumentDomain", False), ("never", False)],
)
def test_accept_policy(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    policy: str,
    stored_from_other_domain: bool,
) -> None:
    """httpCookieAcceptPolicy decides whose cookies are kept (main document: the task's URL)."""
    session = make_session(httpCookieAcceptPolicy=policy)
    rec = recorder(session)
    # The main document's own domain.
    get(session, rec, server.url("/cookies/set?own=1"))
    # A redirect to another domain that sets a cookie there.
    target = localhost(server, "/cookies/set?foreign=1")
    get(session, rec, server.url(f"/redirect-to?url={quote(target)}"))
    own = cookies_of(get(session, rec, server.url("/cookies")))
    foreign = cookies_of(get(session, rec, localhost(server, "/cookies")))
    assert own == ({} if policy == "never" else {"own": "1"})
    assert foreign == ({"foreign": "1"} if stored_from_other_domain else {})


def test_cookie_set_on_a_redirect_hop_is_sent_on_the_next_hop(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Set-Cookie on a redirect is stored, and the next hop sends it by the cookie rules."""
    session = make_session()
    rec = recorder(session)
    echo = json.loads(get(session, rec, server.url("/redirect/1?set_cookie=hop=1")).responseText)
    assert echo["path"] == "/redirect/0"
    assert echo["headers"]["cookie"] == "hop=1"


def test_cross_origin_redirect_gets_no_cookie_of_the_other_origin(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A redirect to another host sends that host's cookies only: not the first host's."""
    session = make_session(httpCookieAcceptPolicy="always")
    rec = recorder(session)
    get(session, rec, server.url("/cookies/set?first=1"))
    get(session, rec, localhost(server, "/cookies/set?second=2"))
    marker = tag()
    target = localhost(server, f"/echo?m={marker}")
    echo = json.loads(
        get(
            session,
            rec,
            server.url(f"/redirect-to?url={quote(target)}&m={marker}"),
            requestHeaders={"Cookie": "own=header"},
        ).responseText
    )
    first_hop, second_hop = seen(server, marker)
    assert first_hop.headers["cookie"] == "own=header; first=1"
    # The Authorization rule drops the request's own Cookie header at the origin change; the
    # jar then sends what belongs to the new host, by the cookie rules.
    assert second_hop.headers["cookie"] == "second=2"
    assert echo["headers"]["cookie"] == "second=2"


def test_cookies_persist_and_merge_across_processes(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    other_process: Callable[..., list[dict[str, Any]]],
) -> None:
    """Default sessions of two processes share the jar: neither loses the other's cookies."""
    session = make_session()
    rec = recorder(session)
    get(session, rec, server.url("/cookies/set?parent1=a&max_age=600"))
    # Another process adds a cookie while this session (and its loaded jar) lives on.
    child = other_process(server.url("/cookies/set?child=b&max_age=600"), server.url("/cookies"))
    assert json.loads(child[1]["text"])["cookies"] == {"parent1": "a", "child": "b"}
    # A write here merges with what the other process wrote (reload before merge).
    get(session, rec, server.url("/cookies/set?parent2=c&max_age=600"))
    expected = {"parent1": "a", "child": "b", "parent2": "c"}
    assert cookies_of(get(session, rec, server.url("/cookies"))) == expected
    later = other_process(server.url("/cookies"))
    assert json.loads(later[0]["text"])["cookies"] == expected


def test_ephemeral_session_of_another_process_sees_no_cookie(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    other_process: Callable[..., list[dict[str, Any]]],
) -> None:
    """The persistent jar is for default sessions: an ephemeral one starts empty."""
    session = make_session()
    get(session, recorder(session), server.url("/cookies/set?persistent=1&max_age=600"))
    result = other_process(server.url("/cookies"), type="ephemeral")
    assert json.loads(result[0]["text"])["cookies"] == {}


@pytest.mark.usefixtures("transfer_process")
def test_background_sessions_share_the_default_jar(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """The transfer process uses the same jar: cookies go both ways between it and the host."""
    default = make_session()
    rec = recorder(default)
    get(default, rec, server.url("/cookies/set?from_host=1&max_age=600"))
    background = make_session(identifier="com.test.stores")
    bg_rec = recorder(background)
    assert cookies_of(get(background, bg_rec, server.url("/cookies"))) == {"from_host": "1"}
    get(background, bg_rec, server.url("/cookies/set?from_transfer=2"))
    assert cookies_of(get(default, rec, server.url("/cookies"))) == {
        "from_host": "1",
        "from_transfer": "2",
    }


def test_two_processes_writing_at_once_lose_nothing(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    state_home: Path,
) -> None:
    """Two processes setting cookies at the same time both keep all of theirs (flock + reload)."""
    procs = []
    for who in ("a", "b"):
        urls = [server.url(f"/cookies/set?{who}{i}={i}&max_age=600") for i in range(10)]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(HOST_SCRIPT), "{}", *urls],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(os.environ, URLSESSION_HOME=str(state_home)),
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
    session = make_session()
    expected = {f"{who}{i}": str(i) for who in ("a", "b") for i in range(10)}
    assert cookies_of(get(session, recorder(session), server.url("/cookies"))) == expected


def test_a_read_trusts_the_jar_file_briefly_and_a_write_never(
    tmp_path: Path, mocker: MockerFixture
) -> None:
    """A read looks at the shared file at most once per ``_TRUST`` (every task reads the jar:
    an ``lstat`` each was ~6 % of a small task's time); past it, what another process wrote
    is taken. A write always looks first, so it merges with what another process wrote even
    inside the window and loses nothing."""
    now = [100.0]
    mocker.patch.object(_shared, "_clock", lambda: now[0])
    lock = tmp_path / "lock"
    here = CookieStore(_SharedFile(tmp_path / "cookies.txt", lock))
    other = CookieStore(_SharedFile(tmp_path / "cookies.txt", lock))  # another process's view
    url = "http://127.0.0.1/"
    looks = mocker.spy(_SharedFile, "stamp")
    assert here.header(url) is None
    other.extract(url, ["a=1; Max-Age=600"])
    looks.reset_mock()
    assert here.header(url) is None  # within the window: the file is not looked at
    assert looks.call_count == 0
    now[0] += _shared._TRUST
    assert here.header(url) == "a=1"  # past it: what the other wrote is taken
    other.extract(url, ["b=2; Max-Age=600"])
    here.extract(url, ["c=3; Max-Age=600"])  # inside the new window, but a write looks first
    now[0] += _shared._TRUST
    assert sorted(str(other.header(url)).split("; ")) == ["a=1", "b=2", "c=3"]
