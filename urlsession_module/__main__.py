"""Command line: ``python -m urlsession_module demo`` runs a real transfer with visible progress.

``demo`` starts the package's local server on 127.0.0.1, downloads a file from it with a
download task, uploads that file back with an upload task, and checks both SHA-256 digests.
``serve`` runs the local server in the foreground for trying things by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import threading
import time
from typing import Any

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 10**6,
    "mb": 10**6,
    "mib": 1 << 20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 1 << 30,
}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64MiB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


class ProgressBar:
    """A one-line text progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, label: str, stream: Any = sys.stderr) -> None:
        self.label = label
        self.stream = stream
        self.start: float | None = None  # the first update starts the clock, not construction
        self._last = 0.0

    def update(self, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.start is None:
            self.start = now
        if not force and now - self._last < 0.1:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-6)
        speed = done / elapsed
        if total > 0:
            frac = min(done / total, 1.0)
            bar = "#" * int(frac * 30)
            eta = (total - done) / speed if speed > 0 else 0.0
            text = f"{self.label:8} [{bar:<30}] {frac:6.1%} {done / 1e6:8.1f} MB {speed / 1e6:7.1f} MB/s ETA {eta:4.1f}s"
        else:
            text = f"{self.label:8} {done / 1e6:8.1f} MB {speed / 1e6:7.1f} MB/s"
        self.stream.write("\r" + text)
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def demo(size: int) -> int:
    import urlsession_module as URLSession
    from urlsession_module.testing import LocalServer, content_sha256

    with LocalServer() as srv:
        print(f"local server at {srv.base_url}", file=sys.stderr)
        session = URLSession.createSession(
            configuration=URLSession.createSessionConfiguration(type="ephemeral")
        )
        down = ProgressBar("download")
        up = ProgressBar("upload")
        result: dict[str, Any] = {}
        done = threading.Event()

        session.addEventListener(
            "downloadprogress",
            lambda e: down.update(e.totalBytesWritten, e.totalBytesExpectedToWrite),
        )
        session.addEventListener(
            "uploadprogress", lambda e: up.update(e.totalBytesSent, e.totalBytesExpectedToSend)
        )

        def on_download(e: Any) -> None:
            down.update(e.data.length, e.data.length, force=True)
            down.close()
            result["file"] = e.data

        def on_completed(e: Any) -> None:
            result.setdefault("completed", []).append(e)
            done.set()

        session.addEventListener("downloadcompleted", on_download)
        session.addEventListener("sessioncompleted", on_completed)

        session.downloadTask({"url": srv.url(f"/bytes/{size}")})
        if not done.wait(300):
            print("download did not finish", file=sys.stderr)
            return 1
        e = result["completed"][0]
        if not e.success:
            print(f"download failed: {e.errorCode} {e.message}", file=sys.stderr)
            return 1
        blob = result["file"]
        digest = hashlib.sha256()
        with blob.open() as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        ok_down = digest.hexdigest() == content_sha256(size)

        done.clear()
        session.uploadTask({"url": srv.url("/upload"), "data": blob.nativePath, "method": "PUT"})
        if not done.wait(300):
            print("upload did not finish", file=sys.stderr)
            return 1
        up.update(size, size, force=True)
        up.close()
        e = result["completed"][1]
        import json

        echoed = json.loads(e.responseText) if e.success else {}
        ok_up = echoed.get("body_sha256") == content_sha256(size)
        session.finishTasksAndInvalidate()
        session.waitForInvalidation(10)
        print(
            f"download sha256 {'OK' if ok_down else 'MISMATCH'}; upload sha256 {'OK' if ok_up else 'MISMATCH'}"
        )
        return 0 if ok_down and ok_up else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="urlsession", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser(
        "demo", help="download and upload through the local server, with progress"
    )
    p_demo.add_argument("--size", type=parse_size, default=parse_size("64MiB"))
    p_serve = sub.add_parser("serve", help="run the package's local HTTP server")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--tls", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.size)
    if args.command == "serve":
        from urlsession_module.testing.__main__ import main as serve_main

        return serve_main(["--port", str(args.port), *(["--tls"] if args.tls else [])]) or 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
