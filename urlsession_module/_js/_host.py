"""``JSHost``: runs a Titanium script on this thread, with the module one ``require`` away.

One thread does everything: the script's top level, its timers, promise jobs and every
listener. Sessions the script creates deliver through an :class:`EventQueue` set as the
module-wide default ``delegateQueue`` for the run; each callback queued there wakes the host's
asyncio loop, which drains it. The run ends when nothing is left to wait for (no timer, no
queued event, no outstanding task of a session the script made), or at the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from .. import _delivery
from .._dispatch import EventQueue
from .._events import Event
from .._session import Session
from .._storage import Blob
from ..exceptions import InvalidArgumentValueError
from . import _engine
from ._bridge import Bridge, Handles
from ._ti import AppProperties, Filesystem

__all__ = ["JSHost", "RunResult"]

_TASK_METHODS = frozenset({"dataTask", "downloadTask", "uploadTask"})
_IDLE_CHECK = 0.02  # how often the loop looks whether anything is left to wait for
_SETTLE = 0.05  # a script's own 0 ms timers (a window's 'open') run before clicks


def find_jasmine(where: str | os.PathLike[str]) -> Path:
    """jasmine-core's ``jasmine.js``: the file itself, or found under an npm prefix or the
    package's own directory."""
    base = Path(where)
    for candidate in (
        base,
        base / "node_modules" / "jasmine-core" / "lib" / "jasmine-core" / "jasmine.js",
        base / "lib" / "jasmine-core" / "jasmine.js",
        base / "jasmine.js",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no jasmine-core in {base} (looked for jasmine.js there, under node_modules/jasmine-core "
        "and lib/jasmine-core): npm install --prefix DIR jasmine-core"
    )


class _WakingQueue(EventQueue):
    """An EventQueue that also wakes the host's asyncio loop to drain it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        super().__init__()
        self._loop = loop
        self._wake = wake

    def submit(self, fn: Any) -> None:
        super().submit(fn)
        with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
            self._loop.call_soon_threadsafe(self._wake)


class RunResult:
    """How a run ended: ``status`` 0 or 1, and the errors that made it 1."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.timed_out = False

    @property
    def status(self) -> int:
        return 1 if self.errors or self.timed_out else 0

    def __repr__(self) -> str:
        return f"<RunResult status={self.status} errors={len(self.errors)}>"


class JSHost:
    """Run Titanium JavaScript against this package, headless, on the calling thread.

    ``url_map`` rewrites task URLs starting with a key to start with its value instead;
    ``clicks`` are titles of buttons clicked once the script has run; ``background_fetch``
    fires ``backgroundfetch`` then; ``timeout`` (seconds) bounds the whole run. ``Ti.API``
    output goes to ``stream`` (stderr by default). The app id names where ``Ti.App.Properties``
    and ``applicationDataDirectory`` live in the state directory.
    """

    def __init__(
        self,
        *,
        app_id: str = "app",
        url_map: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        clicks: Sequence[str] = (),
        background_fetch: bool = False,
        timeout: float | None = None,
        stream: TextIO | None = None,
        jasmine: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(app_id, str) or not app_id:
            raise InvalidArgumentValueError("app_id", f"'app_id' must be a name (got {app_id!r})")
        if timeout is not None and not timeout > 0:
            raise InvalidArgumentValueError("timeout", f"'timeout' must be > 0 (got {timeout!r})")
        pairs = list(url_map.items() if isinstance(url_map, Mapping) else url_map)
        for src, _ in pairs:
            if not src:
                raise InvalidArgumentValueError("url_map", "a url_map prefix must not be empty")
        self.app_id = app_id
        self.url_map: list[tuple[str, str]] = [(str(a), str(b)) for a, b in pairs]
        self.clicks = list(clicks)
        self.background_fetch = background_fetch
        self.timeout = timeout
        self._stream = stream
        self._jasmine = None if jasmine is None else find_jasmine(jasmine)
        self._jasmine_running = False
        self._sessions: list[Session] = []
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._next_timer = 0
        self._result = RunResult()
        self._blobs: list[tuple[Blob, str]] = []
        self._js: Any = None
        self._queue: _WakingQueue | None = None

    # -- running ---------------------------------------------------------------------------------

    def run_file(self, path: str | os.PathLike[str]) -> RunResult:
        """Read and run a script file; see :meth:`run`."""
        p = Path(path)
        return self.run(p.read_text(encoding="utf-8"), filename=str(p))

    def run(self, source: str, filename: str = "app.js") -> RunResult:
        """Run ``source`` until nothing is left to wait for; uncaught errors make status 1.

        A script that does not parse raises :class:`JSSyntaxError` (line and column in its
        message) before anything runs. Must not be called with an asyncio loop running here.
        """
        script = _engine.compile_script(source, filename)
        return asyncio.run(self._main(script))

    async def _main(self, script: Any) -> RunResult:
        loop = asyncio.get_running_loop()
        self._result = RunResult()  # a host may run several scripts, one after the other
        self._queue = _WakingQueue(loop, self._wake)
        previous = _delivery.set_default_queue(self._queue)
        handles = Handles()
        props = AppProperties(self.app_id)
        fs = Filesystem(self.app_id)
        bridge = Bridge(
            handles,
            on_call=self._on_call,
            invoke=self._invoke,
            deliver=self._deliver,
            rewrite=self._rewrite,
            reuse=self._reuse_session,
            warn=lambda text: self._log("warn", text),
        )
        self._bridge = bridge
        import urlsession_module as module

        py = {
            "call": bridge.call,
            "get": bridge.get,
            "set": bridge.set,
            "listen": bridge.listen,
            "unlisten": bridge.unlisten,
            "moduleEvents": bridge.module_events,
            "timer": self._timer,
            "clearTimer": self._clear_timer,
            "log": self._log,
            "uncaught": self._uncaught,
        }
        try:
            self._js = _engine.load_prelude(py)
            loop.set_exception_handler(self._loop_error)
            globals_ = self._js["setup"](
                handles.id_of(module), handles.id_of(props), handles.id_of(fs), self.app_id
            )
            execute = None
            if self._jasmine is not None:
                _engine.load_library(str(self._jasmine))
                execute = self._js["bootJasmine"](globals_, self._jasmine_done)
            failed = self._js["runMain"](script, globals_)
            if failed is not None:
                self._uncaught("the script", failed[0], failed[1])
                return self._result
            if execute is not None:
                self._jasmine_running = True
                execute()
            await asyncio.sleep(_SETTLE)
            await self._after_script(globals_)
            await self._until_idle(loop)
            return self._result
        finally:
            self._finish(failed=self._result.status != 0)
            bridge.close()
            fs.close()
            _delivery.set_default_queue(previous)

    async def _after_script(self, globals_: Any) -> None:
        for title in self.clicks:
            found, titles = self._js["click"](title)
            if not found:
                names = ", ".join(repr(t) for t in titles) or "none"
                self._error(f"--click: no button titled {title!r} (buttons: {names})")
        if self.background_fetch:
            handler = f"backgroundfetch-{uuid.uuid4().hex[:8]}"
            globals_["fireApp"]("backgroundfetch", self._bridge.encode({"handlerId": handler}))

    async def _until_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        quiet = 0
        while quiet < 2:  # idle twice in a row: no promise job or wake-up was in between
            if deadline is not None and time.monotonic() >= deadline:
                self._result.timed_out = True
                self._write(f"[ERROR] timed out after {self.timeout:g} s: {self._pending()}")
                return
            self._wake()
            quiet = quiet + 1 if self._idle() else 0
            await asyncio.sleep(_IDLE_CHECK)

    def _idle(self) -> bool:
        assert self._queue is not None
        return (
            not self._jasmine_running
            and not self._timers
            and len(self._queue) == 0
            and all(s.waitForTasks(0) for s in self._sessions)
        )

    def _pending(self) -> str:
        tasks = sum(len(s.tasks) for s in self._sessions)
        return f"{len(self._timers)} timer(s), {tasks} task(s) still pending"

    def _finish(self, *, failed: bool) -> None:
        """End the sessions the script made: cancelled after a failure, else finished."""
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        for session in self._sessions:
            with contextlib.suppress(Exception):
                if failed:
                    session.invalidateAndCancel()
                else:
                    session.finishTasksAndInvalidate()
        for session in self._sessions:
            with contextlib.suppress(Exception):
                session.waitForInvalidation(10)
        self._sessions.clear()
        self._collect_blobs()

    def _wake(self) -> None:
        """Deliver what the sessions queued, here; then drop the downloads nobody kept."""
        if self._queue is not None:
            self._queue.drain(0)
        self._collect_blobs()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An uncaught error in a promise job (PythonMonkey runs them on this loop)."""
        error = context.get("exception")
        if error is None:
            self._error(f"[ERROR] {context.get('message', 'an error in the host loop')}")
        elif isinstance(error, BaseException):
            self._error(f"[ERROR] uncaught exception in a promise job: {error}")
        else:
            self._js["rejected"](error)

    def _jasmine_done(self, status: str, passed: float, failures: Any) -> None:
        self._jasmine_running = False
        failed = list(failures)
        for failure in failed:
            self._error(f"[FAILED] {failure}")
        if status != "passed" and not failed:
            self._error(f"jasmine: {status} (no spec failed: focused, empty or errored suite)")
        self._write(f"[INFO] jasmine: {int(passed)} passed, {len(failed)} failed ({status})")

    # -- the bridge's host callbacks --------------------------------------------------------------

    def _rewrite(self, target: Any, method: str, args: list[Any]) -> list[Any]:
        """``url_map``: a task's URL that starts with a mapped prefix gets the other one."""
        if not self.url_map:
            return args
        if isinstance(target, Session) and method in _TASK_METHODS and args:
            if isinstance(args[0], dict) and isinstance(args[0].get("url"), str):
                args[0] = {**args[0], "url": self._map_url(args[0]["url"])}
        elif (
            method == "backgroundDownloadTaskWithURL" and len(args) > 1 and isinstance(args[1], str)
        ):
            args[1] = self._map_url(args[1])
        return args

    def _map_url(self, url: str) -> str:
        for src, dst in self.url_map:
            if url.startswith(src):
                mapped = dst + url[len(src) :]
                self._write(f"[DEBUG] url-map: {url} -> {mapped}")
                return mapped
        return url

    def _reuse_session(self, target: Any, method: str, args: list[Any]) -> Session | None:
        """``createSession`` for a background identifier a live session of this script holds
        returns that session.

        Titanium apps make a session per click or launch event with one identifier (Titanium's
        own example app does): on iOS that works, since every event goes to the app
        (``Ti.App.iOS``), not to a session object. The Python API refuses a second session per
        identifier (its events could reach only one); here, where sessions own no listeners of
        the app's, the one session serves every ``createSession`` as iOS's would.
        """
        if method not in ("createSession", "createURLSession") or not args:
            return None
        props = args[0]
        config = props.get("configuration") if isinstance(props, dict) else props
        identifier = getattr(config, "identifier", None)
        if not identifier:
            return None
        for session in self._sessions:
            if session.identifier == identifier and not session._invalidating:
                self._write(
                    f"[DEBUG] createSession: the background session {identifier!r} exists; "
                    "returning it (one session per identifier, its events go to the app)"
                )
                return session
        return None

    def _on_call(self, value: Any) -> None:
        if isinstance(value, Session) and value not in self._sessions:
            self._sessions.append(value)

    def _deliver(self, fn: Any, event: Event) -> None:
        if event.type == "downloadcompleted" and isinstance(event.get("data"), Blob):
            blob = event["data"]
            if blob.nativePath:
                self._blobs.append((blob, blob.nativePath))
        fields = self._bridge.event_fields(event)
        source = event.source
        src = self._bridge.handles.id_of(source) if source is not None else None
        if self._js["deliver"](fn, event.type, fields, src):
            event.cancelBubble = True

    def _invoke(self, fn: Any, args: list[Any], label: str) -> None:
        self._js["invoke"](fn, self._bridge.encode(args), label)

    def _timer(self, fn: Any, delay: float, repeat: bool, args_text: str) -> str:
        loop = asyncio.get_running_loop()
        self._next_timer += 1
        timer_id = self._next_timer
        seconds = max(0.0, float(delay)) / 1000

        def fire() -> None:
            if repeat:
                self._timers[timer_id] = loop.call_later(max(seconds, 0.001), fire)
            else:
                self._timers.pop(timer_id, None)
            self._js["invoke"](fn, args_text, "a timer")
            self._collect_blobs()

        self._timers[timer_id] = loop.call_later(seconds, fire)
        return f'{{"ok": {timer_id}}}'

    def _clear_timer(self, timer_id: float) -> None:
        handle = self._timers.pop(int(timer_id), None)
        if handle is not None:
            handle.cancel()

    def _log(self, level: str, text: str) -> None:
        self._write(f"[{str(level).upper()}] {text}")

    def _uncaught(self, label: str, text: str, stack: str) -> None:
        message = f"[ERROR] uncaught exception in {label}: {text}"
        if stack:
            message += "\n" + "\n".join(f"    at {line}" for line in stack.strip().split("\n"))
        self._error(message)

    def _error(self, message: str) -> None:
        self._result.errors.append(message)
        self._write(message if message.startswith("[") else f"[ERROR] {message}")

    def _write(self, line: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def _collect_blobs(self) -> None:
        """A download's file is the task's until its listeners return, as on iOS: then gone,
        unless a listener moved it (``write`` copies it out first)."""
        for blob, path in self._blobs:
            if blob.nativePath == path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        self._blobs.clear()
