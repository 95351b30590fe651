"""The transfer process's intake of handed-over tasks: checked, journaled in one commit each batch.

The server gathers the ``create`` messages a host wrote while the previous batch was being
committed (see :meth:`~._server.Server._host_loop`) and hands them here: one transaction, one
fsync, whatever their number (group commit). A task handed over again after a reconnect is
stored once; an identifier the process never leased is refused; a journal that cannot take the
batch (a full disk) names every task of it in ``failed`` and touches nothing already journaled.
"""

from __future__ import annotations

import logging
import os
import select
import sqlite3
import struct
import time
from collections.abc import Mapping
from typing import Any

from .._config_values import ConfigValues
from ._fields import request_to_dict
from ._journal import QUEUED, Journal, TaskRecord
from ._wire import Create, Journaled, WireError

__all__ = ["FrameReader", "hand_over"]

log = logging.getLogger("urlsession_module.transfer")

NOT_LEASED = "the task identifier was not leased by the transfer process"

_HEADER = struct.Struct("!i")  # multiprocessing.connection's framing: a big-endian length
READ_SIZE = 256 * 1024


class FrameReader:
    """A host's frames, read from its socket many at a time.

    ``Connection.recv_bytes`` costs two reads a frame, and asking whether another one waits
    (``poll``) builds a selector each time: more than journaling the task. Here one read takes
    whatever the host wrote meanwhile (hundreds of hand-overs), and :meth:`pending` says, with
    no system call while frames are buffered, whether the batch may grow before it is committed.
    The framing is ``multiprocessing.connection``'s, which the host writes.
    """

    def __init__(self, fd: int, limit: int) -> None:
        self._fd = fd
        self._limit = limit
        self._buf = bytearray()
        self._pos = 0
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def _complete(self) -> int:
        """The end of the buffered frame at the read position (0: not all here yet)."""
        if len(self._buf) - self._pos < 4:
            return 0
        (size,) = _HEADER.unpack_from(self._buf, self._pos)
        if size < 0 or size > self._limit:  # (as recv_bytes(maxlength): that connection ends)
            raise OSError(f"a frame of {size} bytes (at most {self._limit})")
        end = self._pos + 4 + size
        return end if len(self._buf) >= end else 0

    def pending(self) -> bool:
        """A whole frame is buffered, or bytes wait on the socket (a half-written frame of a
        host that stalls does not count: the batch before it is committed first)."""
        try:
            if self._complete():
                return True
        except OSError:
            return True  # (read() says why)
        return bool(self._poll.poll(0))

    def read(self) -> bytes:
        """The next frame (blocking); EOFError when the host hung up, OSError if oversized."""
        while True:
            end = self._complete()
            if end:
                frame = bytes(self._buf[self._pos + 4 : end])
                self._pos = end
                return frame
            chunk = os.read(self._fd, READ_SIZE)
            if not chunk:
                raise EOFError
            if self._pos:
                del self._buf[: self._pos]
                self._pos = 0
            self._buf += chunk


def hand_over(
    journal: Journal,
    creates: list[Create],
    configs: Mapping[str, ConfigValues],
    leased: int,
) -> tuple[Journaled, list[TaskRecord]]:
    """Journal a batch; returns what to tell the host and the records that are new."""
    now = time.time()
    recs: list[TaskRecord] = []
    failed: list[tuple[str, str]] = []
    # A loop hands the same request over many times: its plain form is made once per batch and
    # shared by those records (read only: the journal stores it as JSON, the runner reads it).
    last: tuple[object, dict[str, Any]] = (None, {})
    for m in creates:
        assert m.id is not None
        number = int(m.id[2:])
        if m.session not in configs:
            failed.append((m.id, WireError.NOT_ATTACHED.text))
        elif number > leased and number > journal.leased():
            failed.append((m.id, NOT_LEASED))
        else:
            if m.request != last[0]:
                last = (m.request, request_to_dict(m.request))
            recs.append(
                TaskRecord(
                    id=m.id,
                    number=number,
                    session=m.session,
                    kind=m.kind.value,
                    request=last[1],
                    state=QUEUED,
                    priority=m.priority,
                    description=m.description,
                    begin_at=m.begin_at,
                    created=now,
                    validator=m.validator,  # resume data's (issue 16): continue its file
                    rate=m.rate,
                )
            )
    try:
        new = journal.add_tasks(recs)
    except sqlite3.Error as exc:
        log.error("could not journal %d handed-over tasks: %s", len(recs), exc)
        why = f"the transfer process could not journal the task: {exc}"
        return Journaled((), (*failed, *((r.id, why) for r in recs))), []
    return Journaled(tuple(r.id for r in recs), tuple(failed)), new
