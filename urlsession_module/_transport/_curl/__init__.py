"""The curl engine: libcurl's multi interface (pycurl), one network thread for the process.

One small module per libcurl object, as Julia's Downloads.jl has them:

- ``_multi``: :class:`Multi`, the multi handle and the network thread that drives it.
- ``_easy``: :class:`Transfer`, one easy handle configured from the request, and its callbacks.
- ``_response``: a transfer's response and body, read by the task's thread.
- ``_engine``: :class:`CurlEngine`, one session's share (its connections) and ``open``.
- ``_errors``: the ``CURLE_*`` → URLSession table, most specific first.
"""

from __future__ import annotations

from ._engine import CurlEngine, network_thread

__all__ = ["CurlEngine", "network_thread"]
