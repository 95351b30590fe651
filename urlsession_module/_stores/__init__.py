"""A session's stores: cookies, the HTTP cache and credentials, as URLSession keeps them.

Default and background sessions share one persistent set under ``<state dir>/stores`` (files
0600, the directory 0700, whatever the umask; every file opened without following a link and
refused if another user owns it, so a planted link cannot make a host write its cookies or
passwords elsewhere); the background transfer process opens the same set, so two processes
touch it. Cookies and credentials are small files that every writer rewrites under an ``flock``
after reloading what another process may have written (reload-before-merge), with an atomic
replace, so a reader never sees half a file. The cache is a SQLite database (WAL), which is
multi-process safe on its own. Each ephemeral session has its own set in memory.

- **Cookies** live in an :mod:`http.cookiejar` jar, which is handed small adapter objects for a
  request and a response (the ``MockRequest``/``MockResponse`` pattern of ``requests``).
- **The HTTP cache** is hishel's sans-IO RFC 9111 core (its states decide what is fresh, what to
  revalidate and what may be stored) over its SQLite storage, with a small memory tier in front
  (URLCache's memory capacity) so that a repeated hit reads no SQLite; this module maps
  ``requestCachePolicy`` onto it and tells the transport what to send and what to serve.
- **Credentials** answer a ``401`` Basic challenge. They are kept by protection space (scheme,
  host, port, realm) and come from the URL's user info, the task's ``credential`` or the
  configuration's; those three only ever answer the origin of the task's first request. They
  are never logged.

:class:`Exchange` is one task's way through the stores: what each hop adds to its request, what
each response teaches them. It knows nothing of sockets; the transport asks and tells.

One module a concern: ``_userinfo`` (credentials in URLs, the cookie domain rule), ``_shared``
(a file shared by processes, and a store over it), ``_cookies``, ``_credentials``, ``_lookup``
(one request through hishel's states), ``_cache`` (SQLite and its memory tier), ``_sets``
(a session's set of stores) and ``_exchange``. This package re-exports what other modules use.
"""

from __future__ import annotations

from .._urls import without_userinfo
from ._cache import DISK_CACHE_SIZE, ENTRY_SHARE, MEMORY_CACHE_SIZE, MEMORY_TIER_SIZE, HTTPCache
from ._cache import _MemoryTier as _MemoryTier
from ._cookies import CookieStore
from ._credentials import CredentialStore, Space, basic_authorization, basic_realms
from ._exchange import Exchange
from ._lookup import CacheLookup, Headers, Outcome, Stored, reads_storage
from ._sets import (
    CACHE_NAME,
    COOKIES_NAME,
    CREDENTIALS_NAME,
    LOCK_NAME,
    STORES_DIR,
    Stores,
    memory_stores,
    persistent_stores,
)
from ._sets import _shared as _shared
from ._userinfo import Credential, redact, userinfo_of, with_userinfo

__all__ = [
    "CACHE_NAME",
    "COOKIES_NAME",
    "CREDENTIALS_NAME",
    "DISK_CACHE_SIZE",
    "ENTRY_SHARE",
    "LOCK_NAME",
    "MEMORY_CACHE_SIZE",
    "MEMORY_TIER_SIZE",
    "STORES_DIR",
    "CacheLookup",
    "CookieStore",
    "Credential",
    "CredentialStore",
    "Exchange",
    "HTTPCache",
    "Headers",
    "Outcome",
    "Space",
    "Stored",
    "Stores",
    "basic_authorization",
    "basic_realms",
    "memory_stores",
    "persistent_stores",
    "reads_storage",
    "redact",
    "userinfo_of",
    "with_userinfo",
    "without_userinfo",
]
