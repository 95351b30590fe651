"""A background session's line to the transfer process: tasks out, events back, acks.

Request bodies given as bytes are first written to a private file (only plain data and paths
cross to the other process); task controls and acknowledgements are forwarded; what the transfer
process pushes goes to the session's :class:`~._host.BackgroundHost`.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any, Protocol

import attrs

from .._config_values import ConfigValues
from .._state import Request, TaskKind, TaskState
from .._storage import open_private, private_dir
from . import _protocol as proto
from ._client import TransferClient
from ._fields import request_to_dict
from ._settings import config_to_dict
from ._snapshot import TaskSnapshot
from ._wire import Ack, Action, Attach, Control, Create, Message, SetRate

__all__ = ["BackgroundLink"]

log = logging.getLogger(__name__)


class _Receiver(Protocol):
    def receive(self, message: Message) -> None: ...

    def refused(self, task_id: str, message: str) -> None: ...


class BackgroundLink:
    """One per background Session; a ``SessionEndpoint`` of the shared :class:`TransferClient`."""

    def __init__(
        self, receiver: _Receiver, identifier: str, config: ConfigValues, home: Path
    ) -> None:
        self.receiver = receiver
        self.identifier = identifier
        self.config = config
        self.home = home
        self.client = TransferClient.for_home(home)
        self._last_request: Request | None = None  # the last request handed over, as plain data
        self._last_request_dict: dict[str, Any] = {}

    # -- SessionEndpoint ---------------------------------------------------------------------------

    def _remote_attach_message(self) -> Attach:
        return Attach(self.identifier, config_to_dict(self.config))

    def _remote_message(self, message: Message) -> None:
        self.receiver.receive(message)

    def attach(self) -> None:
        """Connect (starting the transfer process if needed); the replay follows on its own."""
        self.client.attach(self)

    def _remote_refused(self, task_id: str, message: str) -> None:
        self.receiver.refused(task_id, message)

    # -- calls ---------------------------------------------------------------------------------------

    def prepare(
        self,
        kind: TaskKind,
        request: Request,
        priority: float,
        description: str | None,
        begin: float | None,
        *,
        validator: str | None = None,
        rate: int | None = None,
    ) -> tuple[TaskSnapshot, bytes]:
        """A new task's snapshot (its identifier leased, no round trip) and its frame.

        Raises what the journal refused at the previous hand-over, before anything exists.
        ``validator`` and ``rate``: resume data's and the task's own limit (issue 16).
        """
        self.client.handovers.check(self.identifier)
        if request.body is not None:
            request = attrs.evolve(request, body=None, body_path=self._spill(request.body))
        task_id = self.client.handovers.new_id()
        if request is not self._last_request:  # a loop hands the same (shared) request over
            self._last_request_dict = request_to_dict(request)
            self._last_request = request
        plain = Create.plain(
            self.identifier,
            kind,
            self._last_request_dict,
            priority,
            description,
            begin,
            None,
            task_id,
            validator=validator,
            rate=rate,
        )
        snap = TaskSnapshot(
            id=task_id,
            kind=kind,
            state=TaskState.RUNNING,  # queued in the transfer process: resumed, as Apple's
            request=request,
            current_request=request,
            priority=priority,
            description=description,
            begin_at=begin,
            expected_send=request.body_length,
        )
        return snap, proto.encode(plain)

    def hand_over(self, task_id: str, frame: bytes) -> None:
        """Write the task into the transfer process's socket; no answer is awaited (the
        journal's acknowledgement comes later: :meth:`flush` waits for it)."""
        self.client.handovers.hand_over(self.identifier, task_id, frame)

    def flush(self, timeout: float) -> None:
        """Return once every task this session handed over is in the journal."""
        self.client.handovers.flush(self.identifier, timeout)

    def control(self, task_id: str, action: Action) -> None:
        self.client.send(Control(task_id, action))

    def set_rate(self, config: ConfigValues) -> None:
        """A new ``maximumBytesPerSecond``: kept for the next attach (what a transfer process
        that is not reachable now gets when the link comes back), and sent."""
        self.config = config
        self.client.send(SetRate(self.identifier, config.maximumBytesPerSecond))

    def ack(self, upto: int) -> None:
        self.client.send(Ack(self.identifier, upto))

    def detach(self, cancel: bool = False) -> None:
        self.client.detach(self, cancel)

    def _spill(self, body: bytes) -> str:
        """Write an in-memory body to a private file the transfer process streams from."""
        directory = private_dir(self.home / "uploads")
        path = directory / uuid.uuid4().hex
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return str(path)
