"""``SessionConfiguration``: the three kinds of URLSessionConfiguration over a frozen attrs value.

The proxy holds one frozen :class:`ConfigValues`; every assignment makes a new value with
``attrs.evolve``, so validators run on creation and on every change alike, and a session's copy is
just the value it was handed (nothing the user does later can reach it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from . import _validate as check
from ._proxy import Proxy
from .exceptions import CreationOnlyError, InvalidArgumentTypeError, InvalidArgumentValueError

__all__ = ["CONFIG_FIELDS", "ConfigValues", "SessionConfiguration"]

Kind = Literal["background", "default", "ephemeral"]
KINDS: tuple[str, ...] = ("background", "default", "ephemeral")
COOKIE_POLICIES = ("always", "never", "onlyFromMainDocumentDomain")
CACHE_POLICIES = (
    "useProtocolCachePolicy",
    "reloadIgnoringLocalCacheData",
    "returnCacheDataElseLoad",
    "returnCacheDataDontLoad",
)
SEVEN_DAYS = 7 * 24 * 3600.0
# A data or upload task holds its response body in memory: past this (decoded) size it fails
# with -1103 instead of growing until the process dies (a 1 MB gzip bomb decodes to 1 GiB).
DEFAULT_MAXIMUM_RESPONSE_DATA = 256 * 1024 * 1024


def _v(fn: Any, *extra: Any) -> Any:
    """attrs validator from one of ``_validate``'s checks (which name the argument)."""

    def validator(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        fn(attribute.name, value, *extra)

    return validator


def _optional_str(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentTypeError(
            attribute.name, f"{attribute.name!r} must be a str (got {value!r})"
        )


def _launch_command(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not value or not all(isinstance(a, str) for a in value):
        raise InvalidArgumentTypeError(
            attribute.name,
            f"{attribute.name!r} must be a non-empty list of str (argv) (got {value!r})",
        )


def credential_value(argument: str, value: Any) -> tuple[str, str] | None:
    """A credential given as ``{'user': ..., 'password': ...}`` (or a pair), as a (user, password) pair.

    Messages never echo the value: it holds a password.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        user, password = value.get("user"), value.get("password")
        unknown = set(value) - {"user", "password"}
        if unknown:
            raise InvalidArgumentValueError(
                argument, f"{argument!r} takes only 'user' and 'password' (got {sorted(unknown)})"
            )
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        user, password = value
    else:
        raise InvalidArgumentTypeError(
            argument, f"{argument!r} must be a dict with 'user' and 'password' (a str each)"
        )
    if not isinstance(user, str) or not isinstance(password, str):
        raise InvalidArgumentTypeError(
            argument, f"{argument!r} must be a dict with 'user' and 'password' (a str each)"
        )
    if ":" in user or any(c in user + password for c in "\r\n\x00"):
        raise InvalidArgumentValueError(
            argument, f"{argument!r} user must not contain ':', and neither part CR, LF or NUL"
        )
    return user, password


def _to_credential(value: Any) -> Any:
    return credential_value("credential", value)


def _to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _freeze_headers(value: Any) -> Any:
    # attrs.evolve hands the stored tuple of pairs back through the converter: accept it too.
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)
    return tuple(check.header_fields("HTTPHeaderFields", value).items())


@attrs.frozen(kw_only=True)
class ConfigValues:
    """Plain data a session (and the background transfer process) runs from. Apple's names."""

    type: str = attrs.field(default="default", validator=_v(check.one_of, KINDS))
    identifier: str | None = attrs.field(default=None, validator=_optional_str)
    HTTPHeaderFields: tuple[tuple[str, str], ...] = attrs.field(
        default=(), converter=_freeze_headers
    )
    timeoutIntervalForRequest: float = attrs.field(
        default=60.0, validator=_v(check.positive_number)
    )
    timeoutIntervalForResource: float = attrs.field(
        default=SEVEN_DAYS, validator=_v(check.positive_number)
    )
    httpMaximumConnectionsPerHost: int = attrs.field(default=6)
    httpShouldSetCookies: bool = attrs.field(default=True, validator=_v(check.boolean))
    httpCookieAcceptPolicy: str = attrs.field(
        default="onlyFromMainDocumentDomain", validator=_v(check.one_of, COOKIE_POLICIES)
    )
    requestCachePolicy: str = attrs.field(
        default="useProtocolCachePolicy", validator=_v(check.one_of, CACHE_POLICIES)
    )
    isDiscretionary: bool = attrs.field(default=False, validator=_v(check.boolean))
    sessionSendsLaunchEvents: bool = attrs.field(default=True, validator=_v(check.boolean))
    launchCommand: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_tuple, validator=_launch_command
    )
    tlsVerify: bool = attrs.field(default=True, validator=_v(check.boolean))
    caBundle: str | None = attrs.field(default=None, validator=_optional_str)
    proxyURL: str | None = attrs.field(default=None, validator=_optional_str)
    # Answers a 401 Basic challenge from the origin of each task's first request (never another
    # origin's); given as {'user': ..., 'password': ...}, kept as a pair, never shown in a repr.
    credential: tuple[str, str] | None = attrs.field(
        default=None, converter=_to_credential, repr=False
    )
    # Not Apple's: the most decoded bytes a data/upload task keeps in memory, and a download
    # writes to disk (None: no limit), before failing with -1103 (data length exceeds maximum).
    maximumResponseDataLength: int = attrs.field(default=DEFAULT_MAXIMUM_RESPONSE_DATA)
    maximumDownloadLength: int | None = attrs.field(default=None)

    @maximumResponseDataLength.validator
    @maximumDownloadLength.validator
    def _check_length(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and attribute.name == "maximumDownloadLength":
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentTypeError(
                attribute.name, f"{attribute.name!r} must be an int (got {value!r})"
            )
        if value < 1:
            raise InvalidArgumentValueError(
                attribute.name, f"{attribute.name!r} must be >= 1 (got {value!r})"
            )

    @httpMaximumConnectionsPerHost.validator
    def _check_connections(self, attribute: attrs.Attribute[int], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentTypeError(
                attribute.name, f"{attribute.name!r} must be an int (got {value!r})"
            )
        if value < 1:
            raise InvalidArgumentValueError(
                attribute.name, f"{attribute.name!r} must be >= 1 (got {value!r})"
            )

    def __attrs_post_init__(self) -> None:
        if self.type == "background":
            if not isinstance(self.identifier, str) or not self.identifier.strip():
                raise InvalidArgumentValueError(
                    "identifier",
                    f"'identifier' must be a non-empty str for a background configuration "
                    f"(got {self.identifier!r})",
                )
        elif self.identifier is not None:
            raise InvalidArgumentValueError(
                "identifier",
                f"'identifier' is only for background configurations (got type {self.type!r})",
            )
        if self.proxyURL is not None:
            check.http_url("proxyURL", self.proxyURL)

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.HTTPHeaderFields)

    @property
    def is_background(self) -> bool:
        return self.type == "background"


CONFIG_FIELDS: frozenset[str] = frozenset(a.name for a in attrs.fields(ConfigValues))


def make_values(props: Mapping[str, Any]) -> ConfigValues:
    """Build from Titanium-style properties; ``type`` defaults from the identifier's presence."""
    unknown = set(props) - CONFIG_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidArgumentValueError(
            name,
            f"{name!r} is not a SessionConfiguration property (known: {sorted(CONFIG_FIELDS)})",
        )
    values = dict(props)
    if "type" not in values:
        values["type"] = "background" if values.get("identifier") is not None else "default"
    return ConfigValues(**values)


class SessionConfiguration(Proxy):
    """``Modules.URLSession.SessionConfiguration``: settings a session copies when it is created.

    Properties read and write under Apple's names; ``identifier`` and ``type`` are creation-only.
    """

    _api_name = "Modules.URLSession.SessionConfiguration"
    _creation_only = frozenset({"identifier", "type"})

    def __init__(
        self, props: Mapping[str, Any] | None = None, *, parent: Proxy | None = None
    ) -> None:
        super().__init__(parent)
        object.__setattr__(self, "_values", make_values(props or {}))

    @classmethod
    def _from_values(cls, values: ConfigValues) -> SessionConfiguration:
        inst = cls.__new__(cls)
        Proxy.__init__(inst)
        object.__setattr__(inst, "_values", values)
        return inst

    def __getattr__(self, name: str) -> Any:
        if name in CONFIG_FIELDS:
            value = getattr(self._values, name)
            if name == "HTTPHeaderFields":
                return dict(value)
            if name == "launchCommand" and value is not None:
                return list(value)
            if name == "credential" and value is not None:
                return {"user": value[0], "password": value[1]}
            return value
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._creation_only:
            raise CreationOnlyError(f"{name!r} can only be set at creation of {self._api_name}")
        if name in CONFIG_FIELDS:
            object.__setattr__(self, "_values", attrs.evolve(self._values, **{name: value}))
        elif name == "bubbleParent":
            object.__setattr__(self, name, check.boolean(name, value))
        else:
            raise AttributeError(f"{type(self).__name__!r} has no property {name!r}")

    def applyProperties(self, props: Mapping[str, Any]) -> None:
        """Set every pair at once: one refused key or value and nothing changes."""
        if not isinstance(props, Mapping):
            raise InvalidArgumentTypeError("props", f"'props' must be a dict (got {props!r})")
        for key in props:
            self._check_settable(key)
            if key not in CONFIG_FIELDS and key != "bubbleParent":
                raise AttributeError(f"{type(self).__name__!r} has no property {key!r}")
        fields = {k: v for k, v in props.items() if k in CONFIG_FIELDS}
        bubble = check.boolean("bubbleParent", props.get("bubbleParent", self.bubbleParent))
        values = attrs.evolve(self._values, **fields)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "bubbleParent", bubble)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | CONFIG_FIELDS)

    def __repr__(self) -> str:
        ident = f" identifier={self._values.identifier!r}" if self._values.identifier else ""
        return f"<SessionConfiguration type={self._values.type!r}{ident}>"
