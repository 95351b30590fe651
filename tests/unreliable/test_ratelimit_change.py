"""Changing a running session's bandwidth limit (``Session.setMaximumBytesPerSecond``): the
shares are re-divided (injected clock, no sleeping), and real downloads on both engines follow
a raised and a new limit within a second (the rate figures are a benchmark, scenario r)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from urlsession_module._transport import _ratelimit
from urlsession_module._transport._ratelimit import BURST, SessionLimits
from urlsession_module.exceptions import InvalidArgumentTypeError, InvalidArgumentValueError
from urlsession_module.testing import LocalServer

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
KiB = 1024
MiB = 1024 * KiB
ENGINES = pytest.mark.parametrize("eng", ["curl", "urllib3"])


def test_set_rate_re_divides_the_shares_and_the_pacing() -> None:
    """A new session rate is every running task's new share at once; joins and leaves
    re-divide it; the pacing uses the new share at the next block."""
    now = [100.0]
    limits = SessionLimits(4 * MiB, lambda: now[0])
    a = _ratelimit.TaskPacing(limits, "a", None, False)
    b = _ratelimit.TaskPacing(limits, "b", 1 * MiB, False)
    a.start()
    assert a.share() == 4 * MiB
    b.start()
    assert a.share() == 2 * MiB and b.share() == 1 * MiB
    limits.set_rate(8 * MiB)
    assert a.share() == 4 * MiB and b.share() == 1 * MiB  # b's own limit is tighter
    assert limits.recv.take("a", MiB) == pytest.approx(0.25 - BURST)
    b.stop()
    assert a.share() == 8 * MiB
    limits.set_rate(None)
    assert a.share() is None
    assert limits.recv.take("a", MiB) == 0.0
    a.stop()


@ENGINES
def test_raising_the_rate_mid_download_takes_effect(
    eng: str,
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
) -> None:
    """3 MiB at 64 KiB/s would take 48 s; raised to 64 MiB/s after the first bytes it ends in
    seconds."""
    session = make_session(engine=eng, maximumBytesPerSecond=64 * KiB)
    rec = recorder(session)
    started = threading.Event()
    session.addEventListener("downloadprogress", lambda e: started.set())
    tid = session.downloadTask(url=server.url(f"/bytes/{3 * MiB}"))
    assert started.wait(10)
    session.setMaximumBytesPerSecond(64 * MiB)
    done = rec.completed(tid, 15)
    assert done.success, done.message
    assert session.configuration.maximumBytesPerSecond == 64 * MiB


@ENGINES
def test_a_limit_set_mid_download_slows_it_within_a_second(
    eng: str, server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """A download with no limit (the server sends 1 MB/s) is held to 64 KiB/s once the
    session gets that limit: over the 2 s that start a second after the change, it moves
    about 128 KiB, not the 2 MB it would have."""
    session = make_session(engine=eng)
    rec = recorder(session)
    written = [0]
    session.addEventListener(
        "downloadprogress", lambda e: written.__setitem__(0, e.totalBytesWritten)
    )
    tid = session.downloadTask(url=server.url(f"/bytes/{4 * 1000 * 1000}?rate=1000000"))
    deadline = time.monotonic() + 10
    while written[0] < 300_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert written[0] >= 300_000
    session.setMaximumBytesPerSecond(64 * KiB)
    time.sleep(1.0)
    before = written[0]
    time.sleep(2.0)
    moved = written[0] - before
    session.getTask(tid).cancel()
    rec.completed(tid, 10)
    assert moved < 700_000, moved  # (a busy machine's reads are larger blocks: may be 0)
    assert written[0] < 4_000_000


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        (0, InvalidArgumentValueError),
        (-5, InvalidArgumentValueError),
        ("1M", InvalidArgumentTypeError),
        (True, InvalidArgumentTypeError),
    ],
)
def test_bad_session_rate_is_refused_and_changes_nothing(
    value: object, exc: type[Exception], make_session: MakeSession
) -> None:
    session = make_session(maximumBytesPerSecond=MiB)
    with pytest.raises(exc) as info:
        session.setMaximumBytesPerSecond(value)
    assert getattr(info.value, "argument", None) == "maximumBytesPerSecond"
    assert session.configuration.maximumBytesPerSecond == MiB
    session.setMaximumBytesPerSecond(None)
    assert session.configuration.maximumBytesPerSecond is None
