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


def _limit_mid_download(
    session: Any, server: LocalServer, heard: list[float] | None = None
) -> tuple[str, list[int]]:
    """A 4 MB download the server sends at 1 MB/s, its session limited to 64 KiB/s once
    300 KB came: its task and the bytes written so far (kept up to date; ``heard`` gets the
    time of each progress event)."""
    written = [0]

    def progress(e: Any) -> None:
        written[0] = e.totalBytesWritten
        if heard is not None:
            heard.append(time.monotonic())

    session.addEventListener("downloadprogress", progress)
    tid = session.downloadTask(url=server.url(f"/bytes/{4 * 1000 * 1000}?rate=1000000"))
    deadline = time.monotonic() + 10
    while written[0] < 300_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert written[0] >= 300_000
    session.setMaximumBytesPerSecond(64 * KiB)
    return tid, written


def _moved_then_cancel(session: Any, rec: Any, tid: str, count: list[int]) -> int:
    """The bytes ``count`` grew by over the 2 s that start a second after a limit was set;
    then the task is cancelled (and has ended)."""
    time.sleep(1.0)
    before = count[0]
    time.sleep(2.0)
    moved = count[0] - before
    session.getTask(tid).cancel()
    rec.completed(tid, 10)
    return moved


def assert_held_steadily(moved: int, heard: list[float], since: float) -> None:
    """64 KiB/s for 2 s is ~128 KiB: far from the 2 MB the server sends meanwhile, and not
    nothing; and the progress events of those seconds come steadily, never a second apart
    (a window's worth of bytes then seconds of pacing was what a limit set mid-way gave)."""
    assert 16 * KiB <= moved < 700_000, moved
    window = [t for t in heard if since + 1.0 <= t <= since + 3.0]
    gaps = [b - a for a, b in zip([since + 1.0, *window], [*window, since + 3.0], strict=True)]
    assert max(gaps) < 1.0, gaps


@pytest.fixture
def pacing_waits(mocker: Any) -> list[str]:
    """The threads each pacing wait ran on (a spy on the driver's cancellable wait)."""
    from urlsession_module._transport._unreliable import UnreliableDriver

    waits: list[str] = []
    real_wait = UnreliableDriver.wait_cancelled

    def wait_cancelled(self: Any, timeout: float) -> bool:
        waits.append(threading.current_thread().name)
        return real_wait(self, timeout)

    mocker.patch.object(UnreliableDriver, "wait_cancelled", wait_cancelled)
    return waits


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
    about 128 KiB, not the 2 MB it would have, with progress events all along."""
    session = make_session(engine=eng)
    rec = recorder(session)
    heard: list[float] = []
    tid, written = _limit_mid_download(session, server, heard)
    since = time.monotonic()
    moved = _moved_then_cancel(session, rec, tid, written)
    assert_held_steadily(moved, heard, since)
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


@pytest.mark.engine("curl")
def test_a_limit_set_mid_download_never_paces_on_the_network_thread(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, pacing_waits: list[str]
) -> None:
    """A download's progress goes on on the network thread; once its session gets a limit,
    its pacing waits (seconds at 64 KiB/s) happen on a worker: the network thread, which
    moves every session's transfers, keeps moving them (another session's task ends)."""
    session, other = make_session(), make_session()
    rec, other_rec = recorder(session), recorder(other)
    tid, _written = _limit_mid_download(session, server)
    deadline = time.monotonic() + 10
    while not pacing_waits and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pacing_waits, "the download was never paced"
    quick = other.dataTask(url=server.url("/bytes/100"), method="GET")
    done = other_rec.completed(quick, 3.0)  # (not behind a pacing sleep of several seconds)
    assert done.success, done.message
    session.getTask(tid).cancel()
    rec.completed(tid, 10)
    assert "urlsession-curl" not in pacing_waits, pacing_waits


@pytest.mark.engine("curl")
def test_a_limit_set_mid_upload_holds_the_wire_without_pacing_on_the_network_thread(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    mocker: Any,
    tmp_path: Any,
    pacing_waits: list[str],
) -> None:
    """An upload's body is read by the network thread (libcurl's read callback); once the
    session gets a limit, the callback pauses the wire a window ahead of the task's paced
    reports, and those reports wait on a worker: the wire moves ~64 KiB/s, and no pacing wait
    runs on the network thread."""
    from urlsession_module._transport._curl import _upload

    wire = [0]
    real_read = _upload.DirectRead.read

    def read(self: Any, size: int) -> Any:
        piece = real_read(self, size)
        if isinstance(piece, bytes):
            wire[0] += len(piece)
        return piece

    mocker.patch.object(_upload.DirectRead, "read", read)
    body = tmp_path / "body.bin"
    body.write_bytes(bytes(range(256)) * (64 * 1024))  # 16 MiB
    session = make_session()
    rec = recorder(session)
    tid = session.uploadTask(url=server.url("/upload?name=paced"), data=str(body), method="PUT")
    deadline = time.monotonic() + 10
    while wire[0] < 256 * KiB and time.monotonic() < deadline:
        time.sleep(0.005)
    session.setMaximumBytesPerSecond(64 * KiB)
    moved = _moved_then_cancel(session, rec, tid, wire)
    assert moved < 700_000, moved  # 16 MiB unthrottled would be gone in well under a second
    assert wire[0] < 16 * MiB
    assert pacing_waits and "urlsession-curl" not in pacing_waits, pacing_waits
