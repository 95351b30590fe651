"""PyPI's httpbin served by waitress on 127.0.0.1: Digest, Basic, redirects, gzip, status codes.

httpbin (the Flask app behind httpbin.org, ``httpbin`` 0.10 on PyPI, works on Python 3.10 to 3.12)
answers ``/digest-auth/<qop>/<user>/<passwd>/<algorithm>`` (``auth`` or ``auth-int``; MD5, SHA-256,
SHA-512; it has no MD5-sess: an unknown algorithm falls back to MD5), with an optional
``/<stale_after>`` segment after which it answers ``stale=TRUE`` with a new nonce,
``/basic-auth/<user>/<passwd>``, ``/redirect/<n>``, ``/gzip``, ``/status/<code>`` and the rest of
httpbin.org's routes, on cleartext HTTP/1.1. waitress (pure Python, threaded) is
the WSGI server because hypercorn's WSGI adapter turns every empty-bodied response into a 500.
waitress installs no signal handler, so SIGTERM ends it at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._process import OnePortPeer

__all__ = ["Httpbin"]


class Httpbin(OnePortPeer):
    """``python -m waitress httpbin:app`` on 127.0.0.1:<free port>."""

    def __init__(self, directory: Path) -> None:
        def argv(port: int) -> list[str]:
            listen = f"--listen=127.0.0.1:{port}"
            return [sys.executable, "-m", "waitress", listen, "--threads=8", "httpbin:app"]

        self._launch_on_port("httpbin", directory, argv)
