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

import logging
import sys
import types
import warnings
from typing import Any

from . import _validate as _check
from ._configuration import SessionConfiguration
from ._dispatch import EventQueue
from ._events import Event
from ._proxy import Proxy
from ._session import Session, Task
from ._state import Request, ResponseInfo, TaskState
from ._storage import Blob, state_dir
from .exceptions import (
    CreationOnlyError,
    ErrorCode,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidArgumentValueError,
    SessionInvalidatedError,
    TaskStateError,
    TransferError,
    UnsupportedURLError,
    UploadFileNotFoundError,
    URLSessionError,
)

__all__ = [
    "Blob",
    "CreationOnlyError",
    "ErrorCode",
    "Event",
    "EventQueue",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidArgumentValueError",
    "Request",
    "ResponseInfo",
    "Session",
    "SessionConfiguration",
    "SessionInvalidatedError",
    "Task",
    "TaskState",
    "TaskStateError",
    "TransferError",
    "URLSessionError",
    "UnsupportedURLError",
    "UploadFileNotFoundError",
    "addEventListener",
    "apiName",
    "applyProperties",
    "backgroundDownloadTaskWithURL",
    "bubbleParent",
    "createSession",
    "createSessionConfiguration",
    "createURLSession",
    "createURLSessionBackgroundConfiguration",
    "finishTasksAndInvalidate",
    "fireEvent",
    "invalidateAndCancel",
    "moduleId",
    "removeEventListener",
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
    """The type of this module once imported: a ``ModuleType`` that is also a Titanium proxy."""

    _api_name = "Modules.URLSession"

    def createSessionConfiguration(self, *args: Any, **kwargs: Any) -> SessionConfiguration:
        """A background configuration when an ``identifier`` is given, else a default one.

        ``type`` picks 'background', 'default' or 'ephemeral'; any configuration property may be
        given here too, as Titanium's create functions take properties.
        """
        props = _check.args_dict("createSessionConfiguration", args, kwargs)
        return SessionConfiguration(props)

    def createSession(self, *args: Any, **kwargs: Any) -> Session:
        """A session from ``{'configuration': cfg}`` (or ``configuration=cfg``).

        ``delegateQueue`` chooses where events are delivered: None (a background thread), an
        asyncio loop, or an :class:`EventQueue` the host drains itself.
        """
        if len(args) == 1 and isinstance(args[0], SessionConfiguration) and not kwargs:
            _deprecated("createSession(configuration)", "createSession({'configuration': cfg})")
            args = ({"configuration": args[0]},)
        props = _check.args_dict("createSession", args, kwargs)
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
        return Session(cfg._values, parent=self, delegateQueue=props.get("delegateQueue"))

    # -- deprecated Titanium entry points ----------------------------------------------------------

    def createURLSessionBackgroundConfiguration(self, identifier: str) -> SessionConfiguration:
        _deprecated(
            "createURLSessionBackgroundConfiguration(identifier)",
            "createSessionConfiguration({'identifier': identifier})",
        )
        return SessionConfiguration({"identifier": identifier, "type": "background"})

    def createURLSession(self, configuration: SessionConfiguration) -> Session:
        _deprecated("createURLSession(configuration)", "createSession({'configuration': cfg})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return self.createSession({"configuration": configuration})

    def backgroundDownloadTaskWithURL(self, session: Session, url: str) -> str:
        _deprecated(
            "backgroundDownloadTaskWithURL(session, url)", "session.downloadTask({'url': url})"
        )
        _must_be_session(session)
        return session.downloadTask({"url": url})

    def finishTasksAndInvalidate(self, session: Session) -> None:
        _deprecated("finishTasksAndInvalidate(session)", "session.finishTasksAndInvalidate()")
        _must_be_session(session)
        session.finishTasksAndInvalidate()

    def invalidateAndCancel(self, session: Session) -> None:
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
