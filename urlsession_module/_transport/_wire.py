"""The one interface between the transport's hop logic and an engine that moves the bytes.

Everything that does not depend on how bytes reach the wire (redirects by Foundation's rules,
cookies, the cache, credentials and 401s, resume, the sinks' caps, coalesced progress, feeding
the task's machine) lives above it, in :mod:`._engine`, written once. An engine only sends one
request and hands back its response: a head (status and headers) and a body read like a file,
with urllib3's response type as the common shape (the cache already serves its responses in
it, and its decoders are the ones every engine's bodies go through, so a body is decoded, capped
and cached the same way whichever engine carried it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Protocol, TypeVar

import urllib3

from .._config_values import ConfigValues, set_curl_probe

if TYPE_CHECKING:
    from ._attempt import Attempt


T = TypeVar("T")

_STEP = 0.25  # the longest a blocking driver waits before it looks again (cancel, clocks)


class Waiter(Protocol):
    """What a transfer waits for, yielded by :meth:`Transport.steps` instead of blocking.

    Made when the awaited thing was found missing; ``wake`` is called once, from any thread,
    as soon as something may have changed since (at once if something already has). A
    resumed step looks again and may yield a new waiter: a wake-up may be early, never lost.
    """

    def block(self, timeout: float) -> bool:
        """Wait on this thread, at most ``timeout`` s, for a change; True if one came."""

    def subscribe(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (once) on the next change; the caller's thread goes on meanwhile."""

    # Optional (looked up with getattr): ``run_on_wake(job)`` runs ``job`` on the thread that
    # makes the change (an engine's network thread), once it is outside its locks and
    # callbacks: the steps go on there, without a worker thread or a hand-off, until they end
    # or reach an :data:`OFF_LOOP`. A waiter offers it only where that thread can run them.


class OffLoop:
    """Yielded before a step that may block (a file, a store, a wait while suspended): it
    waits for nothing, but an engine's network thread that runs the steps (a waiter's
    ``run_on_wake``, see :class:`Waiter` and ``_runner``) hands them to a worker here. On a
    thread that may block (a worker, :func:`drive`) it costs one turn of the generator."""

    __slots__ = ()

    def block(self, timeout: float) -> bool:
        return True

    def subscribe(self, wake: Callable[[], None]) -> None:
        wake()


#: The one :class:`OffLoop`: ``yield OFF_LOOP`` before a step that may block.
OFF_LOOP = OffLoop()

_role = threading.local()


def mark_network_thread() -> None:
    """Called by an engine's network thread as it starts: nothing may wait on it."""
    _role.network = True


def on_network_thread() -> bool:
    """Whether this is an engine's network thread, where a step must not wait (a pacing
    sleep that came to apply after the step looked, see ``_unreliable``, is skipped there)."""
    return getattr(_role, "network", False)


#: A transfer's steps: yields what it waits for; returns its result.
Steps = Generator[Waiter, None, T]


def drive(steps: Steps[T]) -> T:
    """Run ``steps`` on this thread to its end, blocking wherever it waits."""
    try:
        waiter = next(steps)
        while True:
            waiter.block(_STEP)
            waiter = steps.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


class Engine(Protocol):
    """Sends one request and returns its response head; the body is read from the response.

    ``open`` returns once the final (non-1xx) head has come, the body still on the wire; the
    response's ``read1``/``drain_conn``/``release_conn``/``close`` read it, pool the connection
    or drop it. A cancel goes through ``a.ctl.set_abort``: the engine offers a way to stop the
    exchange at once while ``open`` waits or the body is read. Errors are raised as they come
    (the transport maps them to URLSession codes at one place, :func:`~._errors.map_exception`).
    """

    name: str

    def open(
        self,
        a: Attempt,
        url: str,
        headers: urllib3.HTTPHeaderDict,
        body: Iterator[bytes | memoryview] | None,
    ) -> urllib3.BaseHTTPResponse:
        """Send ``a.request``'s method to ``url`` (no user info) with exactly ``headers``."""

    def protocol(self, resp: urllib3.BaseHTTPResponse) -> str:
        """Apple's name for what carried the response: 'http/1.1', 'h2' or 'h3'."""

    def clear_idle(self) -> None:
        """Forget idle connections (a flush or reset): new tasks get fresh ones."""

    def close(self) -> None:
        """The session is gone and no task runs: close every connection now."""


def make_engine(config: ConfigValues) -> Engine:
    """The engine the configuration names (``engine``: 'curl' or 'urllib3')."""
    if config.engine == "curl":
        from ._curl import CurlEngine

        return CurlEngine(config)
    from ._urllib3 import Urllib3Engine

    return Urllib3Engine(config)


def _curl_probe() -> tuple[bool, bool]:
    """(pycurl imports, its libcurl was built with HTTP/3), for the configuration's checks."""
    try:
        import pycurl
    except ImportError:
        return False, False
    return True, bool(pycurl.version_info()[4] & pycurl.VERSION_HTTP3)


set_curl_probe(_curl_probe)
