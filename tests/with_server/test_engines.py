"""The two engines: choosing one, what each refuses, and what each leaves behind."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import _config_values
from urlsession_module._transport._curl import network_thread
from urlsession_module.exceptions import InvalidArgumentValueError
from urlsession_module.testing import LocalServer

from ._util import wait_until

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
ENGINES = ("curl", "urllib3")


def _fds() -> set[str]:
    """This process's open descriptors that are sockets."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def test_default_engine_is_curl_where_pycurl_imports() -> None:
    """Without URLSESSION_ENGINE, a configuration runs on curl (pycurl is installed here)."""
    saved = os.environ.pop("URLSESSION_ENGINE", None)
    try:
        assert URLSession.createSessionConfiguration().engine == "curl"
    finally:
        if saved is not None:
            os.environ["URLSESSION_ENGINE"] = saved


def test_curl_without_pycurl_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Naming 'curl' where pycurl does not import raises, naming engine and `pip install pycurl`."""
    monkeypatch.setattr(_config_values, "_FEATURES", (False, False))
    with pytest.raises(InvalidArgumentValueError) as info:
        URLSession.createSessionConfiguration({"engine": "curl"})
    assert info.value.argument == "engine"
    assert "pip install pycurl" in str(info.value)
    monkeypatch.delenv("URLSESSION_ENGINE", raising=False)
    assert URLSession.createSessionConfiguration().engine == "urllib3"


@pytest.mark.parametrize("version", ["2", "3"])
def test_urllib3_refuses_http_versions_above_1_1(version: str) -> None:
    """httpVersion '2' or '3' on the urllib3 engine raises, naming the engine that can."""
    with pytest.raises(InvalidArgumentValueError) as info:
        URLSession.createSessionConfiguration({"engine": "urllib3", "httpVersion": version})
    assert info.value.argument == "httpVersion"
    assert "curl" in str(info.value)


def test_http3_refuses_an_http_url(make_session: MakeSession) -> None:
    """httpVersion '3' with an http:// URL raises at the task call (QUIC is always TLS)."""
    session = make_session(engine="curl", httpVersion="3")
    with pytest.raises(InvalidArgumentValueError) as info:
        session.dataTask(url="http://127.0.0.1:9/x")
    assert info.value.argument == "url"


def test_http3_refused_where_libcurl_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpVersion '3' where libcurl was built without HTTP/3 raises at the configuration."""
    monkeypatch.setattr(_config_values, "_FEATURES", (True, False))
    with pytest.raises(InvalidArgumentValueError) as info:
        URLSession.createSessionConfiguration({"engine": "curl", "httpVersion": "3"})
    assert info.value.argument == "httpVersion"


@pytest.mark.parametrize("engine", ENGINES)
def test_network_protocol_name_over_http_1_1(
    engine: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A task over HTTP/1.1 says so in sessioncompleted (Apple's 'http/1.1')."""
    session = make_session(engine=engine)
    rec = recorder(session)
    tid = session.dataTask(url=server.url("/bytes/100"), method="GET")
    done = rec.completed(tid)
    assert done.success and done.networkProtocolName == "http/1.1"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cache_hit_names_no_protocol(
    engine: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A response the cache answers came over no protocol: '' (Apple's metrics say nil)."""
    session = make_session(engine=engine)
    rec = recorder(session)
    url = server.url(f"/cache?max_age=600&engine={engine}")
    first = rec.completed(session.dataTask(url=url, method="GET"))
    again = rec.completed(session.dataTask(url=url, method="GET"))
    assert first.success and first.networkProtocolName == "http/1.1"
    assert again.success and again.responseText == first.responseText
    assert again.networkProtocolName == ""


@pytest.mark.parametrize("engine", ENGINES)
def test_invalidate_and_cancel_leaves_nothing_behind(
    engine: str, server: LocalServer, recorder: MakeRecorder
) -> None:
    """After invalidateAndCancel no session thread, socket or curl transfer is left."""
    threads_before = set(threading.enumerate())
    sockets_before = _fds()
    net_before = network_thread()
    cfg = URLSession.createSessionConfiguration({"engine": engine})
    session = URLSession.createSession(configuration=cfg)
    rec = recorder(session)
    done = [session.dataTask(url=server.url("/bytes/1000"), method="GET") for _ in range(4)]
    for tid in done:
        assert rec.completed(tid).success
    slow = [session.downloadTask(url=server.url("/stall?after=1000&hang=2")) for _ in range(3)]
    wait_until(lambda: len(_fds() - sockets_before) >= 3, what="three connections open")
    session.invalidateAndCancel()
    assert session.waitForInvalidation(10)
    for tid in slow:
        assert rec.completed(tid).errorCode == -999

    def left() -> list[str]:
        """The client's threads (the server's own connection threads are not ours)."""
        return [
            t.name
            for t in threading.enumerate()
            if t not in threads_before and t.is_alive() and "-conn-" not in t.name
        ]

    wait_until(lambda: not left(), what="the session's threads end")
    wait_until(lambda: not (_fds() - sockets_before), what="every socket closes")
    if net_before is None:
        assert network_thread() is None  # the last curl session took the thread with it


def test_cancel_while_connecting_is_at_once(
    make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """On curl a cancel during connect removes the transfer at once (no connect timeout wait)."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler: list[socket.socket] = []
    try:
        for _ in range(4):  # fill the accept queue: further SYNs are dropped, connects hang
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            filler.append(s)
        session = make_session(engine="curl", timeoutIntervalForRequest=30)
        rec = recorder(session)
        tid = session.dataTask(url=f"http://127.0.0.1:{port}/x", method="GET")
        time.sleep(0.5)
        started = time.monotonic()
        [task] = [t for t in session.tasks if t.taskIdentifier == tid]
        task.cancel()
        done = rec.completed(tid, 10)
        assert done.errorCode == -999
        assert time.monotonic() - started < 2.0
    finally:
        for s in filler:
            s.close()
        listener.close()
