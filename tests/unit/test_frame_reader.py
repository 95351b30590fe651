"""The intake's frame reader: multiprocessing.connection's framing, read many frames at a time."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import pytest

from urlsession_module._background._intake import FrameReader


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _frame(payload: bytes) -> bytes:
    return struct.pack("!i", len(payload)) + payload


def test_frames_written_at_once_come_back_in_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Hundreds of frames in one write: each read returns the next; pending says more wait."""
    host, server = pair
    payloads = [f"task {i}".encode() * (i % 7 + 1) for i in range(500)] + [b""]
    host.sendall(b"".join(_frame(p) for p in payloads))
    reader = FrameReader(server.fileno(), 1 << 20)
    got = []
    for _ in payloads:
        got.append(reader.read())
    assert got == payloads
    assert not reader.pending()
    host.sendall(_frame(b"late"))
    assert reader.pending() and reader.read() == b"late"


def test_a_half_written_frame_is_not_pending_until_its_rest_comes(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A host that stalls mid-frame must not hold back the commit of the frames before it."""
    host, server = pair
    whole = _frame(b"x" * 1000)
    host.sendall(_frame(b"first") + whole[:10])
    reader = FrameReader(server.fileno(), 1 << 20)
    assert reader.read() == b"first"  # (one read took the 10 bytes after it too)
    assert not reader.pending()
    os.set_blocking(server.fileno(), False)
    with pytest.raises(BlockingIOError):
        reader.read()  # nothing more to read: a blocking reader would wait here
    os.set_blocking(server.fileno(), True)
    host.sendall(whole[10:])
    assert reader.pending() and reader.read() == b"x" * 1000


def test_an_oversized_frame_and_a_hang_up_end_the_connection(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Over the limit (or a negative length): OSError; end of file: EOFError."""
    host, server = pair
    reader = FrameReader(server.fileno(), 100)
    host.sendall(struct.pack("!i", 101))
    with pytest.raises(OSError, match="101 bytes"):
        reader.read()
    host2, server2 = socket.socketpair()
    try:
        host2.sendall(struct.pack("!i", -1) + b"\0" * 8)
        with pytest.raises(OSError):
            FrameReader(server2.fileno(), 100).read()
        host2.sendall(b"")
        host2.shutdown(socket.SHUT_WR)
        fresh = FrameReader(host.fileno(), 100)
        server.shutdown(socket.SHUT_WR)
        with pytest.raises(EOFError):
            fresh.read()
    finally:
        host2.close()
        server2.close()
