"""Cookies: an ``http.cookiejar`` jar over a shared file, handed adapter objects for requests
and responses (the ``MockRequest``/``MockResponse`` pattern of ``requests``)."""

from __future__ import annotations

import http.cookiejar
import io
import logging
import urllib.request
from collections.abc import Iterable
from email.message import Message
from typing import Any, cast
from urllib.parse import urlsplit

from .._urls import without_userinfo
from ..exceptions import StateDirectoryError
from ._shared import _SharedFile, _SharedStore

log = logging.getLogger(__name__)


class _CookieRequest:
    """What ``http.cookiejar`` asks of a request (``urllib.request.Request``'s interface)."""

    def __init__(self, url: str, main_url: str | None = None) -> None:
        self._url = without_userinfo(url)
        parts = urlsplit(self._url)
        self.type = parts.scheme.lower()
        self.host = parts.netloc
        self.origin_req_host = (urlsplit(main_url or url).hostname or "").lower()
        self.unverifiable = False
        self.cookie: str | None = None

    def get_full_url(self) -> str:
        return self._url

    def get_host(self) -> str:
        return self.host

    def get_type(self) -> str:
        return self.type

    def get_origin_req_host(self) -> str:
        return self.origin_req_host

    def is_unverifiable(self) -> bool:
        return self.unverifiable

    def has_header(self, name: str) -> bool:
        return False  # the user's own Cookie header is merged by the caller

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self.host if name.lower() == "host" else default

    def header_items(self) -> list[tuple[str, str]]:
        return []

    def add_unredirected_header(self, name: str, value: str) -> None:
        if name.lower() == "cookie":
            self.cookie = value

    def as_request(self) -> urllib.request.Request:
        # The jar only calls the methods above; typeshed names the class it expects.
        return cast(urllib.request.Request, self)


class _CookieResponse:
    """What ``http.cookiejar`` asks of a response: ``info().get_all('Set-Cookie')``."""

    def __init__(self, set_cookies: Iterable[str]) -> None:
        self._msg = Message()
        for value in set_cookies:
            self._msg["Set-Cookie"] = value

    def info(self) -> Message:
        return self._msg


class CookieStore(_SharedStore):
    """An ``http.cookiejar`` jar; with a file, shared with other processes (reload-before-merge)."""

    def _reset(self) -> None:
        self._jar = http.cookiejar.LWPCookieJar()

    def _load(self, file: _SharedFile) -> None:
        # The text is read through the shared file (no link followed, only ours) and handed to
        # the jar's parser: ``LWPCookieJar.load`` would open the path itself, following links.
        try:
            text = file.read()
            if text:
                cast(Any, self._jar)._really_load(io.StringIO(text), str(file.path), True, False)
        except StateDirectoryError:
            raise  # refused, not unreadable: the caller must not write over it
        except (OSError, ValueError) as exc:  # LoadError is an OSError
            log.warning("cookie file %s unreadable, starting empty: %s", file.path, exc)
            self._reset()

    def _dump(self) -> str:
        return "#LWP-Cookies-2.0\n" + self._jar.as_lwp_str(
            ignore_discard=True, ignore_expires=False
        )

    def header(self, url: str) -> str | None:
        """The ``Cookie`` value the jar has for ``url`` (None: no cookie applies)."""
        with self._lock:
            self._refresh()
            if not len(self._jar):  # (no request adapter, URL split nor jar walk for nothing)
                return None
            request = _CookieRequest(url)
            self._jar.add_cookie_header(request.as_request())
            return request.cookie

    def extract(self, url: str, set_cookies: list[str], main_url: str | None = None) -> None:
        """Store the cookies a response to ``url`` set (the caller applied the accept policy)."""
        if not set_cookies:
            return
        request = _CookieRequest(url, main_url).as_request()
        response = cast(Any, _CookieResponse(set_cookies))
        self._change(lambda: self._jar.extract_cookies(response, request))
