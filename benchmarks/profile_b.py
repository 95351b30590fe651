"""Scenario b on the wire in one process, for a profiler: N data tasks of 1 KiB to nginx.

    py-spy record --gil -r 200 -o /tmp/prof.txt -f raw -- python benchmarks/profile_b.py curl 4000

Arguments: the engine (``curl`` or ``urllib3``), the number of tasks (default 3000), the
connections (``httpMaximumConnectionsPerHost``, default 6), the ``requestCachePolicy`` (default
``reloadIgnoringLocalCacheData``: every task goes to the server; ``useProtocolCachePolicy``: the
cache answers, as run.py's ``us`` rows). 50 tasks warm up first. Prints req/s and CPU µs a task.
nginx must be installed (``run.py`` installs it).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _servers import Nginx, ensure_nginx  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str]) -> None:
    import urlsession_module as URLSession

    engine = argv[0] if argv else "curl"
    n = int(argv[1]) if len(argv) > 1 else 3000
    conns = int(argv[2]) if len(argv) > 2 else 6
    policy = argv[3] if len(argv) > 3 else "reloadIgnoringLocalCacheData"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = Nginx(ensure_nginx(False), work, 1 << 20, work)
        try:
            cfg = URLSession.createSessionConfiguration(
                {
                    "engine": engine,
                    "httpMaximumConnectionsPerHost": conns,
                    "requestCachePolicy": policy,
                }
            )
            session = URLSession.createSession({"configuration": cfg})
            failed: list[tuple[int, int]] = []
            session.addEventListener(
                "sessioncompleted",
                lambda e: None if e.success else failed.append((e.errorCode, e.statusCode)),
            )
            url = server.url(server.small_path)
            for _ in range(50):
                session.dataTask({"url": url, "method": "GET"})
            if not session.waitForTasks(60):
                raise SystemExit("warm-up tasks did not finish")
            c0, t0 = _cpu(), time.perf_counter()
            for _ in range(n):
                session.dataTask({"url": url, "method": "GET"})
            if not session.waitForTasks(600):
                raise SystemExit("tasks did not finish")
            seconds, cpu = time.perf_counter() - t0, _cpu() - c0
            print(f"{engine}: {n / seconds:,.0f} req/s, {cpu / n * 1e6:,.0f} µs CPU a task")
            if failed:
                raise SystemExit(f"{len(failed)} tasks failed, e.g. {failed[0]}")
            session.finishTasksAndInvalidate()
            session.waitForInvalidation(10)
        finally:
            server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
