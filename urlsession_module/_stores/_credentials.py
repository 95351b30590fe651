"""Credentials by protection space (scheme, host, port, realm) over a shared file, and the
parsing of Basic challenges. Never logged, never in a repr."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable

from ._shared import _SharedFile, _SharedStore
from ._userinfo import Credential

log = logging.getLogger(__name__)

Space = tuple[str, str, int, str]  # (scheme, host, port, realm)


class CredentialStore(_SharedStore):
    """Credentials by protection space; with a file (0600), shared with other processes."""

    def __repr__(self) -> str:
        return f"<CredentialStore {len(self._items)} spaces>"  # never the secrets

    def _reset(self) -> None:
        self._items: dict[Space, Credential] = {}

    def _load(self, file: _SharedFile) -> None:
        text = file.read()
        if not text:
            return
        items: dict[Space, Credential] = {}
        try:
            for e in json.loads(text)["credentials"]:
                space = (str(e["scheme"]), str(e["host"]), int(e["port"]), str(e["realm"]))
                items[space] = (str(e["user"]), str(e["password"]))
        except (ValueError, KeyError, TypeError):
            log.warning("credential file %s unreadable, starting empty", file.path)
            return
        self._items = items

    def _dump(self) -> str:
        entries = [
            {"scheme": s, "host": h, "port": p, "realm": r, "user": u, "password": pw}
            for (s, h, p, r), (u, pw) in self._items.items()
        ]
        return json.dumps({"version": 1, "credentials": entries})

    def get(self, space: Space) -> Credential | None:
        with self._lock:
            self._refresh()
            return self._items.get(space)

    def set(self, space: Space, credential: Credential) -> None:
        def put() -> bool:
            if self._items.get(space) == credential:
                return False  # already so: the file is not rewritten
            self._items[space] = credential
            return True

        self._change(put)


# A challenge list: ``Digest realm="a", nonce="b", Basic realm="c"``: schemes, then their params.
_AUTH_PARAM = re.compile(r'\s*,?\s*([^\s=,"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*')
_AUTH_SCHEME = re.compile(r'\s*,?\s*([^\s=,"]+)(?=\s|,|$)')


def parse_challenges(values: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """``WWW-Authenticate`` values as (scheme in lower case, params with lower-case names), in
    order; quoted values unquoted. One header may hold several challenges."""
    out: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pos = 0
        while pos < len(value):
            m = _AUTH_PARAM.match(value, pos)
            if m:
                if out:
                    raw = m[2]
                    if raw.startswith('"'):
                        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                    out[-1][1].setdefault(m[1].lower(), raw)
                pos = m.end()
                continue
            m = _AUTH_SCHEME.match(value, pos)
            if not m or m.end() == pos:
                break
            out.append((m[1].lower(), {}))
            pos = m.end()
    return out


def basic_realms(challenges: Iterable[str]) -> list[str]:
    """The realms of the Basic challenges among ``WWW-Authenticate`` values, in order."""
    return [p.get("realm", "") for s, p in parse_challenges(challenges) if s == "basic"]


def basic_authorization(credential: Credential) -> str:
    user, password = credential
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
