"""Tests of the one server base under LocalServer, FaultServer and the tests' RawServer."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any

import pytest
import trustme

from urlsession_module.testing import FaultServer, LocalServer
from urlsession_module.testing._base import ServerBase, trustme_context

from ._util import RawServer, wait_until


class _Echo(ServerBase):
    """Echoes one message per connection back, optionally after a TLS handshake."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(name="EchoBase", **kwargs)

    def _serve(self, number: int, sock: socket.socket, addr: Any) -> None:
        if self._ssl_context is not None:
            sock = self._start_tls(number, sock, 10.0)
        data = sock.recv(1024)
        if data == b"sleep":
            self.wait_stop(60)
        elif data == b"fail":
            raise ConnectionResetError("handler gave up")
        sock.sendall(data)


def _threads(name: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(name)]


def test_servers_share_the_base() -> None:
    """LocalServer, FaultServer and RawServer are all built on ServerBase."""
    assert issubclass(LocalServer, ServerBase)
    assert issubclass(FaultServer, ServerBase)
    assert issubclass(RawServer, ServerBase)


def test_accepts_counts_and_names_threads() -> None:
    """Each connection has its own named thread; connections and open_connections count them."""
    with _Echo() as srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}"
        assert _threads(f"EchoBase-accept-{srv.port}")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            wait_until(lambda: srv.open_connections == 1, what="one open connection")
            assert _threads(f"EchoBase-conn-{srv.port}-1")
            sock.sendall(b"hello")
            assert sock.recv(1024) == b"hello"
            assert sock.recv(1024) == b""  # the base closes the socket after _serve
        wait_until(lambda: srv.open_connections == 0, what="connection forgotten")
        assert srv.connections == 1


def test_stop_is_bounded_and_joins_every_thread() -> None:
    """stop() wakes a handler in recv and one in wait_stop, joins all, within the bound."""
    srv = _Echo().start()
    port = srv.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    sleeping = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sleeping.sendall(b"sleep")
        wait_until(lambda: srv.open_connections == 2, what="two open connections")
        t0 = time.monotonic()
        srv.stop()
        assert time.monotonic() - t0 < 2
        assert not [n for n in _threads("EchoBase-") if f"-{port}" in n]
        srv.stop()  # idempotent
    finally:
        idle.close()
        sleeping.close()


def test_stop_during_a_silent_tls_handshake_is_bounded() -> None:
    """A client that connects and never says hello does not hold stop() up."""
    ctx = trustme_context(trustme.CA())
    srv = _Echo(ssl_context=ctx).start()
    assert srv.base_url.startswith("https://localhost:")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10):
        wait_until(lambda: srv.open_connections == 1, what="handshake under way")
        t0 = time.monotonic()
        srv.stop()
        assert time.monotonic() - t0 < 2
    assert not [n for n in _threads("EchoBase-") if f"-{srv.port}" in n]


def test_tls_round_trip() -> None:
    """With an ssl_context the handshake runs in the connection thread and data flows."""
    ca = trustme.CA()
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with _Echo(ssl_context=trustme_context(ca)) as srv:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        with client.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"secret")
            assert tls.recv(1024) == b"secret"


def test_oserror_in_a_handler_closes_the_connection_quietly() -> None:
    """An OSError raised by _serve ends that connection only; the server keeps serving."""
    with _Echo() as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"fail")
            assert sock.recv(1024) == b""
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"again")
            assert sock.recv(1024) == b"again"


def test_start_once_and_listen_errors() -> None:
    """start() twice raises; a port in use is a RuntimeError that leaves no thread behind."""
    with _Echo() as srv:
        with pytest.raises(RuntimeError, match="only be started once"):
            srv.start()
        taken = _Echo(port=srv.port)
        with pytest.raises(RuntimeError, match="EchoBase could not listen"):
            taken.start()
        assert taken.stopping
    unstarted = _Echo()
    with pytest.raises(RuntimeError, match="EchoBase is not started"):
        _ = unstarted.port
    unstarted.stop()  # a no-op before start
