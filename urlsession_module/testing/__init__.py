"""Local HTTP/1.1 (+TLS) server and deterministic content, shipped for demos, tests and benchmarks.

It lets the package be exercised end to end on loopback only::

    from urlsession_module.testing import LocalServer, content_sha256

    with LocalServer() as srv:
        url = srv.url("/bytes/1048576")  # content_bytes(1048576), sha256 == content_sha256(1048576)
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
