"""Bandwidth limits: the pacing's accounting with an injected clock (no sleeping), and limits
wired through real sessions on both engines (the rate figures are a benchmark, scenario r)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from urlsession_module._transport import _ratelimit
from urlsession_module._transport._ratelimit import BURST, Pacer
from urlsession_module.exceptions import InvalidArgumentTypeError, InvalidArgumentValueError
from urlsession_module.testing import LocalServer, content_sha256

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
MiB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(pacer: Pacer, clock: Clock, tasks: list[str], total: int, block: int) -> dict[str, float]:
    """Move ``total`` bytes per task in ``block``s, round robin, sleeping as told; when each
    task finished (clock time)."""
    left = dict.fromkeys(tasks, total)
    ready = dict.fromkeys(tasks, clock.now)
    finished: dict[str, float] = {}
    while left:
        key = min(left, key=lambda k: ready[k])
        clock.now = max(clock.now, ready[key])
        n = min(block, left[key])
        left[key] -= n
        ready[key] = clock.now + pacer.take(key, n)
        if not left[key]:
            del left[key]
            finished[key] = clock.now
            pacer.leave(key)
    return finished


def test_16_mib_at_4_mib_per_second_takes_4_seconds() -> None:
    clock = Clock()
    pacer = Pacer(4 * MiB, clock)
    pacer.join("a", None)
    start = clock.now
    done = _run(pacer, clock, ["a"], 16 * MiB, 256 * 1024)
    assert done["a"] - start == pytest.approx(4.0 - BURST - 0.0625, abs=0.01)


def test_two_tasks_share_the_session_rate_fairly() -> None:
    clock = Clock()
    pacer = Pacer(4 * MiB, clock)
    pacer.join("a", None)
    pacer.join("b", None)
    assert pacer.share("a") == pacer.share("b") == 2 * MiB
    start = clock.now
    done = _run(pacer, clock, ["a", "b"], 8 * MiB, 256 * 1024)
    for key in "ab":  # 8 MiB each at 2 MiB/s
        assert done[key] - start == pytest.approx(4.0, abs=0.2)


def test_the_tighter_of_task_and_session_wins() -> None:
    pacer = Pacer(4 * MiB, Clock())
    pacer.join("slow", MiB)
    pacer.join("fast", None)
    assert pacer.share("slow") == MiB
    assert pacer.share("fast") == 2 * MiB
    alone = Pacer(None, Clock())
    alone.join("t", 3 * MiB)
    assert alone.share("t") == 3 * MiB
    alone.leave("t")
    alone.join("u", None)
    assert alone.share("u") is None and alone.take("u", 10 * MiB) == 0.0


def test_a_new_session_rate_applies_at_the_next_block() -> None:
    clock = Clock()
    limits = _ratelimit.SessionLimits(4 * MiB, clock)
    limits.recv.join("a", None)
    assert limits.recv.take("a", MiB) == pytest.approx(0.25 - BURST)
    limits.set_rate(MiB)
    clock.now += 10
    assert limits.recv.take("a", MiB) == pytest.approx(1.0 - BURST)


def test_idle_credit_is_capped_so_bursts_stay_short() -> None:
    clock = Clock()
    pacer = Pacer(MiB, clock)
    pacer.join("a", None)
    clock.now += 60  # a minute idle
    assert pacer.take("a", MiB) == pytest.approx(1.0 - BURST)


def test_a_paced_read_takes_an_eighth_of_a_second_of_the_share() -> None:
    """After a wait, the socket may hold seconds of a fast server's bytes: one read of a
    64 KiB/s task takes 8 KiB of them, not the whole 1 MiB block (it took 800 KB at once)."""

    class Ctl:
        pacing: _ratelimit.TaskPacing | None = None

    ctl = Ctl()
    assert _ratelimit.read_cap(ctl, MiB) == MiB  # not paced: the whole block
    limits = _ratelimit.SessionLimits(64 * 1024, Clock())
    ctl.pacing = _ratelimit.TaskPacing(limits, "a", None, False)
    ctl.pacing.start()
    assert _ratelimit.read_cap(ctl, MiB) == 8 * 1024
    limits.set_rate(1000)
    assert _ratelimit.read_cap(ctl, MiB) == 4096  # never below a page
    limits.set_rate(None)
    assert _ratelimit.read_cap(ctl, MiB) == MiB


@pytest.mark.parametrize("eng", ["curl", "urllib3"])
def test_limited_download_is_paced_and_whole(
    eng: str,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every byte of a limited download goes through its pacer (the session's limit and the
    task's, the tighter one); the file is whole."""
    taken: list[tuple[object, int, int | None]] = []
    real_take = Pacer.take

    def spy(self: Pacer, key: object, n: int) -> float:
        taken.append((key, n, self.share(key)))
        return real_take(self, key, n)

    monkeypatch.setattr(Pacer, "take", spy)
    size = 3 * MiB
    session = make_session(engine=eng, maximumBytesPerSecond=16 * MiB)
    rec = recorder(session)
    tid = session.downloadTask(url=server.url(f"/bytes/{size}"), maximumBytesPerSecond=8 * MiB)
    done = rec.completed(tid, 30)
    assert done.success, done.message
    blob = rec.of(tid, "downloadcompleted")[0].data
    import hashlib

    assert hashlib.sha256(blob.read()).hexdigest() == content_sha256(size)
    mine = [(n, share) for key, n, share in taken if key == tid]
    assert sum(n for n, _ in mine) == size
    assert {share for _, share in mine} == {8 * MiB}


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        (0, InvalidArgumentValueError),
        (-5, InvalidArgumentValueError),
        ("1M", InvalidArgumentTypeError),
    ],
)
def test_bad_task_rate_is_refused_at_the_call(
    value: object, exc: type[Exception], server: LocalServer, make_session: MakeSession
) -> None:
    session = make_session()
    with pytest.raises(exc) as info:
        session.downloadTask(url=server.url("/bytes/1"), maximumBytesPerSecond=value)
    assert getattr(info.value, "argument", None) == "maximumBytesPerSecond"
    assert session.tasks == []
