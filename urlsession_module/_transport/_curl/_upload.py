"""A request body read by the network thread itself, from libcurl's read callback.

The queue path (the task's worker reads a block, queues a copy, waits for room; the read
callback slices it) costs a worker held for the whole upload, two copies and a hand-off per
block. A body that needs no pacing skips it: :class:`DirectRead` gives libcurl what it asks
for straight from the file (``os.read`` of the size libcurl wants, its upload buffer being
large) or from the bytes in memory, counts it, and wakes the task (parked until its response
head comes) only once a progress step or the progress interval has gathered, so the task
reports coalesced ``uploadprogress`` from the count.

Kept from the queue path: a suspended task pauses the upload (libcurl asks again on resume); a
rewind (libcurl sends an idempotent request again) starts the body over; a file that cannot be
opened fails at the start (-3001), one that cannot be read ends the transfer.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pycurl

from ..._state import Request
from ...exceptions import ErrorCode
from .._bodies import PROGRESS_INTERVAL
from .._control import TransferControl
from .._errors import file_error
from .._ratelimit import look_for_limit

if TYPE_CHECKING:
    from ._easy import Transfer

# libcurl's upload buffer for a body it reads itself. 256 KiB rather than 1 MiB: each block is
# copied three times (the file into a new bytes, that into libcurl's buffer, that into the
# socket), and blocks that stay in the CPU's cache made a 256 MiB upload ~10 % faster, for three
# more (cheap) callbacks a MiB (measured with pycurl alone and with this engine, 64 KiB-1 MiB).
UPLOAD_BUFFER = 256 * 1024


class DirectRead:
    """libcurl's read callback over the request's body (network thread, but ``close``)."""

    __slots__ = (
        "_at",
        "_ctl",
        "_fd",
        "_last",
        "_pace_at",
        "_path",
        "_step",
        "_t",
        "_told",
        "_view",
        "reported",
        "sent",
    )

    def __init__(self, t: Transfer, request: Request, ctl: TransferControl, step: int) -> None:
        self._t = t
        self._ctl = ctl
        self._step = step
        self._last = time.monotonic()
        self._told = 0  # bytes the task was woken for
        self.sent = 0  # bytes handed to libcurl (read by the task under the transfer's lock)
        self.reported = 0  # bytes the task has reported (and paced, when a limit applies)
        self._pace_at = 0  # when ``sent`` passes this, look for a limit again
        self._at = 0
        self._fd: int | None = None
        self._view: memoryview | None = None
        self._path = request.body_path or ""
        if request.body_path is not None:
            try:
                self._fd = os.open(request.body_path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise file_error(ErrorCode.CANNOT_OPEN_FILE, exc, request.body_path) from None
        else:
            self._view = memoryview(request.body or b"")

    def read(self, size: int) -> bytes | int:
        """The next ``size`` bytes at most; b"" at the end; a pause while suspended."""
        t = self._t
        if not self._ctl.wait_running(0):  # suspended: libcurl asks again once un-paused
            with t.cond:
                t.send_paused = True
                t.cond.notify_all()
            return int(pycurl.READFUNC_PAUSE)
        if self.sent >= self._pace_at:
            hold, self._pace_at = look_for_limit(self._ctl, self.sent, self.reported)
            if hold:
                # A limit came to apply (the session's rate was set while this ran): the
                # task's thread paces what it reports; the wire waits until it has caught up.
                with t.cond:
                    t.send_paused = True
                    t.cond.notify_all()
                return int(pycurl.READFUNC_PAUSE)
        if self._fd is not None:
            try:
                data = os.read(self._fd, size)
            except OSError as exc:
                t.fail_body(file_error(ErrorCode.CANNOT_OPEN_FILE, exc, self._path))
                return int(pycurl.READFUNC_ABORT)
        else:
            assert self._view is not None
            data = bytes(self._view[self._at : self._at + size])
            self._at += len(data)
        if not data:
            t.upload_end = time.time()
            with t.cond:
                self._tell()
            return b""
        with t.cond:
            self.sent += len(data)
            if self.sent - self._told >= self._step:
                self._tell()
        return data

    def rewind(self) -> None:
        """libcurl sends the request again: the body starts over (counted again, as the
        queue path counts a body queued afresh)."""
        self._at = 0
        if self._fd is not None:
            os.lseek(self._fd, 0, os.SEEK_SET)

    def tick(self, now: float) -> None:
        """(network thread, on the clock) Bytes that waited a progress interval are told."""
        if self.sent != self._told and now - self._last >= PROGRESS_INTERVAL:
            with self._t.cond:
                self._tell()

    def _tell(self) -> None:
        self._told = self.sent
        self._last = time.monotonic()
        self._t.cond.notify_all()

    def close(self) -> None:
        """The transfer ended (network thread): let go of the file."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        self._view = None
