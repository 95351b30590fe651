"""The floor under scenario a on the curl engine: what a download costs through pycurl at all.

    python benchmarks/download_floor.py [--mib 512] [--rounds 3]

libcurl hands a body to its write callback 16 KiB at a time, whatever ``BUFFERSIZE`` says
(``CURL_MAX_WRITE_SIZE``), and pycurl copies each piece into a ``bytes`` for a Python call: 65,536
calls a GiB. This puts that floor beside raw urllib3 (``read(1 MiB)`` and ``os.write``, run.py's
reference for a) and our download task on each engine, in one process, the contenders alternated
round by round against the same nginx (``run.py``'s), each writing a fresh file on ``/dev/shm``:

- ``urllib3 read(1 MiB)``: the reference of issue 14's target for a;
- ``pycurl, os.write a piece``: ``Curl.perform`` with a one-line write callback, the least any
  curl engine in Python can do;
- ``us[curl]``, ``us[urllib3]``: ``downloadTask`` of a default session with a progress listener,
  to ``downloadcompleted``.

Prints MB/s and CPU seconds (this process, all threads), medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import Nginx, ensure_nginx

RAM = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def raw_urllib3(url: str, out: Path) -> None:
    import urllib3

    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        r = urllib3.PoolManager().request("GET", url, preload_content=False)
        while data := r.read(1 << 20):
            os.write(fd, data)
    finally:
        os.close(fd)


def raw_pycurl(url: str, out: Path) -> None:
    import pycurl

    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    c = pycurl.Curl()
    try:
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.BUFFERSIZE, 1 << 20)
        c.setopt(pycurl.WRITEFUNCTION, lambda data: os.write(fd, data) and None)
        c.perform()
    finally:
        c.close()
        os.close(fd)


def ours(engine: str, sessions: list[Any]) -> Callable[[str, Path], None]:
    import urlsession_module as URLSession

    props: Any = {"engine": engine}
    cfg = URLSession.createSessionConfiguration(props)
    session = URLSession.createSession({"configuration": cfg})
    sessions.append(session)
    session.addEventListener("downloadprogress", lambda e: None)
    done: dict[str, str] = {}
    session.addEventListener("downloadcompleted", lambda e: done.update(p=e.data.nativePath))

    def run(url: str, out: Path) -> None:
        task = session.getTask(session.downloadTask({"url": url}))
        if task is None or not task.wait(600):
            raise SystemExit(f"us[{engine}]: the download did not finish")
        os.replace(done["p"], out)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.mib << 20
    nginx = ensure_nginx(False)
    if nginx is None:
        raise SystemExit("nginx is needed (benchmarks/run.py installs it)")
    work = Path(tempfile.mkdtemp(prefix="floor-", dir=RAM))  # (removed at the end, with the file)
    os.environ.setdefault("URLSESSION_HOME", str(work / "home"))
    try:
        server = Nginx(nginx, work, size, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    url = server.url(server.download_path)
    sessions: list[Any] = []
    contenders = {
        "urllib3 read(1 MiB)": raw_urllib3,
        "pycurl, os.write a piece": raw_pycurl,
        "us[curl]": ours("curl", sessions),
        "us[urllib3]": ours("urllib3", sessions),
    }
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    out = work / "out.bin"
    try:
        for _ in range(args.rounds):
            for name, run in contenders.items():
                out.unlink(missing_ok=True)
                c0, t0 = _cpu(), time.perf_counter()
                run(url, out)
                seconds, cpu = time.perf_counter() - t0, _cpu() - c0
                if out.stat().st_size != size:
                    raise SystemExit(f"{name}: {out.stat().st_size} bytes, not {size}")
                figures[name].append((size / seconds / 1e6, cpu))
    finally:
        for session in sessions:
            session.invalidateAndCancel()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    ref = statistics.median(mbs for mbs, _ in figures["urllib3 read(1 MiB)"])
    print(f"{args.mib} MiB to {RAM}, medians of {args.rounds} alternated rounds")
    print("| contender | MB/s | CPU s | vs urllib3 |\n|---|---:|---:|---:|")
    for name, rows in figures.items():
        mbs = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        print(f"| {name} | {mbs:,.0f} | {cpu:.2f} | {mbs / ref:.2f}x |")


if __name__ == "__main__":
    main()
