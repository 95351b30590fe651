"""Benchmarks: urlsession_module against curl, pycurl, urllib3, requests, httpx and aiohttp.

    python benchmarks/run.py                 # everything (installs nginx, curl and the peers)
    python benchmarks/run.py --smoke         # tiny sizes, one repetition (CI keeps it from rotting)
    python benchmarks/run.py --scenarios b,b2,f --repeat 3

Scenarios (issues 6 and 14): a) one big download to a file; b) many 1 KiB data tasks over 6
connections; b2) the same over HTTP/2, one h2c connection; c) one big upload from a file; d) the
cost of progress listeners and the latency from a byte's arrival to its listener; e) background
sessions: the transfer process's cold start, the replay of missed events to a relaunched host,
the process's memory with queued tasks; f) many live sessions with one task each: threads, RSS.

Our contenders get one row per engine (``us[urllib3]``, ``us[curl]``, ...) when the installed
package accepts the ``engine`` configuration property; without it the package's one engine is
urllib3 and the curl rows are reported as not available.

Each contender runs in a process of its own, one after another, the order rotating from one
repetition to the next. Throughput and CPU are measured by the contender around the transfer
only; peak RSS is the whole process's (``wait4``). Downloads go to a RAM file system when there
is one, and memory is warmed just before each run (see ``docs/performance.md``: on a VM, memory
freed a second ago costs 5x more to touch again). The server is nginx (``sendfile``,
keep-alive, a PUT endpoint), whose CPU seconds are reported next to each contender. Results:
``benchmarks/results/latest.md`` and ``latest.json`` (``smoke.md``/``smoke.json`` with ``--smoke``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _bg_scale  # noqa: E402  (scenario e at scale: issue 17)
from _servers import Nginx, Server, StandIn, ensure_nginx, make_file  # noqa: E402

#: importable module -> what pip installs for it (setup.cfg's ``bench`` extra lists the same)
PEERS = {
    "requests": "requests",
    "httpx": "httpx",
    "h2": "h2",  # httpx's http2=True
    "aiohttp": "aiohttp",
    "pycurl": "pycurl",
}
ENGINES = ("urllib3", "curl")
WIRE = "reloadIgnoringLocalCacheData"  # every task on the wire: the cache is not asked
SCENARIOS = ("a", "b", "b2", "c", "d", "e", "f", "r")
MIB = 1 << 20
GIB = 1 << 30
BACKGROUND_ID = "bench.background"

FULL = {
    "download": GIB,
    "small": 2000,
    "upload": 256 * MIB,
    "latency_chunks": 300,
    "events": 10_000,
    "sessions": 1000,
    "streams": 100,
    "repeat": 5,
}
SMOKE = {
    "download": 8 * MIB,
    "small": 60,
    "upload": 4 * MIB,
    "latency_chunks": 20,
    "events": 40,
    "sessions": 10,
    "streams": 20,
    "repeat": 1,
}


# -- set-up -----------------------------------------------------------------------------------------


def in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def ensure_peers(install: bool) -> list[str]:
    """The peers importable here, pip-installing the missing ones into this venv (or a new one)."""
    missing = [p for p in PEERS if importlib.util.find_spec(p) is None]
    wanted = [PEERS[p] for p in missing]
    if missing and install:
        if not in_venv():
            venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
                "urlsession_module-bench"
            )
            python = venv / "bin" / "python"
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), *PEERS.values()],
                check=False,
            )
            os.execv(str(python), [str(python), *sys.argv])  # go on inside the venv
        print(f"installing {', '.join(wanted)} into {sys.prefix}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *wanted], check=False)
        importlib.invalidate_caches()
    return [p for p in PEERS if importlib.util.find_spec(p) is not None]


_PROBE = """
import json
import urlsession_module as URLSession

def attempt(props):
    try:
        cfg = URLSession.createSessionConfiguration(props)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return all(getattr(cfg, key, value) == value for key, value in props.items())

out = {e: attempt({"engine": e}) for e in ENGINES}
out["h2"] = attempt({"engine": "curl", "httpVersion": "2"})
out["default"] = getattr(URLSession.createSessionConfiguration({}), "engine", None)
print(json.dumps(out))
"""


def probe_engines(env: dict[str, str]) -> dict[str, Any]:
    """Which engines the installed package accepts, asked of it in a process of its own.

    Each engine maps to True or to the reason it is not available (the package's own message:
    'engine' is not a property, or pycurl is missing); ``h2`` says whether the curl engine takes
    ``httpVersion: '2'``; ``default`` is the engine a configuration gets when none is named.
    """
    code = f"ENGINES = {ENGINES!r}\n{_PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"the package could not be asked about engines: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _reason(why: Any) -> str:
    """The package's message, without its list of known properties."""
    return str(why).split(" (known:", 1)[0]


def ram_dir() -> Path:
    """A scratch directory on a RAM file system when there is one (the disk is not measured)."""
    for base in ("/dev/shm", f"/run/user/{os.getuid()}"):
        if os.path.isdir(base) and os.access(base, os.W_OK):
            return Path(tempfile.mkdtemp(prefix="urlsession-bench-", dir=base))
    return Path(tempfile.mkdtemp(prefix="urlsession-bench-"))


def warm(directory: Path, size: int) -> None:
    """Touch ``size`` bytes of memory and free them, so the run that follows gets warm pages.

    On a VM with free page reporting, memory freed a second ago has gone back to the host and
    costs several times more to touch again than memory freed just now; every contender gets
    the same head start.
    """
    path = directory / ".warm"
    block = bytes(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(max(1, size // MIB)):
            os.write(fd, block)
    finally:
        os.close(fd)
        path.unlink()


# -- running one contender ----------------------------------------------------------------------------


def run_child(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 900
) -> tuple[int, str, str, float, float, int]:
    """Run a process to its end: exit status, stdout, stderr, wall s, CPU s, peak RSS (KiB)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss,
        )


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.smoke = args.smoke
        self.p = SMOKE if args.smoke else FULL
        self.repeat = args.repeat or self.p["repeat"]
        self.work = ram_dir()
        self.out_dir = self.work / "out"
        self.out_dir.mkdir()
        self.home = self.work / "home"
        self.home.mkdir()
        self.server: Server
        self.results: dict[str, Any] = {}
        self.notes: list[str] = []
        self.peers: list[str] = []
        self.curl = shutil.which("curl")
        self.engines: dict[str, Any] = {}
        #: the engines whose rows run (--engines); the others are left out, not "not available"
        self.wanted_engines: tuple[str, ...] = tuple(args.engines)
        #: our rows: row name -> what its spec adds (the engine, the HTTP version)
        self.us_rows: dict[str, dict[str, Any]] = {}

    # -- environment --------------------------------------------------------------------------------

    def start(self, install: bool, local: bool = False) -> None:
        self.peers = ensure_peers(install)
        nginx = None if local else ensure_nginx(install and not self.smoke)
        if nginx is not None:
            self.server = Nginx(nginx, self.work, self.p["download"], self.work)
        else:
            self.server = StandIn(self.p["download"])
            self.notes.append("nginx could not be had: the package's LocalServer served instead")
        if self.curl is None:
            self.notes.append("curl is not installed: its columns are empty")
        self.upload_file = make_file(self.work / "upload.bin", self.p["upload"])
        self.engines = probe_engines(self.env())
        for engine in ENGINES:
            if self.engine_extra(engine) is None:
                self.notes.append(
                    f"engine '{engine}' not available: its rows are skipped "
                    f"({_reason(self.engines.get(engine))})"
                )
        if self.engine_extra("urllib3") == {}:
            self.notes.append(
                "the package has no 'engine' property: its one engine (urllib3) runs the "
                "[urllib3] rows"
            )

    def engine_extra(self, engine: str) -> dict[str, Any] | None:
        """What a spec needs to run on ``engine``; None when the package does not offer it.

        A package that accepts no engine at all (no ``engine`` property) has one engine,
        urllib3: its rows name none.
        """
        if self.engines.get(engine) is True:
            return {"engine": engine}
        if engine == "urllib3" and all(self.engines.get(e) is not True for e in ENGINES):
            return {}
        return None

    def our_rows(self, base: str, **extra: Any) -> list[str]:
        """``base[engine]`` for each engine the package offers (``us[urllib3]``, ``us[curl]``)."""
        names = []
        for engine in ENGINES:
            if engine not in self.wanted_engines:
                continue
            spec = self.engine_extra(engine)
            if spec is None:
                continue
            name = f"{base}[{engine}]"
            self.us_rows[name] = {**spec, **extra}
            names.append(name)
        return names

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["URLSESSION_HOME"] = str(self.home)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        return env

    # -- one measurement --------------------------------------------------------------------------

    def python_run(self, spec: dict[str, Any], warm_bytes: int = 0) -> dict[str, Any]:
        # The contender warms memory itself, just before its clock starts (not in smoke mode,
        # whose tiny figures mean nothing: it keeps CI's run short).
        warm_bytes = 0 if self.smoke else warm_bytes
        spec = {"out_dir": str(self.out_dir), "warm": warm_bytes, **spec}
        cpu0 = self.server.cpu_seconds()
        code, out, err, wall, cpu, rss = run_child(
            [sys.executable, str(HERE / "_contenders.py"), json.dumps(spec)], self.env()
        )
        server_cpu = self.server.cpu_seconds() - cpu0
        self._clean_out()
        if code != 0:
            raise RuntimeError(f"{spec['kind']}:{spec['contender']} failed ({code}): {err[-2000:]}")
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result.update(rss_kib=rss, process_cpu=cpu, server_cpu=server_cpu, wall=wall)
        return result

    def curl_run(self, argv: list[str], warm_bytes: int = 0) -> dict[str, Any]:
        assert self.curl is not None
        if warm_bytes and not self.smoke:
            warm(self.out_dir, warm_bytes)
        cpu0 = self.server.cpu_seconds()
        code, out, err, wall, cpu, rss = run_child([self.curl, *argv], self.env())
        server_cpu = self.server.cpu_seconds() - cpu0
        self._clean_out()
        if code != 0:
            raise RuntimeError(f"curl failed ({code}): {err[-2000:]}")
        result: dict[str, Any] = {"seconds": wall, "cpu": cpu}
        with contextlib.suppress(ValueError, IndexError):
            result["seconds"] = float(out.strip().splitlines()[-1])  # -w '%{time_total}'
        result.update(rss_kib=rss, process_cpu=cpu, server_cpu=server_cpu, wall=wall)
        return result

    def _clean_out(self) -> None:
        for entry in self.out_dir.iterdir():
            if entry.is_file():
                entry.unlink()
        downloads = self.home / "downloads"
        if downloads.exists():
            shutil.rmtree(downloads, ignore_errors=True)

    # -- scenarios ----------------------------------------------------------------------------------

    def contenders_for(self, names: list[str]) -> list[str]:
        available = {"curl": self.curl is not None, "urllib3": True}
        for peer in PEERS:
            available[peer] = peer in self.peers
        available["httpx-async"] = "httpx" in self.peers
        available["pycurl-multi"] = "pycurl" in self.peers
        for name in self.us_rows:
            available[name] = True
        kept = [n for n in names if available.get(n, False)]
        for n in names:
            if n not in kept:
                self.notes.append(f"{n} is not installed: skipped")
        return kept

    def rounds(
        self, scenario: str, contenders: list[str], one: Callable[[str], dict[str, Any]]
    ) -> None:
        """``repeat`` rounds; the order of the contenders rotates from one round to the next.

        A contender that fails a round is reported in the notes with its last words, and its
        row keeps the rounds it finished: one peer's bug does not cost the whole run.
        """
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        for r in range(self.repeat):
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            for name in order:
                print(f"  [{scenario}] round {r + 1}/{self.repeat}: {name}", flush=True)
                try:
                    runs[name].append(one(name))
                except RuntimeError as exc:
                    last = str(exc).strip().splitlines()[-1][:300]
                    print(f"  [{scenario}] {name} failed: {last}", flush=True)
                    self.notes.append(f"{scenario}: {name} failed in round {r + 1}: {last}")
        self.results[scenario] = {"runs": runs}

    def scenario_a(self) -> None:
        size = self.p["download"]
        url = self.server.url(self.server.download_path)
        names = self.contenders_for(
            ["curl", "urllib3", "requests", "httpx", "aiohttp", *self.our_rows("us")]
        )
        warm_bytes = size + 64 * MIB

        def one(name: str) -> dict[str, Any]:
            if name == "curl":
                out = str(self.out_dir / "curl.bin")
                return self.curl_run(["-sS", "-o", out, "-w", "%{time_total}\n", url], warm_bytes)
            spec = {"kind": "download", "contender": name, "url": url, "size": size}
            if name in self.us_rows:
                spec.update(self.us_rows[name], contender="us")
            return self.python_run(spec, warm_bytes)

        self.rounds("a", names, one)
        self.results["a"]["bytes"] = size

    def scenario_b(self) -> None:
        n = self.p["small"]
        url = self.server.url(self.server.small_path)
        # us: a default session (the cache answers); us-wire: every task to nginx (the cache is
        # not asked, and still stores what comes back).
        ours = self.our_rows("us") + self.our_rows("us-wire", policy=WIRE)
        peers = ["curl", "pycurl-multi", "urllib3", "requests", "httpx", "httpx-async", "aiohttp"]
        names = self.contenders_for([*peers, *ours])
        config = self.work / "curl-small.cfg"
        config.write_text("".join(f'url = "{url}"\noutput = "/dev/null"\n' for _ in range(n)))

        def one(name: str) -> dict[str, Any]:
            if name == "curl":
                argv = ["-sS", "--parallel", "--parallel-max", "6", "-K", str(config)]
                return self.curl_run(argv)
            spec = {"kind": "small", "contender": name, "url": url, "n": n, "conns": 6}
            if name in self.us_rows:
                spec.update(self.us_rows[name], contender="us")
            return self.python_run(spec)

        self.rounds("b", names, one)
        self.results["b"]["requests"] = n

    def scenario_b2(self) -> None:
        """b over HTTP/2: one h2c connection (nginx ``http2``, prior knowledge), many streams."""
        n, streams = self.p["small"], self.p["streams"]
        base = getattr(self.server, "h2c_base", None)
        if base is None:
            self.notes.append(f"b2 skipped: {self.server.name} has no HTTP/2 (h2c) listener")
            return
        url = base + self.server.small_path
        ours: list[str] = []
        if self.engines.get("h2") is True:  # HTTP/2 is the curl engine's alone
            rows = self.our_rows("us-wire", policy=WIRE, http_version="2")
            ours = [row for row in rows if row.endswith("[curl]")]
        else:
            self.notes.append(
                f"b2: our curl engine over HTTP/2 not available ({_reason(self.engines.get('h2'))})"
            )
        have_h2 = "h2" in self.peers
        peers = ["curl", "pycurl-multi", *(["httpx", "httpx-async"] if have_h2 else [])]
        if not have_h2:
            self.notes.append("b2: h2 is not installed: httpx with http2=True skipped")
        config = self.work / "curl-small-h2.cfg"
        if self.curl is not None and not self.curl_reuses_h2c(url, config):
            peers.remove("curl")
        names = self.contenders_for([*peers, *ours])
        config.write_text("".join(f'url = "{url}"\noutput = "/dev/null"\n' for _ in range(n)))

        def one(name: str) -> dict[str, Any]:
            if name == "curl":
                argv = ["-sS", "--http2-prior-knowledge", "--parallel", "--parallel-max"]
                return self.curl_run([*argv, str(streams), "-K", str(config)])
            spec = {"kind": "small", "contender": name, "url": url, "n": n, "conns": 6}
            spec.update(http2=True, streams=streams)
            if name in self.us_rows:
                spec.update(self.us_rows[name], contender="us")
            return self.python_run(spec)

        self.rounds("b2", names, one)
        self.results["b2"]["requests"] = n
        self.results["b2"]["streams"] = streams

    def curl_reuses_h2c(self, url: str, config: Path) -> bool:
        """Whether the curl CLI can send two requests over one h2c connection.

        Debian 12's curl 7.88.1 cannot: the second request on a reused prior-knowledge
        connection fails with "(16) Error in the HTTP2 framing layer". pycurl's libcurl is the
        libcurl reference in b2 then.
        """
        assert self.curl is not None
        config.write_text(f'url = "{url}"\noutput = "/dev/null"\n' * 2)
        done = subprocess.run(
            [self.curl, "-sS", "--http2-prior-knowledge", "-K", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            version = subprocess.run(
                [self.curl, "--version"], capture_output=True, text=True, timeout=30, check=False
            ).stdout.split()[:2]
            why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode
            self.notes.append(
                f"b2: curl CLI skipped: {' '.join(version)} fails on a reused h2c connection ({why})"
            )
        return done.returncode == 0

    def scenario_c(self) -> None:
        size = self.p["upload"]
        names = self.contenders_for(["curl", "urllib3", "requests", "httpx", *self.our_rows("us")])
        warm_bytes = 2 * size + 64 * MIB  # nginx writes what it receives to a file too

        def one(name: str) -> dict[str, Any]:
            slug = name.replace("[", "-").replace("]", "")
            url = self.server.url(f"{self.server.upload_prefix}{slug}.bin")
            if name == "curl":
                argv = ["-sS", "-o", "/dev/null", "-T", str(self.upload_file), url]
                return self.curl_run([*argv, "-w", "%{time_total}\n"], warm_bytes)
            spec = {
                "kind": "upload",
                "contender": name,
                "url": url,
                "path": str(self.upload_file),
                "size": size,
            }
            if name in self.us_rows:
                spec.update(self.us_rows[name], contender="us")
            return self.python_run(spec, warm_bytes)

        self.rounds("c", names, one)
        self.results["c"]["bytes"] = size

    def scenario_d(self) -> None:
        size = self.p["download"]
        url = self.server.url(self.server.download_path)
        warm_bytes = size + 64 * MIB

        def one(name: str) -> dict[str, Any]:
            listeners = int(name.split()[0])
            spec = {
                "kind": "download",
                "contender": "us",
                "url": url,
                "size": size,
                "listeners": listeners,
            }
            return self.python_run(spec, warm_bytes)

        self.rounds("d", ["0 listeners", "1 listener", "10 listeners"], one)
        self.results["d"]["bytes"] = size
        self.results["d"]["latency"] = [self.latency(r) for r in range(self.repeat)]

    def scenario_r(self) -> None:
        """Bandwidth limits (issue 16): one 16 MiB download at 4 MiB/s, and two 8 MiB downloads
        sharing 4 MiB/s, per engine (the child serves the bytes itself: benchmarks/_ratelimit.py)."""
        size = 16 * MIB if not self.smoke else 2 * MIB
        rate = 4 * MIB if not self.smoke else MIB
        runs: dict[str, list[dict[str, Any]]] = {}
        for engine in ENGINES:
            if self.engine_extra(engine) is None:
                continue
            for tasks in (1, 2):
                name = f"us[{engine}] {tasks} task{'s' if tasks > 1 else ''}"
                spec = {"engine": engine, "rate": rate, "size": size // tasks, "tasks": tasks}
                for r in range(self.repeat):
                    print(f"  [r] round {r + 1}/{self.repeat}: {name}", flush=True)
                    code, out, err, *_ = run_child(
                        [sys.executable, str(HERE / "_ratelimit.py"), json.dumps(spec)],
                        self.env(),
                    )
                    if code != 0:
                        self.notes.append(f"r: {name} failed: {err.strip()[-300:]}")
                        continue
                    runs.setdefault(name, []).append(json.loads(out.strip().splitlines()[-1]))
        self.results["r"] = {"runs": runs, "size": size, "rate": rate}

    def scenario_f(self) -> None:
        """``sessions`` live sessions with one task each: the process's threads, RSS and fds."""
        n = self.p["sessions"]
        names = self.our_rows("us")
        # One round: 1,000 sessions on the urllib3 engine are ~1,900 threads and 1 GiB for a minute
        # or more, which this shared machine (and everyone on it) feels; --repeat does not change it.
        rounds = 1
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                print(f"  [f] round {r + 1}/{rounds}: {name}", flush=True)
                try:
                    runs[name].append(self.held_run(name, n))
                except RuntimeError as exc:
                    last = str(exc).strip().splitlines()[-1][:300]
                    self.notes.append(f"f: {name} failed in round {r + 1}: {last}")
        self.results["f"] = {"runs": runs, "sessions": n}

    def held_run(self, name: str, n: int) -> dict[str, Any]:
        """One f contender against a hold server of its own (``_hold.py``), stopped after it."""
        hold = subprocess.Popen(
            [sys.executable, str(HERE / "_hold.py"), str(n)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert hold.stdout is not None
            port = int(hold.stdout.readline())
            spec = {"kind": "sessions", "contender": "us", "url": f"http://127.0.0.1:{port}/1k"}
            result = self.python_run({**spec, **self.us_rows[name], "n": n})
        finally:
            hold.kill()
            hold.wait(30)
        assert hold.stdout is not None
        out = hold.stdout.read()
        hold.stdout.close()
        held = next((json.loads(x) for x in out.splitlines() if x.startswith("{")), None)
        result["held_at_once"] = held["held"] if held else 0
        return result

    def latency(self, seed: int) -> dict[str, Any]:
        chunks, size = self.p["latency_chunks"], 16 * 1024
        times = self.work / "trickle.json"
        trickle = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_trickle.py"),
                str(times),
                str(chunks),
                str(size),
                str(seed),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert trickle.stdout is not None
            port = int(trickle.stdout.readline())
            spec = {"kind": "latency", "contender": "us", "url": f"http://127.0.0.1:{port}/t"}
            result = self.python_run(spec)
            trickle.wait(30)
        finally:
            if trickle.poll() is None:
                trickle.kill()
                trickle.wait()
        sent = json.loads(times.read_text())
        calls = result.pop("calls")
        lat = []
        i = 0
        for t_sent, end in sent:
            while i < len(calls) and calls[i][1] < end:
                i += 1
            if i == len(calls):
                raise RuntimeError("a chunk was never reported to the listener")
            lat.append((calls[i][0] - t_sent) / 1e6)
        lat.sort()
        return {
            "chunks": len(lat),
            "events": len(calls),
            "p50_ms": _pct(lat, 50),
            "p99_ms": _pct(lat, 99),
            "max_ms": lat[-1],
        }

    def scenario_e(self) -> None:
        n = self.p["events"]
        url = self.server.url(self.server.small_path)
        cold: list[dict[str, Any]] = []
        replay: list[dict[str, Any]] = []
        memory: list[dict[str, Any]] = []
        rounds = min(self.repeat, 3)  # a round hands 10,000 tasks over: ~1 min
        for r in range(rounds):
            print(f"  [e] round {r + 1}/{rounds}", flush=True)
            with self.background_home() as home:
                spec = {"kind": "background", "identifier": BACKGROUND_ID}
                cold.append(self.bg_run({**spec, "contender": "cold"}, home))
                self.stop_daemon(home)
                fill = {**spec, "contender": "fill", "url": url, "n": n}
                filled = self.bg_run(fill, home)
                self.wait_drained(home, n)
                result = self.bg_run({**spec, "contender": "replay"}, home)
                if result["events"] != n:
                    raise RuntimeError(f"replayed {result['events']} of {n} events")
                result["fill_seconds"] = filled["seconds"]
                result["fill"] = filled
                replay.append(result)
                self.stop_daemon(home)
            with self.background_home() as home:
                base = self.bg_run({**spec, "contender": "cold"}, home)
                idle = self.daemon_rss(home)
                queued = {**spec, "contender": "fill", "url": url, "n": n, "queued": True}
                self.bg_run(queued, home)
                memory.append({"idle_rss_kib": idle, **self.daemon_rss_detail(home), "cold": base})
                self.stop_daemon(home)
        self.results["e"] = {"cold": cold, "replay": replay, "memory": memory, "events": n}
        self.results["e"]["inflight"] = _bg_scale.scenario_e_scale(self)

    @contextlib.contextmanager
    def background_home(self) -> Iterator[Path]:
        # On disk, as a user's state directory is: the journal's fsyncs are part of the cost.
        home = Path(tempfile.mkdtemp(prefix="urlsession-bench-bg-"))
        try:
            yield home
        finally:
            self.stop_daemon(home)
            shutil.rmtree(home, ignore_errors=True)

    def bg_run(self, spec: dict[str, Any], home: Path) -> dict[str, Any]:
        env = self.env()
        env["URLSESSION_HOME"] = str(home)
        code, out, err, wall, cpu, rss = run_child(
            [sys.executable, str(HERE / "_contenders.py"), json.dumps(spec)], env
        )
        if code != 0:
            raise RuntimeError(f"background {spec['contender']} failed ({code}): {err[-2000:]}")
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result.update(rss_kib=rss, process_cpu=cpu, wall=wall)
        return result

    def daemon_pid(self, home: Path) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((home / "transfer.pid").read_text())
        return None

    def daemon_rss(self, home: Path) -> int:
        return self.daemon_rss_detail(home)["rss_kib"]

    def daemon_rss_detail(self, home: Path) -> dict[str, int]:
        pid = self.daemon_pid(home)
        fields = {"rss_kib": 0, "peak_rss_kib": 0}
        if pid is None:
            return fields
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    fields["rss_kib"] = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    fields["peak_rss_kib"] = int(line.split()[1])
        return fields

    def wait_drained(self, home: Path, n: int, timeout: float = 900) -> None:
        """Until the journal holds ``n`` finished tasks (the host that made them is gone)."""
        import sqlite3

        from urlsession_module._background._journal import OUTSTANDING

        marks = ",".join("?" * len(OUTSTANDING))
        deadline = time.monotonic() + timeout
        db = home / "journal.sqlite3"
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error):
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                try:
                    left = con.execute(
                        f"SELECT COUNT(*) FROM tasks WHERE state IN ({marks})", OUTSTANDING
                    ).fetchone()[0]
                    total = con.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
                finally:
                    con.close()
                if total >= n and left == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError("the transfer process did not finish the tasks in time")

    def stop_daemon(self, home: Path) -> None:
        pid = self.daemon_pid(home)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.stop()
        shutil.rmtree(self.work, ignore_errors=True)


# -- summaries --------------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _stat(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(bench: Bench) -> dict[str, Any]:
    res = bench.results
    summary: dict[str, Any] = {}
    units = (("a", "MB/s"), ("b", "req/s"), ("b2", "req/s"), ("c", "MB/s"), ("d", "MB/s"))
    for key, unit in units:
        if key not in res:
            continue
        amount = res[key].get("bytes", res[key].get("requests", 0))
        scale = 1e6 if unit == "MB/s" else 1
        rows = {}
        for name, runs in res[key]["runs"].items():
            if not runs:  # failed every round (the notes say how)
                continue
            rows[name] = {
                "rate": _stat([amount / r["seconds"] / scale for r in runs]),
                "seconds": _stat([r["seconds"] for r in runs]),
                "cpu": _stat([r["cpu"] for r in runs]),
                "rss_mib": _stat([r["rss_kib"] / 1024 for r in runs]),
                "server_cpu": _stat([r["server_cpu"] for r in runs]),
                "events": _stat([r.get("events", 0) for r in runs]),
            }
            if unit == "req/s":  # our own work per task is what issue 14 budgets
                rows[name]["cpu_us_per_task"] = _stat([r["cpu"] / amount * 1e6 for r in runs])
        summary[key] = {"unit": unit, "rows": rows}
    ratios: dict[str, Any] = {}

    def ratio(key: str, a: str, b: str, key_b: str | None = None) -> float | None:
        rows_a = summary.get(key, {}).get("rows", {})
        rows_b = summary.get(key_b or key, {}).get("rows", {})
        if a in rows_a and b in rows_b:
            return float(rows_a[a]["rate"]["median"] / rows_b[b]["rate"]["median"])
        return None

    def paired(key: str, a: str, b: str) -> float | None:
        runs = res.get(key, {}).get("runs", {})
        if a not in runs or b not in runs or len(runs[a]) != len(runs[b]) or not runs[a]:
            return None
        return float(
            statistics.median(
                rb["seconds"] / ra["seconds"] for ra, rb in zip(runs[a], runs[b], strict=True)
            )
        )

    # Ours against the references issue 14 names, every ratio within this one run.
    references = {
        "a": ("curl", "urllib3", "aiohttp"),
        "b": ("curl", "pycurl-multi", "urllib3", "aiohttp"),
        "b2": ("curl", "pycurl-multi", "httpx", "httpx-async"),
        "c": ("curl", "urllib3"),
    }
    for key, refs in references.items():
        for ours in summary.get(key, {}).get("rows", {}):
            if not ours.startswith("us"):
                continue
            for name in refs:
                ratios[f"{key}: {ours} / {name}"] = ratio(key, ours, name)
            if key == "b2":  # over HTTP/2 against the same engine over HTTP/1.1
                ratios[f"b2: {ours} / b: {ours}"] = ratio("b2", ours, ours, "b")
    if "d" in summary:
        # Paired: each round runs the three one after another, so a ratio within a round is
        # free of the drift between rounds (a 1 GiB download varies by +-25 % from run to run).
        d0 = paired("d", "10 listeners", "0 listeners")
        d1 = paired("d", "1 listener", "0 listeners")
        ratios["d: cost of 10 listeners"] = None if d0 is None else 1 - d0
        ratios["d: cost of 1 listener"] = None if d1 is None else 1 - d1
        lat = res["d"]["latency"]
        summary["d"]["latency"] = {
            "p50_ms": _stat([x["p50_ms"] for x in lat]),
            "p99_ms": _stat([x["p99_ms"] for x in lat]),
            "max_ms": _stat([x["max_ms"] for x in lat]),
            "events": _stat([x["events"] for x in lat]),
            "chunks": lat[0]["chunks"],
        }
    if "r" in res:
        summary["r"] = {
            "size": res["r"]["size"],
            "rate": res["r"]["rate"],
            "rows": {
                name: {
                    "seconds": _stat([t["seconds"] for run in runs for t in run["tasks"]]),
                    "mib_per_s": _stat([t["mib_per_s"] for run in runs for t in run["tasks"]]),
                    "max_gap_s": _stat([t["max_gap_s"] for run in runs for t in run["tasks"]]),
                }
                for name, runs in res["r"]["runs"].items()
                if runs
            },
        }
    if "e" in res:
        e = res["e"]
        summary["e"] = {
            "cold_ms": _stat([r["seconds"] * 1000 for r in e["cold"]]),
            "replay_ms": _stat([r["seconds"] * 1000 for r in e["replay"]]),
            "fill_seconds": _stat([r["fill_seconds"] for r in e["replay"]]),
            "host_rss_mib_after_replay": _stat([r["rss_kib"] / 1024 for r in e["replay"]]),
            "daemon_idle_rss_mib": _stat([m["idle_rss_kib"] / 1024 for m in e["memory"]]),
            "daemon_rss_mib_queued": _stat([m["rss_kib"] / 1024 for m in e["memory"]]),
            "daemon_peak_rss_mib_queued": _stat([m["peak_rss_kib"] / 1024 for m in e["memory"]]),
            "events": e["events"],
        }
        summary["e"].update(_bg_scale.summary(e, _stat))
    if "f" in res:
        rows = {}
        for name, runs in res["f"]["runs"].items():
            if not runs:
                continue
            rows[name] = {
                field: _stat([float(r[field]) for r in runs])
                for field in (
                    "threads_before",
                    "threads_peak",
                    "fds_peak",
                    "held_at_once",
                    "create_seconds",
                    "seconds",
                    "cpu",
                )
            }
            rows[name]["rss_mib_before"] = _stat([r["rss_kib_before"] / 1024 for r in runs])
            rows[name]["rss_mib_peak"] = _stat([r["rss_kib_peak"] / 1024 for r in runs])
        summary["f"] = {"sessions": res["f"]["sessions"], "rows": rows}
    summary["ratios"] = ratios
    summary["targets"] = check_targets(summary, bench)
    return summary


def check_targets(s: dict[str, Any], bench: Bench) -> list[dict[str, Any]]:
    """Issue 14's targets (and issue 6's that still stand): measured value, met or not.

    ``met`` is True/False, or None when the run could not tell (a row missing: the engine is not
    available, a peer not installed, the scenario not run); ``measured`` then says why.
    """
    r = s.get("ratios", {})
    out: list[dict[str, Any]] = []

    def missing(engine: str | None) -> str:
        if engine and bench.engine_extra(engine) is None:
            return "engine not available"
        return "not measured"

    def at_least(target: str, value: float | None, bound: float, engine: str | None) -> None:
        if value is None:
            out.append({"target": target, "measured": missing(engine), "met": None})
        else:
            out.append({"target": target, "measured": f"{value:.2f}x", "met": value >= bound})

    def at_most(target: str, value: float | None, bound: float, unit: str, engine: str) -> None:
        if value is None:
            out.append({"target": target, "measured": missing(engine), "met": None})
        else:
            out.append(
                {"target": target, "measured": f"{value:,.1f} {unit}", "met": value <= bound}
            )

    def row(key: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = s.get(key, {}).get("rows", {}).get(name)
        return found

    if "a" in s:
        for e in ENGINES:
            us = f"us[{e}]"
            at_least(f"a: {e} engine >= 0.9x curl", r.get(f"a: {us} / curl"), 0.9, e)
            bound = 0.9 if e == "curl" else 1.0
            at_least(
                f"a: {e} engine >= {bound}x raw urllib3 read(1 MiB)",
                r.get(f"a: {us} / urllib3"),
                bound,
                e,
            )
            found = row("a", us)
            rss = None if found is None else found["rss_mib"]["max"]
            at_most(f"a: {e} engine peak RSS <= 64 MiB", rss, 64, "MiB", e)
    if "b" in s:
        for e in ENGINES:
            at_least(
                f"b: {e} engine, cache answers, >= 1.0x aiohttp",
                r.get(f"b: us[{e}] / aiohttp"),
                1,
                e,
            )
        wire = "b: curl engine on the wire"
        at_least(f"{wire} >= 1.0x aiohttp", r.get("b: us-wire[curl] / aiohttp"), 1.0, "curl")
        at_least(
            f"{wire} >= 2.0x aiohttp (moonshot)", r.get("b: us-wire[curl] / aiohttp"), 2, "curl"
        )
        found = row("b", "us-wire[curl]")
        cpu = None if found is None else found["cpu_us_per_task"]["median"]
        at_most(f"{wire} <= 100 µs CPU a task", cpu, 100, "µs", "curl")
        at_least(
            "b: urllib3 engine on the wire >= 1.0x urllib3 + 6 threads",
            r.get("b: us-wire[urllib3] / urllib3"),
            1.0,
            "urllib3",
        )
    if "b2" in s:
        ours = "us-wire[curl]"
        at_least(
            "b2 (HTTP/2): curl engine >= its own HTTP/1.1 figure (b, on the wire)",
            r.get(f"b2: {ours} / b: {ours}"),
            1.0,
            "curl",
        )
        versus = [v for k in ("httpx", "httpx-async") if (v := r.get(f"b2: {ours} / {k}"))]
        at_least(
            "b2 (HTTP/2): curl engine ahead of httpx http2=True (its faster row)",
            min(versus) if versus else None,
            1.0,
            "curl",
        )
    if "c" in s:
        for e in ENGINES:
            at_least(f"c: {e} engine >= 0.9x curl -T", r.get(f"c: us[{e}] / curl"), 0.9, e)
    if "d" in s:
        cost = r.get("d: cost of 10 listeners")
        at_most("d: 10 listeners cost <= 5 %", None if cost is None else cost * 100, 5, "%", "")
        at_most("d: p99 < 5 ms", s["d"]["latency"]["p99_ms"]["median"], 5, "ms", "")
    if "e" in s:
        at_most("e: cold start < 300 ms", s["e"]["cold_ms"]["median"], 300, "ms", "")
        at_most("e: replay < 1 s", s["e"]["replay_ms"]["median"] / 1000, 1, "s", "")
        e17 = s["e"]
        at_most("e: replay < 0.4 s (issue 17)", e17["replay_ms"]["median"] / 1000, 0.4, "s", "")
        if "call_median_us" in e17:
            at_most("e: hand-over <= 50 us a call", e17["call_median_us"]["median"], 50, "us", "")
            at_most("e: tasks journaled < 1 s", e17["journaled_seconds"]["median"], 1, "s", "")
        at_most("e: queued RSS <= 64 MiB", e17["daemon_rss_mib_queued"]["median"], 64, "MiB", "")
        if "inflight" in e17:
            peak = e17["inflight"]["peak_rss_mib"]["median"]
            at_most("e: in flight, peak RSS <= 100 MiB", peak, 100, "MiB", "")
    if "f" in s:
        for e in ENGINES:
            found = row("f", f"us[{e}]")
            target = f"f: {s['f']['sessions']:,} live sessions, {e} engine: threads and RSS"
            if found is None:
                out.append({"target": target, "measured": missing(e), "met": None})
                continue
            measured = (
                f"{found['threads_peak']['median']:,.0f} threads, "
                f"{found['rss_mib_peak']['median']:,.0f} MiB"
            )
            out.append({"target": target, "measured": measured, "met": None, "reported": True})
    return out


def _f(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _rng(st: dict[str, float], digits: int = 0) -> str:
    return f"{_f(st['median'], digits)} ({_f(st['min'], digits)}-{_f(st['max'], digits)})"


def markdown(bench: Bench, s: dict[str, Any], meta: dict[str, Any]) -> str:
    engines = meta.get("engines", {})
    offered = [e for e in ENGINES if engines.get(e) is True] or ["urllib3 (no 'engine' property)"]
    lines = [
        "# Benchmark results",
        "",
        f"{meta['when']} · {meta['machine']} · Python {meta['python']} · server: {meta['server']}"
        f" · {meta['repeat']} round(s){' · SMOKE (tiny sizes)' if meta['smoke'] else ''}",
        "",
        f"Engines offered by the package: {', '.join(offered)}; a configuration that names none "
        f"gets {engines.get('default') or 'urllib3'} (scenarios d and e run on it). "
        "`us[engine]` is a default session on that engine (for b, the cache answers most tasks); "
        "`us-wire[engine]` sends every task to the server (`requestCachePolicy: "
        "'reloadIgnoringLocalCacheData'`).",
        "",
        "Medians, with min-max in brackets. CPU: the contender's user+system seconds over the "
        "transfer; RSS: the contender process's peak; server CPU: nginx's seconds in the same run.",
        "",
    ]
    titles = {
        "a": f"a) one {meta['sizes']['download'] // MIB} MiB download to a file",
        "b": f"b) {meta['sizes']['small']} data tasks of 1 KiB, 6 connections",
        "b2": f"b2) {meta['sizes']['small']} data tasks of 1 KiB over HTTP/2: one h2c connection, "
        f"{meta['sizes']['streams']} streams in flight (httpx sync: 6 threads)",
        "c": f"c) one {meta['sizes']['upload'] // MIB} MiB upload from a file (curl: `curl -T`)",
        "d": "d) event cost: scenario a with 0, 1 and 10 progress listeners "
        f"({engines.get('default') or 'urllib3'} engine)",
    }
    for key in ("a", "b", "b2", "c", "d"):
        if key not in s:
            continue
        unit = s[key]["unit"]
        per_task = unit == "req/s"
        lines += [
            f"## {titles[key]}",
            "",
            f"| contender | {unit} | seconds | CPU s |{' CPU µs/task |' if per_task else ''}"
            " peak RSS MiB | server CPU s | events |",
            f"|---|---:|---:|---:|{'---:|' if per_task else ''}---:|---:|---:|",
        ]
        for name, row in s[key]["rows"].items():
            cell = f" {_rng(row['cpu_us_per_task'])} |" if per_task else ""
            lines.append(
                f"| {name} | {_rng(row['rate'])} | {_rng(row['seconds'], 3)} | "
                f"{_rng(row['cpu'], 2)} |{cell} {_rng(row['rss_mib'], 1)} | "
                f"{_f(row['server_cpu']['median'], 2)} | {_f(row['events']['median'])} |"
            )
        if key == "d":
            lat = s["d"]["latency"]
            lines += [
                "",
                f"Latency from a byte's arrival to its listener ({lat['chunks']} chunks of 16 KiB"
                " sent 1-20 ms apart): "
                f"p50 {_rng(lat['p50_ms'], 2)} ms, p99 {_rng(lat['p99_ms'], 2)} ms, "
                f"max {_rng(lat['max_ms'], 2)} ms; {_f(lat['events']['median'])} events.",
            ]
        lines.append("")
    if "r" in s:
        r = s["r"]
        lines += [
            f"## r) bandwidth limits: {r['size'] // MIB} MiB at {r['rate'] // MIB} MiB/s, "
            "one task or two sharing the session's limit",
            "",
            "Per task: seconds from creation to sessioncompleted, its rate, and the longest gap "
            "between two of its progress events.",
            "",
            "| contender | seconds | MiB/s | longest progress gap s |",
            "|---|---:|---:|---:|",
        ]
        for name, row in r["rows"].items():
            lines.append(
                f"| {name} | {_rng(row['seconds'], 2)} | {_rng(row['mib_per_s'], 2)} | "
                f"{_rng(row['max_gap_s'], 2)} |"
            )
        lines.append("")
    if "e" in s:
        e = s["e"]
        lines += [
            f"## e) background sessions ({e['events']:,} tasks)",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| cold start: createSession until the transfer process answers (ms) | {_rng(e['cold_ms'])} |",
            f"| replay of {e['events']:,} missed events to a relaunched host, until sessioneventscompleted (ms) | {_rng(e['replay_ms'])} |",
            f"| handing {e['events']:,} tasks to the transfer process (s) | {_rng(e['fill_seconds'], 2)} |",
            f"| host peak RSS after the replay (MiB) | {_rng(e['host_rss_mib_after_replay'], 1)} |",
            f"| transfer process RSS, idle (MiB) | {_rng(e['daemon_idle_rss_mib'], 1)} |",
            f"| transfer process RSS with {e['events']:,} queued tasks (MiB) | {_rng(e['daemon_rss_mib_queued'], 1)} |",
            *_bg_scale.markdown(e, _rng),
            "",
        ]
    if "f" in s:
        f = s["f"]
        lines += [
            f"## f) {f['sessions']:,} live sessions, one data task each",
            "",
            "Every task in flight at once (the server answers none until all have arrived; "
            "'held' is how many it held together). Threads from `/proc/self/status`, sampled "
            "every 0.1 s until the last `sessioncompleted`.",
            "",
            "| contender | threads before | threads peak | RSS MiB before | RSS MiB peak |"
            " fds peak | held | create s | until done s | CPU s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in f["rows"].items():
            lines.append(
                f"| {name} | {_f(row['threads_before']['median'])} | "
                f"{_rng(row['threads_peak'])} | {_f(row['rss_mib_before']['median'], 1)} | "
                f"{_rng(row['rss_mib_peak'], 1)} | {_f(row['fds_peak']['median'])} | "
                f"{_f(row['held_at_once']['min'])} | {_rng(row['create_seconds'], 2)} | "
                f"{_rng(row['seconds'], 2)} | {_rng(row['cpu'], 2)} |"
            )
        lines.append("")
    lines += [
        "## Ratios (ours / reference, medians of the same run)",
        "",
        "| ratio | value |",
        "|---|---:|",
    ]
    for name, value in s["ratios"].items():
        if value is None:
            continue
        shown = f"{value * 100:.1f} %" if name.startswith("d: cost") else f"{value:.2f}x"
        lines.append(f"| {name} | {shown} |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---:|---|"]
    for t in s["targets"]:
        ok = t["met"]
        met = (
            "reported" if t.get("reported") else "n/a" if ok is None else "yes" if ok else "**no**"
        )
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    if bench.notes:
        lines += ["", "Notes:", "", *[f"- {n}" for n in dict.fromkeys(bench.notes)]]
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f", {kib / (1 << 20):.0f} GiB"
    return f"{os.cpu_count()} CPUs ({cpu}){mem}, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round, fast")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, from {SCENARIOS}"
    )
    parser.add_argument("--repeat", type=int, default=0, help="rounds per scenario")
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
        help=f"our rows on these engines, from {ENGINES} (default: both)",
    )
    parser.add_argument("--no-install", action="store_true", help="use what is installed")
    parser.add_argument(
        "--local-server", action="store_true", help="serve with LocalServer, not nginx"
    )
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    if set(args.engines) - set(ENGINES) or not args.engines:
        parser.error(f"--engines: one or more of {ENGINES} (got {args.engines})")
    started = time.monotonic()
    bench = Bench(args)
    try:
        bench.start(install=not args.no_install, local=args.local_server)
        print(f"server: {bench.server.name} at {bench.server.base}", flush=True)
        for key in scenarios:
            getattr(bench, f"scenario_{key}")()
    finally:
        bench.stop()
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "python": platform.python_version(),
        "server": bench.server.name,
        "repeat": bench.repeat,
        "smoke": bench.smoke,
        "sizes": bench.p,
        "engines": bench.engines,
        "seconds": round(time.monotonic() - started, 1),
    }
    summary = summarize(bench)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = "smoke" if args.smoke else "latest"  # a smoke run never replaces real figures
    (args.results / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "raw": bench.results}, indent=1) + "\n"
    )
    text = markdown(bench, summary, meta)
    (args.results / f"{stem}.md").write_text(text)
    print(text)
    print(f"wrote {args.results / stem}.md and {stem}.json in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
