"""Scenario e at scale (issue 17): background sessions with 10,000 tasks, thousands in flight.

Two halves, kept apart from ``run.py`` (which other work edits too):

- what the contender processes run (``RUNNERS``, registered by ``_contenders.py``): the hand-over
  loop timed call by call, then ``session.flush()`` until the journal holds every task; and the
  host of the in-flight measure, 2,000 small downloads from 20 origins;
- what the bench process runs around them (:func:`scenario_e_scale`, :func:`summary`,
  :func:`markdown`): 20 test servers on 20 ports, and the transfer process's RSS and thread
  count sampled from ``/proc`` while the downloads run.

Run it alone: ``python benchmarks/run.py --scenarios e --repeat 1``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

INFLIGHT = {"full": (2000, 20), "smoke": (40, 4)}  # downloads, origins
INFLIGHT_SIZE = 4096

# -- in the contender process -------------------------------------------------------------------


def _session(spec: dict[str, Any], config: dict[str, Any] | None = None, **kw: Any) -> Any:
    import urlsession_module as URLSession

    cfg = URLSession.createSessionConfiguration(
        {"identifier": spec["identifier"], **(config or {})}
    )
    return URLSession.createSession({"configuration": cfg, **kw})


def fill(spec: dict[str, Any]) -> dict[str, Any]:
    """Hand ``n`` data tasks over from one loop, each call timed; then ``flush()`` (every task
    journaled); then leave at once, acknowledging nothing (the next host gets every event)."""
    import urlsession_module as URLSession

    session = _session(spec, delegateQueue=URLSession.EventQueue())
    begin = {"earliestBeginDate": time.time() + 3600} if spec.get("queued") else {}
    args = {"url": spec["url"], "method": "GET", **begin}
    calls: list[float] = []
    clock = time.perf_counter
    t0 = clock()
    for _ in range(spec["n"]):
        a = clock()
        session.dataTask(args)
        calls.append(clock() - a)
    t1 = clock()
    session.flush()
    t2 = clock()
    calls.sort()
    result = {
        "seconds": t1 - t0,
        "journaled_seconds": t2 - t0,
        "call_median_us": statistics.median(calls) * 1e6,
        "call_p90_us": calls[int(len(calls) * 0.9)] * 1e6,
        "call_max_us": calls[-1] * 1e6,
    }
    import json

    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # a host that is killed: no invalidation, no acknowledgement


def inflight(spec: dict[str, Any]) -> dict[str, Any]:
    """A host hands ``len(urls)`` downloads over and waits for every ``sessioncompleted``."""
    session = _session(spec, config={"httpMaximumConnectionsPerHost": 6})
    done: list[bool] = []
    session.addEventListener("sessioncompleted", lambda e: done.append(bool(e.success)))
    t0 = time.perf_counter()
    for url in spec["urls"]:
        session.downloadTask({"url": url})
    if not session.waitForTasks(900):
        raise SystemExit("the downloads did not finish in time")
    seconds = time.perf_counter() - t0
    session.finishTasksAndInvalidate()
    return {"seconds": seconds, "completed": len(done), "succeeded": sum(done)}


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "background:fill": fill,
    "background:inflight": inflight,
}

# -- in the bench process -------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    fields = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                fields[key] = int(value.split()[0])
    return fields


class Sampler:
    """The transfer process's RSS and threads every 50 ms, from its pid file, until stopped."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.peak_rss_kib = 0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError, ValueError):
                pid = int((self.home / "transfer.pid").read_text())
                st = _proc_status(pid)
                self.peak_rss_kib = max(self.peak_rss_kib, st.get("VmHWM", 0))
                self.peak_threads = max(self.peak_threads, st.get("Threads", 0))


def scenario_e_scale(bench: Any) -> dict[str, Any]:
    """2,000 downloads from 20 origins through the transfer process: its peak RSS and threads."""
    from urlsession_module.testing import LocalServer

    n, origins = INFLIGHT["smoke" if bench.smoke else "full"]
    runs = []
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LocalServer()) for _ in range(origins)]
        urls = [servers[i % origins].url(f"/bytes/{INFLIGHT_SIZE}?n={i}") for i in range(n)]
        for r in range(min(bench.repeat, 2)):
            print(f"  [e] in flight, round {r + 1}: {n} downloads, {origins} origins", flush=True)
            with bench.background_home() as home, Sampler(home) as sampler:
                spec = {
                    "kind": "background",
                    "contender": "inflight",
                    "identifier": "bench.inflight",
                    "urls": urls,
                }
                result = bench.bg_run(spec, home)
            if result["succeeded"] != n:
                raise RuntimeError(f"in flight: {result['succeeded']} of {n} downloads succeeded")
            result.update(peak_rss_kib=sampler.peak_rss_kib, peak_threads=sampler.peak_threads)
            runs.append(result)
    return {"downloads": n, "origins": origins, "runs": runs}


def summary(e: dict[str, Any], stat: Callable[[list[float]], dict[str, float]]) -> dict[str, Any]:
    """The figures issue 17 asks for, from scenario e's raw results."""
    out: dict[str, Any] = {}
    fills = [r["fill"] for r in e["replay"] if "fill" in r and "call_median_us" in r["fill"]]
    if fills:
        out["call_median_us"] = stat([f["call_median_us"] for f in fills])
        out["call_p90_us"] = stat([f["call_p90_us"] for f in fills])
        out["journaled_seconds"] = stat([f["journaled_seconds"] for f in fills])
    scale = e.get("inflight")
    if scale and scale["runs"]:
        out["inflight"] = {
            "downloads": scale["downloads"],
            "origins": scale["origins"],
            "seconds": stat([r["seconds"] for r in scale["runs"]]),
            "peak_rss_mib": stat([r["peak_rss_kib"] / 1024 for r in scale["runs"]]),
            "peak_threads": stat([float(r["peak_threads"]) for r in scale["runs"]]),
        }
    return out


def markdown(e: dict[str, Any], rng: Callable[..., str]) -> list[str]:
    """Rows for scenario e's table (issue 17's figures)."""
    rows = []
    if "call_median_us" in e:
        n = f"{e['events']:,}"
        rows += [
            f"| `dataTask` on a background session, per call: median (µs) | {rng(e['call_median_us'], 1)} |",
            f"| `dataTask` on a background session, per call: p90 (µs) | {rng(e['call_p90_us'], 1)} |",
            f"| {n} tasks handed over and journaled (loop, then `flush()`) (s) | {rng(e['journaled_seconds'], 2)} |",
        ]
    if "inflight" in e:
        f = e["inflight"]
        what = f"{f['downloads']:,} downloads from {f['origins']} origins"
        rows += [
            f"| {what}: until the last `sessioncompleted` (s) | {rng(f['seconds'], 2)} |",
            f"| {what}: transfer process peak RSS (MiB) | {rng(f['peak_rss_mib'], 1)} |",
            f"| {what}: transfer process peak threads | {rng(f['peak_threads'])} |",
        ]
    return rows
