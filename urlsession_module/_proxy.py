"""Titanium proxy semantics over pyee: listeners, ``fireEvent``, bubbling, ``applyProperties``.

pyee keeps the listeners: it keys them by function (so the same callback added twice is
registered once), guards them with a lock and hands out a copy to call. Delivery is ours: we never
go through ``emit`` (whose ``'error'`` event raises when nobody listens), and the one hook that
runs a listener, ``_emit_run``, is where a failing listener is reported (on stderr by default,
or through the ``urlsession_module.listeners`` logger: see ``docs/events.md``) and delivery goes
on.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pyee import EventEmitter

from ._dispatch import report_callback_error
from ._events import Event
from .exceptions import CreationOnlyError, InvalidArgumentTypeError, InvalidArgumentValueError

__all__ = ["BUILTIN_EVENTS", "Listener", "Proxy"]

Listener = Callable[[Event], Any]

BUILTIN_EVENTS = frozenset(
    {
        "backgroundtransfer",
        "downloadcompleted",
        "downloadprogress",
        "sessioncompleted",
        "sessioneventscompleted",
        "uploadprogress",
        "waitingforconnectivity",
    }
)
"""The events the package fires itself; any other name is a custom event (``fireEvent``)."""


class _Emitter(EventEmitter):
    """A pyee emitter whose run hook catches, reports and swallows a listener's exception."""

    def _emit_run(
        self, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            f(*args, **kwargs)
        except (Exception, SystemExit):  # sys.exit() in a listener must not kill delivery
            name = getattr(f, "__qualname__", None) or repr(f)
            event = args[0].type if args else None
            report_callback_error(f"listener {name} for event {event!r}")

    def emit(self, event: str, *args: Any, **kwargs: Any) -> bool:
        # Our events never go through emit (see deliver). pyee itself calls it on every add, to
        # announce 'new_listener' with (name, callback): a user listening for an event that happens
        # to be called 'new_listener' must not be called with that. So emit delivers nothing.
        return False

    def deliver(self, name: str, event: Event) -> None:
        # pyee copies the handler list under its lock and calls each through _emit_run, outside
        # the lock: listeners may be added or removed meanwhile, from any thread.
        self._call_handlers(name, (event,), {})


_EMITTER_MADE = threading.Lock()  # (only while a proxy's first listener makes its emitter)


class Proxy:
    """Base of every public object (module, configuration, session, task).

    Subclasses set ``_api_name`` and may list ``_creation_only`` keys that ``applyProperties`` and
    assignment refuse after creation. ``_bubble_target`` is the parent an event goes to next.
    """

    _api_name: ClassVar[str] = "Titanium.Proxy"
    _creation_only: ClassVar[frozenset[str]] = frozenset()
    _emitter: _Emitter | None
    _bubble_target: Proxy | None
    bubbleParent: bool
    """Default True; False stops events from this proxy going on to its parent."""

    def _proxy_init(self, parent: Proxy | None = None) -> None:
        # A method, not __init__: the module proxy is a ModuleType whose __init__ we do not own.
        # The emitter (a dict and a lock) comes with the first listener: most task proxies
        # never get one, and a background replay makes 10,000 of them in a row.
        object.__setattr__(self, "_emitter", None)
        object.__setattr__(self, "_bubble_target", parent)
        object.__setattr__(self, "bubbleParent", True)

    def __init__(self, parent: Proxy | None = None) -> None:
        self._proxy_init(parent)

    # -- Titanium.Proxy ------------------------------------------------------------------------

    @property
    def apiName(self) -> str:
        """Titanium's fully qualified name of the API, e.g. ``Modules.URLSession.Session``."""
        return self._api_name

    def addEventListener(self, name: str, callback: Listener) -> None:
        """Register ``callback`` for ``name``; the same callback twice is registered once."""
        _check_listener_args(name, callback)
        if name not in BUILTIN_EVENTS and (meant := _misspelled_builtin(name)) is not None:
            warnings.warn(
                f"no built-in event is called {name!r}: did you mean {meant!r}? (a custom "
                "name is fine, only fireEvent will deliver it)",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
        self._listening().add_listener(name, callback)

    def _listening(self) -> _Emitter:
        """This proxy's emitter, made by the first listener (once, whichever thread adds it)."""
        emitter = self._emitter
        if emitter is None:
            with _EMITTER_MADE:
                emitter = self._emitter
                if emitter is None:
                    emitter = _Emitter()
                    object.__setattr__(self, "_emitter", emitter)
        return emitter

    def removeEventListener(self, name: str, callback: Listener) -> None:
        """Remove ``callback``; an unknown name or callback is a no-op, as in Titanium."""
        emitter = self._emitter
        if emitter is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            emitter.remove_listener(name, callback)

    def fireEvent(self, name: str, event: Mapping[str, Any] | None = None) -> None:
        """Deliver a synthesized event to this proxy's listeners, then bubble it to its parents."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentTypeError("name", f"'name' must be a non-empty str (got {name!r})")
        if event is not None and not isinstance(event, Mapping):
            raise InvalidArgumentTypeError("event", f"'event' must be a dict (got {event!r})")
        self._dispatch_event(Event(name, self, event))

    def applyProperties(self, props: Mapping[str, Any]) -> None:
        """``proxy[key] = value`` for each pair; a creation-only key raises and nothing is set."""
        if not isinstance(props, Mapping):
            raise InvalidArgumentTypeError("props", f"'props' must be a dict (got {props!r})")
        for key in props:
            self._check_settable(key)
        for key, value in props.items():
            setattr(self, key, value)

    def hasListeners(self, name: str) -> bool:
        """Whether anyone listens for ``name`` here; lets hot paths skip building payloads."""
        emitter = self._emitter
        return emitter is not None and bool(emitter.listeners(name))

    def __setattr__(self, name: str, value: Any) -> None:
        # Creation-only keys refuse plain assignment too, not just applyProperties and proxy[key].
        if name in self._creation_only:
            raise CreationOnlyError(f"{name!r} can only be set at creation of {self._api_name}")
        super().__setattr__(name, value)

    # -- item access, Titanium's proxy[key] ------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key.startswith("_"):
            raise KeyError(key)
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or key.startswith("_"):
            raise KeyError(key)
        setattr(self, key, value)

    def _check_settable(self, key: str) -> None:
        if not isinstance(key, str) or key.startswith("_"):
            raise InvalidArgumentValueError(
                "props", f"property names must be public str (got {key!r})"
            )
        if key in self._creation_only:
            raise CreationOnlyError(f"{key!r} can only be set at creation of {self._api_name}")

    # -- delivery --------------------------------------------------------------------------------

    def _bubble_chain(self) -> list[Proxy]:
        """The proxies an event fired here visits, worked out before delivery starts."""
        chain: list[Proxy] = [self]
        node: Proxy | None = self._bubble_target
        while node is not None and node not in chain:
            chain.append(node)
            node = node._bubble_target
        return chain

    def _dispatch_event(self, event: Event) -> None:
        for proxy in self._bubble_chain():
            emitter = proxy._emitter
            if emitter is not None:
                emitter.deliver(event.type, event)
            if event.cancelBubble or not event.bubbles or not proxy.bubbleParent:
                break

    def _drop_listeners(self) -> None:
        emitter = self._emitter
        if emitter is not None:
            emitter.remove_all_listeners()


def _check_listener_args(name: object, callback: object) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidArgumentTypeError("name", f"'name' must be a non-empty str (got {name!r})")
    if not callable(callback):
        raise InvalidArgumentTypeError(
            "callback", f"'callback' must be callable (got {callback!r})"
        )


def _misspelled_builtin(name: str) -> str | None:
    """The built-in event ``name`` is one typo from (or a different case of), if any."""
    folded = name.lower()
    for builtin in sorted(BUILTIN_EVENTS):
        if folded == builtin or _one_edit_apart(name, builtin):
            return builtin
    return None


def _one_edit_apart(a: str, b: str) -> bool:
    """One letter added, dropped, changed, or two neighbours swapped (Damerau distance 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        swapped = a[i + 1 : i + 2] == b[i : i + 1] and a[i : i + 1] == b[i + 1 : i + 2]
        return a[i + 1 :] == b[i + 1 :] or (swapped and a[i + 2 :] == b[i + 2 :])
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1 :] == shorter[i:]


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("urlsession_module"):
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    return level
