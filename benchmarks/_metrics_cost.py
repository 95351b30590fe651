"""What task metrics cost (issue 16: at most 2 % on scenario b), and what the curl engine's
negotiatedTLSProtocolVersion costs over https.

    python benchmarks/_metrics_cost.py                    # b over http, metrics on vs off
    python benchmarks/_metrics_cost.py --https            # the same over https (nginx, TLS)
    python benchmarks/_metrics_cost.py --rounds 5 --n 3000
    python benchmarks/_metrics_cost.py --interleaved 300 --rounds 30 [--aa]
    python benchmarks/_metrics_cost.py --callgrind --n 1000 --rounds 2   # instructions (valgrind)
    python benchmarks/_metrics_cost.py --parts --rounds 5                # the pieces timed alone

Scenario b's workload (``_contenders.small_us``: ``n`` 1 KiB GETs from nginx over 6
connections, every task on the wire) in a process of its own per run, the variants one after
another, their order rotating from round to round, on the same nginx, so their ratios hold on
a noisy machine. Variants, per engine:

* ``on``: the package as it ships;
* ``off``: the same with task metrics compiled out: ``TaskMetrics`` replaced in the child by
  :class:`NoMetrics` (no transaction is ever made, so neither engine stamps, reads libcurl's
  clocks or watches its TLS line), the build the issue's budget is measured against;
* ``no-tls-watch`` (``--https``, curl): metrics on, only the TLS-version watch left out;
* ``no-settle`` (``--probe-settle``, curl): metrics on, but the task's thread never waits for
  the network thread to have read libcurl's clocks (``Transfer.settle_metrics``): what that
  hand-over costs (a probe: its metrics may miss the head's dates).

Prints one row per variant (median seconds and CPU seconds of the timed part, and the ratio
to ``off``).

``--interleaved K``: a second figure, less bound to the machine's drift. Each round is one
process per engine that alternates batches of ``K`` tasks with metrics on and off (the
``TaskMetrics`` class swapped between batches, each batch waited for), ``--batches`` pairs,
the order flipped from pair to pair; a pair's CPU ratio compares two batches run a fraction
of a second apart in the same warm process, so the load drifting on a shared VM between
processes (±5-10 % here) largely cancels. Printed: the median of all pairs' ratios, its
interquartile range, and a 95 % bootstrap interval of the median (resampling whole rounds,
as pairs within a process are not independent). ``--aa`` runs metrics on in both batches of
a pair: the method's own noise floor (0.961, 95 % interval 0.944-1.002 on 2026-12-03, a shared
2-core VM: it cannot resolve 2 % there).

``--callgrind``: instructions instead of seconds (see :func:`callgrind_main`); ``--parts``:
each piece of the metrics' own work timed alone against b's CPU a task (:func:`parts_main`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class NoMetrics:
    """TaskMetrics compiled out: the transport's ``metrics is not None`` paths find no
    transaction (``current`` None), and ``to_dict`` gives None (no ``metrics`` field)."""

    current = None

    def __init__(self, proxy: bool = False) -> None:
        self.redirects = 0

    def begin(self) -> None:
        return None

    def local_cache(self, protocol: str | None = None) -> None:
        return None

    def head(self, *args: Any) -> None:
        return None

    def ended(self, *args: Any) -> None:
        return None

    def to_dict(self) -> None:
        return None


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One run (in its own process): scenario b's loop, timed as ``_contenders`` times it."""
    sys.path.insert(0, str(HERE))
    import _contenders

    import urlsession_module as URLSession
    from urlsession_module._transport import _engine, _retrying
    from urlsession_module._transport._curl import _secure

    if spec.get("gc_off"):
        import gc

        gc.disable()
    if spec["variant"] == "off":
        _engine.TaskMetrics = NoMetrics  # type: ignore[misc, assignment]
        _retrying.TaskMetrics = NoMetrics  # type: ignore[misc, assignment]
    elif spec["variant"] == "no-tls-watch":
        _secure.watch_tls = lambda easy: None
    elif spec["variant"] == "no-settle":  # a probe: the task's thread never waits for libcurl's
        from urlsession_module._transport._curl import _easy  # clocks (metrics may be partial)

        _easy.Transfer.settle_metrics = lambda self, patience=0.5: None  # type: ignore[method-assign]
    config: dict[str, Any] = {
        "engine": spec["engine"],
        "httpVersion": "1.1",
        "httpMaximumConnectionsPerHost": 6,
        "requestCachePolicy": "reloadIgnoringLocalCacheData",
    }
    if spec.get("ca"):
        config["caBundle"] = spec["ca"]
    session = URLSession.createSession(
        {"configuration": URLSession.createSessionConfiguration(config)}
    )
    failures: list[Any] = []
    lock = threading.Lock()
    seen: dict[str, Any] = {}

    def completed(e: Any) -> None:
        if not e.success or e.statusCode != 200:
            with lock:
                failures.append((e.errorCode, e.message))
        elif "tls" not in seen and e.get("metrics"):
            seen["tls"] = e.metrics["transactionMetrics"][-1]["negotiatedTLSProtocolVersion"]

    session.addEventListener("sessioncompleted", completed)

    def go() -> dict[str, Any]:
        for _ in range(spec["n"]):
            session.dataTask({"url": spec["url"], "method": "GET"})
        if not session.waitForTasks(600):
            raise SystemExit("tasks did not finish")
        return {}

    if spec.get("interleave"):
        result = _interleaved(spec, session, _engine, _retrying)
        if failures:
            raise SystemExit(f"{len(failures)} tasks failed, e.g. {failures[0]}")
        session.finishTasksAndInvalidate()
        session.waitForInvalidation(10)
        return result
    result = _contenders._timed(go)
    if failures:
        raise SystemExit(f"{len(failures)} tasks failed, e.g. {failures[0]}")
    session.finishTasksAndInvalidate()
    session.waitForInvalidation(10)
    result["tls"] = seen.get("tls")
    return result


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _interleaved(
    spec: dict[str, Any], session: Any, engine_mod: Any, retrying_mod: Any
) -> dict[str, Any]:
    """Batches of ``interleave`` tasks, metrics on and off in turn (see the module's text)."""
    real = engine_mod.TaskMetrics
    kinds = {"on": real, "off": real if spec.get("aa") else NoMetrics}

    def batch(kind: str) -> float:
        engine_mod.TaskMetrics = retrying_mod.TaskMetrics = kinds[kind]
        c0 = _cpu()
        for _ in range(spec["interleave"]):
            session.dataTask({"url": spec["url"], "method": "GET"})
        if not session.waitForTasks(600):
            raise SystemExit("tasks did not finish")
        return _cpu() - c0

    batch("on")  # warm both paths up
    batch("off")
    pairs: list[list[float]] = []
    for i in range(spec["batches"]):
        first, second = ("on", "off") if i % 2 == 0 else ("off", "on")
        got = {first: batch(first), second: batch(second)}
        pairs.append([got["on"], got["off"]])
    engine_mod.TaskMetrics = retrying_mod.TaskMetrics = real
    return {"pairs": pairs}


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def _child(spec: dict[str, Any], env: dict[str, str], timeout: float, label: str) -> Any:
    """Run one variant in a process of its own; its last stdout line, as JSON."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{label} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def interleaved_main(
    args: argparse.Namespace, url: str, env: dict[str, str], ca: str | None
) -> None:
    """``--interleaved``: one process per engine and round, batches on/off alternating."""
    engines = args.engines.split(",")
    rounds: dict[str, list[list[list[float]]]] = {e: [] for e in engines}
    for r in range(args.rounds):
        for engine in engines if r % 2 == 0 else engines[::-1]:
            spec = {"variant": "on", "engine": engine, "url": url, "n": 0, "ca": ca}
            spec.update(interleave=args.interleaved, batches=args.batches, gc_off=args.gc_off)
            spec["aa"] = args.aa
            rounds[engine].append(_child(spec, env, 1800, f"interleaved[{engine}]")["pairs"])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    k = args.interleaved
    aa = " (A/A: metrics on in both batches)" if args.aa else ""
    print(
        f"| interleaved b{aa}, {k} tasks a batch, {args.batches} pairs x {args.rounds} rounds "
        "| CPU µs a task, on | off | on/off, median of pairs | IQR of pairs "
        "| 95 % bootstrap of the median | median of rounds' medians |"
    )
    print("|---|---|---|---|---|---|---|")
    rng = random.Random(16)
    for engine, got in rounds.items():
        ratios = [on / off for rnd in got for on, off in rnd]
        on_us = statistics.median(on for rnd in got for on, _ in rnd) / k * 1e6
        off_us = statistics.median(off for rnd in got for _, off in rnd) / k * 1e6
        lo, med, hi = _quartiles(ratios)
        boots = []
        for _ in range(2000):
            pick = [got[rng.randrange(len(got))] for _ in got]
            boots.append(statistics.median(on / off for rnd in pick for on, off in rnd))
        boots.sort()
        b_lo, b_hi = boots[int(0.025 * len(boots))], boots[int(0.975 * len(boots)) - 1]
        per_round = statistics.median(statistics.median(on / off for on, off in rnd) for rnd in got)
        print(
            f"| {engine} | {on_us:.0f} | {off_us:.0f} | {med:.4f} | {lo:.4f}-{hi:.4f} "
            f"| {b_lo:.4f}-{b_hi:.4f} | {per_round:.4f} |"
        )
    print(f"(at {time.strftime('%H:%M:%S')}; load {os.getloadavg()[0]:.1f})")


def _instructions(spec: dict[str, Any], env: dict[str, str]) -> int:
    """The instructions one run executes (all its threads), counted by valgrind's callgrind."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            json.dumps(spec),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed: {out.stderr[-2000:]}")
    return int(found.group(1))


def callgrind_main(args: argparse.Namespace, url: str, env: dict[str, str]) -> None:
    """``--callgrind``: metrics on and off counted in instructions, not seconds.

    CPU seconds on this shared VM drift by more than the 2 % budget between batches of the same
    code (``--interleaved K --aa`` shows it). The instructions a run executes do not depend on
    the neighbours: each variant runs ``n`` and ``3 n`` tasks under callgrind, and
    ``(I(3n) - I(n)) / 2n`` is a task's count without the start-up (imports, nginx, the
    session). ``--rounds`` repeats each run (two at a time, one per core) to show the spread.
    What instructions cannot see: time a task spends waiting on memory or on another thread.
    """
    from concurrent.futures import ThreadPoolExecutor

    n = args.n
    jobs = []
    for engine in args.engines.split(","):
        for variant in ("on", "off"):
            for size in (n, 3 * n):
                for r in range(args.rounds):
                    spec = {"variant": variant, "engine": engine, "url": url, "n": size}
                    jobs.append(((engine, variant, size, r), spec))
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(
            zip(
                [key for key, _ in jobs],
                pool.map(lambda job: _instructions(job[1], env), jobs),
                strict=True,
            )
        )
    print(
        f"| b under callgrind, n={n} and {3 * n}, {args.rounds} rounds "
        "| instructions a task, on | off | on/off | on/off, each round |"
    )
    print("|---|---|---|---|---|")
    for engine in args.engines.split(","):
        per: dict[str, list[float]] = {}
        for variant in ("on", "off"):
            per[variant] = [
                (counts[(engine, variant, 3 * n, r)] - counts[(engine, variant, n, r)]) / (2 * n)
                for r in range(args.rounds)
            ]
        for variant in ("on", "off"):
            raw = [
                (counts[(engine, variant, n, r)], counts[(engine, variant, 3 * n, r)])
                for r in range(args.rounds)
            ]
            print(f"<!-- {engine} {variant}: I(n), I(3n) each round: {raw} -->")
        on, off = statistics.median(per["on"]), statistics.median(per["off"])
        each = ", ".join(f"{a / b:.4f}" for a, b in zip(per["on"], per["off"], strict=True))
        print(f"| {engine} | {on:,.0f} | {off:,.0f} | {on / off:.4f} | {each} |")
    print(f"(at {time.strftime('%H:%M:%S')})")


def parts_main(args: argparse.Namespace, url: str, env: dict[str, str]) -> None:
    """``--parts``: the metrics' own work a task, each piece timed alone (``timeit``, a real
    easy handle after two requests to the same nginx, so its connection was reused as in b),
    against the CPU a task of b with metrics off, measured in the same run (``--rounds``
    fresh processes, the median)."""
    import io
    import timeit

    import pycurl

    from urlsession_module._transport._curl._metrics import fill
    from urlsession_module._transport._metrics import TaskMetrics

    easy = pycurl.Curl()
    easy.setopt(pycurl.URL, url)
    easy.setopt(pycurl.WRITEDATA, io.BytesIO())
    easy.perform()
    easy.perform()  # (the second on the first's connection)
    connections: dict[int, tuple[Any, ...]] = {}
    made = TaskMetrics()
    tx = made.begin()
    pieces = {
        "TaskMetrics() and begin (the transaction)": lambda: TaskMetrics().begin(),
        "fill (libcurl's clocks and counters)": lambda: fill(
            tx, easy, 1.0, False, 0.0, False, connections
        ),
        "ended": lambda: made.ended(tx, 1024),
        "to_dict (the payload's record)": lambda: made.to_dict(),
    }
    number = 100_000
    empty = min(timeit.repeat(lambda: None, number=number, repeat=5)) / number
    total = 0.0
    rows = []
    for name, call in pieces.items():
        seconds = min(timeit.repeat(call, number=number, repeat=5)) / number - empty
        total += seconds
        rows.append((name, seconds))
    easy.close()
    cpus = []
    for _ in range(args.rounds):
        spec = {"variant": "off", "engine": "curl", "url": url, "n": args.n}
        got = _child(spec, env, 900, "off[curl]")
        cpus.append(got["cpu"] / args.n)
    per_task = statistics.median(cpus)
    print("| the metrics' own work, curl engine | µs a task |")
    print("|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e6:.2f} |")
    print(f"| **all** | **{total * 1e6:.2f}** |")
    print(
        f"| b with metrics off, CPU a task (median of {args.rounds} runs of {args.n}) "
        f"| {per_task * 1e6:.0f} |"
    )
    print(f"| **share of a task** | **{total / per_task * 100:.2f} %** |")
    print(f"(at {time.strftime('%H:%M:%S')}; load {os.getloadavg()[0]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--https", action="store_true", help="over TLS (nginx's https listener)")
    parser.add_argument("--n", type=int, default=2000, help="1 KiB requests per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--engines", default="curl,urllib3")
    parser.add_argument("--gc-off", action="store_true", help="no garbage collection (a probe)")
    parser.add_argument(
        "--probe-settle",
        action="store_true",
        help="also curl with metrics on but no wait for libcurl's clocks (a probe)",
    )
    parser.add_argument(
        "--interleaved",
        type=int,
        metavar="K",
        help="on/off alternating in batches of K tasks inside each process (see above)",
    )
    parser.add_argument("--batches", type=int, default=10, help="on/off pairs per process")
    parser.add_argument(
        "--aa",
        action="store_true",
        help="with --interleaved: metrics on in both batches (the method's own noise floor)",
    )
    parser.add_argument(
        "--parts",
        action="store_true",
        help="time the metrics' pieces alone, against b's CPU a task (curl engine)",
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions under valgrind instead of timing (use --n 300)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return

    sys.path.insert(0, str(ROOT))
    from tests.peers._certs import make_certs
    from tests.peers.nginx import Nginx, ensure_nginx

    binary = ensure_nginx(install=False)
    if binary is None:
        raise SystemExit("nginx is not installed")
    with tempfile.TemporaryDirectory(prefix="metrics-cost-") as tmp:
        base = Path(tmp)
        certs = make_certs(base / "certs") if args.https else None
        root = base / "nginx"
        root.mkdir()
        env = dict(os.environ, URLSESSION_HOME=str(base / "home"))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        with Nginx(binary, root, certs=certs, access_log=False) as nginx:
            listener = "https" if args.https else "http"
            url = nginx.url(listener, "/files/1k.bin")
            if args.interleaved:
                interleaved_main(args, url, env, None if certs is None else str(certs.ca))
                return
            if args.parts:
                parts_main(args, url, env)
                return
            if args.callgrind:
                callgrind_main(args, url, env)
                return
            variants = [("on", e) for e in args.engines.split(",")]
            variants += [("off", e) for e in args.engines.split(",")]
            if args.https and "curl" in args.engines:
                variants.append(("no-tls-watch", "curl"))
            if args.probe_settle and "curl" in args.engines:
                variants.append(("no-settle", "curl"))
            runs: dict[tuple[str, str], list[dict[str, Any]]] = {v: [] for v in variants}
            for r in range(args.rounds):
                order = variants[r % len(variants) :] + variants[: r % len(variants)]
                for variant, engine in order:
                    spec = {"variant": variant, "engine": engine, "url": url, "n": args.n}
                    spec["gc_off"] = args.gc_off
                    if certs is not None:
                        spec["ca"] = str(certs.ca)
                    runs[(variant, engine)].append(_child(spec, env, 900, f"{variant}[{engine}]"))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(
        f"| {listener} b, n={args.n}, {args.rounds} rounds | median s | median CPU s | "
        "s / off | CPU / off | best CPU / off | CPU / off, paired | TLS version |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (variant, engine), got in runs.items():
        secs = statistics.median(x["seconds"] for x in got)
        cpu = statistics.median(x["cpu"] for x in got)
        ref = runs[("off", engine)]
        ref_s = statistics.median(x["seconds"] for x in ref)
        ref_c = statistics.median(x["cpu"] for x in ref)
        best = min(x["cpu"] for x in got) / min(x["cpu"] for x in ref)
        # Each round's ratio to the same round's ``off`` (run next to it), then their median:
        # the load on a shared machine drifts between rounds more than within one.
        paired = statistics.median(x["cpu"] / y["cpu"] for x, y in zip(got, ref, strict=True))
        print(
            f"| {variant}[{engine}] | {secs:.3f} | {cpu:.3f} | {secs / ref_s:.3f} | "
            f"{cpu / ref_c:.3f} | {best:.3f} | {paired:.3f} | {got[-1].get('tls')} |"
        )
    print(f"(at {time.strftime('%H:%M:%S')}; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
