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

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _floor import RAM, alternate, arguments, nginx_on_ram, print_table, pycurl_perform, session_on


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
    pycurl_perform(
        url,
        fd,
        {
            pycurl.BUFFERSIZE: 1 << 20,
            pycurl.WRITEFUNCTION: lambda data: os.write(fd, data) and None,
        },
    )


def ours(engine: str, sessions: list[Any]) -> Callable[[str, Path], None]:
    session = session_on(engine, sessions, "downloadprogress")
    done: dict[str, str] = {}
    session.addEventListener("downloadcompleted", lambda e: done.update(p=e.data.nativePath))

    def run(url: str, out: Path) -> None:
        task = session.getTask(session.downloadTask({"url": url}))
        if task is None or not task.wait(600):
            raise SystemExit(f"us[{engine}]: the download did not finish")
        os.replace(done["p"], out)

    return run


def main() -> None:
    args = arguments(__doc__ or "", 512, 3)
    size = args.mib << 20
    sessions: list[Any] = []
    with nginx_on_ram("floor-", size) as (server, work):
        url = server.url(server.download_path)
        out = work / "out.bin"

        def fresh(run: Callable[[str, Path], None], name: str) -> Callable[[], None]:
            def go() -> None:
                out.unlink(missing_ok=True)
                run(url, out)
                if out.stat().st_size != size:
                    raise SystemExit(f"{name}: {out.stat().st_size} bytes, not {size}")

            return go

        runs = {
            "urllib3 read(1 MiB)": raw_urllib3,
            "pycurl, os.write a piece": raw_pycurl,
            "us[curl]": ours("curl", sessions),
            "us[urllib3]": ours("urllib3", sessions),
        }
        contenders = {name: fresh(run, name) for name, run in runs.items()}
        figures = alternate(contenders, args.rounds, size, sessions)
    title = f"{args.mib} MiB to {RAM}, medians of {args.rounds} alternated rounds"
    print_table(figures, title, "urllib3 read(1 MiB)", "urllib3")


if __name__ == "__main__":
    main()
