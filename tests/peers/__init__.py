"""Real peer servers for the tests: programs we did not write, started and stopped by fixtures.

The package's own LocalServer (urlsession_module.testing) is written by us, so it can only agree
with us. These peers are what users meet: nginx (HTTP/1.1, h2 by ALPN, h2c, TLS 1.2-only,
client certificates), hypercorn with aioquic (HTTP/3), pproxy (HTTP, HTTPS and SOCKS5 proxies,
with and without credentials), httpbin on waitress (Digest, Basic, redirects, gzip, status codes)
and ``openssl s_server`` (client certificates refused with a TLS alert). Certificates come from
trustme (:mod:`tests.peers._certs`).

- :mod:`tests.peers.fixtures`: the pytest fixtures (registered by tests/conftest.py), with a table
  of what each gives.
- One launcher module per program (:mod:`.nginx`, :mod:`.asgi`, :mod:`.proxy`, :mod:`.wsgi`,
  :mod:`.tls`), each on :class:`tests.peers._process.Peer`: free ports on 127.0.0.1, a child
  process in its own process group, bounded start, bounded stop, nothing left behind.
- :mod:`tests.peers.test_peers`: self-tests, with pycurl's libcurl as the client, proving each
  peer speaks what it claims (``pytest tests/peers``, ~20 s).

benchmarks/_servers.py uses :class:`tests.peers.nginx.Nginx` too: one nginx launcher for both.
"""
