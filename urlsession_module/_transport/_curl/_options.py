"""Everything libcurl is told about one request, in one place (swift-corelibs-foundation's
``EasyHandle.swift`` keeps it so too): the URL, the session's share, timeouts, TLS, the proxy and
security options (:mod:`._secure`), the method and its body, and the headers, with libcurl's own
extras switched off (``Expect: 100-continue``, its default ``Accept``, chunked uploads).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pycurl
from urllib3.util import parse_url

from ..._config_values import ConfigValues
from . import _secure as secure
from ._upload import UPLOAD_BUFFER

if TYPE_CHECKING:
    from ._easy import Transfer

__all__ = ["configure"]

_BUFFER = 1 << 20  # libcurl's receive buffer: fewer, larger write callbacks
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
# libcurl's HTTP versions that multiplex whatever the scheme (h2c prior knowledge, HTTP/3),
# and those that do over TLS only, where ALPN may choose h2.
_MULTIPLEXED = frozenset(
    {
        pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
        getattr(pycurl, "CURL_HTTP_VERSION_3", 30),
        getattr(pycurl, "CURL_HTTP_VERSION_3ONLY", 31),
    }
)
_BY_ALPN = frozenset({pycurl.CURL_HTTP_VERSION_2TLS, pycurl.CURL_HTTP_VERSION_2_0})


def session_template(config: ConfigValues) -> pycurl.Curl:
    """A handle that holds what every request of a session tells libcurl alike (signals,
    redirects and decoding off, buffers, certificate checks, the TLS floor, the client
    certificate); each transfer's handle is a copy of it (``curl_easy_duphandle``: cheaper
    than a new handle told all of this again, a few µs a task). :func:`configure` adds the
    request's own options."""
    e = pycurl.Curl()
    e.setopt(pycurl.NOSIGNAL, 1)
    e.setopt(pycurl.FOLLOWLOCATION, 0)  # our redirect rules, not libcurl's
    e.setopt(pycurl.HTTP_CONTENT_DECODING, 0)  # bodies are decoded above the engine
    e.setopt(pycurl.BUFFERSIZE, _BUFFER)
    if config.tlsVerify:
        if config.caBundle:
            e.setopt(pycurl.CAINFO, config.caBundle)
    else:
        e.setopt(pycurl.SSL_VERIFYPEER, 0)
        e.setopt(pycurl.SSL_VERIFYHOST, 0)
    secure.apply_session(e, config)
    return e


def configure(
    t: Transfer,
    config: ConfigValues,
    share: pycurl.CurlShare,
    url: str,
    headers: list[tuple[str, str]],
    http_version: int,
) -> None:
    """What libcurl is told about one request, on a copy of :func:`session_template`."""
    e, request = t.easy, t.request
    if not url.isascii():  # percent-encoded as urllib3 sends it (libcurl takes bytes as they are)
        url = parse_url(url).url
    e.setopt(pycurl.URL, url)
    e.setopt(pycurl.SHARE, share)  # the session's connections, DNS cache and TLS sessions
    e.setopt(pycurl.HTTP_VERSION, http_version)
    https = t.https = url[:6].lower() == "https:"  # (read again by the TLS watch and metrics)
    if http_version in _MULTIPLEXED or (http_version in _BY_ALPN and https):
        # Wait for a connection being made to say whether it multiplexes (h2, h3) rather than
        # open another one: many tasks to one such host share one connection, as streams.
        # Never where it cannot (HTTP/1.1): libcurl then kept a transfer added while the
        # first connection was being made waiting for that connection to be free, the whole
        # of the other's response (a paced download started seconds late).
        e.setopt(pycurl.PIPEWAIT, 1)
    e.setopt(pycurl.HEADERFUNCTION, t.raw.append)  # read by Transfer.scan_head
    e.setopt(pycurl.SOCKOPTFUNCTION, t.on_socket)
    e.setopt(pycurl.WRITEFUNCTION, t.on_body)
    e.setopt(
        pycurl.CONNECTTIMEOUT_MS, max(1, int(min(t.idle, t.deadline - time.monotonic()) * 1000))
    )
    secure.apply(t, config, url)  # proxy (never libcurl's own reading of the environment)
    method = request.method
    if method == "HEAD":
        # libcurl cannot send a body with HEAD (nor does Foundation): none, and no length.
        e.setopt(pycurl.NOBODY, 1)
        headers = [
            (k, v) for k, v in headers if k.lower() not in ("content-length", "content-type")
        ]
    elif request.has_body or method in ("POST", "PUT", "PATCH"):
        # Sent from the read callback with its length given, never chunked.
        e.setopt(pycurl.UPLOAD, 1)
        e.setopt(pycurl.INFILESIZE_LARGE, request.body_length)
        e.setopt(pycurl.READFUNCTION, t.on_read)
        e.setopt(pycurl.UPLOAD_BUFFERSIZE, UPLOAD_BUFFER)
        e.setopt(pycurl.CUSTOMREQUEST, method)
        if not request.has_body:
            t.upload_done = True
        elif method in _IDEMPOTENT:
            e.setopt(pycurl.SEEKFUNCTION, t.on_seek)
    if method not in _IDEMPOTENT:
        # libcurl sends a request again on a fresh connection when a reused one died before
        # the answer; a POST must never go twice (-1005, as on the urllib3 engine).
        e.setopt(pycurl.PREREQFUNCTION, t.on_prereq)
    elif method != "GET":
        e.setopt(pycurl.CUSTOMREQUEST, method)
    lines: list[bytes] = []
    seen = set()
    for name, value in headers:
        seen.add(name.lower())
        # "Name:" would tell libcurl to drop its own header; "Name;" sends an empty one.
        # Latin-1 on the wire, as http.client sends header values.
        line = f"{name}: {value}" if value else f"{name};"
        lines.append(line.encode("latin-1", "replace"))
    lines.append(b"Expect:")  # no 100-continue wait before a body
    if "accept" not in seen:
        lines.append(b"Accept:")  # no default Accept of libcurl's own
    if method != "HEAD" and (request.has_body or method in ("POST", "PUT", "PATCH")):
        lines.append(b"Transfer-Encoding:")
    e.setopt(pycurl.HTTPHEADER, lines)
