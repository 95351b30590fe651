"""What crosses between JavaScript and Python, and how.

Every value goes as JSON text: a Python object the script may use (the module, a session, a
task, a Blob, ``Ti.App.Properties``...) as ``{"$h": id}``, which the JavaScript side turns into
one wrapper per object (so ``===`` holds), and a JavaScript function as ``{"$f": n}`` beside
the text. JSON gives JavaScript's numbers their Python types for free (``1`` is an int, ``1.5``
a float), plain dicts and lists, and ``null`` as None, without walking engine proxies.

A call answers ``{"ok": value}`` or ``{"error": message, "name": class}``: the JavaScript side
throws an ``Error`` with exactly that message, so a Python exception is catchable there.
"""

from __future__ import annotations

import datetime
import enum
import json
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from .._events import Event
from .._proxy import BUILTIN_EVENTS, Proxy
from .._storage import Blob
from ._ti import AppProperties, File, Filesystem

__all__ = ["Bridge", "Handles"]

EXPOSED = (Proxy, Blob, AppProperties, File, Filesystem, Event)
_EVENT_KEYS = frozenset({"type", "source", "bubbles", "cancelBubble"})


class Handles:
    """Ids for the Python objects handed to JavaScript, kept alive for the run."""

    def __init__(self) -> None:
        self._by_id: dict[int, Any] = {}
        self._ids: dict[int, int] = {}

    def id_of(self, obj: Any) -> int:
        key = id(obj)
        h = self._ids.get(key)
        if h is None:
            h = len(self._by_id) + 1
            self._by_id[h] = obj
            self._ids[key] = h
        return h

    def get(self, h: int) -> Any:
        try:
            return self._by_id[h]
        except KeyError:
            raise LookupError(f"no object #{h} in this run") from None


class Bridge:
    """The Python callables the JavaScript side is given (``py`` in prelude.js)."""

    def __init__(
        self,
        handles: Handles,
        *,
        on_call: Callable[[Any], None],
        invoke: Callable[[Any, list[Any], str], None],
        deliver: Callable[[Any, Event], None],
        rewrite: Callable[[Any, str, list[Any]], list[Any]],
        reuse: Callable[[Any, str, list[Any]], Any],
        warn: Callable[[str], None],
    ) -> None:
        self.handles = handles
        self._on_call = on_call  # sees every result (the host tracks sessions made from JS)
        self._invoke = invoke
        self._deliver = deliver
        self._rewrite = rewrite  # the host's url_map
        self._reuse = reuse  # a call the host answers itself (None: make the call)
        self._warn = warn  # a warning (a deprecated entry point) goes to the script's console
        self._listeners: dict[int, tuple[Any, str, Callable[[Event], None]]] = {}

    # -- values ----------------------------------------------------------------------------------

    def encode(self, value: Any) -> str:
        return json.dumps(value, default=self._default, allow_nan=False)

    def _default(self, obj: Any) -> Any:
        if isinstance(obj, EXPOSED):
            api = getattr(obj, "apiName", type(obj).__name__)
            return {"$h": self.handles.id_of(obj), "api": api}
        if isinstance(obj, enum.Enum):
            return obj.value
        if isinstance(obj, (datetime.datetime, datetime.date)):
            return obj.isoformat()
        if isinstance(obj, os.PathLike):
            return os.fspath(obj)
        if isinstance(obj, (bytes, bytearray)):
            return bytes(obj).decode("utf-8", errors="replace")
        if isinstance(obj, Mapping):
            return dict(obj)
        if isinstance(obj, (set, frozenset, tuple)):
            return list(obj)
        return str(obj)

    def decode(self, text: str, fns: Any = ()) -> Any:
        functions = list(fns or ())

        def hook(d: dict[str, Any]) -> Any:
            if len(d) == 1 and isinstance(d.get("$h"), int):
                return self.handles.get(d["$h"])
            if len(d) == 1 and isinstance(d.get("$f"), int):
                fn = functions[d["$f"]]
                return lambda *args: self._invoke(fn, list(args), "a callback")
            return d

        return json.loads(text, object_hook=hook)

    def _answer(self, produce: Callable[[], Any]) -> str:
        try:
            value = produce()
        except Exception as exc:  # every Python error becomes a JS Error with its message
            return json.dumps({"error": str(exc) or type(exc).__name__, "name": type(exc).__name__})
        self._on_call(value)
        return json.dumps({"ok": value}, default=self._default)

    # -- what JavaScript calls -------------------------------------------------------------------

    def call(self, h: float, method: str, args_text: str, fns: Any) -> str:
        def produce() -> Any:
            target = self.handles.get(int(h))
            args = self.decode(args_text, fns)
            while args and args[-1] is None:  # f(a, undefined): Python's default, not None
                args.pop()
            # Only JavaScript runs on this thread while the call lasts: the filters are ours.
            args = self._rewrite(target, method, args)
            reused = self._reuse(target, method, args)
            if reused is not None:
                return reused
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = getattr(target, method)(*args)
            for warning in caught:
                self._warn(f"{warning.category.__name__}: {warning.message}")
            return value

        return self._answer(produce)

    def get(self, h: float, prop: str) -> str:
        target = self.handles.get(int(h))
        if prop.startswith("_"):
            return '{"missing": true}'
        try:
            value = getattr(target, prop)
        except AttributeError:
            return '{"missing": true}'
        except Exception as exc:  # a property that raised
            return json.dumps({"error": str(exc), "name": type(exc).__name__})
        if callable(value) and not isinstance(value, EXPOSED) and not isinstance(value, type):
            return '{"method": true}'
        if isinstance(value, type):
            return '{"missing": true}'
        return self._answer(lambda: value)

    def set(self, h: float, prop: str, value_text: str) -> str:
        def produce() -> None:
            if prop.startswith("_"):
                raise AttributeError(f"{prop!r} cannot be set")
            setattr(self.handles.get(int(h)), prop, self.decode(value_text))

        return self._answer(produce)

    def listen(self, h: float, name: str, fn: Any) -> str:
        def produce() -> int:
            target = self.handles.get(int(h))

            def listener(event: Event) -> None:
                self._deliver(fn, event)

            target.addEventListener(name, listener)
            token = len(self._listeners) + 1
            self._listeners[token] = (target, name, listener)
            return token

        return self._answer(produce)

    def unlisten(self, token: float) -> str:
        def produce() -> None:
            entry = self._listeners.pop(int(token), None)
            if entry is not None:
                target, name, listener = entry
                target.removeEventListener(name, listener)

        return self._answer(produce)

    def module_events(self) -> str:
        return json.dumps({"ok": sorted(BUILTIN_EVENTS)})

    def event_fields(self, event: Event) -> str:
        """A delivered event's payload fields as JSON (type, source and the rest go apart)."""
        return self.encode({k: event[k] for k in event if k not in _EVENT_KEYS})

    def close(self) -> None:
        """Remove every listener JavaScript added (the module proxy outlives the run)."""
        for target, name, listener in self._listeners.values():
            target.removeEventListener(name, listener)
        self._listeners.clear()
