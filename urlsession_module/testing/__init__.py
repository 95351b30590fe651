"""Local HTTP/1.1 (+TLS) server and deterministic content, shipped for demos, tests and benchmarks.

It lets the package be exercised end to end on loopback only::

    from urlsession_module.testing import LocalServer, content_sha256

    with LocalServer() as srv:
        url = srv.url("/bytes/1048576")  # content_bytes(1048576), sha256 == content_sha256(1048576)

Layout: ``_base`` is the one server base (bind, accept, track, bounded stop, TLS) under
``LocalServer`` (``_server``; its HTTP plumbing in ``_http``, its endpoints in ``_routes``, their
validators and ranges in ``_conditional``) and ``FaultServer`` (``_faults``; a connection in
``_fault_conn``, the scenarios in ``_scenarios``); ``_content`` is the deterministic content.
"""

from __future__ import annotations

from ._content import content_bytes, content_sha256, iter_content
from ._faults import SCENARIOS, FaultConnection, FaultRequest, FaultServer
from ._server import LocalServer, RequestRecord

__all__ = [
    "SCENARIOS",
    "FaultConnection",
    "FaultRequest",
    "FaultServer",
    "LocalServer",
    "RequestRecord",
    "content_bytes",
    "content_sha256",
    "iter_content",
]
