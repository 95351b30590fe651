"""The module object (``urlsession_module`` is itself a proxy): factories and deprecated shims."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import (
    CreationOnlyError,
    EventQueue,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidArgumentValueError,
    Session,
    SessionConfiguration,
    SessionInvalidatedError,
)
from urlsession_module._proxy import Proxy


@pytest.fixture
def invalidate() -> Iterator[Callable[[Session], Session]]:
    """Sessions made directly with the module's factories, invalidated when the test ends."""
    made: list[Session] = []

    def track(session: Session) -> Session:
        made.append(session)
        return session

    yield track
    for session in made:
        session.invalidateAndCancel()
    for session in made:
        assert session.waitForInvalidation(10)


def test_module_id() -> None:
    """moduleId is Titanium's 'com.appcelerator.urlSession'."""
    assert URLSession.moduleId == "com.appcelerator.urlSession"


def test_module_api_name() -> None:
    """The module's apiName is 'Modules.URLSession'."""
    assert URLSession.apiName == "Modules.URLSession"


def test_module_is_a_proxy_and_a_module() -> None:
    """The imported module is both a ModuleType and a Proxy with listener methods."""
    assert isinstance(URLSession, types.ModuleType)
    assert isinstance(URLSession, Proxy)
    assert URLSession.bubbleParent is True


def test_module_listeners() -> None:
    """Listeners can be added to, fired on, and removed from the module object."""
    got: list[Any] = []
    URLSession.addEventListener("backgroundtransfer", got.append)
    URLSession.fireEvent("backgroundtransfer", {"sessionIdentifier": "bg", "handlerId": "h"})
    [e] = got
    assert (e.sessionIdentifier, e.handlerId, e.source) == ("bg", "h", URLSession)
    URLSession.removeEventListener("backgroundtransfer", got.append)
    URLSession.fireEvent("backgroundtransfer", {"sessionIdentifier": "bg", "handlerId": "h"})
    assert len(got) == 1


def test_public_names_are_exported() -> None:
    """Every name in __all__ exists, and public classes report the package as their module."""
    for name in URLSession.__all__:
        assert hasattr(URLSession, name), name
    assert Session.__module__ == "urlsession_module"
    assert SessionConfiguration.__module__ == "urlsession_module"


# -- createSessionConfiguration ----------------------------------------------------------------


def test_create_configuration_by_dict() -> None:
    """A dict with an identifier makes a background configuration with those properties."""
    cfg = URLSession.createSessionConfiguration(
        {"identifier": "com.example.bg", "timeoutIntervalForRequest": 30}
    )
    assert isinstance(cfg, SessionConfiguration)
    assert (cfg.type, cfg.identifier, cfg.timeoutIntervalForRequest) == (
        "background",
        "com.example.bg",
        30,
    )
    assert cfg.apiName == "Modules.URLSession.SessionConfiguration"


def test_create_configuration_by_kwargs() -> None:
    """Keyword arguments work like the dict."""
    cfg = URLSession.createSessionConfiguration(type="ephemeral", httpShouldSetCookies=False)
    assert (cfg.type, cfg.httpShouldSetCookies) == ("ephemeral", False)


def test_create_configuration_dict_and_kwargs_merge() -> None:
    """A dict and keyword arguments together merge, keywords winning."""
    cfg = URLSession.createSessionConfiguration(
        {"type": "default", "timeoutIntervalForRequest": 5}, timeoutIntervalForRequest=9
    )
    assert (cfg.type, cfg.timeoutIntervalForRequest) == ("default", 9)


def test_create_configuration_without_arguments() -> None:
    """No arguments (or None) make a default configuration."""
    assert URLSession.createSessionConfiguration().type == "default"
    assert URLSession.createSessionConfiguration(None).type == "default"


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "argument"),
    [
        pytest.param(("x",), {}, InvalidArgumentTypeError, "args", id="str-not-dict"),
        pytest.param(({}, {}), {}, InvalidArgumentTypeError, "args", id="two-dicts"),
        pytest.param(({1: "x"},), {}, InvalidArgumentTypeError, "args", id="non-str-key"),
        pytest.param((), {"bogus": 1}, InvalidArgumentValueError, "bogus", id="unknown-key"),
        pytest.param((), {"identifier": ""}, InvalidArgumentValueError, "identifier", id="empty"),
        pytest.param((), {"identifier": 7}, InvalidArgumentTypeError, "identifier", id="int-id"),
        pytest.param((), {"type": "weird"}, InvalidArgumentValueError, "type", id="bad-type"),
        pytest.param(
            (),
            {"timeoutIntervalForRequest": 0},
            InvalidArgumentValueError,
            "timeoutIntervalForRequest",
            id="zero-timeout",
        ),
        pytest.param(
            (),
            {"HTTPHeaderFields": {"X-A": 1}},
            InvalidArgumentTypeError,
            "HTTPHeaderFields",
            id="header-value",
        ),
    ],
)
def test_create_configuration_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[Exception], argument: str
) -> None:
    """Bad arguments raise the documented exception, naming the argument."""
    with pytest.raises(exc) as info:
        URLSession.createSessionConfiguration(*args, **kwargs)
    assert isinstance(info.value, InvalidArgumentError)
    assert info.value.argument == argument


# -- createSession ----------------------------------------------------------------------------


def test_create_session_by_dict(invalidate: Callable[[Session], Session]) -> None:
    """createSession({'configuration': cfg}) makes a Session under the module."""
    cfg = URLSession.createSessionConfiguration({"identifier": "com.example.dict"})
    session = invalidate(URLSession.createSession({"configuration": cfg}))
    assert isinstance(session, Session)
    assert session.apiName == "Modules.URLSession.Session"
    assert session.identifier == "com.example.dict"
    assert session.configuration.identifier == "com.example.dict"
    assert session._bubble_target is URLSession


def test_create_session_by_kwargs(invalidate: Callable[[Session], Session]) -> None:
    """createSession(configuration=cfg) works like the dict."""
    cfg = URLSession.createSessionConfiguration(type="ephemeral")
    session = invalidate(URLSession.createSession(configuration=cfg))
    assert session.configuration.type == "ephemeral"
    assert session.identifier is None


def test_create_session_without_configuration(invalidate: Callable[[Session], Session]) -> None:
    """createSession() uses a default configuration."""
    session = invalidate(URLSession.createSession())
    assert session.configuration.type == "default"
    assert session.tasks == []


def test_create_session_with_event_queue(invalidate: Callable[[Session], Session]) -> None:
    """delegateQueue accepts an EventQueue, and callbacks then run where the host drains it."""
    queue = EventQueue()
    session = invalidate(URLSession.createSession(delegateQueue=queue))
    got: list[dict[str, Any]] = []
    session.flush(got.append)
    assert got == []
    assert queue.drain(timeout=5) == 1
    assert got == [{"completed": True}]


def test_create_session_with_asyncio_loop() -> None:
    """delegateQueue accepts an asyncio loop; callbacks and invalidation run on it."""

    async def main() -> tuple[dict[str, Any], bool]:
        loop = asyncio.get_running_loop()
        session = URLSession.createSession(delegateQueue=loop)
        done: asyncio.Future[dict[str, Any]] = loop.create_future()
        session.flush(done.set_result)
        result = await asyncio.wait_for(done, 5)
        session.finishTasksAndInvalidate()  # completes on the loop: let it run, bounded
        for _ in range(500):
            if session.invalidated:
                break
            await asyncio.sleep(0.01)
        return result, session.invalidated

    assert asyncio.run(main()) == ({"completed": True}, True)


@pytest.mark.parametrize(
    ("props", "exc", "argument"),
    [
        pytest.param({"configuration": "cfg"}, InvalidArgumentTypeError, "configuration", id="str"),
        pytest.param({"configuration": {}}, InvalidArgumentTypeError, "configuration", id="dict"),
        pytest.param({"bogus": 1}, InvalidArgumentValueError, "bogus", id="unknown-key"),
        pytest.param({"delegateQueue": 5}, InvalidArgumentTypeError, "delegateQueue", id="queue"),
    ],
)
def test_create_session_bad_arguments(
    props: dict[str, Any], exc: type[Exception], argument: str
) -> None:
    """Bad createSession arguments raise the documented exception naming the argument."""
    with pytest.raises(exc) as info:
        URLSession.createSession(props)
    assert info.value.argument == argument  # type: ignore[attr-defined]


def test_create_session_refuses_positional_junk() -> None:
    """A positional argument that is neither a dict nor a configuration is refused."""
    with pytest.raises(InvalidArgumentTypeError) as info:
        URLSession.createSession("configuration")
    assert info.value.argument == "args"


def test_session_configuration_is_creation_only(
    invalidate: Callable[[Session], Session],
) -> None:
    """A session's configuration cannot be replaced, by assignment or applyProperties."""
    session = invalidate(URLSession.createSession())
    other = URLSession.createSessionConfiguration(type="ephemeral")
    with pytest.raises(CreationOnlyError):
        session.configuration = other  # type: ignore[misc]
    with pytest.raises(CreationOnlyError):
        session.applyProperties({"configuration": other})
    assert session.configuration.type == "default"


def test_invalidated_session_refuses_tasks(invalidate: Callable[[Session], Session]) -> None:
    """After finishTasksAndInvalidate a task call raises SessionInvalidatedError (a ValueError)."""
    session = invalidate(URLSession.createSession())
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(5)
    assert session.invalidated
    with pytest.raises(SessionInvalidatedError) as info:
        session.dataTask({"url": "http://127.0.0.1:9/"})
    assert isinstance(info.value, ValueError)
    assert info.value.argument == "session"


# -- deprecated entry points ------------------------------------------------------------------


def test_deprecated_background_configuration() -> None:
    """createURLSessionBackgroundConfiguration(id) warns and makes a background configuration."""
    with pytest.warns(DeprecationWarning, match="createSessionConfiguration") as record:
        cfg = URLSession.createURLSessionBackgroundConfiguration("com.example.old")
    assert record[0].filename == __file__  # the warning points at the caller
    assert (cfg.type, cfg.identifier) == ("background", "com.example.old")


def test_deprecated_background_configuration_checks_identifier() -> None:
    """createURLSessionBackgroundConfiguration('') warns, then refuses the identifier."""
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(InvalidArgumentValueError) as info,
    ):
        URLSession.createURLSessionBackgroundConfiguration("")
    assert info.value.argument == "identifier"


def test_deprecated_create_url_session(invalidate: Callable[[Session], Session]) -> None:
    """createURLSession(cfg) warns once and makes a session with that configuration."""
    cfg = URLSession.createSessionConfiguration(type="ephemeral")
    with pytest.warns(DeprecationWarning, match="createSession") as record:
        session = invalidate(URLSession.createURLSession(cfg))
    assert len(record) == 1
    assert record[0].filename == __file__
    assert session.configuration.type == "ephemeral"


def test_deprecated_create_session_with_configuration(
    invalidate: Callable[[Session], Session],
) -> None:
    """createSession(cfg), the configuration as the single argument, warns and works."""
    cfg = URLSession.createSessionConfiguration(type="ephemeral")
    with pytest.warns(DeprecationWarning, match="createSession") as record:
        session = invalidate(URLSession.createSession(cfg))
    assert record[0].filename == __file__
    assert session.configuration.type == "ephemeral"


def test_deprecated_background_download_checks_session() -> None:
    """backgroundDownloadTaskWithURL warns, then refuses a non-session naming 'session'."""
    with (
        pytest.warns(DeprecationWarning, match="downloadTask"),
        pytest.raises(InvalidArgumentTypeError) as info,
    ):
        URLSession.backgroundDownloadTaskWithURL("not a session", "http://127.0.0.1:9/")  # type: ignore[arg-type]
    assert info.value.argument == "session"


def test_deprecated_background_download_checks_url(
    invalidate: Callable[[Session], Session],
) -> None:
    """backgroundDownloadTaskWithURL refuses a bad URL before anything starts."""
    session = invalidate(URLSession.createSession())
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(InvalidArgumentValueError) as info,
    ):
        URLSession.backgroundDownloadTaskWithURL(session, "ftp://example.invalid/x")
    assert info.value.argument == "url"
    assert session.tasks == []


def test_deprecated_finish_tasks_and_invalidate(
    invalidate: Callable[[Session], Session],
) -> None:
    """finishTasksAndInvalidate(session) warns and invalidates the session."""
    session = invalidate(URLSession.createSession())
    with pytest.warns(DeprecationWarning, match=r"session\.finishTasksAndInvalidate"):
        URLSession.finishTasksAndInvalidate(session)
    assert session.waitForInvalidation(5)


def test_deprecated_invalidate_and_cancel(invalidate: Callable[[Session], Session]) -> None:
    """invalidateAndCancel(session) warns and invalidates the session."""
    session = invalidate(URLSession.createSession())
    with pytest.warns(DeprecationWarning, match=r"session\.invalidateAndCancel"):
        URLSession.invalidateAndCancel(session)
    assert session.waitForInvalidation(5)
    with pytest.raises(SessionInvalidatedError):
        session.downloadTask(url="http://127.0.0.1:9/")


@pytest.mark.parametrize("name", ["finishTasksAndInvalidate", "invalidateAndCancel"])
def test_deprecated_invalidators_check_session(name: str) -> None:
    """The deprecated invalidators refuse a non-session, naming 'session'."""
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidArgumentTypeError) as info:
        getattr(URLSession, name)(None)
    assert info.value.argument == "session"
