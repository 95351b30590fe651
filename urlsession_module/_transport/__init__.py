"""The edge where bytes meet urllib3: one pool per session, the streaming loops, error mapping.

This is the only package that imports urllib3. It drives a task's sans-IO machine through a
:class:`TransferControl` (the in-process session and the background transfer process each supply
one), following Foundation's redirect rules itself (urllib3 is called with ``redirect=False`` and
``retries=False`` so the real error surfaces), streaming bodies in blocks, and resuming with
``Range``/``If-Range`` when a connection had to be dropped. Every urllib3 or OS error is mapped to
a URLSession code in one table, most specific first (:func:`map_exception`).

- ``_engine``: :class:`Transport`, the session's pool, one task's run, redirects, 401s, cache.
- ``_attempt``: :class:`Attempt`, one run's request, owner, sink and clocks, passed explicitly.
- ``_streams``: the loops that move a body: the request's out in blocks, the response's in.
- ``_connections``: urllib3's connections and responses, made cancellable; heads read our way.
- ``_bodies``: coalesced progress, the sink (text or file, with its cap), bodies read as files.
- ``_requests``: building a request and Foundation's redirect rules.
- ``_errors``: the error table: urllib3's and the OS's errors as codes and plain messages.
- ``_cached``: a response the HTTP cache serves or stores while it is read.
- ``_control``: what the transport asks of a task's owner (:class:`TransferControl`).
"""

from __future__ import annotations

from ._control import TransferControl
from ._engine import Transport
from ._errors import map_exception
from ._proxies import with_system_proxies
from ._requests import build_request, redirect_request

__all__ = [
    "TransferControl",
    "Transport",
    "build_request",
    "map_exception",
    "redirect_request",
    "with_system_proxies",
]
