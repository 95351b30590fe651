"""Event payloads with Titanium's field names, and the ``Event`` object listeners receive.

The payload classes are what the sans-IO task machine emits: small frozen values of plain data,
so the same objects can be journaled by the background transfer process and sent to a host.
``DownloadCompleted`` carries the file's *path*; the proxy layer turns it into a ``Blob`` only
when it delivers to a listener. Nothing here imports pyee or urllib3.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import attrs

__all__ = [
    "BackgroundTransfer",
    "DownloadCompleted",
    "DownloadProgress",
    "Event",
    "Payload",
    "SessionCompleted",
    "SessionEventsCompleted",
    "UploadProgress",
    "WaitingForConnectivity",
    "payload_from_dict",
]


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@attrs.frozen
class Payload:
    """Base of the payloads: ``name`` is the Titanium event name."""

    name: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Titanium's fields; ``sessionIdentifier`` only when the session has one.

        Every payload of every task goes through here: the field names are looked up once
        per class (``attrs.asdict`` walks the attrs metadata and filters per call)."""
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in attrs.fields(cls))
        d = {name: getattr(self, name) for name in names}
        if d.get("sessionIdentifier", "") is None:
            del d["sessionIdentifier"]
        return d


@attrs.frozen
class DownloadProgress(Payload):
    name: ClassVar[str] = "downloadprogress"
    taskIdentifier: str
    bytesWritten: int
    totalBytesWritten: int
    totalBytesExpectedToWrite: int
    sessionIdentifier: str | None = None


@attrs.frozen
class UploadProgress(Payload):
    name: ClassVar[str] = "uploadprogress"
    taskIdentifier: str
    bytesSent: int
    totalBytesSent: int
    totalBytesExpectedToSend: int
    sessionIdentifier: str | None = None


@attrs.frozen
class DownloadCompleted(Payload):
    """``location`` is the finished file; delivery adds ``data``, a Blob of it."""

    name: ClassVar[str] = "downloadcompleted"
    taskIdentifier: str
    location: str
    mimeType: str = "application/octet-stream"
    sessionIdentifier: str | None = None


@attrs.frozen
class SessionCompleted(Payload):
    """Exactly one per task, always its last event. ``responseText`` is None for downloads."""

    name: ClassVar[str] = "sessioncompleted"
    taskIdentifier: str
    success: bool
    errorCode: int
    message: str
    statusCode: int
    responseText: str | None = None
    sessionIdentifier: str | None = None
    # What carried the response ('http/1.1', 'h2', 'h3'); absent when no response came.
    networkProtocolName: str | None = None
    # URLSessionTaskMetrics as plain data (see _transport/_metrics.py); absent when not measured.
    metrics: dict[str, Any] | None = attrs.field(default=None, eq=False, hash=False)
    # A failed download that can be continued: resume data for downloadTask({'resumeData'}).
    resumeData: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if d["metrics"] is None:
            del d["metrics"]
        if d["resumeData"] is None:
            del d["resumeData"]
        if d["responseText"] is None:
            del d["responseText"]
        if d["networkProtocolName"] is None:
            del d["networkProtocolName"]
        return d


@attrs.frozen
class WaitingForConnectivity(Payload):
    """Apple's ``taskIsWaitingForConnectivity``: once per task, when it first cannot reach its
    host and waits (``waitsForConnectivity``); ``errorCode`` is what the last attempt met."""

    name: ClassVar[str] = "waitingforconnectivity"
    taskIdentifier: str
    errorCode: int
    sessionIdentifier: str | None = None


@attrs.frozen
class SessionEventsCompleted(Payload):
    name: ClassVar[str] = "sessioneventscompleted"
    sessionIdentifier: str | None = None


@attrs.frozen
class BackgroundTransfer(Payload):
    name: ClassVar[str] = "backgroundtransfer"
    sessionIdentifier: str
    handlerId: str


_PAYLOADS: dict[str, type[Payload]] = {
    cls.name: cls
    for cls in (
        DownloadProgress,
        UploadProgress,
        DownloadCompleted,
        SessionCompleted,
        SessionEventsCompleted,
        BackgroundTransfer,
        WaitingForConnectivity,
    )
}


def payload_from_dict(name: str, fields: Mapping[str, Any]) -> Payload:
    """Rebuild a payload from ``(name, to_dict())``: how payloads cross a process boundary."""
    cls = _PAYLOADS[name]
    known = _KNOWN.get(cls)
    if known is None:  # once per class: a replay rebuilds 10,000 payloads
        known = _KNOWN[cls] = frozenset(a.name for a in attrs.fields(cls))
    return cls(**{k: v for k, v in fields.items() if k in known})


_KNOWN: dict[type[Payload], frozenset[str]] = {}


class Event(Mapping[str, Any]):
    """A Titanium event: ``e.taskIdentifier`` and ``e['taskIdentifier']`` both work.

    ``type``, ``source`` and ``bubbles`` are fixed when the event is made; ``source`` stays the
    proxy that fired it first while it bubbles. ``cancelBubble`` is the one writable field: a
    listener that sets it stops the event at the current proxy.
    """

    __slots__ = ("_fields", "bubbles", "cancelBubble", "source", "type")

    def __init__(
        self, type: str, source: Any, fields: Mapping[str, Any] | None = None, bubbles: bool = True
    ) -> None:
        self.type = type
        self.source = source
        self.bubbles = bubbles
        self.cancelBubble = False
        self._fields = dict(fields or {})

    @classmethod
    def _owning(cls, type: str, source: Any, fields: dict[str, Any]) -> Event:
        """An event over ``fields`` as given, not a copy: for a dict made for this event alone
        (delivery's, one per payload)."""
        event = cls.__new__(cls)
        event.type = type
        event.source = source
        event.bubbles = True
        event.cancelBubble = False
        event._fields = fields
        return event

    def _all(self) -> dict[str, Any]:
        merged = dict(self._fields)
        merged.update(type=self.type, source=self.source, bubbles=self.bubbles)
        merged["cancelBubble"] = self.cancelBubble
        return merged

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # e.g. copy's __setstate__ probe before _fields exists
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"event {self.type!r} has no field {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        if key in Event.__slots__ and key != "_fields":
            return getattr(self, key)
        return self._fields[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "cancelBubble":
            self.cancelBubble = bool(value)
        else:
            self._fields[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, key: object) -> bool:
        return key in self._fields or key in ("type", "source", "bubbles", "cancelBubble")

    def __repr__(self) -> str:
        return f"Event({self.type!r}, {self._fields!r})"
