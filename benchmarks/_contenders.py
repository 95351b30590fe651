"""One contender doing one scenario once, in a process of its own; prints one JSON line.

Run by ``run.py`` as ``python _contenders.py '<json spec>'``. The time measured is the transfer
only (imports, pool and session set-up are outside it, the same for everyone); CPU seconds are this
process's user + system time over the same span (all threads); the runner adds the peak RSS of
the whole process from ``wait4``. A contender writes what it downloads to a file in ``out_dir``
(a RAM file system when there is one, so the disk is not what gets measured).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CHUNK = 1 << 20  # what the peers read per call: a generous size, their best case


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


WARM = {"bytes": 0, "dir": ""}


def _warm() -> None:
    """Touch and free as much memory as the transfer will (see run.py's ``warm``), right now."""
    if not WARM["bytes"]:
        return
    path = os.path.join(str(WARM["dir"]), ".warm")
    block = bytes(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(int(WARM["bytes"]) >> 20):
            os.write(fd, block)
    finally:
        os.close(fd)
        os.unlink(path)


def _timed(fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    _warm()
    c0, t0 = _cpu(), time.perf_counter()
    extra = fn() or {}
    return {"seconds": time.perf_counter() - t0, "cpu": _cpu() - c0, **extra}


def _out(spec: dict[str, Any]) -> str:
    return os.path.join(spec["out_dir"], f"{spec['contender']}.bin")


def _check_size(path: str, size: int) -> None:
    got = os.path.getsize(path)
    if got != size:
        raise SystemExit(f"wrote {got} bytes, expected {size}")


# -- a: one big download to a file ---------------------------------------------------------------


def download_urllib3(spec: dict[str, Any]) -> dict[str, Any]:
    import urllib3

    http = urllib3.PoolManager()

    def go() -> None:
        r = http.request("GET", spec["url"], preload_content=False)
        with open(_out(spec), "wb") as f:
            for chunk in r.stream(CHUNK):
                f.write(chunk)
        r.release_conn()

    return _timed(go)


def download_requests(spec: dict[str, Any]) -> dict[str, Any]:
    import requests

    s = requests.Session()

    def go() -> None:
        with s.get(spec["url"], stream=True) as r, open(_out(spec), "wb") as f:
            for chunk in r.iter_content(CHUNK):
                f.write(chunk)

    return _timed(go)


def download_httpx(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    client = httpx.Client(timeout=60)

    def go() -> None:
        with client.stream("GET", spec["url"]) as r, open(_out(spec), "wb") as f:
            for chunk in r.iter_bytes(CHUNK):
                f.write(chunk)

    return _timed(go)


def download_aiohttp(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    async def main() -> dict[str, Any]:
        async with aiohttp.ClientSession() as s:

            async def go() -> None:
                async with s.get(spec["url"]) as r:
                    with open(_out(spec), "wb") as f:
                        async for chunk in r.content.iter_chunked(CHUNK):
                            f.write(chunk)

            _warm()
            c0, t0 = _cpu(), time.perf_counter()
            await go()
            return {"seconds": time.perf_counter() - t0, "cpu": _cpu() - c0}

    return asyncio.run(main())


def _engine_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The configuration keys that pick the engine and HTTP version (absent: the package's default).

    ``run.py`` names an engine only when the installed package accepts the ``engine`` property,
    so the same contender runs on a package with or without the curl engine.
    """
    config: dict[str, Any] = {}
    if spec.get("engine"):
        config["engine"] = spec["engine"]
    if spec.get("http_version"):
        config["httpVersion"] = spec["http_version"]
    return config


def _session(spec: dict[str, Any], **config: Any) -> Any:
    import urlsession_module as URLSession

    cfg = URLSession.createSessionConfiguration({**_engine_config(spec), **config})
    return URLSession.createSession({"configuration": cfg})


def download_us(spec: dict[str, Any]) -> dict[str, Any]:
    session = _session(spec)
    listeners = int(spec.get("listeners", 1))
    seen = {"events": 0, "total": 0}

    def first(e: Any) -> None:
        seen["events"] += 1
        seen["total"] = e.totalBytesWritten

    def other(e: Any) -> None:
        pass

    calls = [first] + [lambda e: other(e) for _ in range(listeners - 1)]
    for fn in calls[:listeners]:
        session.addEventListener("downloadprogress", fn)
    done: dict[str, Any] = {}

    def completed(e: Any) -> None:
        done["path"] = e.data.nativePath

    session.addEventListener("downloadcompleted", completed)

    def go() -> dict[str, Any]:
        tid = session.downloadTask({"url": spec["url"]})
        if not session.getTask(tid).wait(600):
            raise SystemExit("download did not finish")
        return {"events": seen["events"]}

    result = _timed(go)
    if listeners and seen["total"] != spec["size"]:
        raise SystemExit(f"progress ended at {seen['total']}, expected {spec['size']}")
    _check_size(done["path"], spec["size"])
    os.replace(done["path"], _out(spec))
    session.finishTasksAndInvalidate()
    return result


# -- b: many small data tasks over N connections ---------------------------------------------------


def _threads(spec: dict[str, Any], get: Callable[[], bytes]) -> dict[str, Any]:
    n, conns = spec["n"], spec["conns"]

    def go() -> dict[str, Any]:
        with ThreadPoolExecutor(conns) as pool:
            sizes = list(pool.map(lambda _: len(get()), range(n)))
        if any(s != 1024 for s in sizes):
            raise SystemExit("a response was not 1 KiB")
        return {"requests": n}

    return _timed(go)


def small_urllib3(spec: dict[str, Any]) -> dict[str, Any]:
    import urllib3

    http = urllib3.PoolManager(maxsize=spec["conns"], block=True)
    return _threads(spec, lambda: http.request("GET", spec["url"]).data)


def small_requests(spec: dict[str, Any]) -> dict[str, Any]:
    import requests
    from requests.adapters import HTTPAdapter

    s = requests.Session()
    s.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=spec["conns"], pool_block=True))
    return _threads(spec, lambda: s.get(spec["url"]).content)


def _httpx_versions(spec: dict[str, Any]) -> dict[str, bool]:
    """HTTP/1.1, or with ``http2`` HTTP/2 only: on an ``http://`` URL, h2c with prior knowledge."""
    return {"http1": False, "http2": True} if spec.get("http2") else {}


def small_httpx(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=spec["conns"], max_keepalive_connections=spec["conns"])
    client = httpx.Client(limits=limits, timeout=60, **_httpx_versions(spec))
    return _threads(spec, lambda: client.get(spec["url"]).content)


def small_httpx_async(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    async def main() -> dict[str, Any]:
        limits = httpx.Limits(
            max_connections=spec["conns"], max_keepalive_connections=spec["conns"]
        )
        # Over HTTP/2 the one connection carries up to ``streams`` requests at once.
        gate = asyncio.Semaphore(spec.get("streams", spec["conns"]))
        versions = _httpx_versions(spec)
        async with httpx.AsyncClient(limits=limits, timeout=60, **versions) as client:

            async def one() -> int:
                async with gate:
                    return len((await client.get(spec["url"])).content)

            c0, t0 = _cpu(), time.perf_counter()
            sizes = await asyncio.gather(*(one() for _ in range(spec["n"])))
            result = {"seconds": time.perf_counter() - t0, "cpu": _cpu() - c0}
        if any(s != 1024 for s in sizes):
            raise SystemExit("a response was not 1 KiB")
        return result

    return asyncio.run(main())


def small_aiohttp(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    async def main() -> dict[str, Any]:
        conn = aiohttp.TCPConnector(limit=spec["conns"])
        async with aiohttp.ClientSession(connector=conn) as s:

            async def one() -> int:
                async with s.get(spec["url"]) as r:
                    return len(await r.read())

            c0, t0 = _cpu(), time.perf_counter()
            sizes = await asyncio.gather(*(one() for _ in range(spec["n"])))
            result = {"seconds": time.perf_counter() - t0, "cpu": _cpu() - c0}
        if any(s != 1024 for s in sizes):
            raise SystemExit("a response was not 1 KiB")
        return result

    return asyncio.run(main())


def _counter(count: list[int]) -> Callable[[bytes], None]:
    """A write callback that only counts what it is given (the peers read bodies, not keep them)."""

    def write(data: bytes) -> None:
        count[0] += len(data)

    return write


def small_pycurl(spec: dict[str, Any]) -> dict[str, Any]:
    """libcurl's multi interface driven from this one Python thread: the ceiling of a curl engine.

    HTTP/1.1: ``conns`` easy handles, at most ``conns`` connections, each handle re-added as soon
    as its response is in (so it keeps its connection). With ``http2``: h2c with prior knowledge,
    one connection (``MAX_HOST_CONNECTIONS`` 1, ``PIPEWAIT``) carrying ``streams`` requests at once.
    A handle's body is counted in its write callback, not kept.
    """
    import pycurl

    n, url, h2 = spec["n"], spec["url"], bool(spec.get("http2"))
    in_flight = min(n, spec.get("streams", 100) if h2 else spec["conns"])
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1 if h2 else spec["conns"])
    if h2:
        multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    got: dict[Any, list[int]] = {}
    handles = []
    for _ in range(in_flight):
        easy = pycurl.Curl()
        easy.setopt(pycurl.URL, url)
        count = [0]
        easy.setopt(pycurl.WRITEFUNCTION, _counter(count))
        if h2:
            easy.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
            easy.setopt(pycurl.PIPEWAIT, 1)
        else:
            easy.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        got[easy] = count
        handles.append(easy)

    def go() -> dict[str, Any]:
        started = done = 0
        for easy in handles:
            multi.add_handle(easy)
            started += 1
        deadline = time.monotonic() + 120
        while done < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"pycurl: {done} of {n} done after 120 s")
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            while True:
                queued, ok, failed = multi.info_read()
                if failed:
                    raise SystemExit(f"pycurl: {failed[0][2]}")
                for easy in ok:
                    if easy.getinfo(pycurl.RESPONSE_CODE) != 200 or got[easy][0] != 1024:
                        raise SystemExit("pycurl: a response was not a 200 of 1 KiB")
                    done += 1
                    multi.remove_handle(easy)
                    if started < n:
                        got[easy][0] = 0
                        multi.add_handle(easy)
                        started += 1
                if not queued:
                    break
            if done < n:
                multi.select(1.0)
        return {"requests": n}

    try:
        return _timed(go)
    finally:
        for easy in handles:
            easy.close()
        multi.close()


def small_us(spec: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"httpMaximumConnectionsPerHost": spec["conns"]}
    if spec.get("policy"):
        config["requestCachePolicy"] = spec["policy"]
    session = _session(spec, **config)
    failures: list[Any] = []
    lock = threading.Lock()

    def completed(e: Any) -> None:
        if not e.success or e.statusCode != 200:
            with lock:
                failures.append((e.errorCode, e.statusCode, e.message))

    session.addEventListener("sessioncompleted", completed)

    def go() -> dict[str, Any]:
        for _ in range(spec["n"]):
            session.dataTask({"url": spec["url"], "method": "GET"})
        if not session.waitForTasks(600):
            raise SystemExit("tasks did not finish")
        return {"requests": spec["n"]}

    result = _timed(go)
    if failures:
        raise SystemExit(f"{len(failures)} tasks failed, e.g. {failures[0]}")
    session.finishTasksAndInvalidate()
    return result


# -- f: many live sessions, one task each ---------------------------------------------------------


def _proc_status() -> dict[str, int]:
    """This process's thread count, RSS and peak RSS (KiB) from /proc/self/status, and open fds."""
    fields = {"threads": 0, "rss_kib": 0, "hwm_kib": 0, "fds": 0}
    names = {"Threads:": "threads", "VmRSS:": "rss_kib", "VmHWM:": "hwm_kib"}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(None, 1)[0] if line.strip() else ""
            if key in names:
                fields[names[key]] = int(line.split()[1])
    fields["fds"] = len(os.listdir("/proc/self/fd"))
    return fields


def sessions_us(spec: dict[str, Any]) -> dict[str, Any]:
    """``n`` sessions with one data task each, all in flight at once: threads, RSS, fds.

    The hold server (``_hold.py``) answers no request until all ``n`` have arrived, so every task
    is live at the same time; the process is sampled every 10 ms until the last
    ``sessioncompleted``, and the peak is reported with the figures before the first session.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * spec["n"] + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    import urlsession_module as URLSession

    n = spec["n"]
    lock = threading.Lock()
    finished = threading.Event()
    seen = {"completed": 0, "failed": 0, "example": ""}

    def completed(e: Any) -> None:
        with lock:
            seen["completed"] += 1
            if not e.success or e.statusCode != 200:
                seen["failed"] += 1
                seen["example"] = f"{e.errorCode} {e.statusCode} {e.message}"
            if seen["completed"] == n:
                finished.set()

    before = _proc_status()
    peak = dict(before)

    def sample() -> None:
        now = _proc_status()
        for key in ("threads", "rss_kib", "fds"):
            peak[key] = max(peak[key], now[key])

    sessions = []
    c0, t0 = _cpu(), time.perf_counter()
    for _ in range(n):
        cfg = URLSession.createSessionConfiguration(
            {**_engine_config(spec), "requestCachePolicy": "reloadIgnoringLocalCacheData"}
        )
        session = URLSession.createSession({"configuration": cfg})
        session.addEventListener("sessioncompleted", completed)
        session.dataTask({"url": spec["url"], "method": "GET"})
        sessions.append(session)
    created = time.perf_counter() - t0
    # 1,000 sessions on threads took 83 s and more here once released (1,900 threads): the bound
    # is generous, and a run that hits it says how far it got.
    deadline = time.monotonic() + 300
    while not finished.wait(spec.get("sample", 0.1)):
        sample()
        if time.monotonic() > deadline:
            raise SystemExit(f"{seen['completed']} of {n} tasks completed after 300 s")
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    if seen["failed"]:
        raise SystemExit(f"{seen['failed']} tasks failed, e.g. {seen['example']}")
    for session in sessions:
        session.finishTasksAndInvalidate()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "create_seconds": created,
        "sessions": n,
        "threads_before": before["threads"],
        "threads_peak": peak["threads"],
        "rss_kib_before": before["rss_kib"],
        "rss_kib_peak": peak["rss_kib"],
        "fds_before": before["fds"],
        "fds_peak": peak["fds"],
    }


# -- c: one big upload from a file -----------------------------------------------------------------


def upload_urllib3(spec: dict[str, Any]) -> dict[str, Any]:
    import urllib3

    http = urllib3.PoolManager()

    def go() -> dict[str, Any]:
        with open(spec["path"], "rb") as f:
            r = http.request(
                "PUT", spec["url"], body=f, headers={"Content-Length": str(spec["size"])}
            )
        return {"status": r.status}

    return _timed(go)


def upload_requests(spec: dict[str, Any]) -> dict[str, Any]:
    import requests

    s = requests.Session()

    def go() -> dict[str, Any]:
        with open(spec["path"], "rb") as f:
            return {"status": s.put(spec["url"], data=f).status_code}

    return _timed(go)


def upload_httpx(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    client = httpx.Client(timeout=60)

    def go() -> dict[str, Any]:
        with open(spec["path"], "rb") as f:
            return {"status": client.put(spec["url"], content=f).status_code}

    return _timed(go)


def upload_us(spec: dict[str, Any]) -> dict[str, Any]:
    session = _session(spec)
    seen = {"events": 0, "total": 0}

    def progress(e: Any) -> None:
        seen["events"] += 1
        seen["total"] = e.totalBytesSent

    session.addEventListener("uploadprogress", progress)
    status: dict[str, Any] = {}
    session.addEventListener("sessioncompleted", lambda e: status.update(code=e.statusCode))

    def go() -> dict[str, Any]:
        tid = session.uploadTask({"url": spec["url"], "data": spec["path"], "method": "PUT"})
        if not session.getTask(tid).wait(600):
            raise SystemExit("upload did not finish")
        return {"status": status["code"], "events": seen["events"]}

    result = _timed(go)
    if seen["total"] != spec["size"]:
        raise SystemExit(f"progress ended at {seen['total']}, expected {spec['size']}")
    session.finishTasksAndInvalidate()
    return result


# -- d: latency from a byte's arrival to its listener ------------------------------------------------


def latency_us(spec: dict[str, Any]) -> dict[str, Any]:
    """Download from the trickle server; pair each chunk's send time with the listener's call."""
    session = _session(spec)
    calls: list[tuple[int, int]] = []

    def progress(e: Any) -> None:
        calls.append((time.monotonic_ns(), e.totalBytesWritten))

    session.addEventListener("downloadprogress", progress)

    def go() -> None:
        tid = session.downloadTask({"url": spec["url"]})
        if not session.getTask(tid).wait(120):
            raise SystemExit("trickle download did not finish")

    result = _timed(go)
    session.finishTasksAndInvalidate()
    return {**result, "calls": calls}


# -- e: background sessions (the transfer process) ----------------------------------------------------


def _bg_session(spec: dict[str, Any], **kw: Any) -> Any:
    import urlsession_module as URLSession

    cfg = URLSession.createSessionConfiguration({"identifier": spec["identifier"]})
    return URLSession.createSession({"configuration": cfg, **kw})


def background_cold(spec: dict[str, Any]) -> dict[str, Any]:
    """No transfer process runs for this state directory: createSession starts one."""
    import urlsession_module  # noqa: F401  (imported before the clock starts, as a host would)

    def go() -> None:
        _bg_session(spec)

    return _timed(go)


def background_fill(spec: dict[str, Any]) -> dict[str, Any]:
    """Hand ``n`` data tasks to the transfer process, then leave without hearing their events.

    The host's delivery queue is one it never drains, so it never acknowledges an event: every
    task's events wait in the journal for the next host, as if this one had been killed at once.
    """
    import urlsession_module as URLSession

    session = _bg_session(spec, delegateQueue=URLSession.EventQueue())
    begin = {"earliestBeginDate": time.time() + 3600} if spec.get("queued") else {}

    def go() -> None:
        for _ in range(spec["n"]):
            session.dataTask({"url": spec["url"], "method": "GET", **begin})

    result = _timed(go)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # a host that is killed: no invalidation, no acknowledgement


def background_replay(spec: dict[str, Any]) -> dict[str, Any]:
    """A relaunched host: createSession until sessioneventscompleted, counting the replay."""
    import urlsession_module as URLSession

    done = threading.Event()
    seen = {"completed": 0}

    def completed(e: Any) -> None:
        seen["completed"] += 1

    def drained(e: Any) -> None:
        done.set()

    cfg = URLSession.createSessionConfiguration({"identifier": spec["identifier"]})

    def go() -> dict[str, Any]:
        _make_listening_session(cfg, completed, drained)
        if not done.wait(300):
            raise SystemExit("no sessioneventscompleted")
        return {"events": seen["completed"]}

    return _timed(go)


def _make_listening_session(cfg: Any, completed: Any, drained: Any) -> Any:
    """The session, with listeners in place before its replay can arrive (on the module)."""
    import urlsession_module as URLSession

    URLSession.addEventListener("sessioncompleted", completed)
    URLSession.addEventListener("sessioneventscompleted", drained)
    return URLSession.createSession({"configuration": cfg})


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "download:urllib3": download_urllib3,
    "download:requests": download_requests,
    "download:httpx": download_httpx,
    "download:aiohttp": download_aiohttp,
    "download:us": download_us,
    "small:urllib3": small_urllib3,
    "small:requests": small_requests,
    "small:httpx": small_httpx,
    "small:httpx-async": small_httpx_async,
    "small:aiohttp": small_aiohttp,
    "small:pycurl-multi": small_pycurl,
    "small:us": small_us,
    "sessions:us": sessions_us,
    "upload:urllib3": upload_urllib3,
    "upload:requests": upload_requests,
    "upload:httpx": upload_httpx,
    "upload:us": upload_us,
    "latency:us": latency_us,
    "background:cold": background_cold,
    "background:fill": background_fill,
    "background:replay": background_replay,
}


def main() -> None:
    import _bg_scale  # scenario e at scale (issue 17): the timed hand-over, the in-flight host

    RUNNERS.update(_bg_scale.RUNNERS)
    spec = json.loads(sys.argv[1])
    WARM.update(bytes=spec.get("warm", 0), dir=spec.get("out_dir", ""))
    result = RUNNERS[f"{spec['kind']}:{spec['contender']}"](spec)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
