"""Scenario r's child: downloads under ``maximumBytesPerSecond`` (issue 16), measured.

    python benchmarks/_ratelimit.py '{"engine": "curl", "rate": 4194304, "size": 16777216, "tasks": 1}'

Serves the bytes itself (the package's LocalServer on 127.0.0.1), runs ``tasks`` downloads of
``size`` bytes at once in one session limited to ``rate`` bytes per second, and prints one
JSON line: each task's seconds from its first byte to its last and its rate, and the longest
gap between two of a task's progress events (steady progress: no second-long bursts).

With ``"change_at": s, "new_rate": n`` the session's rate is changed to ``n`` (``Session.
setMaximumBytesPerSecond``) ``s`` seconds after the tasks start, and each row also has the
task's rate before the change and from one second after it (``before_mib_per_s``,
``after_mib_per_s``): the new rate takes effect within that second.
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
        change_at = spec.get("change_at")
        if change_at is not None:
            time.sleep(float(change_at))
            session.setMaximumBytesPerSecond(int(spec["new_rate"]))
        if not all_done.wait(600):
            raise SystemExit("timed out")
        session.invalidateAndCancel()
        session.waitForInvalidation(10)
    rows = []
    for tid, points in seen.items():
        seconds = ended[tid] - started
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(points)]
        row = {
            "seconds": seconds,
            "mib_per_s": size / seconds / (1 << 20),
            "max_gap_s": max(gaps, default=0.0),
            "events": len(points),
        }
        if change_at is not None:
            change = started + float(change_at)
            row["before_mib_per_s"] = _rate(points, started + 0.5, change)
            row["after_mib_per_s"] = _rate(points, change + 1.0, ended[tid])
        rows.append(row)
    print(json.dumps({"tasks": rows}), flush=True)


def _rate(points: list[tuple[float, int]], start: float, end: float) -> float | None:
    """MiB/s between the first progress event at or after ``start`` and the last before ``end``."""
    inside = [p for p in points if start <= p[0] <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) / (1 << 20)


if __name__ == "__main__":
    main()
