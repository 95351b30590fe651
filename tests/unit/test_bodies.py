"""Where bodies go and how their progress is told (``_transport._bodies``): ``Progress`` and
``Sink``, without sockets (files in tmp_path)."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from urlsession_module import ErrorCode, TransferError
from urlsession_module._state import BodyReceived, BodySent, Input
from urlsession_module._transport._bodies import PROGRESS_INTERVAL, PROGRESS_STEP, Progress, Sink


class Owner:
    """A TransferControl that records what it is fed."""

    cancelled = False

    def __init__(self) -> None:
        self.fed: list[Input] = []

    def feed(self, event: Input) -> None:
        self.fed.append(event)

    def wait_running(self, timeout: float) -> bool:
        return True

    def set_abort(self, abort: Callable[[], None] | None) -> None:
        pass


@pytest.fixture
def clock(mocker: MockerFixture) -> list[float]:
    """A hand-driven time.monotonic for Progress: set ``clock[0]``."""
    now = [1000.0]
    mocker.patch("urlsession_module._transport._bodies.time.monotonic", side_effect=lambda: now[0])
    return now


def _counts(owner: Owner) -> list[int]:
    return [e.n for e in owner.fed]  # type: ignore[union-attr]


# --------------------------------------------------------------------------- Progress


def test_small_blocks_are_coalesced_until_the_step(clock: list[float]) -> None:
    """Blocks under 1 % of the total, in the same instant, are reported together."""
    owner = Owner()
    progress = Progress(owner, BodyReceived, 100_000)  # step: 1 000 bytes
    for _ in range(9):
        progress.add(100)
    assert owner.fed == []
    progress.add(100)
    assert _counts(owner) == [1000]
    assert all(isinstance(e, BodyReceived) for e in owner.fed)


def test_waiting_bytes_go_after_the_interval(clock: list[float]) -> None:
    """Once PROGRESS_INTERVAL has passed, the next block reports what gathered."""
    owner = Owner()
    progress = Progress(owner, BodySent, 10**9)
    progress.add(10)
    assert owner.fed == [] and progress.pending == 10
    assert progress.wait() == pytest.approx(PROGRESS_INTERVAL)
    clock[0] += PROGRESS_INTERVAL
    assert progress.wait() == 0
    progress.add(5)
    assert _counts(owner) == [15] and isinstance(owner.fed[0], BodySent)


def test_flush_reports_the_rest_once(clock: list[float]) -> None:
    """flush() reports what waits, exactly once; totals are exact."""
    owner = Owner()
    progress = Progress(owner, BodyReceived, -1)  # unknown total: the step is PROGRESS_STEP
    progress.add(7)
    progress.flush()
    progress.flush()
    assert _counts(owner) == [7]
    progress.add(PROGRESS_STEP)
    assert _counts(owner) == [7, PROGRESS_STEP]


def test_one_report_per_block_at_most(clock: list[float]) -> None:
    """A block far larger than the step is one report, not many."""
    owner = Owner()
    progress = Progress(owner, BodyReceived, 1000)
    progress.add(50_000)
    assert _counts(owner) == [50_000]


# --------------------------------------------------------------------------- Sink in memory


def test_memory_sink_decodes_text_by_the_charset() -> None:
    """A data task's body comes back as text in the response's charset, split anywhere."""
    sink = Sink(None)
    sink.begin(0, "latin-1")
    for byte in "h\u00e9llo".encode("latin-1"):
        sink.write(bytes([byte]))
    assert (sink.size, sink.text()) == (5, "h\u00e9llo")


def test_memory_sink_keeps_multibyte_characters_split_between_writes() -> None:
    """UTF-8 characters cut between writes decode whole; invalid bytes are replaced."""
    data = "\u20ac\u00e9".encode() + b"\xff"
    sink = Sink(None)
    sink.begin(0, "utf-8")
    for i in range(len(data)):
        sink.write(data[i : i + 1])
    assert sink.text() == "\u20ac\u00e9\ufffd"


def test_unknown_charset_falls_back_to_utf8() -> None:
    """A charset Python has no codec for decodes as UTF-8."""
    sink = Sink(None)
    sink.begin(0, "x-no-such-charset")
    sink.write("\u00e9".encode())
    assert sink.text() == "\u00e9"


def test_memory_sink_starts_over_on_truncate_to_zero() -> None:
    """A 200 after a Range request starts the text over; keeping it whole keeps it."""
    sink = Sink(None)
    sink.begin(0)
    sink.write(b"first")
    sink.begin(sink.size)  # a 206 continues where it let go
    sink.write(b"+more")
    sink.truncate(0)
    sink.begin(0)
    sink.write(b"again")
    assert sink.text() == "again"


def test_limit_refuses_the_byte_past_it() -> None:
    """The cap admits exactly ``limit`` bytes; one more is -1103, naming the property."""
    sink = Sink(None, limit=10, limit_name="maximumResponseDataLength")
    sink.begin(0)
    sink.write(b"0123456789")
    with pytest.raises(TransferError) as info:
        sink.write(b"x")
    assert info.value.code == ErrorCode.DATA_LENGTH_EXCEEDS_MAXIMUM
    assert info.value.message == "the body is larger than maximumResponseDataLength, 10 bytes"
    assert sink.size == 10
    sink.check_room(0)
    with pytest.raises(TransferError):
        sink.check_room(1)


def test_text_costs_its_own_size_not_twice() -> None:
    """Building 32 MiB of text never holds the bytes and the text at once (peak < 1.3x)."""
    size = 32 << 20
    block = b"a" * (1 << 20)
    sink = Sink(None)
    sink.begin(0)
    tracemalloc.start()
    try:
        for _ in range(size // len(block)):
            sink.write(block)
        text = sink.text()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(text) == size
    assert peak < 1.3 * size, peak


# --------------------------------------------------------------------------- Sink to a file


def test_file_sink_is_private_and_moves_into_place(tmp_path: Path) -> None:
    """A download's part file is 0600 and becomes the final file by rename."""
    part, final = tmp_path / "t.part", tmp_path / "t-final.bin"
    sink = Sink(str(part))
    sink.write(b"hello ")
    sink.write(memoryview(b"world"))
    assert part.stat().st_mode & 0o777 == 0o600
    sink.finish(str(final), durable=True)
    assert final.read_bytes() == b"hello world" and not part.exists()


def test_file_sink_continues_after_kept_bytes(tmp_path: Path) -> None:
    """``keep`` continues an earlier attempt's file after its first bytes; the rest is cut."""
    part = tmp_path / "t.part"
    part.write_bytes(b"0123456789")
    sink = Sink(str(part), keep=4)
    assert sink.size == 4
    sink.write(b"abc")
    sink.close()
    assert part.read_bytes() == b"0123abc"


def test_file_sink_discard_removes_the_file(tmp_path: Path) -> None:
    """discard() (cancel, -1103) removes the part file; close() keeps it for a resume."""
    kept, dropped = tmp_path / "kept.part", tmp_path / "dropped.part"
    a, b = Sink(str(kept)), Sink(str(dropped))
    a.write(b"x")
    b.write(b"x")
    a.close()
    b.discard()
    assert kept.exists() and not dropped.exists()


def test_file_sink_limit(tmp_path: Path) -> None:
    """A download past maximumDownloadLength fails before the extra bytes are written."""
    part = tmp_path / "t.part"
    sink = Sink(str(part), limit=4, limit_name="maximumDownloadLength")
    sink.write(b"abcd")
    with pytest.raises(TransferError) as info:
        sink.write(b"e")
    assert info.value.code == ErrorCode.DATA_LENGTH_EXCEEDS_MAXIMUM
    sink.close()
    assert part.read_bytes() == b"abcd"


def test_file_sink_that_cannot_be_created_is_minus_3000(tmp_path: Path) -> None:
    """A part file in a missing directory is -3000 with the OS's words and the path."""
    path = tmp_path / "missing" / "t.part"
    with pytest.raises(TransferError) as info:
        Sink(str(path))
    assert info.value.code == ErrorCode.CANNOT_CREATE_FILE
    assert info.value.message == (
        f"{ErrorCode.CANNOT_CREATE_FILE.description} ({os.strerror(2)}: {path})"
    )
