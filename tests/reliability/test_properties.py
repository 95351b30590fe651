"""Property-based: any arguments give a task or a documented refusal; any control order ends well."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import time
from pathlib import Path
from typing import Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import urlsession_module as URLSession
from urlsession_module import Blob, ErrorCode, URLSessionError
from urlsession_module._session import _DATA_KEYS, _DOWNLOAD_KEYS
from urlsession_module.testing import LocalServer, content_sha256

from ._checks import leftovers, settle
from .conftest import MakeRecorder, MakeSession, size

E = ErrorCode
METHODS = ("dataTask", "uploadTask", "downloadTask")

# Header text: Latin-1 and beyond, plus the characters an injection needs.
HEADER_TEXT = st.text(
    alphabet=st.sampled_from(list("aZ09 -_:;,=/\"'\t\r\n\x00\x7f\xe9\xff\u20ac\u2028")),
    max_size=12,
)
TOKEN_TEXT = st.text(alphabet=st.sampled_from(list("aZ09-_!#$%&'*+.^`|~ :\r\n(\xe9")), max_size=10)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=8,
    )


# URLs are templates: {base} is the local server, {n} the example's marker. Every http URL that
# could be valid points at 127.0.0.1; random text is prefixed so it can never become one.
GOOD_URLS = st.sampled_from(
    [
        "{base}/echo?propn={n}",
        "{base}/bytes/100?propn={n}",
        "{base}/status/503?propn={n}",
        "{base}/redirect/2?propn={n}",
        "http://localhost:{port}/echo?propn={n}",
    ]
)
BAD_URLS = st.sampled_from(
    [
        "",
        "   ",
        "ftp://127.0.0.1/x?propn={n}",
        "file:///etc/passwd",
        "http://",
        "http:///nohost",
        "//127.0.0.1/x",
        "127.0.0.1/x",
        "http://[::1",
        "http://127.0.0.1:99999/",
        "{base}/x\r\nX-Injected: 1?propn={n}",
        "{base}/x\n?propn={n}",
        "{base}/\x00?propn={n}",
        "{base}/a b?propn={n}",
    ]
) | st.text(max_size=10).map(lambda s: "x" + s)

# Each argument: values a caller may pass, and values that must be refused (or that probe the
# edges). A call draws each of its arguments from the first most of the time.
VALID: dict[str, st.SearchStrategy[Any]] = {
    "url": GOOD_URLS,
    "method": st.sampled_from(["GET", "post", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]),
    "data": st.none()
    | _json_values()
    | st.binary(max_size=64)
    | st.sampled_from(["<existing file>", "<blob>"]),
    "requestHeaders": st.none()
    | st.dictionaries(
        st.sampled_from(["X-A", "x-b", "Authorization", "Content-Type", "Accept"]),
        st.text(alphabet=st.sampled_from(list("aZ09 -_:;,=/\"'\t\xe9\xff")), max_size=12),
        max_size=3,
    ),
    "taskDescription": st.none() | st.text(max_size=8),
    "priority": st.floats(0, 1),
    # (A date centuries ahead is valid but never comes: test_security.py has it.)
    "earliestBeginDate": st.none()
    | st.floats(0, 0.3).map(lambda d: time.time() + d)
    | st.floats(0, 1e9)
    | st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2000, 1, 1)),
    "credential": st.none()
    | st.fixed_dictionaries({"user": st.text(max_size=5), "password": st.text(max_size=5)}),
    # issue 16 (a rate high enough not to slow the run; valid resume data cannot be drawn)
    "maximumBytesPerSecond": st.none() | st.integers(1 << 24, 1 << 40),
    "resumeData": st.none(),
}
UPLOAD_DATA = st.binary(max_size=64) | st.sampled_from(["<existing file>", "<blob>"])
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "url": BAD_URLS | st.none() | st.integers() | st.just(b"http://127.0.0.1/"),
    "method": TOKEN_TEXT | st.integers() | st.none(),
    "data": st.sampled_from(["<missing file>", "<object>"])
    | st.dictionaries(st.text(max_size=2), st.sampled_from(["<object>"]), min_size=1)
    | st.integers()
    | st.floats(),
    "requestHeaders": st.dictionaries(TOKEN_TEXT, HEADER_TEXT, min_size=1, max_size=3)
    | st.dictionaries(st.integers(), st.text(max_size=3), min_size=1, max_size=1)
    | st.dictionaries(st.just("X-Int"), st.integers(), min_size=1, max_size=1)
    | st.text(max_size=5)
    | st.lists(st.text(max_size=3), max_size=2),
    "taskDescription": st.integers() | st.binary(max_size=3),
    "priority": st.floats(allow_infinity=True, allow_nan=True).filter(lambda p: not 0 <= p <= 1)
    | st.integers(-2, 2)
    | st.booleans()
    | st.text(max_size=2),
    "earliestBeginDate": st.text(max_size=3)
    | st.booleans()
    | st.lists(st.integers())
    | st.sampled_from([math.nan, math.inf, -math.inf]),
    "credential": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)
    | st.integers()
    | st.text(max_size=3),
    "maximumBytesPerSecond": st.integers(-3, 0) | st.booleans() | st.floats() | st.text(max_size=3),
    "resumeData": st.text(max_size=8) | st.integers() | st.binary(max_size=4),
}
KEYS = sorted(_DATA_KEYS | _DOWNLOAD_KEYS)
assert set(KEYS) <= set(VALID), f"new task arguments need a strategy: {set(KEYS) - set(VALID)}"
EXTRA_KEYS = st.sampled_from(["urll", "Method", "headers", "", "url "])


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[Any, Any], bool]:
    """A public task method, an argument dict (known keys, typos, junk), and dict-or-kwargs."""
    method = draw(st.sampled_from(METHODS))
    own = sorted(_DOWNLOAD_KEYS if method == "downloadTask" else _DATA_KEYS)
    keys = draw(st.lists(st.sampled_from(own), unique=True, max_size=len(own)))
    if draw(st.integers(0, 19)) == 0:  # now and then a key of another method
        keys.append(draw(st.sampled_from(KEYS)))
    for required in ("url", "data") if method == "uploadTask" else ("url",):
        if required not in keys and draw(st.integers(0, 19)):
            keys.append(required)
    args: dict[Any, Any] = {}
    for key in keys:
        hostile = draw(st.integers(0, 9)) == 0
        valid = UPLOAD_DATA if (key == "data" and method == "uploadTask") else VALID[key]
        args[key] = draw(HOSTILE[key] if hostile else valid)
    if draw(st.integers(0, 19)) == 0:
        args[draw(EXTRA_KEYS | st.integers())] = draw(st.text(max_size=3))
    as_kwargs = draw(st.booleans()) and all(isinstance(k, str) and k for k in args)
    return method, args, as_kwargs


def _resolve(key: Any, value: Any, *, server: LocalServer, n: int, files: dict[str, Any]) -> Any:
    if key == "data" and isinstance(value, str) and value in files:
        return files[value]
    if key == "url" and isinstance(value, str):
        for name, text in (("{base}", server.base_url), ("{port}", str(server.port))):
            value = value.replace(name, text)
        return value.replace("{n}", str(n))
    return value


def test_any_arguments_give_a_task_or_a_documented_refusal(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    tmp_path: Path,
    figures: Any,
) -> None:
    """Random argument dicts: an id (the task then ends once) or a named refusal, never network."""
    session = make_session()
    rec = recorder(session)
    existing = tmp_path / "upload.bin"
    existing.write_bytes(b"upload me")
    files = {
        "<existing file>": str(existing),
        "<missing file>": str(tmp_path / "missing.bin"),
        "<blob>": Blob(b"blob bytes"),
        "<object>": object(),
    }
    started: dict[str, int] = {}
    refused: dict[int, str] = {}
    counter = iter(range(1, 1 << 30))

    @settings(
        max_examples=size(200, 10_000),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(call=calls())
    def one_call(call: tuple[str, dict[Any, Any], bool]) -> None:
        method, raw, as_kwargs = call
        n = next(counter)
        args = {k: _resolve(k, v, server=server, n=n, files=files) for k, v in raw.items()}
        before = {t.taskIdentifier for t in session.tasks}
        try:
            fn = getattr(session, method)
            tid = fn(**args) if as_kwargs else fn(args)
        except (TypeError, ValueError, OSError) as exc:
            assert isinstance(exc, URLSessionError), repr(exc)
            argument = getattr(exc, "argument", None)
            assert isinstance(argument, str), repr(exc)  # '' when the unknown key is ''
            assert repr(argument) in str(exc) or argument in ("args", "session"), repr(exc)
            assert {t.taskIdentifier for t in session.tasks} <= before  # nothing half-started
            refused[n] = argument
        else:
            assert isinstance(tid, str) and tid not in started
            started[tid] = n

    one_call()
    assert session.waitForTasks(60)
    settle(session)
    for tid in started:
        events = rec.of(tid)
        types = [e.type for e in events]
        assert types.count("sessioncompleted") == 1 and types[-1] == "sessioncompleted", types
        done = events[-1]
        # Whatever was accepted at the call fails, if at all, with a transfer error.
        assert done.errorCode != E.UNKNOWN, (done.message, session.getTask(tid))
    marker = re.compile(r"[?&]propn=(\d+)")
    reached = {int(m.group(1)) for r in server.requests if (m := marker.search(r.path))}
    assert not reached & set(refused), "a refused call reached the network"
    assert leftovers(session, rec) == []
    figures("argument dicts tried", len(started) + len(refused))
    figures("argument dicts refused at the call", len(refused))
    figures("argument dicts started as tasks", len(started))


# --------------------------------------------------------------------------- control interleavings

CONTROL = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(["suspend", "resume", "cancel", "sleep"]),
        st.floats(0, 0.03),
    ),
    max_size=14,
)
SIZES = (300_000, 150_000)


def _start_four(session: Any, server: LocalServer) -> list[str]:
    return [
        session.downloadTask(url=server.url(f"/bytes/{SIZES[0]}?rate=3000000")),
        session.downloadTask(url=server.url(f"/bytes/{SIZES[1]}")),
        session.dataTask(url=server.url("/slow?delay=0.05"), method="GET"),
        session.uploadTask(url=server.url("/upload"), data=b"u" * 200_000),
    ]


def test_random_suspend_resume_cancel_end_with_one_sessioncompleted_last(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, figures: Any
) -> None:
    """Any order of suspend/resume/cancel on live tasks: one sessioncompleted each, and last."""
    session = make_session()
    rec = recorder(session)
    outcomes = {"completed": 0, "cancelled": 0}

    @settings(
        max_examples=size(25, 400),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(ops=CONTROL)
    def interleave(ops: list[tuple[int, str, float]]) -> None:
        ids = _start_four(session, server)
        tasks = [session.getTask(t) for t in ids]
        for index, op, pause in ops:
            task = tasks[index]
            if op != "sleep" and task is not None:
                getattr(task, op)()
            time.sleep(pause)
        for task in tasks:
            if task is not None:
                task.resume()  # a task left suspended would never end
        for tid in ids:
            done = rec.completed(tid, 20)
            assert done.errorCode in (E.OK, E.CANCELLED), (done.errorCode, done.message)
        settle(session)
        for i, tid in enumerate(ids):
            events = rec.of(tid)
            types = [e.type for e in events]
            assert types.count("sessioncompleted") == 1 and types[-1] == "sessioncompleted", types
            done = events[-1]
            totals = [e.totalBytesWritten for e in events if e.type == "downloadprogress"]
            assert totals == sorted(totals)
            completed = [e for e in events if e.type == "downloadcompleted"]
            if done.success:
                outcomes["completed"] += 1
                if i < 2:
                    (one,) = completed
                    with open(one.data.nativePath, "rb") as f:
                        digest = hashlib.sha256(f.read()).hexdigest()
                    assert digest == content_sha256(SIZES[i])
            else:
                outcomes["cancelled"] += 1
                assert completed == []
        assert leftovers(session, rec) == []

    interleave()
    for name, count in outcomes.items():
        figures(f"control interleavings: {name}", count)


def test_configuration_dicts_give_a_configuration_or_a_named_refusal() -> None:
    """createSessionConfiguration with random dicts: a configuration or a named refusal."""
    values = st.none() | st.booleans() | st.integers(-3, 10) | st.floats() | st.text(max_size=6)
    keys = st.sampled_from(
        [
            "type",
            "identifier",
            "HTTPHeaderFields",
            "timeoutIntervalForRequest",
            "timeoutIntervalForResource",
            "httpMaximumConnectionsPerHost",
            "httpShouldSetCookies",
            "tlsVerify",
            "caBundle",
            "proxyURL",
            "isDiscretionary",
            "nonsense",
        ]
    )
    headers = st.dictionaries(TOKEN_TEXT, HEADER_TEXT, max_size=2)

    @settings(max_examples=size(200, 2000), deadline=None)
    @given(props=st.dictionaries(keys, values | headers, max_size=5))
    def configure(props: dict[str, Any]) -> None:
        try:
            cfg = URLSession.createSessionConfiguration(cast(Any, props))
        except (TypeError, ValueError, AttributeError) as exc:
            assert isinstance(exc, URLSessionError), repr(exc)
            argument = getattr(exc, "argument", None)
            assert isinstance(argument, str) and argument, repr(exc)
        else:
            assert isinstance(cfg, URLSession.SessionConfiguration)
            assert cfg.tlsVerify is props.get("tlsVerify", True)  # never off unless asked

    configure()
