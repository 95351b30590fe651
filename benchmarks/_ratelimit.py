"""Scenario r's child: downloads under ``maximumBytesPerSecond`` (issue 16), measured.

    python benchmarks/_ratelimit.py '{"engine": "curl", "rate": 4194304, "size": 16777216, "tasks": 1}'

Serves the bytes itself (the package's LocalServer on 127.0.0.1), runs ``tasks`` downloads of
``size`` bytes at once in one session limited to ``rate`` bytes per second, and prints one
JSON line: each task's seconds from its first byte to its last and its rate, and the longest
gap between two of a task's progress events (steady progress: no second-long bursts).
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from typing import Any

import urlsession_module as URLSession
from urlsession_module.testing import LocalServer


def main() -> None:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    size, tasks = int(spec["size"]), int(spec["tasks"])
    seen: dict[str, list[tuple[float, int]]] = {}
    ended: dict[str, float] = {}
    lock = threading.Lock()
    all_done = threading.Event()

    def progress(e: Any) -> None:
        with lock:
            seen.setdefault(e.taskIdentifier, []).append((time.monotonic(), e.totalBytesWritten))

    def completed(e: Any) -> None:
        with lock:
            ended[e.taskIdentifier] = time.monotonic()
            if not e.success:
                print(json.dumps({"error": e.message}), flush=True)
                sys.exit(1)
            if len(ended) == tasks:
                all_done.set()

    with LocalServer() as server:
        config = URLSession.createSessionConfiguration(
            {"engine": spec["engine"], "maximumBytesPerSecond": int(spec["rate"])}
        )
        session = URLSession.createSession(configuration=config)
        session.addEventListener("downloadprogress", progress)
        session.addEventListener("sessioncompleted", completed)
        started = time.monotonic()
        for _ in range(tasks):
            session.downloadTask(url=server.url(f"/bytes/{size}"))
        if not all_done.wait(600):
            raise SystemExit("timed out")
        session.invalidateAndCancel()
        session.waitForInvalidation(10)
    rows = []
    for tid, points in seen.items():
        seconds = ended[tid] - started
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(points)]
        rows.append(
            {
                "seconds": seconds,
                "mib_per_s": size / seconds / (1 << 20),
                "max_gap_s": max(gaps, default=0.0),
                "events": len(points),
            }
        )
    print(json.dumps({"tasks": rows}), flush=True)


if __name__ == "__main__":
    main()
