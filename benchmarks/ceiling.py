"""Where the time of a small request goes: the floor under scenario b, layer by layer.

    python benchmarks/ceiling.py [--n 2000] [--repeat 3]

Against the same nginx as ``run.py`` (1 KiB file, keep-alive), in this one process, one layer
after the other, each timed around the requests only, median of ``--repeat`` rounds:

- ``sockets``: 6 non-blocking sockets and a ``selectors`` loop, requests written and response
  heads parsed by hand (no library): what the wire, nginx and the interpreter allow;
- ``pycurl``: libcurl's multi interface from one Python thread, 6 connections, and over HTTP/2
  (one h2c connection, 100 streams): what a curl engine could reach;
- ``urllib3 1 thread`` / ``urllib3 6 threads``: the library our transport is built on, alone;
- ``us, 1 connection`` / ``us, 6 connections``: data tasks of a default session (answered by the
  cache, as nginx's file is heuristically fresh) and ``us-wire`` (every task to nginx), on each
  engine the package offers (``[urllib3]``, ``[curl]``; the curl engine also over h2c).

The urllib3 and us layers are ``run.py``'s own scenario-b contenders (``_contenders.py``), with
one or six connections: the same code, timed the same way.

It proves a ceiling rather than racing peers (``run.py`` does that): our transfers go through
urllib3 on worker threads, so they cannot be faster than urllib3 with as many threads.
"""

from __future__ import annotations

import argparse
import os
import selectors
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _contenders import _timed, small_pycurl, small_urllib3, small_us
from _servers import Nginx, ensure_nginx


def raw_sockets(host: str, port: int, path: str, n: int, conns: int = 6) -> None:
    """n GETs over ``conns`` keep-alive sockets, one thread, no HTTP library."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: floor\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    sent = done = 0
    for _ in range(min(conns, n)):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        s.send(request)
        sent += 1
        buffers[s] = bytearray()
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    try:
        while done < n:
            if time.monotonic() > deadline:
                raise SystemExit("raw sockets: no answer within 60 s")
            for key, _ in sel.select(1.0):
                s = key.fileobj  # type: ignore[assignment]
                assert isinstance(s, socket.socket)  # what was registered
                buf = buffers[s]
                buf += s.recv(65536)
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    lines = bytes(buf[:end]).split(b"\r\n")
                    if int(lines[0].split(b" ", 2)[1]) != 200:
                        raise SystemExit("raw sockets: not a 200")
                    length = 0
                    for line in lines[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if length != 1024:
                        raise SystemExit("raw sockets: a response was not 1 KiB")
                    if len(buf) < end + 4 + length:
                        break
                    del buf[: end + 4 + length]
                    done += 1
                    if sent < n:
                        s.send(request)
                        sent += 1
    finally:
        for s in buffers:
            sel.unregister(s)
            s.close()
        sel.close()


def engines() -> dict[str, dict[str, Any]]:
    """The engines the package offers, each with what a spec names to use it (run.py's rule)."""
    import urlsession_module as URLSession

    offered: dict[str, dict[str, Any]] = {}
    for engine in ("urllib3", "curl"):
        try:
            URLSession.createSessionConfiguration({"engine": engine})
        except Exception:  # the package's own error: no such engine here
            continue
        offered[engine] = {"engine": engine}
    return offered or {"urllib3": {}}  # no 'engine' property: urllib3 is the one engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    binary = ensure_nginx(install=False)
    if binary is None:
        print("nginx is needed (run benchmarks/run.py once to install it)", file=sys.stderr)
        return 2
    work = Path(
        tempfile.mkdtemp(prefix="ceiling-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    )
    os.environ["URLSESSION_HOME"] = str(work / "home")
    server = Nginx(binary, work, 1 << 20, work)
    try:
        url = server.url(server.small_path)
        old = time.time() - 3600  # a file an hour old: heuristically fresh for six minutes
        os.utime(server.root / "www" / "files" / "1k.bin", (old, old))
        port = int(server.base.rsplit(":", 1)[1])
        spec = {"url": url, "n": args.n}

        def sockets() -> dict[str, Any]:
            return _timed(lambda: raw_sockets("127.0.0.1", port, server.small_path, args.n))

        h2c = {**spec, "url": server.h2c_base + server.small_path, "http2": True, "streams": 100}
        wire = "reloadIgnoringLocalCacheData"
        # The same contenders, measured the same way, as run.py's scenarios b and b2.
        layers: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("sockets, 6 connections, 1 thread", sockets),
            (
                "pycurl CurlMulti, 6 connections, 1 thread",
                lambda: small_pycurl({**spec, "conns": 6}),
            ),
            ("pycurl CurlMulti, h2c, 1 connection, 100 streams", lambda: small_pycurl(h2c)),
            ("urllib3, 1 thread", lambda: small_urllib3({**spec, "conns": 1})),
            ("urllib3, 6 threads", lambda: small_urllib3({**spec, "conns": 6})),
        ]
        for engine, extra in engines().items():
            layers += [
                (
                    f"us[{engine}], 1 connection (cache hits)",
                    lambda x=extra: small_us({**spec, **x, "conns": 1}),
                ),
                (
                    f"us[{engine}], 6 connections (cache hits)",
                    lambda x=extra: small_us({**spec, **x, "conns": 6}),
                ),
                (
                    f"us-wire[{engine}], 6 connections",
                    lambda x=extra: small_us({**spec, **x, "conns": 6, "policy": wire}),
                ),
            ]
            if engine == "curl":
                layers.append(
                    (
                        "us-wire[curl], h2c, 1 connection",
                        lambda x=extra: small_us(
                            {**h2c, **x, "conns": 6, "policy": wire, "http_version": "2"}
                        ),
                    )
                )
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in layers}
        for _ in range(args.repeat):
            for name, run in layers:
                results[name].append(run())
        print(f"| layer ({args.n} GETs of 1 KiB) | req/s | CPU µs per request |")
        print("|---|---:|---:|")
        for name, runs in results.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            print(f"| {name} | {args.n / seconds:,.0f} | {cpu / args.n * 1e6:,.0f} |")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
