"""A finished task is freed by reference counting once the session lets it go.

Cycles between a task's objects (the task and its run, a curl transfer and its direct
writer or its transaction) left some 20-30 objects a task to the cyclic collector; on
scenario b that was 50-80 % more collections and a few % of the CPU a task, more with
metrics on. The tests look for such garbage with the collector off, on either engine.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest

from urlsession_module import _session
from urlsession_module._state import TaskMachine
from urlsession_module._task import Task, TaskRun
from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]


@pytest.mark.parametrize("kind", ["data", "download"])
def test_a_finished_task_leaves_no_cycle(
    server: LocalServer, make_session: MakeSession, mocker: Any, kind: str
) -> None:
    """The session keeps no finished task (``getTask``'s memory set to 0) and the test keeps
    no event (an event's ``source`` is its task): what 8 tasks made is freed as they end; the
    collector finds no task, machine or run among its garbage."""
    mocker.patch.object(_session, "_FINISHED_KEPT", 0)
    session = make_session(requestCachePolicy="reloadIgnoringLocalCacheData")
    ended: list[tuple[bool, str, bool]] = []
    session.addEventListener(
        "sessioncompleted",
        lambda e: ended.append((e.success, e.message, bool(e.metrics["transactionMetrics"]))),
    )

    def start(url: str) -> None:
        if kind == "data":
            session.dataTask(url=url, method="GET")
        else:
            session.downloadTask(url=url)

    start(server.url("/cache?no_store=1&n=warm"))
    assert session.waitForTasks(10)
    gc.collect()
    gc.disable()
    try:
        for i in range(8):
            start(server.url(f"/cache?no_store=1&n={i}"))
        assert session.waitForTasks(10)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        stuck = [
            type(o).__name__ for o in gc.garbage if isinstance(o, (Task, TaskRun, TaskMachine))
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert ended == [(True, ended[0][1], True)] * 9
    assert stuck == []
