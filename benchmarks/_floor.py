"""What the floor scripts share (``download_floor.py``, ``upload_floor.py``): run.py's nginx over
a work directory on ``/dev/shm`` (removed at the end), contenders alternated round by round in
one process so the VM's drift hits them alike, and the table of medians."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _servers import Nginx, ensure_nginx

RAM = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())

Figures = dict[str, list[tuple[float, float]]]  # a contender's (MB/s, CPU s) per round


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@contextlib.contextmanager
def nginx_on_ram(prefix: str, download_size: int) -> Iterator[tuple[Nginx, Path]]:
    """run.py's nginx serving a ``download_size`` file, over a fresh work directory on RAM
    (our sessions' state goes there too); both gone when the block ends."""
    nginx = ensure_nginx(False)
    if nginx is None:
        raise SystemExit("nginx is needed (benchmarks/run.py installs it)")
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=RAM))
    os.environ.setdefault("URLSESSION_HOME", str(work / "home"))
    try:
        server = Nginx(nginx, work, download_size, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        yield server, work
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def session_on(engine: str, sessions: list[Any], progress: str) -> Any:
    """A default session on ``engine`` with a listener for its ``progress`` event (as a host
    with a progress bar has), kept in ``sessions`` for the caller to invalidate."""
    import urlsession_module as URLSession

    props: Any = {"engine": engine}
    cfg = URLSession.createSessionConfiguration(props)
    session = URLSession.createSession({"configuration": cfg})
    sessions.append(session)
    session.addEventListener(progress, lambda e: None)
    return session


def pycurl_perform(url: str, fd: int, options: dict[int, Any]) -> None:
    """pycurl alone: one ``Curl.perform`` of ``url`` with ``options`` (its callbacks on ``fd``),
    the handle and ``fd`` closed after, however it ends."""
    import pycurl

    c = pycurl.Curl()
    try:
        c.setopt(pycurl.URL, url)
        for option, value in options.items():
            c.setopt(option, value)
        c.perform()
    finally:
        c.close()
        os.close(fd)


def arguments(doc: str, mib: int, rounds: int) -> argparse.Namespace:
    """``--mib`` (the body's size) and ``--rounds``, with these defaults."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--mib", type=int, default=mib)
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser.parse_args()


def alternate(
    contenders: dict[str, Callable[[], None]], rounds: int, size: int, sessions: list[Any]
) -> Figures:
    """Each contender once a round, in turn, ``rounds`` times: MB/s for ``size`` bytes, and the
    CPU seconds of this process (all threads) over the call. ``sessions`` (ours, made for the
    contenders) are invalidated at the end, however it ends."""
    figures: Figures = {name: [] for name in contenders}
    try:
        for _ in range(rounds):
            for name, run in contenders.items():
                c0, t0 = _cpu(), time.perf_counter()
                run()
                seconds, cpu = time.perf_counter() - t0, _cpu() - c0
                figures[name].append((size / seconds / 1e6, cpu))
    finally:
        for session in sessions:
            session.invalidateAndCancel()
    return figures


def print_table(figures: Figures, title: str, reference: str, short: str) -> None:
    """The medians, with each contender's ratio to ``reference`` (named ``short``)."""
    ref = statistics.median(mbs for mbs, _ in figures[reference])
    print(title)
    print(f"| contender | MB/s | CPU s | vs {short} |\n|---|---:|---:|---:|")
    for name, rows in figures.items():
        mbs = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        print(f"| {name} | {mbs:,.0f} | {cpu:.2f} | {mbs / ref:.2f}x |")
