"""The curl engine's wire shape: a transfer's bandwidth share as libcurl's speed limits.

Set on the easy handle as the transfer starts, and again, on the network thread (the only one
that may touch a handle libcurl is running), whenever the task's share changes: the session's
rate was changed, or a task joined or left (:mod:`.._ratelimit`). Per-block pacing on the task's
side is what holds a task to its share; the wire shape keeps libcurl's buffer from filling at
full speed first. A share that goes away (None) lifts the wire limit (0: unlimited).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pycurl

from .._ratelimit import wire_rate
from ._easy import Transfer

__all__ = ["shape"]


def _limit(t: Transfer, rate: int | None) -> None:
    t.easy.setopt(pycurl.MAX_RECV_SPEED_LARGE, rate or 0)
    t.easy.setopt(pycurl.MAX_SEND_SPEED_LARGE, rate or 0)


def shape(t: Transfer, ctl: Any, call: Callable[[Callable[[], None]], None]) -> None:
    """Shape ``t``'s wire to the task's share now and whenever it changes (``call`` runs a
    command on the network thread)."""

    def again(rate: int | None) -> None:
        def run() -> None:
            if not t.done:  # a handle that ended is no longer this task's
                with contextlib.suppress(pycurl.error):
                    _limit(t, rate)

        call(run)

    rate = wire_rate(ctl, again)
    if rate:
        _limit(t, rate)
