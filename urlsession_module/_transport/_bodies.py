"""Moving bodies: coalesced progress, where a response body goes, and bodies read like files."""

from __future__ import annotations

import codecs
import contextlib
import errno
import functools
import io
import os
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3

from .._state import BodyReceived, BodySent
from .._storage import open_private
from ..exceptions import ErrorCode, TransferError
from ._control import TransferControl
from ._errors import file_error

BLOCK = 256 * 1024  # request body blocks: what one uploadprogress can report at most
READ_BLOCK = 1024 * 1024  # the reused buffer a response body is read into
# Progress is coalesced: a block is reported once PROGRESS_STEP bytes (or 1 % of the expected
# total, if less) or PROGRESS_INTERVAL seconds have gathered since the last report; bytes that
# wait are reported within PROGRESS_INTERVAL even if the wire stalls, and the last bytes always
# are, before the transfer's end, so totals are exact.
PROGRESS_INTERVAL = 0.003
PROGRESS_STEP = 1 << 20
_TEXT_GATHER = 4 << 20  # decoded text gathered before it is appended to a data task's text


class Progress:
    """Coalesced byte counts for one direction of one transfer: BodyReceived or BodySent.

    ``add`` reports at once when the gathered bytes reach 1 % of ``total`` (when known) or
    ``PROGRESS_INTERVAL`` has passed since the last report; otherwise the bytes wait for the next
    block, ``overdue`` or ``flush``. One input per report, never more than one per block.
    """

    __slots__ = ("_ctl", "_kind", "_last", "_step", "pending")

    def __init__(
        self, ctl: TransferControl, kind: type[BodyReceived] | type[BodySent], total: int
    ) -> None:
        self._ctl = ctl
        self._kind = kind
        self._step = max(1, min(PROGRESS_STEP, total // 100)) if total > 0 else PROGRESS_STEP
        self._last = time.monotonic()
        self.pending = 0

    @property
    def step(self) -> int:
        """The bytes that make a report by themselves (an engine may wake its reader per step)."""
        return self._step

    def add(self, n: int) -> None:
        self.pending += n
        now = time.monotonic()
        if self.pending >= self._step or now - self._last >= PROGRESS_INTERVAL:
            self._report(now)

    def wait(self) -> float:
        """How long the waiting bytes may still wait (0: report them now)."""
        return max(0.0, self._last + PROGRESS_INTERVAL - time.monotonic())

    def flush(self) -> None:
        if self.pending:
            self._report(time.monotonic())

    def _report(self, now: float) -> None:
        n, self.pending, self._last = self.pending, 0, now
        self._ctl.feed(self._kind(n))


class Sink:
    """Where a response body goes: text in memory for data tasks, a private file for downloads.

    ``limit`` caps the decoded bytes the sink takes (``limit_name`` is the configuration
    property that set it, for the message): one byte more fails the task with -1103 before
    it is kept. A data task's body is decoded to text as it arrives (a few MiB are gathered,
    then appended), never held as bytes and text at once, so the memory a body costs is its
    text: a decoded body of ``limit`` bytes never needs twice that.
    """

    def __init__(
        self, path: str | None, keep: int = 0, limit: int | None = None, limit_name: str = ""
    ) -> None:
        """``keep``: bytes of an earlier attempt's file to continue after (the rest is cut)."""
        self.path = path
        self.size = 0
        self.limit = limit
        self._limit_name = limit_name
        self._fd: int | None = None
        self._decoder: codecs.IncrementalDecoder | None = None
        self._pieces: list[str] = []
        self._gathered = 0
        self._text = ""
        if path is not None:
            flags = os.O_WRONLY | os.O_CREAT | (0 if keep else os.O_TRUNC)
            try:
                self._fd = open_private(path, flags)  # never through a planted link
            except OSError as exc:
                raise file_error(ErrorCode.CANNOT_CREATE_FILE, exc, path) from None
            if keep:
                self.truncate(keep)

    @property
    def file_descriptor(self) -> int | None:
        """The open file a download's body goes to (None: a data task's text); an engine that
        writes it itself (the curl engine's counted mode) keeps ``size`` up to date."""
        return self._fd

    def begin(self, offset: int, charset: str = "utf-8") -> None:
        """A response body starts: keep ``offset`` bytes (a 206 continues there, a 200 starts
        over at 0); a data task's text is decoded as ``charset`` (utf-8 if Python has no such
        codec)."""
        self.truncate(offset)
        if self._fd is None and not offset:
            try:
                factory = codecs.getincrementaldecoder(charset)
            except LookupError:
                factory = codecs.getincrementaldecoder("utf-8")
            self._decoder = factory(errors="replace")

    def check_room(self, more: int) -> None:
        """Fail with -1103 if ``more`` bytes would take the sink past its limit."""
        if self.limit is not None and self.size + more > self.limit:
            raise TransferError(
                ErrorCode.DATA_LENGTH_EXCEEDS_MAXIMUM,
                f"the body is larger than {self._limit_name}, {self.limit} bytes",
            )

    def write(self, data: bytes | memoryview) -> None:
        # Called for each piece libcurl gives (16 KiB: 65,536 times a GiB), so the usual case
        # is one call with no nested ones: a call is ~0.5 µs here, and four of them per piece
        # were a tenth of a download's CPU.
        n = len(data)
        if self.limit is not None and self.size + n > self.limit:
            self.check_room(n)  # raises -1103
        fd = self._fd
        if fd is None:
            self._take_text(data)
        else:
            try:
                done = os.write(fd, data)
            except OSError as exc:
                raise file_error(ErrorCode.CANNOT_WRITE_TO_FILE, exc, self.path or "") from None
            if done < n:  # a short write (a full disk says so on the next one)
                self._write_file(fd, memoryview(data)[done:])
        self.size += n

    def _take_text(self, data: bytes | memoryview) -> None:
        if self._decoder is None:
            self.begin(0)
        assert self._decoder is not None
        piece = self._decoder.decode(data)
        self._pieces.append(piece)
        self._gathered += len(piece)
        if self._gathered >= _TEXT_GATHER:
            self._append_pieces()

    def _append_pieces(self) -> None:
        piece = "".join(self._pieces)
        self._pieces.clear()
        self._gathered = 0
        # CPython grows a str in place (realloc) when the only reference to it is the local
        # being added to: taking it out of the attribute first spares a copy of the whole text.
        text, self._text = self._text, ""
        text += piece
        self._text = text

    def _write_file(self, fd: int, view: memoryview) -> None:
        while view:
            try:
                n = os.write(fd, view)
            except OSError as exc:
                raise file_error(ErrorCode.CANNOT_WRITE_TO_FILE, exc, self.path or "") from None
            view = view[n:]

    def write_from_pipe(self, pipe: int, n: int) -> None:
        """Write the ``n`` bytes waiting in ``pipe`` to the file, kernel to kernel (``splice``).

        A file system that takes no splice gets them copied through Python instead.
        """
        assert self._fd is not None
        self.check_room(n)
        left = n
        while left:
            try:
                moved = os.splice(pipe, self._fd, left, flags=os.SPLICE_F_MOVE)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise file_error(ErrorCode.CANNOT_WRITE_TO_FILE, exc, self.path or "") from None
                while left:  # this file system takes no splice: copy
                    data = os.read(pipe, min(left, 1 << 20))
                    if not data:
                        break  # (cannot happen: the pipe holds the bytes; never spin on it)
                    self._write_file(self._fd, memoryview(data))
                    left -= len(data)
                moved = 0
            if not moved and left:  # the pipe gave less than it holds: never wait on it
                short = OSError(errno.EIO, "the pipe gave fewer bytes than it holds")
                raise file_error(ErrorCode.CANNOT_WRITE_TO_FILE, short, self.path or "")
            left -= moved
        self.size += n

    def truncate(self, offset: int) -> None:
        """Keep the first ``offset`` bytes (a 206 continues there; a 200 starts over at 0).

        Text in memory can only be kept whole or dropped: a data task resumes where it let go.
        """
        if self._fd is None:
            assert offset in (0, self.size), "text is kept whole or dropped"
            if not offset:
                self._pieces, self._gathered, self._text, self._decoder = [], 0, "", None
        else:
            os.ftruncate(self._fd, offset)
            os.lseek(self._fd, offset, os.SEEK_SET)
        self.size = offset

    def text(self) -> str:
        """The whole body as text, handed over (the sink keeps no reference to it)."""
        if self._decoder is not None:
            self._pieces.append(self._decoder.decode(b"", final=True))
        self._append_pieces()
        text, self._text = self._text, ""
        return text

    def finish(self, final_path: str, durable: bool) -> None:
        assert self._fd is not None and self.path is not None
        try:
            if durable:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            os.replace(self.path, final_path)
            if durable:  # the rename itself must survive a crash too: sync the directory entry
                dir_fd = os.open(os.path.dirname(final_path) or ".", os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            raise file_error(ErrorCode.CANNOT_MOVE_FILE, exc, final_path) from None

    def close(self) -> None:
        """Let go of the file but keep what it holds (a later attempt may continue it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self._pieces, self._text = [], ""


def charset(content_type: str | None) -> str:
    """The text encoding a Content-Type names (utf-8 when none or unknown).

    Cached by the header's text: a server sends the same few values on every response, and
    the email package's parameter parser cost a task several µs on scenario b.
    """
    if not content_type:
        return "utf-8"
    return _charset(content_type)


@functools.lru_cache(maxsize=256)
def _charset(content_type: str) -> str:
    msg = Message()
    msg["content-type"] = content_type
    charset = msg.get_param("charset")
    if isinstance(charset, str):
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


def filename_for(url: str, disposition: str | None) -> str:
    if disposition:
        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_filename()
        if name:
            return os.path.basename(name)
    name = os.path.basename(unquote(urlsplit(url).path))
    return name or "download"


def decoder_finished(resp: urllib3.BaseHTTPResponse) -> bool:
    """Whether the response's gzip/deflate stream reached its end marker (True if unknowable)."""
    decoder = getattr(resp, "_decoder", None)
    decoders = getattr(decoder, "_decoders", None) or [decoder]  # urllib3's MultiDecoder
    for d in decoders:
        obj = getattr(d, "_obj", None)
        if obj is not None and hasattr(obj, "eof") and not obj.eof:
            return False
    return True


def raw_chunks(resp: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The body as it comes off the wire, still encoded (what the cache keeps), read by read."""
    while chunk := resp.read1(BLOCK, decode_content=False):
        yield chunk


class ChunkReader(io.RawIOBase):
    """An iterator of byte chunks read like a file, which is what urllib3 wants as a body.

    ``expected`` is the body's length when known: urllib3 stops reading once it has that many
    bytes, before the iterator says it is done, so :meth:`finish` runs it to its end (that is
    when a cache write completes). An iterator closed before its end drops its cache write.
    """

    def __init__(self, chunks: Iterator[bytes], expected: int | None) -> None:
        super().__init__()
        self._chunks = chunks
        self._expected = expected
        self._given = 0
        self._done = False
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                self._done = True
                return 0
        n = min(len(view), len(self._left))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        self._given += n
        return n

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def finish(self) -> None:
        """The consumer has the whole body: let the iterator reach its end."""
        if self._done or self._expected is None or self._given < self._expected:
            return
        for _ in self._chunks:  # nothing is left but the iterator's own ending
            pass
        self._done = True

    def close(self) -> None:
        if not self.closed:
            self.finish()
            close = getattr(self._chunks, "close", None)
            if not self._done and close is not None:
                close()  # a cache write that did not reach the end is dropped
        super().close()
