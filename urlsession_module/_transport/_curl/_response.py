"""A curl transfer's response, in the shape the transport reads every engine's responses in.

urllib3's response class over a body that is read from the transfer's queue: urllib3's decoders
then decode it (the same ones the urllib3 engine uses), the cache can store it as it is read,
and the transport's loops need not know which engine carried it.
"""

from __future__ import annotations

import contextlib
import http.client
import io
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import urllib3
from urllib3.response import BytesQueueBuffer

from ...exceptions import ErrorCode, TransferError
from .._bodies import Progress
from .._headerlists import add_pairs, pairs_of
from .._ratelimit import paced
from .._wire import Steps
from ._direct import direct_steps
from ._easy import Transfer
from ._signal import Signal, SignalWaiter

if TYPE_CHECKING:
    from .._attempt import Attempt

_STEP = 0.25  # the longest one wait for body bytes lasts before clocks are looked at again


def _refuse_wait(t: Transfer) -> None:
    if isinstance(t.cond, Signal):
        t.cond.refuse_wait()


class CurlBody(io.RawIOBase):
    """The body of one transfer, read like a file by the task's thread.

    ``stop`` takes the transfer out of the network thread at once (a response dropped before
    its end); the network thread ends a transfer that goes quiet or passes its deadline, so a
    read here never waits past those.
    """

    def __init__(self, t: Transfer, stop: Callable[[TransferError], None]) -> None:
        super().__init__()
        self.transfer = t
        self.stop = stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        t = self.transfer
        view = memoryview(buffer).cast("B")
        with t.cond:
            while not t.chunks and not t.done and t.error is None:
                _refuse_wait(t)
                t.cond.wait(_STEP)
            if not t.chunks:
                if t.error is not None:
                    raise TransferError(t.error.code, t.error.message)
                return 0  # the body's end: libcurl has checked its framing and length
        return t.take(view)

    def read1(self, size: int = -1) -> bytes:
        """The next piece as libcurl gave it (no copy, no buffer per read): what one read of
        the socket gave, so progress is as fresh as the wire, as on the urllib3 engine."""
        t = self.transfer
        with t.cond:
            while not t.chunks and not t.done and t.error is None:
                _refuse_wait(t)
                t.cond.wait(_STEP)
            if not t.chunks:
                if t.error is not None:
                    raise TransferError(t.error.code, t.error.message)
                return b""
        return t.take_chunk(size if size > 0 else 1 << 30)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self.read1(size)

    def close(self) -> None:
        if not self.closed:
            t = self.transfer
            if not t.done:  # dropped before its end: libcurl closes that connection
                self.stop(TransferError(ErrorCode.CANCELLED, "the response was dropped"))
        super().close()


class ResponseHead(urllib3.HTTPHeaderDict):
    """A curl response's headers: urllib3's type, built straight from the received pairs.

    A response's headers are read a dozen times per task (cookies, the cache, metrics, the
    payloads) and not changed: ``items()`` is listed once (urllib3 walks its view at every
    call, twice for ``tuple()``), and ``get`` of a name that is not there raises no
    ``KeyError`` on the way (Mapping.get does).
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._listed: list[tuple[str, str]] | None = None
        add_pairs(self._container, pairs)

    def get(self, key: str, default: Any = None) -> Any:
        if not isinstance(key, str):
            return super().get(key, default)
        values = self._container.get(key.lower())
        if values is None:
            return default
        return values[1] if len(values) == 2 else ", ".join(values[1:])

    def items(self) -> Any:  # the same pairs, in the same order, as urllib3's view
        listed = self._listed
        if listed is None:
            # (urllib3's view walks ``iteritems``, a generator step a line: its lists, read here)
            listed = self._listed = pairs_of(self._container)
        return listed

    def __setitem__(self, key: str, val: str) -> None:
        self._listed = None
        super().__setitem__(key, val)

    def __delitem__(self, key: str) -> None:
        self._listed = None
        super().__delitem__(key)

    def add(self, key: str, val: str, *, combine: bool = False) -> None:
        self._listed = None
        super().add(key, val, combine=combine)


class _MadeOnFirstRead:
    """A class attribute whose first read on an instance makes the value with ``make`` and
    keeps it in the instance (a non-data descriptor: the instance's own value, or one urllib3
    assigns, takes over from then on)."""

    __slots__ = ("make", "name")

    def __init__(self, make: Callable[[Any], Any]) -> None:
        self.make = make
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.make(obj)
        return value


class CurlResponse(urllib3.HTTPResponse):
    """urllib3's response over a :class:`CurlBody`: decoded by urllib3's decoders.

    Made once per response, on the network thread: what urllib3's ``__init__`` would set to
    the same value for every curl response is a class attribute here (an instance attribute
    of the same name takes over as soon as urllib3 assigns one), and the parts only a read
    through urllib3 needs (the body reader, the remaining length, the decoded buffer) are
    made on first use: a small body the network thread writes straight to its sink
    (:meth:`to_sink`) never needs them. Checked once, at import, against urllib3's own
    ``__init__`` (:func:`_same_as_urllib3`); urllib3's ``__init__`` otherwise.
    """

    version = 0
    version_string = "HTTP/?"
    decode_content = True
    _has_decoded_content = False
    _request_url = None
    _retries = None
    _decoder = None
    _decoder_initialized = False
    enforce_content_length = False  # libcurl enforces it (and says -1005 when short)
    auto_close = True
    _body = None
    _uncached_read_occurred = False
    _original_response = None
    _fp_bytes_read = 0
    msg = None
    _pool = None
    _connection = None
    _sock_shutdown = None
    chunk_left = None

    def __init__(self, t: Transfer, method: str, stop: Callable[[TransferError], None]) -> None:
        # libcurl took any chunked framing off; urllib3 reads the plain bytes from ``body`` (it
        # reads chunks itself only from an http.client response, which this is not).
        self.transfer = t
        self._stop = stop
        self._method = method
        headers = ResponseHead(t.headers)
        if _FAST_INIT:
            d = self.__dict__
            d["headers"] = headers
            d["status"] = t.status
            d["reason"] = http.client.responses.get(t.status)
            coding: str = headers.get("transfer-encoding") or ""
            d["chunked"] = "chunked" in (c.strip() for c in coding.lower().split(","))
            return
        super().__init__(
            body=CurlBody(t, stop),
            headers=headers,
            status=t.status,
            reason=http.client.responses.get(t.status),
            preload_content=False,
            decode_content=True,
            request_method=method,
            enforce_content_length=False,
        )

    # The parts made on first use, as urllib3's ``__init__`` would have made them (descriptors,
    # not a ``__getattr__``: with one, no attribute read of the class is specialised by the
    # interpreter, and a response's attributes are read many times a task, by urllib3 too).
    _fp = _MadeOnFirstRead(lambda self: CurlBody(self.transfer, self._stop))
    length_remaining = _MadeOnFirstRead(lambda self: self._init_length(self._method))
    _decoded_buffer = _MadeOnFirstRead(lambda self: BytesQueueBuffer())

    @property
    def closed(self) -> bool:
        """urllib3's answer; without asking a body reader that was never made: a transfer that
        ended with none has nothing to close (``io.IOBase`` asks this when the response is
        freed, and would make the reader only to close it)."""
        if "_fp" not in self.__dict__ and self.transfer.done:
            return True
        return bool(super().closed)

    @property
    def _body_reader(self) -> CurlBody:
        return cast(CurlBody, self._fp)

    def body_waiter(self) -> SignalWaiter | None:
        """What to wait for before the next read, if it would wait now (no byte queued, the
        transfer not over): the task parks on it instead of blocking its thread."""
        t = self.transfer
        signal = t.cond
        if not isinstance(signal, Signal):
            return None
        with signal:
            if t.chunks or t.done or t.error is not None:
                return None
            return SignalWaiter(signal, signal.generation)

    def to_sink(self, a: Attempt, progress: Progress, encoded: bool) -> Steps[None] | None:
        """The rest of the body written to ``a.sink`` by the network thread (:mod:`._direct`),
        when nothing needs it on the task's thread: no decoding, no pacing, nothing read yet
        through urllib3. None: read it as usual. (A download's file, or a data task's text:
        for a small body, urllib3's reads cost more than the body itself.)"""
        ctl = a.ctl
        if encoded or self._fp_bytes_read or paced(ctl):
            return None
        return direct_steps(a, self.transfer, progress, self._stop)

    def release_conn(self) -> None:
        """The connection stays libcurl's: one not read to its end is dropped, not pooled."""
        if not self.transfer.done:
            self._body_reader.close()

    def drain_conn(self) -> None:
        """Read what is left (a redirect's or a 401's body), so the connection can be reused."""
        with contextlib.suppress(TransferError, urllib3.exceptions.HTTPError, OSError):
            self.read(decode_content=False)
        self.release_conn()

    def close(self) -> None:
        self._body_reader.close()
        super().close()


def _same_as_urllib3() -> bool:
    """Whether :class:`CurlResponse` made the fast way reads as urllib3's ``__init__`` would
    have made it (every attribute that sets, the same value but the body reader and the
    buffer), for a few heads: checked once, at import."""
    cases = [
        ([("Content-Length", "3")], 200, "GET"),
        ([("Transfer-Encoding", "chunked"), ("Content-Length", "3")], 200, "GET"),
        ([("Content-Length", "3")], 304, "GET"),
        ([("Content-Length", "3, 3")], 200, "HEAD"),
        ([], 204, "POST"),
    ]
    try:
        for pairs, status, method in cases:
            slow = urllib3.HTTPResponse(
                body=io.BytesIO(),
                headers=ResponseHead(pairs),
                status=status,
                reason=http.client.responses.get(status),
                preload_content=False,
                decode_content=True,
                request_method=method,
                enforce_content_length=False,
            )
            t = Transfer.__new__(Transfer)
            t.headers, t.status = pairs, status
            fast = CurlResponse(t, method, lambda error: None)
            for name, value in vars(slow).items():
                mine = getattr(fast, name)
                if name == "_decoded_buffer":
                    if not isinstance(mine, BytesQueueBuffer):
                        return False
                elif name == "_fp":
                    if not isinstance(mine, CurlBody):
                        return False
                elif name == "headers":
                    if list(mine.items()) != list(value.items()):
                        return False
                elif mine != value or type(mine) is not type(value):
                    return False
    except Exception:  # (an urllib3 whose internals differ: its own __init__, always)
        return False
    return True


_FAST_INIT = True  # (what the check below assumes while it runs)
_FAST_INIT = _same_as_urllib3()
