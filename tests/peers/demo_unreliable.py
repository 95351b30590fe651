"""Issue 16 demonstration: metrics, waiting for connectivity, rate limits, resume data, retries.

Run from the repository root:  python tests/peers/demo_unreliable.py [curl|urllib3]
Not a test (the tests are tests/unreliable, tests/cli/test_unreliable.py and
tests/with_server/test_unreliable_background.py): each step is a real
`python -m urlsession_module get ...` subprocess, or a few lines of the Python API where the CLI
has no flag (`waitsForConnectivity`, `cancelByProducingResumeData`), printed with what it
printed. Peers: pproxy (the HTTP proxy), nginx with trustme certificates (HTTP/2 by ALPN), the
package's LocalServer and FaultServer (a reset mid-body, a 503 with Retry-After).
"""

import hashlib
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.getcwd())
from tests.peers._certs import make_certs
from tests.peers.nginx import Nginx
from tests.peers.proxy import Pproxy
from urlsession_module.testing import FaultServer, LocalServer
from urlsession_module.testing._content import content_bytes

engine = sys.argv[1] if len(sys.argv) > 1 else "curl"
tmp = Path(tempfile.mkdtemp())
env = dict(os.environ, URLSESSION_ENGINE=engine, URLSESSION_HOME=str(tmp / "home"))
for k in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    env.pop(k, None)


def run(args: list[str], tail: int = 14) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "urlsession_module", *args]
    print(f"$ urlsession {' '.join(shlex.quote(a) for a in args)}")
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    took = time.monotonic() - t0
    for line in (out.stdout + out.stderr).strip().splitlines()[-tail:]:
        print("   ", line[:200])
    print(f"    exit {out.returncode} after {took:.2f} s")
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "missing"


def python(code: str) -> None:
    print("$ python - <<EOF\n" + "\n".join("  " + x for x in code.strip().splitlines()) + "\nEOF")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    for line in (out.stdout + out.stderr).strip().splitlines()[-12:]:
        print("   ", line[:200])
    print("    exit", out.returncode)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


certs = make_certs(tmp / "certs")
print(f"# engine: {engine}")
with LocalServer() as origin, FaultServer() as faults:
    print("\n## 1. metrics: --timing through an HTTP proxy (pproxy)")
    with Pproxy(tmp / "proxy", "http") as p:
        run(
            [
                "get",
                "--timing",
                "-q",
                "--proxy",
                p.url,
                origin.url("/bytes/100000"),
                "-o",
                str(tmp / "m.bin"),
            ]
        )
        print("    proxy relayed:", p.connections())
    if engine == "curl":
        with Nginx(
            os.popen("command -v nginx").read().strip() or "/usr/sbin/nginx",
            tmp / "nginx",
            {"1m.bin": 1 << 20},
            certs=certs,
        ) as ng:
            print("\n## 1. metrics: --timing over HTTP/2 (nginx, h2 by ALPN)")
            run(
                [
                    "get",
                    "--timing",
                    "-q",
                    "--cacert",
                    str(certs.ca),
                    ng.url("https", "/files/1m.bin"),
                    "-o",
                    str(tmp / "h2.bin"),
                ]
            )
    print("\n## 1. metrics in a background session (the transfer process measures)")
    run(
        [
            "get",
            "--timing",
            "-q",
            "--background",
            f"demo-{engine}",
            origin.url("/redirect-to?url=/bytes/5000"),
            "-o",
            str(tmp / "bg.bin"),
        ]
    )

    print("\n## 2. waitsForConnectivity: a server that starts listening 2 s after the task")
    port = free_port()
    python(
        f"""
import time, urlsession_module as U
from urlsession_module.testing import LocalServer
import threading
srv = LocalServer(port={port}); timer = threading.Timer(2.0, srv.start); timer.start()
s = U.createSession({{'configuration': U.createSessionConfiguration({{'engine': '{engine}', 'waitsForConnectivity': True}})}})
t0 = time.monotonic()
s.addEventListener('waitingforconnectivity', lambda e: print(f'{{time.monotonic()-t0:.2f}} s waitingforconnectivity', e.taskIdentifier, e.errorCode))
s.addEventListener('sessioncompleted', lambda e: print(f'{{time.monotonic()-t0:.2f}} s sessioncompleted', e.success, e.statusCode))
s.dataTask({{'url': 'http://127.0.0.1:{port}/bytes/100'}}); s.waitForTasks(20)
s.finishTasksAndInvalidate(); s.waitForInvalidation(5); timer.join(); srv.stop()
"""
    )
    port = free_port()
    print("   (and the CLI's background session, which always waits: the server starts 2 s later)")
    late = LocalServer(port=port)
    timer = threading.Timer(2.0, late.start)
    timer.start()
    run(
        [
            "get",
            "-q",
            "--background",
            f"demo-{engine}",
            f"http://127.0.0.1:{port}/bytes/3000",
            "-o",
            str(tmp / "late.bin"),
        ]
    )
    timer.join()
    late.stop()

    print("\n## 3. bandwidth: 16 MiB at --limit-rate 4M (4 s expected)")
    run(
        ["get", "-q", "--limit-rate", "4M", origin.url("/bytes/16777216"), "-o", str(tmp / "r.bin")]
    )
    print(
        "    sha256 ok:",
        sha(tmp / "r.bin") == hashlib.sha256(content_bytes(16 << 20)).hexdigest()[:16],
    )
    python(
        f"""
import time, urlsession_module as U
cfg = U.createSessionConfiguration({{'engine': '{engine}', 'maximumBytesPerSecond': 4 << 20}})
s = U.createSession({{'configuration': cfg}})
ends = {{}}
t0 = time.monotonic()
s.addEventListener('downloadcompleted', lambda e: ends.__setitem__(e.taskIdentifier, time.monotonic() - t0))
for _ in range(2): s.downloadTask({{'url': '{origin.url("/bytes/8388608")}'}})
s.waitForTasks(30)
print('two 8 MiB tasks sharing 4 MiB/s:', {{k: f'{{v:.2f}} s = {{8 / v:.2f}} MiB/s' for k, v in ends.items()}})
s.finishTasksAndInvalidate(); s.waitForInvalidation(5)
"""
    )

    print("\n## 3. bandwidth in a background session: setMaximumBytesPerSecond mid-download")
    python(
        f"""
import time, urlsession_module as U
cfg = U.createSessionConfiguration({{'identifier': 'demo-rate-{engine}', 'engine': '{engine}'}})
s = U.createSession({{'configuration': cfg}})
seen = [0]
s.addEventListener('downloadprogress', lambda e: seen.__setitem__(0, e.totalBytesWritten))
t0 = time.monotonic()
s.downloadTask({{'url': '{origin.url("/bytes/4000000?rate=1000000")}'}})
while seen[0] < 300000 and time.monotonic() - t0 < 20: time.sleep(0.02)
s.setMaximumBytesPerSecond(64 * 1024)
time.sleep(1.0); a = seen[0]; time.sleep(2.0)
print(f'after 64 KiB/s was set: {{(seen[0] - a) / 2 / 1024:.0f}} KiB/s over 2 s (the server sends ~977)')
s.setMaximumBytesPerSecond(None); t1 = time.monotonic()
s.waitForTasks(30)
print(f'limit lifted: the rest took {{time.monotonic() - t1:.2f}} s; configuration now', s.configuration.maximumBytesPerSecond)
s.finishTasksAndInvalidate(); s.waitForInvalidation(10)
"""
    )

    print(
        "\n## 4. resume data: -C - after a reset mid-body (FaultServer), then the run that continues"
    )
    key = uuid.uuid4().hex
    url = faults.url("flaky-download", length=3_000_000, after=1_000_000, key=key)
    out = tmp / "resume.bin"
    run(["get", "-q", "-C", "-", url, "-o", str(out)])
    print("    left beside the file:", sorted(p.name for p in tmp.glob("resume.bin*")))
    run(["get", "-q", "-C", "-", url, "-o", str(out)])
    print(
        "    Range of each request:",
        [q.headers.get("range") for q in faults.requests if key in q.target],
    )
    print("    file is the resource:", out.read_bytes() == content_bytes(3_000_000))
    python(
        f"""
import urlsession_module as U, threading
from urlsession_module.testing._content import content_bytes
s = U.createSession({{'configuration': U.createSessionConfiguration({{'engine': '{engine}'}})}})
got = threading.Event(); box = {{}}; done = {{}}
def progress(e):
    if e.totalBytesWritten > 300000 and not box:
        box['asked'] = True
        s.getTask(e.taskIdentifier).cancelByProducingResumeData(lambda r: (box.update(r), got.set()))
s.addEventListener('downloadprogress', progress)
s.addEventListener('downloadcompleted', lambda e: done.update(body=e.data.read()))
s.downloadTask({{'url': '{origin.url("/bytes/4000000?rate=2000000")}'}})
got.wait(20); print('resumeData:', (box.get('resumeData') or '')[:70], '...')
s.waitForTasks(10)
s.downloadTask({{'resumeData': box['resumeData']}}); s.waitForTasks(30)
print('continued body is the resource:', done['body'] == content_bytes(4000000))
s.finishTasksAndInvalidate(); s.waitForInvalidation(5)
"""
    )

    print("\n## 5. retries: --retry 5 through two resets mid-body (each retry resumes with Range)")
    key = uuid.uuid4().hex
    url = faults.url("flaky-download", length=2_000_000, after=500_000, key=key, fail=2)
    run(["get", "-q", "--retry", "5", "--timing", url, "-o", str(tmp / "retry.bin")])
    print(
        "    Range of each request:",
        [q.headers.get("range") for q in faults.requests if key in q.target],
    )
    print("    file is the resource:", (tmp / "retry.bin").read_bytes() == content_bytes(2_000_000))
    print(
        "\n## 5. retries: a 503 with Retry-After: 1, --retry 2 (three requests, ~2 s, then the 503)"
    )
    run(
        [
            "get",
            "--retry",
            "2",
            "--timing",
            faults.url("status", code=503, retry_after=1),
            "-o",
            str(tmp / "503.txt"),
        ]
    )

    print("\n## 5. retries in a background session (its policy: the journal counts the attempts)")
    key = uuid.uuid4().hex
    url = faults.url("flaky-download", length=2_000_000, after=500_000, key=key, fail=1)
    run(
        [
            "get",
            "-q",
            "--retry",
            "3",
            "--timing",
            "--background",
            f"demo-{engine}",
            url,
            "-o",
            str(tmp / "bgretry.bin"),
        ]
    )
    print(
        "    Range of each request:",
        [q.headers.get("range") for q in faults.requests if key in q.target],
    )
    print(
        "    file is the resource:", (tmp / "bgretry.bin").read_bytes() == content_bytes(2_000_000)
    )
