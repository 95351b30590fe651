"""The sans-IO scheduler (``_scheduler``): per-host limits, priority, dates, holds, discretion."""

from __future__ import annotations

from collections.abc import Hashable

import attrs
import pytest

from urlsession_module._scheduler import Hold, Plan, Scheduler


@attrs.define(eq=False)
class Job:
    """A stand-in task: everything the scheduler asks about, as plain fields."""

    name: str
    host: str = "a"
    priority: float = 0.5
    begin: float | None = None
    hold: Hold = Hold.READY
    discretionary: bool = False
    limit: int = 2


def scheduler(**kwargs: object) -> Scheduler[Job]:
    return Scheduler(
        origin=lambda j: j.host,
        limit=lambda j: j.limit,
        priority=lambda j: j.priority,
        not_before=lambda j: j.begin,
        hold=lambda j: j.hold,
        discretionary=lambda j: j.discretionary,
        **kwargs,  # type: ignore[arg-type]
    )


def names(plan: Plan[Job]) -> list[str]:
    return [j.name for j in plan.start]


def test_at_most_limit_per_host_and_each_host_apart() -> None:
    """Each host runs at most its limit at once; another host's tasks do not wait for them."""
    s = scheduler()
    for name, host in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b")]:
        s.add(Job(name, host))
    assert names(s.take(0.0)) == ["a1", "a2", "b1"]
    assert (s.running("a"), s.running("b"), s.running(), len(s)) == (2, 1, 3, 1)
    assert names(s.take(0.0)) == []


def test_a_finished_task_frees_its_slot_for_the_next() -> None:
    """When a task ends, the next one of its host starts on the next pass."""
    s = scheduler()
    jobs = [Job(f"j{i}") for i in range(4)]
    for j in jobs:
        s.add(j)
    assert names(s.take(0.0)) == ["j0", "j1"]
    s.finished(jobs[0])
    assert names(s.take(0.0, full=False)) == ["j2"]
    assert s.running("a") == 2


def test_higher_priority_first_then_first_come() -> None:
    """Within a host, higher priority goes first; equal priorities keep their arrival order."""
    s = scheduler()
    for name, prio in [("low", 0.1), ("mid1", 0.5), ("high", 0.9), ("mid2", 0.5)]:
        s.add(Job(name, priority=prio, limit=1))
    order = []
    for _ in range(4):
        plan = s.take(0.0)
        order += plan.start
        s.finished(plan.start[0])
    assert [j.name for j in order] == ["high", "mid1", "mid2", "low"]


def test_update_reorders_a_waiting_task_and_keeps_its_arrival() -> None:
    """A priority changed while waiting counts at the next pass; ties still go by arrival."""
    s = scheduler()
    first, second, third = Job("first", limit=0), Job("second", limit=0), Job("third", limit=0)
    for j in (first, second, third):
        s.add(j)
    third.priority = 0.9
    first.priority = 0.9
    assert s.update(third) and s.update(first)
    assert [j.name for j in s.waiting] == ["first", "third", "second"]
    assert not s.update(Job("stranger"))


def test_a_date_holds_the_task_and_wake_says_when() -> None:
    """A task does not start before its date; the plan says when to look again."""
    s = scheduler()
    s.add(Job("later", begin=100.0))
    s.add(Job("sooner", begin=50.0))
    s.add(Job("now"))
    plan = s.take(10.0)
    assert (names(plan), plan.wake) == (["now"], 50.0)
    plan = s.take(50.0)
    assert (names(plan), plan.wake) == (["sooner"], 100.0)
    plan = s.take(100.0)
    assert (names(plan), plan.wake) == ([], None)  # due, but the host is full: no timer needed


def test_a_dated_task_does_not_block_the_ones_behind_it() -> None:
    """A task waiting for its date takes no slot and does not hold up those after it."""
    s = scheduler()
    s.add(Job("dated", priority=0.9, begin=100.0, limit=1))
    s.add(Job("plain", limit=1))
    assert names(s.take(0.0, full=False)) == ["plain"]


def test_a_suspended_task_takes_no_slot_and_keeps_its_place() -> None:
    """Suspended while waiting: others pass it; once resumed it starts in its turn."""
    s = scheduler()
    held = Job("held", limit=1, hold=Hold.SUSPENDED)
    after = Job("after", limit=1)
    last = Job("last", limit=1)
    for j in (held, after, last):
        s.add(j)
    assert names(s.take(0.0)) == ["after"]
    s.finished(after)
    held.hold = Hold.READY
    assert names(s.take(0.0)) == ["held"]


def test_a_cancelled_task_is_let_out_at_once() -> None:
    """Cancelled while waiting: it leaves now, whatever its date and its host's limit."""
    s = scheduler()
    busy = Job("busy", limit=1)
    s.add(busy)
    assert names(s.take(0.0)) == ["busy"]
    doomed = Job("doomed", limit=1, begin=1e9)
    s.add(Job("waits", limit=1))
    s.add(doomed)
    doomed.hold = Hold.CANCELLED
    plan = s.take(0.0)
    assert (names(plan), plan.wake) == (["doomed"], None)
    assert s.running("a") == 2  # it holds a slot until it has reported, like any started task
    s.finished(doomed)
    s.finished(busy)
    assert names(s.take(0.0)) == ["waits"]


def test_a_quick_pass_stops_at_the_first_task_that_must_wait() -> None:
    """``full=False`` reads a host's queue only up to the first task left waiting for a slot;
    a full pass reads on and finds a cancelled task deep in the queue."""
    s = scheduler()
    jobs = [Job(f"j{i}", limit=1) for i in range(3)]
    for j in jobs:
        s.add(j)
    assert names(s.take(0.0)) == ["j0"]
    jobs[2].hold = Hold.CANCELLED
    assert names(s.take(0.0, full=False)) == []
    assert names(s.take(0.0)) == ["j2"]


def test_retry_time_holds_a_requeued_task() -> None:
    """A task queued again after a failed attempt waits for its next attempt time, as a newcomer."""
    s = scheduler()
    job = Job("flaky", limit=1)
    s.add(job)
    s.add(Job("other", limit=1, begin=5.0))
    assert names(s.take(0.0)) == ["flaky"]
    job.begin = 10.0  # the caller's not_before: max(begin date, next retry)
    s.add(job)  # queued again while its failed attempt still holds the slot
    s.finished(job)
    plan = s.take(6.0)
    assert (names(plan), plan.wake) == (["other"], 10.0)
    s.finished(plan.start[0])
    assert names(s.take(10.0)) == ["flaky"]


def test_discretionary_tasks_go_after_the_others_and_one_at_a_time() -> None:
    """Discretionary tasks start only when no other task is left waiting, and fewer at once."""
    s = scheduler(discretionary_limit=1)
    urgent = [Job(f"u{i}", limit=1) for i in range(2)]
    lazy = [Job(f"d{i}", host="b", discretionary=True, priority=0.9) for i in range(2)]
    for j in [*lazy, *urgent]:
        s.add(j)
    assert names(s.take(0.0)) == ["u0"]  # u1 waits for a slot: no discretionary task yet
    s.finished(urgent[0])
    assert names(s.take(0.0)) == ["u1", "d0"]  # nothing urgent left waiting
    s.finished(lazy[0])
    assert names(s.take(0.0)) == ["d1"]


def test_discretionary_limit_counts_across_hosts() -> None:
    """The discretionary limit is one count over every host."""
    s = scheduler(discretionary_limit=2)
    for i, host in enumerate("abc"):
        s.add(Job(f"d{i}", host=host, discretionary=True, priority=i / 10))
    assert names(s.take(0.0)) == ["d2", "d1"]  # highest priority first, across hosts


def test_a_limit_of_zero_holds_the_task() -> None:
    """A task whose limit is 0 (e.g. its session is not described yet) waits."""
    s = scheduler()
    job = Job("held", limit=0)
    s.add(job)
    assert names(s.take(0.0)) == []
    job.limit = 1
    assert names(s.take(0.0)) == ["held"]


def test_each_task_limit_is_its_own() -> None:
    """Tasks of one host from sessions with different limits share the host's running count."""
    s = scheduler()
    s.add(Job("one", limit=1))
    s.add(Job("three", limit=3))
    s.add(Job("one-b", limit=1))
    assert names(s.take(0.0)) == ["one", "three"]  # one-b: 2 running >= its limit of 1


def test_remove_takes_a_waiting_task_out() -> None:
    """A removed task never starts, and its date no longer wakes anyone."""
    s = scheduler()
    job = Job("gone", begin=50.0)
    s.add(job)
    assert job in s and s.remove(job)
    assert job not in s and not s.remove(job)
    plan = s.take(0.0)
    assert (names(plan), plan.wake, len(s)) == ([], None, 0)


def test_adding_a_waiting_task_twice_is_refused() -> None:
    """The same task cannot wait twice (it would start twice)."""
    s = scheduler()
    job = Job("once")
    s.add(job)
    with pytest.raises(ValueError, match="already waiting"):
        s.add(job)


def test_ident_lets_fresh_copies_stand_for_a_task() -> None:
    """With ``ident``, a record re-read from storage is the same task as the queued one."""

    def key(j: Job) -> Hashable:
        return j.name

    s = Scheduler(
        origin=lambda j: j.host, limit=lambda j: j.limit, hold=lambda j: j.hold, ident=key
    )
    s.add(Job("x", limit=1))
    assert s.update(Job("x", limit=1, hold=Hold.SUSPENDED))
    assert s.take(0.0).start == []
    fresh = Job("x", limit=1)
    assert s.update(fresh)
    assert s.take(0.0).start == [fresh]
    s.finished(Job("x"))
    assert s.running() == 0


def test_many_waiting_tasks_cost_little_per_quick_pass() -> None:
    """A quick pass reads a handful of entries, not the whole queue, whatever its length."""
    calls = 0

    def hold(j: Job) -> Hold:
        nonlocal calls
        calls += 1
        return j.hold

    s = Scheduler(origin=lambda j: j.host, limit=lambda j: j.limit, hold=hold)
    jobs = [Job(f"j{i}") for i in range(10_000)]
    for j in jobs:
        s.add(j)
    assert len(s.take(0.0, full=False).start) == 2
    calls = 0
    s.finished(jobs[0])
    assert len(s.take(0.0, full=False).start) == 1
    assert calls <= 3
