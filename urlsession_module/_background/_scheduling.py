"""Which queued background tasks start now: the transfer process's scheduling rules, sans-IO.

Per origin at most ``httpMaximumConnectionsPerHost`` running; higher ``priority`` first, then
first come; nothing before its ``earliestBeginDate`` or its next retry time; suspended tasks
wait; discretionary sessions' tasks go after everyone else's, one at a time. (Interim: to be
replaced by the package's one scheduler, shared with in-process sessions.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._configuration import ConfigValues
from .._urls import Origin, origin
from ._journal import SUSPENDED, TaskRecord

__all__ = ["DISCRETIONARY_CONCURRENCY", "start_order"]

DISCRETIONARY_CONCURRENCY = 1


def start_order(
    queued: Sequence[TaskRecord],
    running: Sequence[TaskRecord],
    configs: Mapping[str, ConfigValues],
    now: float,
) -> tuple[list[TaskRecord], float | None]:
    """The tasks to start now, in order, and when the next dated one becomes due (or None)."""

    def discretionary(rec: TaskRecord) -> bool:
        cfg = configs.get(rec.session)
        return bool(cfg and cfg.isDiscretionary)

    per_host: dict[Origin, int] = {}
    discretionary_running = 0
    for rec in running:
        key = origin(rec.request["url"])
        per_host[key] = per_host.get(key, 0) + 1
        discretionary_running += discretionary(rec)
    wake: float | None = None
    ready = []
    for rec in queued:
        if rec.state == SUSPENDED or rec.session not in configs:
            continue
        due = max(rec.begin_at or 0.0, rec.next_attempt_at or 0.0)
        if due > now:
            wake = due if wake is None else min(wake, due)
            continue
        ready.append(rec)
    ready.sort(key=lambda rec: (discretionary(rec), -rec.priority, rec.number))
    urgent_waiting = any(not discretionary(r) for r in ready)
    starts = []
    for rec in ready:
        cfg = configs[rec.session]
        key = origin(rec.request["url"])
        if per_host.get(key, 0) >= cfg.httpMaximumConnectionsPerHost:
            continue
        if cfg.isDiscretionary and (
            urgent_waiting or discretionary_running >= DISCRETIONARY_CONCURRENCY
        ):
            continue
        per_host[key] = per_host.get(key, 0) + 1
        discretionary_running += cfg.isDiscretionary
        starts.append(rec)
    return starts, wake
