"""A background session's line to the transfer process: tasks out, events back, acks.

The session stays the proxy users see; this object owns what is particular to a background
session: request bodies given as bytes are first written to a private file (only plain data and
paths cross to the other process), task controls are forwarded, and journaled events are
acknowledged once their listeners have run, so an event is delivered at least once and, once
acknowledged, never again.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any, Protocol

import attrs

from .._configuration import ConfigValues
from .._state import Request, TaskKind
from .._storage import private_dir
from . import _protocol as proto
from ._client import TransferClient

__all__ = ["BackgroundLink"]

log = logging.getLogger(__name__)


class _Session(Protocol):
    """What the link needs of its session (``_session.Session``, which imports us)."""

    def _remote_replay(self, message: dict[str, Any]) -> None: ...

    def _remote_event(self, message: dict[str, Any]) -> None: ...


class BackgroundLink:
    """One per background Session; a ``SessionEndpoint`` of the shared :class:`TransferClient`."""

    def __init__(
        self, session: _Session, identifier: str, config: ConfigValues, home: Path
    ) -> None:
        self.session = session
        self.identifier = identifier
        self.config = config
        self.home = home
        self.client = TransferClient.for_home(home)

    # -- SessionEndpoint ---------------------------------------------------------------------------

    def _remote_attach_message(self) -> dict[str, Any]:
        return {
            "op": "attach",
            "session": self.identifier,
            "config": proto.config_to_dict(self.config),
        }

    def _remote_message(self, message: dict[str, Any]) -> None:
        if message["op"] == "replay":
            self.session._remote_replay(message)
        elif message["op"] == "event":
            self.session._remote_event(message)

    # -- calls ---------------------------------------------------------------------------------------

    def attach(self) -> None:
        """Connect (starting the transfer process if needed); the replay follows on its own."""
        self.client.attach(self)

    def create(
        self,
        kind: TaskKind,
        request: Request,
        priority: float,
        description: str | None,
        begin: float | None,
    ) -> dict[str, Any]:
        """Hand a task over; it is in the journal when this returns. Returns its snapshot."""
        if request.body is not None:
            request = attrs.evolve(request, body=None, body_path=self._spill(request.body))
        reply = self.client.request(
            {
                "op": "create",
                "session": self.identifier,
                "kind": kind.value,
                "request": proto.request_to_dict(request),
                "priority": priority,
                "description": description,
                "begin_at": begin,
            }
        )
        snap: dict[str, Any] = reply["task"]
        return snap

    def control(self, task_id: str, action: str) -> None:
        self.client.send({"op": "control", "task": task_id, "action": action})

    def ack(self, upto: int) -> None:
        self.client.send({"op": "ack", "session": self.identifier, "upto": upto})

    def detach(self, cancel: bool = False) -> None:
        self.client.detach(self, cancel)

    def _spill(self, body: bytes) -> str:
        """Write an in-memory body to a private file the transfer process streams from."""
        directory = private_dir(self.home / "uploads")
        path = directory / uuid.uuid4().hex
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return str(path)
