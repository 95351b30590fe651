"""One way to run a peer server as a child process: own session, own log, bounded start and stop.

Every peer (nginx, hypercorn, pproxy) is a program we did not write, so the tests talk to it only
through its ports and its log file. What they all need is the same: start it in its own process
group (so its workers can be signalled with it and nothing outlives it), wait a bounded time for it
to be ready while noticing at once when it died instead, and stop it with a polite signal followed,
after a bounded wait, by SIGKILL to the whole group. ``gone()`` says afterwards, without psutil, that
no process of that group is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "OnePortPeer",
    "Peer",
    "PeerDied",
    "PeerProcess",
    "free_port",
    "free_ports",
    "tcp_ready",
]

#: How long a peer may take to start: hypercorn importing aioquic on a busy 2-core machine is the
#: slowest (about 1 s idle), nginx takes a few milliseconds.
START_TIMEOUT = 20.0
#: How long a peer may take to stop after its polite signal before the group is killed.
STOP_TIMEOUT = 10.0


class PeerDied(RuntimeError):
    """The peer exited while starting, or did not become ready in time; the message has its log."""


def free_port(udp: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and, with ``udp``, for UDP too, as QUIC needs).

    The port is only free at the moment of asking; callers retry a start that fails to bind.
    """
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            if not udp:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both TCP and UDP on 127.0.0.1 after 50 tries")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held together while chosen, so no repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def tcp_ready(*ports: int) -> Callable[[], bool]:
    """A readiness check: every port accepts a TCP connection on 127.0.0.1."""

    def check() -> bool:
        for port in ports:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    pass
            except OSError:
                return False
        return True

    return check


class PeerProcess:
    """A started peer: its Popen, its log file, and a stop that never leaves a process behind."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.stop_signal = stop_signal
        with open(log, "ab") as out:
            # The child gets its own copy of the descriptor: the log fills while we only read it.
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def log_text(self) -> str:
        """The peer's output so far (for failure messages and for counting what it logged)."""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")
        return ""

    def wait_ready(self, check: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
        """Poll ``check`` until it holds; raise PeerDied (after stopping) on exit or timeout."""
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exited with {self.proc.returncode}"
                    if self.proc.poll() is not None
                    else f"not ready after {timeout:g}s"
                )
                self.stop()
                raise PeerDied(
                    f"{self.name} {why}: {' '.join(self.argv)}\n--- log ---\n{self.log_text()}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Polite signal to the group, bounded wait, then SIGKILL to the group; always reaped."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, self.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(
                    f"{self.name} ignored its stop signal for {timeout:g}s: killed", file=sys.stderr
                )
        if not self.gone():
            # The master ignored us, or exited leaving workers in its group: end the whole group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(5)
        deadline = time.monotonic() + 5
        while not self.gone() and time.monotonic() < deadline:
            time.sleep(0.02)

    def gone(self) -> bool:
        """No live process is left in the peer's process group.

        Zombies count as gone: they run nothing, and a worker orphaned by a killed master is
        reparented, so it is its new parent's to reap, not ours.
        """
        if self.proc.poll() is None:
            return False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                # fields[0] is the state, fields[2] the process group
                if int(fields[2]) == self.pid and fields[0] != "Z":
                    return False
        return True


class Peer:
    """What every launcher shares: a start that survives a lost port race, and a bounded stop.

    A subclass calls :meth:`_launch` with a function that picks its ports, starts its process and
    returns it with its readiness check. A free port is only free when asked for: if another
    process binds it first, the peer dies with "Address already in use" and is started again on
    new ports (three times at most).
    """

    process: PeerProcess
    pid: int

    def _launch(self, start: Callable[[], tuple[PeerProcess, Callable[[], bool]]]) -> None:
        for attempt in range(3):
            process, ready = start()
            try:
                process.wait_ready(ready)
                break
            except PeerDied as died:
                # nginx and pproxy say "Address already in use", hypercorn "address already in use"
                if "address already in use" not in str(died).lower() or attempt == 2:
                    raise
        self.process = process
        self.pid = process.pid

    def stop(self) -> None:
        """Stop the peer (bounded) and reap it; see :meth:`PeerProcess.stop`."""
        self.process.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class OnePortPeer(Peer):
    """A peer on one port number of 127.0.0.1 (TCP; and UDP too when ``udp``)."""

    scheme = "http"
    port: int

    def _launch_on_port(
        self,
        name: str,
        directory: Path,
        argv: Callable[[int], list[str]],
        *,
        udp: bool = False,
        also_ready: Callable[[PeerProcess], bool] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Start ``argv(port)`` on a free port; ready once TCP accepts (and ``also_ready`` holds)."""
        directory.mkdir(parents=True, exist_ok=True)

        def start() -> tuple[PeerProcess, Callable[[], bool]]:
            self.port = free_port(udp=udp)
            log = directory / f"{name.split()[0]}-{self.port}.log"
            process = PeerProcess(name, argv(self.port), log, cwd=cwd)
            tcp = tcp_ready(self.port)
            return process, lambda: tcp() and (also_ready is None or also_ready(process))

        self._launch(start)

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"
