"""Debian's nginx on 127.0.0.1: the one launcher behind the tests' peer and the benchmarks' server.

One master (``daemon off``, a child process of ours) and one worker, everything in a temp dir of its
own (prefix, config, pid, logs, body temp files), on free ports. One process serves up to five
listeners, because each starts in milliseconds but a process each would still be five to stop:

========  ===================================================  ================================
port      protocol                                             what it is for
========  ===================================================  ================================
http      HTTP/1.1 on cleartext                                the reference server; benchmarks
https     TLS 1.2/1.3, trustme certificate, ALPN h2 + http/1.1  HTTP/2 negotiated as Apple does
tls12     TLS 1.2 only, HTTP/1.1                               a server below a TLS 1.3 minimum
h2c       HTTP/2 with prior knowledge on cleartext             ``httpVersion: '2'`` on http://
mtls      TLS that demands a client certificate                issue 15's client certificates
========  ===================================================  ================================

Every listener serves the same routes: ``/files/<name>`` (static files of given sizes,
deterministic content; ``1k.bin`` is 1 KiB of ASCII; ``text.txt`` is gzip-compressed for clients
that accept it), ``PUT /put/<name>`` (nginx's dav module stores the body, so a test can compare it),
``POST /post`` (nginx reads the whole body, then answers with the byte count it received),
``/redirect/301|302`` (to ``/files/1k.bin``) and ``/redirect/307`` (to ``/post``, method kept).
The mtls listener adds ``/whoami``: the verified client certificate's subject.

nginx's ``ssl_verify_client on`` does not fail the TLS handshake when the client sends no certificate
or an untrusted one: the handshake completes and nginx answers ``400`` ("No required SSL
certificate was sent" / "The SSL certificate error"). That is what a client meets behind most real
nginx deployments; the handshake-level refusal (TLS alert) comes from ``openssl s_server``
(:mod:`tests.peers.tls`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from ._certs import PeerCerts
from ._content import BLOCK, pattern, pattern_bytes
from ._process import Peer, PeerProcess, free_ports, tcp_ready

__all__ = ["ONE_KIB", "Nginx", "ensure_nginx", "find_nginx", "make_file", "pattern_bytes"]

#: The 1 KiB file every nginx serves as /files/1k.bin: printable ASCII, so it reads as text.
ONE_KIB = bytes(48 + i % 75 for i in range(1024))
#: /files/text.txt: compressible text, served as text/plain, gzip-compressed on request.
TEXT = b"".join(
    b"line %05d: the quick brown fox jumps over the lazy dog\n" % i for i in range(1200)
)


def make_file(path: Path, size: int) -> Path:
    """A file of ``size`` pseudo-random-looking bytes (a repeated 1 MiB pattern), made once."""
    if path.exists() and path.stat().st_size == size:
        return path
    block = pattern()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, BLOCK)
            f.write(block[:n])
            left -= n
    tmp.replace(path)
    return path


def find_nginx() -> str | None:
    """The nginx binary on PATH or where Debian puts it (/usr/sbin is not on every user's PATH)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def ensure_nginx(install: bool) -> str | None:
    """The nginx binary, installed with apt-get (as root) when ``install``; None if not to be had."""
    found = find_nginx()
    if found or not install:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "nginx", "curl"]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=False).returncode:
            return None
    return find_nginx()


def nginx_version(binary: str) -> tuple[int, ...]:
    """``nginx -v`` as a tuple (it prints to stderr): picks the HTTP/2 directive's spelling."""
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out.stderr + out.stdout)
    return tuple(int(x) for x in found.groups()) if found else (0,)


_MAIN = """\
{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    log_format peers '$server_port $request_method $request_uri $server_protocol $status '
                     '$request_length $ssl_protocol $ssl_client_verify';
    {access_log}
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    types {{ text/plain txt; application/json json; application/octet-stream bin; }}
    default_type application/octet-stream;
    ssl_protocols TLSv1.2 TLSv1.3;
    gzip on;
    gzip_min_length 256;
    gzip_types text/plain application/json;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
{servers}}}
"""

_ROUTES = """\
        root {root}/www;
        location /files/ {{ }}
        location /put/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }}
        location = /post {{
            client_max_body_size 0;
            client_body_in_file_only clean;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:{http}/_received;
        }}
        location = /_received {{ return 200 "$content_length\\n"; }}
        location = /redirect/301 {{ return 301 /files/1k.bin; }}
        location = /redirect/302 {{ return 302 /files/1k.bin; }}
        location = /redirect/307 {{ return 307 /post; }}
"""


class Nginx(Peer):
    """One nginx master (``daemon off``) and one worker, in ``root``, on free 127.0.0.1 ports.

    ``files`` maps a name under /files/ to a size (written with :func:`make_file`) or to an
    existing file (hard-linked when it can be, else copied). ``certs`` adds the https and tls12
    listeners, ``h2c`` the HTTP/2-prior-knowledge one, ``mtls`` the client-certificate one (needs
    ``certs``). ``ports`` maps each listener's name to its port.
    """

    def __init__(
        self,
        binary: str,
        root: Path,
        files: Mapping[str, int | Path] | None = None,
        *,
        certs: PeerCerts | None = None,
        h2c: bool = False,
        mtls: bool = False,
        access_log: bool = True,
    ) -> None:
        if mtls and certs is None:
            raise ValueError("'mtls' needs 'certs' (got certs=None)")
        self.binary = binary
        self.root = root
        self.www = root / "www"
        (self.www / "files").mkdir(parents=True)
        (self.www / "put").mkdir()
        (root / "tmp").mkdir()
        os.chmod(root, 0o755)
        self._place_files(files or {})
        self.access_log = root / "access.log" if access_log else None
        conf = root / "nginx.conf"

        def start() -> tuple[PeerProcess, Callable[[], bool]]:
            names = ["http"]
            names += ["https", "tls12"] if certs is not None else []
            names += ["h2c"] if h2c else []
            names += ["mtls"] if mtls else []
            self.ports = dict(zip(names, free_ports(len(names)), strict=True))
            conf.write_text(self._config(certs))
            process = PeerProcess(
                "nginx",
                [binary, "-c", str(conf), "-p", str(root), "-e", "stderr"],
                root / "stderr.log",
                # SIGTERM is nginx's fast shutdown: open keep-alive connections do not hold it up.
                stop_signal=signal.SIGTERM,
            )
            return process, tcp_ready(*self.ports.values())

        self._launch(start)

    def _place_files(self, files: Mapping[str, int | Path]) -> None:
        target = self.www / "files"
        (target / "1k.bin").write_bytes(ONE_KIB)
        (target / "text.txt").write_bytes(TEXT)
        for name, what in files.items():
            if isinstance(what, int):
                make_file(target / name, what)
            elif what.stat().st_dev == target.stat().st_dev:
                os.link(what, target / name)
            else:
                shutil.copy(what, target / name)

    def _config(self, certs: PeerCerts | None) -> str:
        user = f"user {pwd.getpwuid(0).pw_name};\n" if os.geteuid() == 0 else ""
        # nginx 1.25.1 replaced `listen ... http2` by `http2 on`; Debian 12 ships 1.22.
        new_h2 = nginx_version(self.binary) >= (1, 25, 1)
        h2_listen, h2_on = ("", "        http2 on;\n") if new_h2 else (" http2", "")
        routes = _ROUTES.format(root=self.root, http=self.ports["http"])
        servers = [
            f"    server {{\n        listen 127.0.0.1:{self.ports['http']} reuseport backlog=4096;\n"
            f"{routes}    }}\n"
        ]
        tls = ""
        if certs is not None:
            tls = (
                f"        ssl_certificate {certs.server_cert};\n"
                f"        ssl_certificate_key {certs.server_key};\n"
            )
            servers.append(
                f"    server {{\n        listen 127.0.0.1:{self.ports['https']} ssl{h2_listen};\n"
                f"{h2_on}{tls}{routes}    }}\n"
            )
            servers.append(
                f"    server {{\n        listen 127.0.0.1:{self.ports['tls12']} ssl;\n"
                f"        ssl_protocols TLSv1.2;\n{tls}{routes}    }}\n"
            )
        if "h2c" in self.ports:
            servers.append(
                f"    server {{\n        listen 127.0.0.1:{self.ports['h2c']}{h2_listen};\n"
                f"{h2_on}{routes}    }}\n"
            )
        if "mtls" in self.ports and certs is not None:
            servers.append(
                f"    server {{\n        listen 127.0.0.1:{self.ports['mtls']} ssl;\n{tls}"
                f"        ssl_client_certificate {certs.client_ca};\n"
                "        ssl_verify_client on;\n"
                "        ssl_verify_depth 2;\n"
                '        location = /whoami { return 200 "$ssl_client_s_dn\\n"; }\n'
                f"{routes}    }}\n"
            )
        access = f"access_log {self.access_log} peers;" if self.access_log else "access_log off;"
        return _MAIN.format(user=user, root=self.root, access_log=access, servers="".join(servers))

    def add_file(self, name: str, size: int) -> str:
        """Serve ``size`` pattern bytes as /files/``name`` from now on; returns that path.

        nginx reads files at request time, so a test can add the size it needs to the session's
        server instead of starting its own.
        """
        make_file(self.www / "files" / name, size)
        return f"/files/{name}"

    def url(self, listener: str, path: str = "/") -> str:
        """``http(s)://127.0.0.1:<port><path>`` for ``listener`` (http, https, tls12, h2c, mtls)."""
        scheme = "https" if listener in ("https", "tls12", "mtls") else "http"
        return f"{scheme}://127.0.0.1:{self.ports[listener]}{path}"

    @property
    def http_url(self) -> str:
        return self.url("http", "")

    def access_lines(self) -> list[str]:
        """What nginx logged so far (``log_format peers``): one line per request it answered."""
        if self.access_log is None:
            return []
        with contextlib.suppress(FileNotFoundError):
            return self.access_log.read_text().splitlines()
        return []

    def cpu_seconds(self) -> float:
        """utime + stime of the master and its workers (from /proc, in clock ticks)."""
        ticks = os.sysconf("SC_CLK_TCK")
        pids = [self.pid]
        with contextlib.suppress(OSError):
            pids += [
                int(p)
                for p in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            ]
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / ticks
