"""``python -m urlsession_module.testing [--port N] [--tls]``: run the server in the foreground.

Handy for demos and manual benchmarking: prints the base URL, serves until
Ctrl-C or SIGTERM, then stops cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from ._server import LocalServer


def main(argv: list[str] | None = None) -> int:
    """Run the server until interrupted; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m urlsession_module.testing",
        description="Local HTTP/1.1 test server of urlsession_module (loopback only).",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = ephemeral)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a throwaway trustme CA"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = LocalServer(tls=args.tls, host=args.host, port=args.port)
    try:
        server.start()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(server.base_url, flush=True)
        if server.ca_bundle:
            print(f"CA bundle: {server.ca_bundle}", flush=True)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
