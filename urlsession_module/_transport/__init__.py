"""The edge where bytes meet urllib3: one pool per session, the streaming loops, error mapping.

This is the only package that imports urllib3. It drives a task's sans-IO machine through a
:class:`TransferControl` (the in-process session and the background transfer process each supply
one), following Foundation's redirect rules itself (urllib3 is called with ``redirect=False`` and
``retries=False`` so the real error surfaces), streaming bodies in blocks, and resuming with
``Range``/``If-Range`` when a connection had to be dropped. Every urllib3 or OS error is mapped to
a URLSession code in one table, most specific first (:func:`map_exception`).
"""

from __future__ import annotations

from ._control import TransferControl
from ._engine import Transport
from ._errors import map_exception
from ._requests import build_request, redirect_request

__all__ = [
    "TransferControl",
    "Transport",
    "build_request",
    "map_exception",
    "redirect_request",
]
