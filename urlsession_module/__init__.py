"""urlsession_module: Titanium's ``ti.urlsession`` (``com.appcelerator.urlSession``) for Python.

The Python module object *is* the module proxy, as ``require('com.appcelerator.urlSession')``
is in Titanium::

    import urlsession_module as URLSession

    URLSession.addEventListener('sessioncompleted', lambda e: print(e.taskIdentifier, e.success))
    cfg = URLSession.createSessionConfiguration({'identifier': 'com.example.bg'})
    session = URLSession.createSession({'configuration': cfg})
    session.downloadTask({'url': 'http://127.0.0.1:8000/bytes/1048576'})

Events of every task bubble task → session → module (the module plays Titanium's app-level
``Ti.App.iOS``, where the original module's events were heard).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import types
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from typing_extensions import Unpack

from . import _validate as _check
from ._config_values import CONFIG_FIELDS
from ._configuration import SessionConfiguration
from ._delivery import default_queue as _default_queue
from ._delivery import set_default_queue as _set_default_queue
from ._dispatch import EventQueue
from ._events import Event
from ._proxy import Listener, Proxy
from ._session import Session, Task
from ._state import Request, ResponseInfo, TaskState
from ._storage import Blob, state_dir
from ._types import (
    ConfigurationArgs,
    Credential,
    DataTaskArgs,
    DownloadTaskArgs,
    SessionArgs,
    UploadTaskArgs,
)
from .exceptions import (
    CreationOnlyError,
    ErrorCode,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidArgumentValueError,
    SessionInvalidatedError,
    StateDirectoryError,
    TaskStateError,
    TransferError,
    UnsupportedURLError,
    UploadFileNotFoundError,
    URLSessionError,
    WouldDeadlockError,
)

__all__ = [
    "Blob",
    "ConfigurationArgs",
    "CreationOnlyError",
    "Credential",
    "DataTaskArgs",
    "DownloadTaskArgs",
    "ErrorCode",
    "Event",
    "EventQueue",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidArgumentValueError",
    "Request",
    "ResponseInfo",
    "Session",
    "SessionArgs",
    "SessionConfiguration",
    "SessionInvalidatedError",
    "StateDirectoryError",
    "Task",
    "TaskState",
    "TaskStateError",
    "TransferError",
    "URLSessionError",
    "UnsupportedURLError",
    "UploadFileNotFoundError",
    "UploadTaskArgs",
    "WouldDeadlockError",
    "addEventListener",
    "apiName",
    "applyProperties",
    "backgroundDownloadTaskWithURL",
    "bubbleParent",
    "createSession",
    "createSessionConfiguration",
    "createURLSession",
    "createURLSessionBackgroundConfiguration",
    "endBackgroundHandler",
    "finishTasksAndInvalidate",
    "fireEvent",
    "getDefaultDelegateQueue",
    "invalidateAndCancel",
    "moduleId",
    "removeEventListener",
    "setDefaultDelegateQueue",
    "state_dir",
]

__version__ = "0.1.0"
moduleId = "com.appcelerator.urlSession"

logging.getLogger(__name__).addHandler(logging.NullHandler())

for _cls in (Blob, Event, EventQueue, Session, SessionConfiguration, Task, Request, ResponseInfo):
    _cls.__module__ = __name__


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


class _ModuleProxy(types.ModuleType, Proxy):
    """The type of this module once imported: a ``ModuleType`` that is also a Titanium proxy.

    The module's functions below are plain module-level functions (typed, visible to editors);
    this class adds only what makes the module a proxy: listeners, ``fireEvent``, ``apiName``.
    """

    _api_name = "Modules.URLSession"


# Typed names for the proxy members the class above provides (no runtime effect).
apiName: str
bubbleParent: bool


def _self() -> Proxy:
    return sys.modules[__name__]  # type: ignore[return-value]


def addEventListener(name: str, callback: Listener) -> None:
    """Listen on the module: every task event of every session bubbles here (``Ti.App.iOS``)."""
    Proxy.addEventListener(_self(), name, callback)


def removeEventListener(name: str, callback: Listener) -> None:
    """Remove a module listener; an unknown name or callback is a no-op."""
    Proxy.removeEventListener(_self(), name, callback)


def fireEvent(name: str, event: Mapping[str, Any] | None = None) -> None:
    """Deliver a synthesized event to the module's listeners."""
    Proxy.fireEvent(_self(), name, event)


def applyProperties(props: Mapping[str, Any]) -> None:
    """``module[key] = value`` for each pair."""
    Proxy.applyProperties(_self(), props)


@overload
def createSessionConfiguration(props: ConfigurationArgs, /) -> SessionConfiguration: ...
@overload
def createSessionConfiguration(**kwargs: Unpack[ConfigurationArgs]) -> SessionConfiguration: ...
def createSessionConfiguration(*args: Any, **kwargs: Any) -> SessionConfiguration:
    """A background configuration when an ``identifier`` is given, else a default one.

    ``type`` picks 'background', 'default' or 'ephemeral'; any configuration property may be
    given here too, as Titanium's create functions take properties.
    """
    props = _check.args_dict("createSessionConfiguration", args, kwargs, CONFIG_FIELDS)
    return SessionConfiguration(props)


@overload
def createSession(props: SessionArgs | SessionConfiguration, /) -> Session: ...
@overload
def createSession(**kwargs: Unpack[SessionArgs]) -> Session: ...
def createSession(*args: Any, **kwargs: Any) -> Session:
    """A session from ``{'configuration': cfg}`` (or ``configuration=cfg``).

    ``delegateQueue`` chooses where events are delivered: None (a background thread), an
    asyncio loop, or an :class:`EventQueue` the host drains itself.
    """
    if len(args) == 1 and isinstance(args[0], SessionConfiguration) and not kwargs:
        _deprecated("createSession(configuration)", "createSession({'configuration': cfg})")
        args = ({"configuration": args[0]},)
    return _create_session(*args, **kwargs)


def _create_session(*args: Any, **kwargs: Any) -> Session:
    props = _check.args_dict("createSession", args, kwargs, ("configuration", "delegateQueue"))
    unknown = set(props) - {"configuration", "delegateQueue"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidArgumentValueError(name, f"{name!r} is not an argument of createSession()")
    cfg = props.get("configuration")
    if cfg is None:
        cfg = SessionConfiguration()
    if not isinstance(cfg, SessionConfiguration):
        raise InvalidArgumentTypeError(
            "configuration", f"'configuration' must be a SessionConfiguration (got {cfg!r})"
        )
    return Session(cfg._values, parent=_self(), delegateQueue=props.get("delegateQueue"))


def setDefaultDelegateQueue(
    queue: EventQueue | asyncio.AbstractEventLoop | None,
) -> EventQueue | asyncio.AbstractEventLoop | None:
    """Make ``queue`` the ``delegateQueue`` of every session created without one; returns the
    previous default (None: each session delivers on its own thread, as before).

    For hosts that run code which creates sessions itself (a Titanium app run by the JavaScript
    host) yet need every listener on one thread: set an :class:`EventQueue` (or an asyncio loop)
    here, drain it, and put the previous default back when done. Sessions already created keep
    their queue.
    """
    return _set_default_queue(queue)


def getDefaultDelegateQueue() -> EventQueue | asyncio.AbstractEventLoop | None:
    """The queue :func:`setDefaultDelegateQueue` set, or None."""
    return _default_queue()


def endBackgroundHandler(handlerId: str) -> None:
    """Tell the package the host has handled a ``backgroundtransfer`` (Titanium's
    ``Ti.App.iOS.endBackgroundHandler``).

    The events it announced are acknowledged as their listeners return, so nothing else is
    owed; the call exists so that ported apps keep working, and it checks its argument.
    """
    if not isinstance(handlerId, str) or not handlerId:
        raise InvalidArgumentTypeError(
            "handlerId", f"'handlerId' must be a non-empty str (got {handlerId!r})"
        )
    logging.getLogger(__name__).debug("background handler %s ended", handlerId)


# -- deprecated Titanium entry points --------------------------------------------------------------


def createURLSessionBackgroundConfiguration(identifier: str) -> SessionConfiguration:
    """Deprecated: ``createSessionConfiguration({'identifier': identifier})``."""
    _deprecated(
        "createURLSessionBackgroundConfiguration(identifier)",
        "createSessionConfiguration({'identifier': identifier})",
    )
    return SessionConfiguration({"identifier": identifier, "type": "background"})


def createURLSession(configuration: SessionConfiguration) -> Session:
    """Deprecated: ``createSession({'configuration': configuration})``."""
    _deprecated("createURLSession(configuration)", "createSession({'configuration': cfg})")
    return _create_session({"configuration": configuration})


def backgroundDownloadTaskWithURL(session: Session, url: str) -> str:
    """Deprecated: ``session.downloadTask({'url': url})``."""
    _deprecated("backgroundDownloadTaskWithURL(session, url)", "session.downloadTask({'url': url})")
    _must_be_session(session)
    return session.downloadTask({"url": url})


def finishTasksAndInvalidate(session: Session) -> None:
    """Deprecated: ``session.finishTasksAndInvalidate()``."""
    _deprecated("finishTasksAndInvalidate(session)", "session.finishTasksAndInvalidate()")
    _must_be_session(session)
    session.finishTasksAndInvalidate()


def invalidateAndCancel(session: Session) -> None:
    """Deprecated: ``session.invalidateAndCancel()``."""
    _deprecated("invalidateAndCancel(session)", "session.invalidateAndCancel()")
    _must_be_session(session)
    session.invalidateAndCancel()


def _must_be_session(session: object) -> None:
    if not isinstance(session, Session):
        raise InvalidArgumentTypeError("session", f"'session' must be a Session (got {session!r})")


_module = sys.modules[__name__]
_module.__class__ = _ModuleProxy
Proxy._proxy_init(_module)  # type: ignore[arg-type]
del _module, _cls
