"""One task's way through the stores: what each hop adds to its request, what each response
teaches them. It knows nothing of sockets; the transport asks and tells."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .._config_values import ConfigValues
from .._state import Request
from .._urls import CREDENTIAL_HEADERS, origin, without_userinfo
from ._credentials import Space, basic_authorization, parse_challenges
from ._digest import DigestAnswer, ranked
from ._lookup import CacheLookup, Headers
from ._userinfo import Credential, _same_domain, _userinfo

if TYPE_CHECKING:
    from ._sets import Stores


log = logging.getLogger(__name__)

# A request that asks for a part or a condition of its own talks to the server, not the cache.
_OWN_CONDITIONS = frozenset(
    {"range", "if-range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since"}
)


class Exchange:
    """One task's requests through the stores: what each hop adds, what each response teaches.

    ``url`` is the task's first request (its "main document" for the cookie accept policy). Its
    user info (or the task's ``credential``, which travels as user info) and the configuration's
    ``credential`` answer challenges from that origin only; the credential store answers each
    origin with what was stored for it.
    """

    def __init__(self, stores: Stores, config: ConfigValues, url: str) -> None:
        self._stores = stores
        self._config = config
        self._main_host = (urlsplit(url).hostname or "").lower()
        self._origin = origin(url)
        self._task_credential = _userinfo(url)
        self._pending: tuple[Space, Credential] | None = None
        self._digest: DigestAnswer | None = None
        self._stale_renewed = False

    # -- cookies ---------------------------------------------------------------------------------

    def request_headers(self, request: Request) -> Headers:
        """Headers the stores add to this hop (they replace the request's own of the same name)."""
        if not self._config.httpShouldSetCookies:
            return []
        try:
            jar = self._stores.cookies.header(request.url)
        except OSError as exc:
            log.warning("could not read the cookie store: %s", exc)
            return []
        if jar is None:
            return []
        own = request.header("Cookie")
        if not own:
            return [("Cookie", jar)]
        # The request's own cookies first; the jar adds those of other names.
        names = {part.split("=", 1)[0].strip() for part in own.split(";")}
        extra = [p.strip() for p in jar.split(";") if p.split("=", 1)[0].strip() not in names]
        return [("Cookie", "; ".join([own, *extra]))] if extra else []

    def response_received(self, url: str, headers: Iterable[tuple[str, str]]) -> None:
        """Every response of every hop goes past here: its cookies, by the accept policy."""
        if not self._config.httpShouldSetCookies:
            return
        set_cookies = [v for k, v in headers if k.lower() == "set-cookie"]
        if not set_cookies:
            return
        policy = self._config.httpCookieAcceptPolicy
        if policy == "never":
            return
        host = (urlsplit(url).hostname or "").lower()
        if policy == "onlyFromMainDocumentDomain" and not _same_domain(host, self._main_host):
            log.debug("cookies from %s refused: not the main document's domain", host)
            return
        try:
            self._stores.cookies.extract(url, set_cookies, None)
        except OSError as exc:  # a store that cannot be written never fails the transfer
            log.warning("could not store cookies from %s: %s", host, exc)

    # -- credentials -----------------------------------------------------------------------------

    def authorization(self, request: Request, challenges: list[str]) -> str | None:
        """The ``Authorization`` to retry a 401 with, or None (no challenge we can answer).

        The strongest scheme offered that a credential answers: Digest (SHA-256, then MD5),
        then Basic. A request that carries its own Authorization header is the user's business:
        never retried.
        """
        if request.header("Authorization") is not None:
            return None
        scheme, host, port = origin(request.url)
        here = (scheme, host, port) == self._origin
        for kind, params in ranked(parse_challenges(challenges)):
            space = (scheme, host, port, params.get("realm", ""))
            credential = (
                _userinfo(request.url)
                or (self._task_credential if here else None)
                or self._stored_credential(space)
                or (self._config.credential if here else None)
            )
            if credential is not None:
                self._pending = (space, credential)
                log.debug(
                    "answering a %s challenge from %s://%s:%d", kind.title(), scheme, host, port
                )
                if kind == "digest":
                    self._digest = DigestAnswer(params, credential)
                    return self._digest.header(request.method, request.url, request.body)
                return basic_authorization(credential)
        return None

    def digest_pending(self) -> bool:
        """Whether a Digest answer went and may still be renewed once (stale nonce)."""
        return self._digest is not None and not self._stale_renewed

    def renew_stale(self, request: Request, challenges: list[str]) -> str | None:
        """A Digest answer refused only because its nonce went stale (``stale=true``): the new
        ``Authorization`` for the server's new nonce, once per task; None otherwise."""
        if self._digest is None or self._stale_renewed:
            return None
        for kind, params in parse_challenges(challenges):
            if kind == "digest" and params.get("stale", "").lower() == "true" and "nonce" in params:
                self._stale_renewed = True
                log.debug("answering a stale Digest nonce's renewal, once")
                self._digest = self._digest.renewed(params)
                return self._digest.header(request.method, request.url, request.body)
        return None

    def _stored_credential(self, space: Space) -> Credential | None:
        try:
            return self._stores.credentials.get(space)
        except OSError as exc:
            log.warning("could not read the credential store: %s", exc.strerror or exc)
            return None

    def authenticated(self, status: int) -> None:
        """The retry's status: a credential that was not refused is kept for its space."""
        pending, self._pending = self._pending, None
        if pending is not None and status != 401:
            try:
                self._stores.credentials.set(*pending)
            except OSError as exc:
                log.warning("could not store a credential: %s", exc.strerror or type(exc).__name__)

    # -- cache -----------------------------------------------------------------------------------

    def cache_lookup(self, request: Request) -> CacheLookup | None:
        """The cache's view of this request, or None when it goes to the server as it is."""
        if self._stores.cache.closed or any(
            name.lower() in _OWN_CONDITIONS for name, _ in request.headers
        ):
            return None
        headers = [(k, v) for k, v in request.headers if k.lower() not in CREDENTIAL_HEADERS]
        url = without_userinfo(request.url).split("#", 1)[0]
        return self._stores.cache.lookup(
            request.method, url, headers, self._config.requestCachePolicy
        )
