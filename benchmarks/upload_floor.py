"""The floor under scenario c on the curl engine: what an upload from a file costs through pycurl at all.

    python benchmarks/upload_floor.py [--mib 256] [--rounds 5]

Puts our upload task beside what it is made of, in one process, the contenders alternated round
by round against the same nginx (``run.py``'s) and the same file on ``/dev/shm``, so the VM's
drift hits them alike (runs one after another on this VM spread by ±20 %):

- ``urllib3 PUT``: urllib3 sending the open file (http.client's 64 KiB blocks);
- ``pycurl, os.read 256 KiB``: ``Curl.perform`` with a read callback that only calls
  ``os.read`` and the upload buffer our engine sets, the least any curl engine in Python can do;
- ``us[curl]``, ``us[urllib3]``: ``uploadTask`` of a default session with an ``uploadprogress``
  listener, to ``sessioncompleted``.

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


def raw_urllib3(url: str, path: Path) -> None:
    import urllib3

    with open(path, "rb") as f:
        r = urllib3.PoolManager().request(
            "PUT", url, body=f, headers={"Content-Length": str(path.stat().st_size)}
        )
    if r.status >= 300:
        raise SystemExit(f"urllib3 PUT: {r.status}")


def raw_pycurl(url: str, path: Path) -> None:
    import pycurl

    from urlsession_module._transport._curl._upload import UPLOAD_BUFFER

    fd = os.open(path, os.O_RDONLY)
    c = pycurl.Curl()
    try:
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.UPLOAD, 1)
        c.setopt(pycurl.INFILESIZE_LARGE, os.fstat(fd).st_size)
        c.setopt(pycurl.UPLOAD_BUFFERSIZE, UPLOAD_BUFFER)
        c.setopt(pycurl.READFUNCTION, lambda size: os.read(fd, size))
        c.setopt(pycurl.WRITEFUNCTION, lambda _data: None)
        c.setopt(pycurl.HTTPHEADER, ["Expect:"])
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
    session.addEventListener("uploadprogress", lambda e: None)
    status: dict[str, int] = {}
    session.addEventListener("sessioncompleted", lambda e: status.update(code=e.statusCode))

    def run(url: str, path: Path) -> None:
        task = session.getTask(session.uploadTask({"url": url, "data": str(path), "method": "PUT"}))
        if task is None or not task.wait(600) or status.get("code", 0) >= 300:
            raise SystemExit(f"us[{engine}]: the upload did not finish well ({status})")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size = args.mib << 20
    nginx = ensure_nginx(False)
    if nginx is None:
        raise SystemExit("nginx is needed (benchmarks/run.py installs it)")
    work = Path(tempfile.mkdtemp(prefix="upfloor-", dir=RAM))  # (removed at the end)
    os.environ.setdefault("URLSESSION_HOME", str(work / "home"))
    try:
        server = Nginx(nginx, work, 1 << 20, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    body = work / "upload.bin"
    block = os.urandom(1 << 20)
    with open(body, "wb") as f:
        for _ in range(args.mib):
            f.write(block)
    sessions: list[Any] = []
    contenders = {
        "urllib3 PUT": raw_urllib3,
        "pycurl, os.read 256 KiB": raw_pycurl,
        "us[curl]": ours("curl", sessions),
        "us[urllib3]": ours("urllib3", sessions),
    }
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    try:
        for _ in range(args.rounds):
            for i, (name, run) in enumerate(contenders.items()):
                url = server.url(f"{server.upload_prefix}floor-{i}.bin")
                c0, t0 = _cpu(), time.perf_counter()
                run(url, body)
                seconds, cpu = time.perf_counter() - t0, _cpu() - c0
                figures[name].append((size / seconds / 1e6, cpu))
    finally:
        for session in sessions:
            session.invalidateAndCancel()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    ref = statistics.median(mbs for mbs, _ in figures["pycurl, os.read 256 KiB"])
    print(f"{args.mib} MiB from {RAM}, medians of {args.rounds} alternated rounds")
    print("| contender | MB/s | CPU s | vs pycurl |\n|---|---:|---:|---:|")
    for name, rows in figures.items():
        mbs = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        print(f"| {name} | {mbs:,.0f} | {cpu:.2f} | {mbs / ref:.2f}x |")


if __name__ == "__main__":
    main()
