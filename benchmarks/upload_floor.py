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

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _floor import RAM, alternate, arguments, nginx_on_ram, print_table, pycurl_perform, session_on


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
    pycurl_perform(
        url,
        fd,
        {
            pycurl.UPLOAD: 1,
            pycurl.INFILESIZE_LARGE: os.fstat(fd).st_size,
            pycurl.UPLOAD_BUFFERSIZE: UPLOAD_BUFFER,
            pycurl.READFUNCTION: lambda size: os.read(fd, size),
            pycurl.WRITEFUNCTION: lambda _data: None,
            pycurl.HTTPHEADER: ["Expect:"],
        },
    )


def ours(engine: str, sessions: list[Any]) -> Callable[[str, Path], None]:
    session = session_on(engine, sessions, "uploadprogress")
    status: dict[str, int] = {}
    session.addEventListener("sessioncompleted", lambda e: status.update(code=e.statusCode))

    def run(url: str, path: Path) -> None:
        task = session.getTask(session.uploadTask({"url": url, "data": str(path), "method": "PUT"}))
        if task is None or not task.wait(600) or status.get("code", 0) >= 300:
            raise SystemExit(f"us[{engine}]: the upload did not finish well ({status})")

    return run


def main() -> None:
    args = arguments(__doc__ or "", 256, 5)
    size = args.mib << 20
    sessions: list[Any] = []
    with nginx_on_ram("upfloor-", 1 << 20) as (server, work):
        body = work / "upload.bin"
        block = os.urandom(1 << 20)
        with open(body, "wb") as f:
            for _ in range(args.mib):
                f.write(block)
        runs = {
            "urllib3 PUT": raw_urllib3,
            "pycurl, os.read 256 KiB": raw_pycurl,
            "us[curl]": ours("curl", sessions),
            "us[urllib3]": ours("urllib3", sessions),
        }

        def to(run: Callable[[str, Path], None], i: int) -> Callable[[], None]:
            url = server.url(f"{server.upload_prefix}floor-{i}.bin")
            return lambda: run(url, body)

        contenders = {name: to(run, i) for i, (name, run) in enumerate(runs.items())}
        figures = alternate(contenders, args.rounds, size, sessions)
    title = f"{args.mib} MiB from {RAM}, medians of {args.rounds} alternated rounds"
    print_table(figures, title, "pycurl, os.read 256 KiB", "pycurl")


if __name__ == "__main__":
    main()
