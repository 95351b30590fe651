"""How the command-line tool shows transfers: live bars on a terminal, plain lines elsewhere.

Three displays with one interface, chosen once per run by :func:`make_display`:

* :class:`BarDisplay` — rich progress bars (size, percent, speed, ETA) when stderr is a terminal;
* :class:`LineDisplay` — one plain line every few seconds and a summary line per transfer, when
  stderr is a file or a pipe (CI logs, ``2> log``), so logs stay readable;
* :class:`NullDisplay` — nothing, for ``--quiet`` and ``--json``.

Every method is called from the thread that drains the session's event queue (the main thread),
so displays need no locking of their own.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Protocol

from rich.console import Console
from rich.filesize import decimal as human_size
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TransferSpeedColumn,
)
from rich.text import Text

__all__ = [
    "BarDisplay",
    "Display",
    "LineDisplay",
    "NullDisplay",
    "human_rate",
    "human_size",
    "make_display",
    "stderr_is_terminal",
]


def human_rate(nbytes: float, seconds: float) -> str:
    """``12.3 MB/s``: the average rate of ``nbytes`` over ``seconds``."""
    return f"{human_size(int(nbytes / max(seconds, 1e-6)))}/s"


def _eta(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return _eta(seconds)


class Display(Protocol):
    """What the transfer commands tell the user about their transfers."""

    def add(self, key: str, label: str, total: int = -1) -> None:
        """A transfer starts; ``total`` is its size when known beforehand (an upload's)."""

    def update(self, key: str, done: int, total: int) -> None:
        """``done`` bytes of ``total`` (``-1`` or ``0`` when unknown) have moved."""

    def finish(self, key: str, ok: bool, note: str = "") -> None:
        """The transfer ended; ``note`` says how (``saved to x``, ``error -1004 ...``)."""

    def message(self, text: str) -> None:
        """An informational line (not shown with ``--quiet``)."""

    def close(self) -> None:
        """No more transfers: release the terminal."""


class _Stats:
    """Bytes, total and timing of one transfer, for summaries and the plain display's ETA."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.done = 0
        self.total = -1
        self.started = time.monotonic()  # as curl: the time includes connecting
        self.last_line = self.started

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self, ok: bool) -> str:
        size = human_size(self.done)
        if not ok:
            return f"failed after {size}" if self.done else "failed"
        return f"{size} in {_duration(self.elapsed)} ({human_rate(self.done, self.elapsed)})"


class NullDisplay:
    """Shows nothing (``--quiet``, ``--json``)."""

    def add(self, key: str, label: str, total: int = -1) -> None:
        pass

    def update(self, key: str, done: int, total: int) -> None:
        pass

    def finish(self, key: str, ok: bool, note: str = "") -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class LineDisplay:
    """Plain lines for a stderr that is not a terminal: no carriage returns, no colours.

    A running transfer prints at most one line per ``interval`` seconds (so a fast or small one
    prints none), and every transfer ends with one summary line.
    """

    def __init__(self, stream: IO[str] | None = None, interval: float = 2.0) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._interval = interval
        self._stats: dict[str, _Stats] = {}

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def add(self, key: str, label: str, total: int = -1) -> None:
        self._stats[key] = _Stats(label)
        self._stats[key].total = total

    def update(self, key: str, done: int, total: int) -> None:
        stats = self._stats[key]
        stats.update(done, total)
        now = time.monotonic()
        if now - stats.last_line < self._interval:
            return
        stats.last_line = now
        rate = done / max(stats.elapsed, 1e-6)
        if total > 0:
            eta = (total - done) / rate if rate > 0 else 0.0
            self._write(
                f"{stats.label}: {done / total:4.0%} {human_size(done)} of {human_size(total)}, "
                f"{human_rate(done, stats.elapsed)}, ETA {_eta(eta)}"
            )
        else:
            self._write(f"{stats.label}: {human_size(done)}, {human_rate(done, stats.elapsed)}")

    def finish(self, key: str, ok: bool, note: str = "") -> None:
        stats = self._stats.pop(key)
        self._write(f"{stats.label}: {stats.summary(ok)}" + (f"; {note}" if note else ""))

    def message(self, text: str) -> None:
        self._write(text)

    def close(self) -> None:
        pass


class _EtaColumn(ProgressColumn):
    """``ETA 0:00:04`` while the size is known and the speed measured; blank otherwise."""

    def render(self, task: Task) -> Text:
        remaining = task.time_remaining
        if remaining is None or task.total is None or task.finished:
            return Text("")
        return Text(f"ETA {_eta(remaining)}", style="progress.remaining")


class BarDisplay:
    """rich progress bars on a terminal: label, bar, percent, size, speed, time left."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            _EtaColumn(),
            console=console,
            transient=True,  # finished bars give way to one summary line each
            redirect_stdout=False,  # stdout carries data (response bodies, -o -), never bars
            redirect_stderr=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._stats: dict[str, _Stats] = {}
        self._started = False

    def add(self, key: str, label: str, total: int = -1) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        self._stats[key] = _Stats(label)
        self._tasks[key] = self._progress.add_task(label, total=total if total > 0 else None)

    def update(self, key: str, done: int, total: int) -> None:
        self._stats[key].update(done, total)
        self._progress.update(self._tasks[key], completed=done, total=total if total > 0 else None)

    def finish(self, key: str, ok: bool, note: str = "") -> None:
        stats = self._stats.pop(key)
        # The bar goes; a summary line takes its place in the scrollback.
        self._progress.remove_task(self._tasks.pop(key))
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        text = f"{mark} {stats.label}: {stats.summary(ok)}" + (f"; {note}" if note else "")
        self._progress.console.print(text, highlight=False)
        if not self._tasks:  # the live area exists only while something moves
            self.close()

    def message(self, text: str) -> None:
        self._progress.console.print(text, highlight=False, markup=False)

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False


def stderr_is_terminal() -> bool:
    """True when stderr is an interactive terminal that can redraw a line."""
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"


def make_display(quiet: bool, json_mode: bool, console: Console | None) -> Display:
    """The display for this run: nothing, plain lines, or live bars (``console`` set = a TTY)."""
    if quiet or json_mode:
        return NullDisplay()
    if console is not None:
        return BarDisplay(console)
    return LineDisplay()
