"""The reference servers: Debian's nginx on 127.0.0.1 (sendfile, keep-alive, PUT), or LocalServer.

nginx is the reference (a C server that is never the bottleneck of a Python client); the shipped
:class:`~urlsession_module.testing.LocalServer` stands in when nginx cannot be had (smoke mode on
a machine without it). Both offer the same three URLs: a file to download, a 1 KiB file, and a
PUT endpoint; nginx also serves them over HTTP/2 with prior knowledge (h2c) at ``h2c_base``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

# The nginx launcher is the tests' peer (tests/peers/nginx.py): one launcher, one config, for both.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.peers.nginx import Nginx as _NginxPeer
from tests.peers.nginx import ensure_nginx, make_file

__all__ = ["Nginx", "Server", "StandIn", "ensure_nginx", "make_file"]


class Server:
    """What a scenario needs of a server: URLs and how much CPU it has used so far."""

    name = "server"
    download_path = "/"
    small_path = "/"
    upload_prefix = "/"
    base = ""
    h2c_base: str | None = None  # HTTP/2 with prior knowledge on cleartext, where there is one

    def url(self, path: str) -> str:
        return self.base + path

    def cpu_seconds(self) -> float:
        return 0.0

    def stop(self) -> None:
        pass


class Nginx(Server):
    """The peer nginx (tests/peers) on its plain HTTP/1.1 listener, with the download file linked in."""

    name = "nginx"
    download_path = "/files/big.bin"
    small_path = "/files/1k.bin"
    upload_prefix = "/put/"

    def __init__(self, binary: str, data_dir: Path, download_size: int, base: Path) -> None:
        big = make_file(data_dir / f"download-{download_size}.bin", download_size)
        self.root = Path(tempfile.mkdtemp(prefix="nginx-", dir=base))
        # No access log: a benchmark measures the client, not nginx writing a line per request.
        # The h2c listener (HTTP/2 with prior knowledge, same routes) serves scenario b2.
        self._nginx = _NginxPeer(binary, self.root, {"big.bin": big}, h2c=True, access_log=False)
        self.base = self._nginx.http_url
        self.h2c_base = self._nginx.url("h2c", "")

    def cpu_seconds(self) -> float:
        """utime + stime of the master and its workers."""
        return self._nginx.cpu_seconds()

    def stop(self) -> None:
        self._nginx.stop()
        shutil.rmtree(self.root, ignore_errors=True)


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
