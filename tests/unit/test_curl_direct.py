"""The curl engine's direct write (a download's pieces written on the network thread): a piece
is written without the transfer's lock, so letting go of the file must wait for the piece under
way and refuse the ones after it. The sink's write is the fault injection point (held mid-way);
the threads, the file and the transfer's condition are real."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

from urlsession_module._transport._bodies import Sink
from urlsession_module._transport._curl import _direct
from urlsession_module._transport._curl._direct import DirectWrite
from urlsession_module._transport._curl._easy import Transfer
from urlsession_module._transport._curl._signal import Signal
from urlsession_module.exceptions import ErrorCode, TransferError

PIECE = bytes(range(256)) * 64  # 16 KiB, libcurl's most per write callback


class _Running:
    """The task's side as the writer sees it: running, no bandwidth limit."""

    pacing = None
    cancelled = False

    def wait_running(self, timeout: float) -> bool:
        return True


def _writer(tmp_path: Path) -> tuple[Transfer, Sink, DirectWrite]:
    signal = Signal(threading.Lock(), lambda job: job(), None)
    t = Transfer(None, 60.0, float("inf"), None, lambda _t: None, cond=signal)  # type: ignore[arg-type]
    sink = Sink(str(tmp_path / "body.part"))
    d = DirectWrite(t, sink, _Running(), 1 << 20)  # type: ignore[arg-type]
    return t, sink, d


def test_letting_go_waits_for_the_piece_being_written(tmp_path: Path, mocker: Any) -> None:
    _t, sink, d = _writer(tmp_path)
    inside, release = threading.Event(), threading.Event()
    real_write = sink.write

    def held(data: bytes) -> None:
        inside.set()
        assert release.wait(10)
        real_write(data)

    mocker.patch.object(sink, "write", side_effect=held)
    results: list[Any] = []
    writer = threading.Thread(target=lambda: results.append(d.write(PIECE)))
    writer.start()
    assert inside.wait(10)
    closer = threading.Thread(target=d.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close() returned while a piece was still being written"
    release.set()
    writer.join(10)
    closer.join(10)
    assert not closer.is_alive() and not writer.is_alive()
    assert results == [None]
    assert (tmp_path / "body.part").read_bytes() == PIECE  # the piece under way, whole
    mocker.stopall()
    assert d.write(PIECE) == 0  # after the let-go: refused (libcurl stops with a write error)
    assert (tmp_path / "body.part").stat().st_size == len(PIECE)


def test_a_piece_after_letting_go_is_refused_unwritten(tmp_path: Path) -> None:
    _t, sink, d = _writer(tmp_path)
    assert d.write(PIECE) is None
    d.close()
    assert d.write(PIECE) == 0
    assert sink.size == len(PIECE) == (tmp_path / "body.part").stat().st_size
    assert d.written == len(PIECE)


def test_a_cancelled_transfer_takes_no_more_pieces(tmp_path: Path) -> None:
    t, sink, d = _writer(tmp_path)
    assert t.cancel(TransferError(ErrorCode.CANCELLED, "cancelled"))
    assert d.write(PIECE) == 0
    assert sink.size == 0


# -- counted mode: libcurl's own os.write on the file, counted from its offset -------------------


def test_counted_mode_counts_what_was_written_from_the_file_offset(tmp_path: Path) -> None:
    t, sink, d = _writer(tmp_path)
    assert d.write(PIECE) is None  # a piece before the hand-over, through Python
    t.direct = d
    d.hand_to_libcurl()
    assert d in _direct._COUNTED
    fd = sink.file_descriptor
    assert fd is not None
    os.write(fd, PIECE)  # as libcurl's callback, functools.partial(os.write, fd), would
    os.write(fd, PIECE[:100])
    d.count()
    assert d.written == sink.size == 2 * len(PIECE) + 100
    d.close()  # stops counted mode first (here the "network thread" runs it at once)
    assert d not in _direct._COUNTED and d.written == 2 * len(PIECE) + 100
    assert d.write(PIECE) == 0  # and then refuses, as after any let-go


def test_a_hand_over_after_letting_go_changes_nothing(tmp_path: Path) -> None:
    t, _sink, d = _writer(tmp_path)
    t.direct = d
    d.close()
    d.hand_to_libcurl()  # queued before the let-go, run after it
    assert d not in _direct._COUNTED


def test_letting_go_during_the_hand_over_undoes_it(tmp_path: Path, mocker: Any) -> None:
    """close() on the task's thread while the network thread hands the file to libcurl: the
    hand-over sees the let-go once it is in and undoes it; close() waits for it to end."""
    t, _sink, d = _writer(tmp_path)
    t.direct = d
    real_lseek = os.lseek
    closer: list[threading.Thread] = []

    def lseek(fd: int, pos: int, how: int) -> int:
        if not closer:  # mid-way through the hand-over: the task lets go
            closer.append(threading.Thread(target=d.close))
            closer[0].start()
            closer[0].join(0.3)
            assert closer[0].is_alive(), "close() returned during the hand-over"
        return real_lseek(fd, pos, how)

    mocker.patch.object(_direct.os, "lseek", side_effect=lseek)
    d.hand_to_libcurl()
    closer[0].join(10)
    assert not closer[0].is_alive()
    assert d not in _direct._COUNTED
    assert d.write(PIECE) == 0


def test_counted_mode_leaves_a_disk_that_fills_up_to_the_python_writer(
    tmp_path: Path, mocker: Any
) -> None:
    """``os.write`` raising inside pycurl is printed on stderr, so counted mode keeps away from
    a disk short of room: none is entered, and one under way hands back to :meth:`write`."""
    t, sink, d = _writer(tmp_path)
    t.direct = d
    room = mocker.patch.object(_direct, "_room_for", return_value=False)
    d.hand_to_libcurl()
    assert d not in _direct._COUNTED
    room.return_value = True
    d.hand_to_libcurl()
    assert d in _direct._COUNTED
    fd = sink.file_descriptor
    assert fd is not None
    os.write(fd, bytes(_direct._ROOM_LOOK))  # as libcurl would, a look's worth
    room.return_value = False
    d._after_action()
    assert d not in _direct._COUNTED and d.written == _direct._ROOM_LOOK
    d.close()


def test_a_write_error_in_counted_mode_is_named_by_the_file(tmp_path: Path, mocker: Any) -> None:
    """libcurl reports only that a write failed: the file is asked for a byte more, and its
    answer names the error (-3003); a file that takes it is left as it was."""
    t, sink, d = _writer(tmp_path)
    t.direct = d
    d.hand_to_libcurl()
    fd = sink.file_descriptor
    assert fd is not None
    os.write(fd, PIECE)
    quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    mocker.patch.object(_direct.os, "posix_fallocate", side_effect=quota)
    error = d.write_error()
    assert error is not None and error.code == ErrorCode.CANNOT_WRITE_TO_FILE
    assert os.strerror(errno.EDQUOT) in error.message
    mocker.stopall()
    error = d.write_error()  # the file takes a byte more: the short write is all there is
    assert error is not None and error.code == ErrorCode.CANNOT_WRITE_TO_FILE
    assert (tmp_path / "body.part").stat().st_size == len(PIECE)
    d.close()
