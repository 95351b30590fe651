"""Security: TLS verified by default, credentials never cross origins, no header injection."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

import urlsession_module as URLSession
from urlsession_module import ErrorCode
from urlsession_module.testing import FaultServer, LocalServer

from ._checks import check_end
from .conftest import MakeRecorder, MakeSession

E = ErrorCode
SECRETS = {"authorization", "cookie", "proxy-authorization"}


# --------------------------------------------------------------------------- TLS by default


def test_tls_is_verified_by_default_for_every_task_kind(
    tls_server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A default configuration verifies TLS: data, upload and download all refuse an unknown CA."""
    cfg = URLSession.createSessionConfiguration()
    assert (cfg.tlsVerify, cfg.caBundle) == (True, None)
    session = make_session()
    rec = recorder(session)
    before = len(tls_server.requests)
    ids = [
        session.dataTask(url=tls_server.url("/echo"), data={"password": "hunter2"}),
        session.uploadTask(url=tls_server.url("/upload"), data=b"secret file"),
        session.downloadTask(url=tls_server.url("/bytes/1000")),
    ]
    for tid in ids:
        check_end(rec, session, tid, E.SERVER_CERTIFICATE_UNTRUSTED, status=0)
    assert len(tls_server.requests) == before  # not one byte of any request was sent


# --------------------------------------------------------------------------- credentials


def _chain(code: int, *hops: str) -> str:
    """A URL that redirects (with ``code``) through ``hops`` (base URLs) to the last's echo."""
    url = f"{hops[-1]}/echo-headers"
    for base in reversed(hops[:-1]):
        url = f"{base}/redirect?" + urlencode({"code": code, "to": url})
    return url


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_credentials_never_cross_origins(
    make_session: MakeSession, recorder: MakeRecorder, code: int
) -> None:
    """Authorization, Cookie, Proxy-Authorization (any case, call or config) stop at the origin."""
    session = make_session(HTTPHeaderFields={"authorization": "Bearer config", "X-Config": "c"})
    rec = recorder(session)
    with FaultServer() as a, FaultServer() as b:
        a_by_name = a.base_url.replace("127.0.0.1", "localhost")  # same port, other host
        tid = session.dataTask(
            url=_chain(code, a.base_url, a.base_url, b.base_url, a_by_name, a.base_url),
            method="PUT",
            data=b"body",
            requestHeaders={"COOKIE": "sid=1", "Proxy-Authorization": "Basic eDp5", "X-Call": "k"},
        )
        check_end(rec, session, tid, E.OK, status=200)
        on_a, on_b = a.requests, b.requests
    assert (len(on_a), len(on_b)) == (4, 1)
    assert set(on_a[0].headers) >= SECRETS  # the first request carries all three...
    assert set(on_a[1].headers) >= SECRETS  # ...and so does a hop that stays on the origin
    for request in (on_b[0], on_a[2], on_a[3]):  # once gone, never back (even to the origin)
        assert not SECRETS & set(request.headers), (request.target, request.headers)
        assert request.headers["x-config"] == "c" and request.headers["x-call"] == "k"


# --------------------------------------------------------------------------- CR/LF injection

INJECTIONS = ["\r\n", "\n", "\r", "\x00", "\r\nX-Evil: 1", "v\r\n\r\nGET /smuggled HTTP/1.1"]


def _surfaces(url: str) -> dict[str, tuple[str, Callable[[Any, str], Any]]]:
    """Every place a header, method or URL enters: (argument it must name, how to call it)."""
    return {
        "dataTask requestHeaders value": (
            "requestHeaders",
            lambda s, bad: s.dataTask(url=url, requestHeaders={"X-A": "a" + bad}),
        ),
        "dataTask requestHeaders name": (
            "requestHeaders",
            lambda s, bad: s.dataTask(url=url, requestHeaders={"X-A" + bad + "B": "a"}),
        ),
        "uploadTask requestHeaders value": (
            "requestHeaders",
            lambda s, bad: s.uploadTask(url=url, data=b"x", requestHeaders={"X-A": bad}),
        ),
        "downloadTask requestHeaders name": (
            "requestHeaders",
            lambda s, bad: s.downloadTask(url=url, requestHeaders={bad + "X-A": "a"}),
        ),
        "downloadTask requestHeaders value": (
            "requestHeaders",
            lambda s, bad: s.downloadTask(url=url, requestHeaders={"Range": "bytes=0-" + bad}),
        ),
        "dataTask method": ("method", lambda s, bad: s.dataTask(url=url, method="GET" + bad + "X")),
        "uploadTask method": (
            "method",
            lambda s, bad: s.uploadTask(url=url, data=b"x", method="PUT" + bad + "X"),
        ),
        "dataTask url": ("url", lambda s, bad: s.dataTask(url=url + bad + "/x")),
        "downloadTask url": ("url", lambda s, bad: s.downloadTask(url=url + "?q=" + bad)),
        "uploadTask url": ("url", lambda s, bad: s.uploadTask(url=url + bad, data=b"x")),
        "createSessionConfiguration HTTPHeaderFields value": (
            "HTTPHeaderFields",
            lambda s, bad: URLSession.createSessionConfiguration(HTTPHeaderFields={"X-A": bad}),
        ),
        "createSessionConfiguration HTTPHeaderFields name": (
            "HTTPHeaderFields",
            lambda s, bad: URLSession.createSessionConfiguration(HTTPHeaderFields={bad: "a"}),
        ),
        "configuration.HTTPHeaderFields assignment": (
            "HTTPHeaderFields",
            lambda s, bad: setattr(
                URLSession.createSessionConfiguration(), "HTTPHeaderFields", {"X-A": bad}
            ),
        ),
        "configuration.applyProperties HTTPHeaderFields": (
            "HTTPHeaderFields",
            lambda s, bad: URLSession.createSessionConfiguration().applyProperties(
                {"HTTPHeaderFields": {"X-A": "ok", "X-B" + bad + "C": "b"}}
            ),
        ),
        "createSessionConfiguration proxyURL": (
            "proxyURL",
            lambda s, bad: URLSession.createSessionConfiguration(
                proxyURL="http://127.0.0.1:1/" + bad
            ),
        ),
    }


SURFACES = sorted(_surfaces("http://x"))


@pytest.mark.parametrize("surface", SURFACES)
def test_crlf_injection_is_refused_naming_the_argument(
    server: LocalServer, make_session: MakeSession, surface: str
) -> None:
    """CR, LF or NUL wherever a header, method or URL enters: ValueError naming it, nothing sent."""
    session = make_session()
    argument, call = _surfaces(server.url("/echo"))[surface]
    before = len(server.requests)
    for bad in INJECTIONS:
        with pytest.raises(ValueError) as info:
            call(session, bad)
        assert isinstance(info.value, URLSession.URLSessionError), (surface, bad)
        assert getattr(info.value, "argument", None) == argument, (surface, bad, info.value)
        assert argument in str(info.value)
    assert session.tasks == []
    assert len(server.requests) == before


def test_configuration_refusing_a_header_keeps_its_old_headers() -> None:
    """A refused HTTPHeaderFields change leaves the configuration exactly as it was."""
    cfg = URLSession.createSessionConfiguration(HTTPHeaderFields={"X-Good": "1"})
    with pytest.raises(ValueError):
        cfg.HTTPHeaderFields = {"X-Good": "2", "X-Bad": "a\r\nb"}
    with pytest.raises(ValueError):
        cfg.applyProperties({"timeoutIntervalForRequest": 5, "HTTPHeaderFields": {"\n": "x"}})
    assert cfg.HTTPHeaderFields == {"X-Good": "1"}
    assert cfg.timeoutIntervalForRequest == 60


@pytest.mark.parametrize(
    "surface",
    [
        "dataTask method",
        "uploadTask method",
        "dataTask requestHeaders name",
        "createSessionConfiguration HTTPHeaderFields name",
        "configuration.applyProperties HTTPHeaderFields",
    ],
)
def test_trailing_newline_in_a_method_or_header_name_is_refused(
    server: LocalServer, make_session: MakeSession, surface: str
) -> None:
    """'GET\\n' or 'X-A\\n' is refused at the call like any other LF, naming the argument."""
    session = make_session()
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "dataTask method": (
            "method",
            lambda: session.dataTask(url=server.url("/"), method="GET\n"),
        ),
        "uploadTask method": (
            "method",
            lambda: session.uploadTask(url=server.url("/"), data=b"x", method="PUT\n"),
        ),
        "dataTask requestHeaders name": (
            "requestHeaders",
            lambda: session.dataTask(url=server.url("/"), requestHeaders={"X-A\n": "v"}),
        ),
        "createSessionConfiguration HTTPHeaderFields name": (
            "HTTPHeaderFields",
            lambda: URLSession.createSessionConfiguration(HTTPHeaderFields={"X-A\n": "v"}),
        ),
        "configuration.applyProperties HTTPHeaderFields": (
            "HTTPHeaderFields",
            lambda: URLSession.createSessionConfiguration().applyProperties(
                {"HTTPHeaderFields": {"X-A\n": "v"}}
            ),
        ),
    }
    argument, call = calls[surface]
    try:
        with pytest.raises(ValueError) as info:
            call()
        assert getattr(info.value, "argument", None) == argument
    finally:
        for task in session.tasks:
            task.cancel()


def test_header_value_that_cannot_be_sent_is_refused_at_the_call(
    server: LocalServer, make_session: MakeSession
) -> None:
    """requestHeaders={'X': '€'} raises ValueError naming requestHeaders; nothing reaches the net."""
    session = make_session()
    with pytest.raises(ValueError) as info:
        session.dataTask(url=server.url("/echo"), requestHeaders={"X-Price": "5 €"})
    assert getattr(info.value, "argument", None) == "requestHeaders"


# --------------------------------------------------------------------------- hostile dates


@pytest.mark.parametrize("when", [math.nan, math.inf, -math.inf])
def test_non_finite_begin_date_is_refused(
    server: LocalServer, make_session: MakeSession, when: float
) -> None:
    """earliestBeginDate must be a real moment: nan and ±inf raise ValueError naming it."""
    session = make_session()
    with pytest.raises(ValueError) as info:
        session.downloadTask(url=server.url("/bytes/10"), earliestBeginDate=when)
    assert getattr(info.value, "argument", None) == "earliestBeginDate"


def test_far_future_begin_date_does_not_crash_the_timer(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task due in the year 33658 waits quietly and can still be cancelled (-999 once)."""
    crashed: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(repr(args.exc_value)))
    session = make_session()
    rec = recorder(session)
    tid = session.downloadTask(url=server.url("/bytes/10"), earliestBeginDate=1e12)
    time.sleep(0.2)
    session.getTask(tid).cancel()
    check_end(rec, session, tid, E.CANCELLED)
    assert crashed == []
