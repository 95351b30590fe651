"""What the transport asks of a task's owner, and the signals that unwind a transfer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._state import Input


class TransferControl(Protocol):
    """What the transport needs from whoever owns the task: a machine to feed, user control."""

    def feed(self, event: Input) -> None:
        """Send one input to the task's machine and deliver what it answers.

        May come while the task is suspended (a block, a response head or the end was already
        on its way): the owner holds such inputs and feeds them on resume, since the machine
        takes nothing from the wire while suspended.
        """

    @property
    def cancelled(self) -> bool:
        """The user asked to cancel; stop at the next block."""

    def wait_running(self, timeout: float) -> bool:
        """Block while suspended, at most ``timeout`` s; True once running (or cancelled)."""

    def set_abort(self, abort: Callable[[], None] | None) -> None:
        """Give the owner a way to break a blocking send or read when the user cancels.

        Called from the sending thread while a request goes out and its response is read; if
        the task is already cancelled the owner calls ``abort`` at once.
        """


class CancelledSignal(Exception):
    """Unwinds the transfer when the user cancelled."""


class LetGoSignal(Exception):
    """A suspended transfer let go of its connection; resume with Range when resumed."""
