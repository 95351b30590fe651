"""flush() and reset() with real stores, file modes, and the stores' life with their sessions."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import _stores
from urlsession_module._stores import STORES_DIR, basic_realms
from urlsession_module.testing import LocalServer

from ._util import cookies_of, get, tag

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]


class Calls:
    """What flush/reset callbacks received, and on which thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, str]] = []
        self.cond = threading.Condition()

    def callback(self, name: str) -> Callable[[Any], None]:
        def call(result: Any) -> None:
            with self.cond:
                self.calls.append((name, result, threading.current_thread().name))
                self.cond.notify_all()

        return call

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[str, Any, str]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= n, timeout)
            return list(self.calls)


def test_flush_and_reset_call_back_on_the_delivery_queue_while_a_task_runs(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Both call back with {'completed': True} on the delivery thread; the running task ends well."""
    session = make_session()
    rec = recorder(session)
    get(session, rec, server.url("/cookies/set?before=1"))
    slow = session.dataTask(url=server.url(f"/slow?delay=1&m={tag()}"), method="GET")
    calls = Calls()
    session.flush(calls.callback("flush"))
    session.reset(calls.callback("reset"))
    assert calls.wait(2) == [
        ("flush", {"completed": True}, "urlsession-delivery"),
        ("reset", {"completed": True}, "urlsession-delivery"),
    ]
    assert session.getTask(slow).state == "running"  # the callbacks did not wait for it
    done = rec.completed(slow, 30)
    assert (done.success, done.statusCode) == (True, 200)
    assert cookies_of(get(session, rec, server.url("/cookies"))) == {}


def test_callbacks_run_when_the_host_drains_its_queue(
    server: LocalServer, make_session: MakeSession
) -> None:
    """With a host-drained queue the callbacks come on the draining thread, not before."""
    queue = URLSession.EventQueue()
    session = make_session(type="ephemeral", delegateQueue=queue)
    calls = Calls()
    session.flush(calls.callback("flush"))
    session.reset(calls.callback("reset"))
    assert calls.calls == []
    queue.drain(timeout=1)
    me = threading.current_thread().name
    assert calls.calls == [
        ("flush", {"completed": True}, me),
        ("reset", {"completed": True}, me),
    ]


def test_reset_while_a_response_is_being_cached(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A data task whose body is being stored when reset() runs still completes in full."""
    session = make_session()
    rec = recorder(session)
    url = server.url(f"/bytes/600000?rate=600000&m={tag()}")  # one second, heuristically fresh
    tid = session.dataTask(url=url, method="GET")
    rec.wait_for(lambda _: session.getTask(tid).countOfBytesReceived > 0, 10)
    calls = Calls()
    session.reset(calls.callback("reset"))
    assert calls.wait(1)[0][1] == {"completed": True}
    done = rec.completed(tid, 30)
    assert (done.success, done.statusCode) == (True, 200)
    assert session.getTask(tid).countOfBytesReceived == 600000


def test_store_files_are_private(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """Every file of the stores is 0600 and their directory 0700, whatever the umask."""
    old = os.umask(0o022)
    try:
        session = make_session()
        rec = recorder(session)
        get(session, rec, server.url("/cookies/set?c=1&max_age=600"))
        get(session, rec, server.url(f"/cache?max_age=600&m={tag()}"))
        get(
            session,
            rec,
            server.url(f"/auth/basic?user=u&password=p&m={tag()}"),
            credential={"user": "u", "password": "p"},
        )
        session.flush()
    finally:
        os.umask(old)
    directory = state_home / STORES_DIR
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    names = sorted(p.name for p in directory.iterdir())
    expected = {"cookies.lwp", "credentials.json", "stores.lock", "cache.sqlite3"}
    assert expected | {"cache.sqlite3-wal", "cache.sqlite3-shm"} <= set(names)
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_stores_are_released_with_their_last_session(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, state_home: Path
) -> None:
    """Default sessions share one set of stores, closed when the last of them is invalidated."""
    one, two = make_session(), make_session()
    get(one, recorder(one), server.url(f"/cache?max_age=600&m={tag()}"))
    key = os.path.realpath(state_home)
    assert _stores._shared[key] is one._transport.stores is two._transport.stores
    one.invalidateAndCancel()
    assert one.waitForInvalidation(10)
    assert key in _stores._shared
    two.invalidateAndCancel()
    assert two.waitForInvalidation(10)
    assert key not in _stores._shared


@pytest.mark.parametrize(
    ("challenges", "realms"),
    [
        (['Basic realm="vault"'], ["vault"]),
        (['Basic realm="a \\"quoted\\" realm", charset="UTF-8"'], ['a "quoted" realm']),
        (['Digest realm="d", nonce="n, with comma", Basic realm="b"'], ["b"]),
        (["Bearer", 'basic Realm="case"'], ["case"]),
        (["Basic"], [""]),
        (['Digest realm="only"', "Negotiate"], []),
    ],
)
def test_basic_realms_of_challenge_lists(challenges: list[str], realms: list[str]) -> None:
    """The Basic challenges are found among any WWW-Authenticate values, with their realms."""
    assert basic_realms(challenges) == realms
