"""The reference servers: Debian's nginx on 127.0.0.1 (sendfile, keep-alive, PUT), or LocalServer.

nginx is the reference (a C server that is never the bottleneck of a Python client); the shipped
:class:`~urlsession_module.testing.LocalServer` stands in when nginx cannot be had (smoke mode on
a machine without it). Both offer the same three URLs: a file to download, a 1 KiB file, and a
PUT endpoint.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["Nginx", "Server", "StandIn", "ensure_nginx", "make_file"]

BLOCK = 1 << 20


def make_file(path: Path, size: int) -> Path:
    """A file of ``size`` pseudo-random-looking bytes (a repeated 1 MiB pattern), made once."""
    if path.exists() and path.stat().st_size == size:
        return path
    pattern = bytes((i * 2654435761 >> 13) & 0xFF for i in range(BLOCK))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, BLOCK)
            f.write(pattern[:n])
            left -= n
    tmp.replace(path)
    return path


def ensure_nginx(install: bool) -> str | None:
    """The nginx binary, installed with apt-get (as root) when ``install``; None if not to be had."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found or not install:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "nginx", "curl"]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=False).returncode:
            return None
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """What a scenario needs of a server: URLs and how much CPU it has used so far."""

    name = "server"
    download_path = "/"
    small_path = "/"
    upload_prefix = "/"
    base = ""

    def url(self, path: str) -> str:
        return self.base + path

    def cpu_seconds(self) -> float:
        return 0.0

    def stop(self) -> None:
        pass


_CONF = """\
{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {root}/www;
        location /files/ {{ }}
        location /put/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }}
    }}
}}
"""


class Nginx(Server):
    """nginx from a config in a temp dir, one worker, on 127.0.0.1:<free port>."""

    name = "nginx"
    download_path = "/files/big.bin"
    small_path = "/files/1k.bin"
    upload_prefix = "/put/"

    def __init__(self, binary: str, data_dir: Path, download_size: int, base: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nginx-", dir=base))
        os.chmod(self.root, 0o755)
        www = self.root / "www"
        (www / "files").mkdir(parents=True)
        (www / "put").mkdir()
        (self.root / "tmp").mkdir()
        big = make_file(data_dir / f"download-{download_size}.bin", download_size)
        if _same_fs(big, www):
            os.link(big, www / "files" / "big.bin")
        else:
            shutil.copy(big, www / "files" / "big.bin")
        (www / "files" / "1k.bin").write_bytes(
            bytes(48 + i % 75 for i in range(1024))
        )  # ASCII text
        port = _free_port()
        user = ""
        if os.geteuid() == 0:
            user = f"user {pwd.getpwuid(0).pw_name};\n"
        conf = self.root / "nginx.conf"
        conf.write_text(_CONF.format(user=user, root=self.root, port=port))
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.root), "-e", str(self.root / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"nginx did not start: {err.strip()}")
            time.sleep(0.02)

    def _pids(self) -> list[int]:
        pids = [self.proc.pid]
        with contextlib.suppress(OSError):
            for line in (
                Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            ):
                pids.append(int(line))
        return pids

    def cpu_seconds(self) -> float:
        """utime + stime of the master and its workers (from /proc, in clock ticks)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self._pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


class StandIn(Server):
    """The package's LocalServer in this process (smoke mode without nginx)."""

    name = "LocalServer"
    small_path = "/bytes/1024"
    upload_prefix = "/upload?name="

    def __init__(self, download_size: int) -> None:
        from urlsession_module.testing import LocalServer

        self.download_path = f"/bytes/{download_size}"
        self._srv = LocalServer().start()
        self.base = self._srv.base_url

    def cpu_seconds(self) -> float:
        return 0.0  # it shares this process: its CPU is not told apart

    def stop(self) -> None:
        self._srv.stop()
