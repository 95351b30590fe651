"""A task's metrics, with Apple's ``URLSessionTaskMetrics`` field names.

One :class:`Transaction` per request the task made (each redirect hop, a 401 answered and sent
again, a cache revalidation, a retry), stamped by whichever engine carried it: the urllib3
engine's connection class stamps the phases as they happen (:mod:`._connections`), the curl
engine reads libcurl's own clocks when the transfer ends (:mod:`._curl._metrics`). Dates are
epoch seconds (floats), ``None`` where a phase did not happen (no lookup, connect or handshake
on a reused connection). What comes out (:meth:`TaskMetrics.to_dict`) is plain JSON data: it
goes into ``sessioncompleted`` and across to a background session's host unchanged.

Why our own record and not a library's: neither urllib3 nor pycurl keeps per-request timings
across a redirect chain, and the names are Apple's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from urllib3 import HTTPHeaderDict

__all__ = ["MOST_KEPT", "TaskMetrics", "Transaction"]

#: The transactions a task's metrics keep: a task that waits for connectivity or retries for
#: hours makes a request per attempt; past this many, the first and the latest are kept (the
#: record, journaled at each background retry, stays small).
MOST_KEPT = 100


_FIELDS = (
    "fetchStartDate",
    "domainLookupStartDate",
    "domainLookupEndDate",
    "connectStartDate",
    "secureConnectionStartDate",
    "secureConnectionEndDate",
    "connectEndDate",
    "requestStartDate",
    "requestEndDate",
    "responseStartDate",
    "responseEndDate",
    "networkProtocolName",
    "isReusedConnection",
    "isProxyConnection",
    "resourceFetchType",
    "countOfRequestHeaderBytesSent",
    "countOfRequestBodyBytesSent",
    "countOfResponseHeaderBytesReceived",
    "countOfResponseBodyBytesReceived",
    "remoteAddress",
    "remotePort",
    "localAddress",
    "localPort",
    "negotiatedTLSProtocolVersion",
)


# Atoms only (floats, ints, strings, None, booleans): a copy of it is a dict the cyclic garbage
# collector never tracks, and neither are the records made from it, which each finished task
# keeps for ``getTask`` (a record per kept task the collector walked cost 2-3 µs a task).
_TEMPLATE: dict[str, Any] = {
    **dict.fromkeys(_FIELDS),
    "isReusedConnection": False,
    "isProxyConnection": False,
    "resourceFetchType": "networkLoad",
    "countOfRequestHeaderBytesSent": 0,
    "countOfRequestBodyBytesSent": 0,
    "countOfResponseHeaderBytesReceived": 0,
    "countOfResponseBodyBytesReceived": 0,
}


class Transaction:
    """``URLSessionTaskTransactionMetrics``: one request and its response.

    ``fields`` is the record itself, a plain dict with Apple's names that the engines write
    into and read (``tx.fields["connectEndDate"] = ...``). Not a dict subclass, nor attrs:
    one is made per request, and a subclass's copy (:meth:`TaskMetrics.to_dict`) is tracked
    by the garbage collector while a plain dict of atoms is not; ``attrs.asdict`` alone cost a
    task 28 µs, past the feature's whole budget on the benchmark. No ``__getattr__`` either
    (fields as attributes): a class with one has every attribute read go the slow way, its
    slots too (the interpreter does not specialise them).

    ``filled``: an engine read the phases up to the response head from its own clocks (curl:
    the transport then stamps only the body's end and its bytes). ``settle``: that engine's
    wait (bounded) until it has (curl reads its clocks just after the head reaches the reader).
    """

    __slots__ = ("fields", "filled", "settle")

    def __init__(self, fetchStartDate: float, isProxyConnection: bool = False) -> None:
        fields = self.fields = _TEMPLATE.copy()
        fields["fetchStartDate"] = fetchStartDate
        if isProxyConnection:
            fields["isProxyConnection"] = True
        self.filled = False
        self.settle: Callable[[], None] | None = None


# urllib3's ``HTTPHeaderDict.items()`` view (its class is private): read through to its dict.
_ITEMS_VIEW = type(HTTPHeaderDict().items())


def head_size(status_line_len: int, headers: Any) -> int:
    """Bytes of a head on the wire (HTTP/1.1 framing): the status or request line, each
    ``Name: value\\r\\n``, and the blank line. An estimate for engines that do not count.

    ``headers``: pairs, or urllib3's ``HTTPHeaderDict`` (or its ``items()``), whose lists are
    read directly: its views make a generator step per line, which cost a task several µs
    (issue 16's budget for all of its metrics is 2 % of scenario b, about 15 µs a task). A
    plain loop over those lists, not ``sum(map(len, ...))`` chains: with a head's ten-odd
    headers the loop costs half as much (1.4 vs 2.6 µs, timed on the shared VM).
    """
    size = status_line_len + 4
    if headers.__class__ is _ITEMS_VIEW:
        headers = headers._headers
    if isinstance(headers, HTTPHeaderDict):
        for entry in headers._container.values():  # [name, value, value, ...]: a line each
            if len(entry) == 2:
                size += len(entry[0]) + len(entry[1]) + 4
            else:  # a repeated header: its name on each of its lines
                name = len(entry[0])
                size += (len(entry) - 1) * (name + 4) + sum(map(len, entry)) - name
        return size
    for name, value in headers:
        size += len(name) + len(value) + 4
    return size


class TaskMetrics:
    """``URLSessionTaskMetrics`` being recorded for one task (one thread writes it at a time:
    the task's worker, or the network thread for the transfer it runs)."""

    __slots__ = ("current", "proxy", "redirects", "start", "transactions")

    def __init__(self, proxy: bool = False) -> None:
        self.start = time.time()
        self.proxy = proxy
        self.redirects = 0
        self.transactions: list[Transaction] = []
        self.current: Transaction | None = None

    @classmethod
    def carried(cls, record: Any, proxy: bool = False) -> TaskMetrics:
        """The metrics of earlier attempts of a task (a record :meth:`to_dict` made, kept by
        the transfer process across its retries and its restarts), to go on with: their
        start, redirects and transactions. Raises ``ValueError`` for a record it did not make.
        """
        try:
            start = float(record["taskInterval"]["start"])
            redirects = int(record["redirectCount"])
            kept = [dict(tx) for tx in record["transactionMetrics"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a metrics record: {exc}") from None
        metrics = cls(proxy)
        metrics.start, metrics.redirects = start, redirects
        for fields in kept:
            if set(fields) != set(_FIELDS):
                raise ValueError("not a metrics record: a transaction's fields differ")
            tx = Transaction(0.0)
            tx.fields, tx.filled = fields, True
            metrics.transactions.append(tx)
        return metrics

    def begin(self) -> Transaction:
        """A new request goes out (or to the cache): its transaction, now the current one."""
        tx = Transaction(time.time(), self.proxy)  # (positional: a third cheaper call)
        txs = self.transactions
        if len(txs) >= MOST_KEPT:
            del txs[1]  # a task retried for days keeps its first request and its latest ones
        txs.append(tx)
        self.current = tx
        return tx

    def local_cache(self, protocol: str | None = None) -> None:
        """The cache answered the current request without the network (Apple: localCache)."""
        tx = self.current if self.current is not None else self.begin()
        fields = tx.fields
        fields["resourceFetchType"] = "localCache"
        fields["isProxyConnection"] = False
        fields["networkProtocolName"] = protocol
        fields["responseStartDate"] = fields["responseEndDate"] = time.time()

    def head(self, tx: Transaction, protocol: str, status_line: int, headers: Any) -> None:
        """The response head came (engines that do not stamp it themselves)."""
        fields = tx.fields
        fields["networkProtocolName"] = protocol or None
        if tx.filled:
            return
        if fields["responseStartDate"] is None:
            fields["responseStartDate"] = time.time()
        if not fields["countOfResponseHeaderBytesReceived"]:
            fields["countOfResponseHeaderBytesReceived"] = head_size(status_line, headers)

    def ended(self, tx: Transaction | None, body_bytes: int) -> None:
        """The response's body was read (or dropped): ``body_bytes`` as they came off the wire."""
        if tx is None:
            return
        fields = tx.fields
        if fields["responseEndDate"] is None:
            fields["responseEndDate"] = time.time()
        if body_bytes > fields["countOfResponseBodyBytesReceived"]:
            fields["countOfResponseBodyBytesReceived"] = body_bytes

    def received(self, tx: Transaction | None, body_bytes: int) -> None:
        """A response cut short (a reset mid-body, a retry's abort): the bytes that came count,
        and it has no end date (it never ended)."""
        if tx is not None and body_bytes > tx.fields["countOfResponseBodyBytesReceived"]:
            tx.fields["countOfResponseBodyBytesReceived"] = body_bytes

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe record ``sessioncompleted`` carries and ``Task.metrics`` returns."""
        txs = self.transactions
        start = self.start
        listed: list[dict[str, Any]] = []
        for tx in txs:  # (no call a transaction: most tasks make one request)
            if tx.settle is not None and not tx.filled:
                tx.settle()
            # The record itself, not a copy, once no engine will write it (no wait pending,
            # and the transport ended its responses before asking): a copy of its 24 fields
            # was ~1,900 instructions a task, a tenth of the metrics' budget on b.
            listed.append(tx.fields if tx.settle is None else tx.fields.copy())
        now = time.time()  # (after a settle: the interval ends when the record is made)
        return {
            "taskInterval": {"start": start, "duration": now - start if now > start else 0.0},
            "redirectCount": self.redirects,
            "transactionMetrics": listed,
        }
