"""``ConfigValues``: the plain, frozen settings a session runs from, and their validators.

Kept apart from :mod:`._configuration` (the ``SessionConfiguration`` proxy) so that what only
needs the values (the stores, the transport, the background wire protocol and the transfer
process) imports no pyee: a configuration crosses the process boundary as plain data, and the
layers below the proxies must not pull in the event machinery to read a timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from . import _validate as check
from ._client_certs import client_certificate_value
from ._proxy_values import check_proxy_url, proxy_dictionary_value, shown_proxy_url
from ._state._retry import RetryPolicy, retry_policy_value
from ._tls_values import TLS_VERSIONS, pins_value
from .exceptions import InvalidArgumentTypeError, InvalidArgumentValueError

__all__ = [
    "CACHE_POLICIES",
    "CONFIG_FIELDS",
    "COOKIE_POLICIES",
    "DEFAULT_MAXIMUM_RESPONSE_DATA",
    "ENGINES",
    "HTTP_VERSIONS",
    "KINDS",
    "SEVEN_DAYS",
    "ConfigValues",
    "Kind",
    "check_url_version",
    "credential_value",
    "make_values",
    "set_curl_probe",
]

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


ENGINES = ("curl", "urllib3")
HTTP_VERSIONS = ("auto", "1.1", "2", "3")


def _find_pycurl() -> tuple[bool, bool]:
    """Before the transport has said more: whether pycurl is installed (not imported here: this
    layer does no IO), and no HTTP/3 known."""
    import importlib.util

    return importlib.util.find_spec("pycurl") is not None, False


_probe: Callable[[], tuple[bool, bool]] = _find_pycurl
_FEATURES: tuple[bool, bool] | None = None


def set_curl_probe(probe: Callable[[], tuple[bool, bool]]) -> None:
    """The transport tells what its curl engine can do: (pycurl imports, HTTP/3 is built in).

    The configuration layer decides defaults and refuses what cannot run, but only the layer that
    owns the engines may import pycurl to find out (``_transport`` installs this on import).
    """
    global _probe, _FEATURES
    _probe, _FEATURES = probe, None


def _curl_features() -> tuple[bool, bool]:
    """(pycurl imports, its libcurl speaks HTTP/3): asked once, on first need."""
    global _FEATURES
    if _FEATURES is None:
        _FEATURES = _probe()
    return _FEATURES


def default_engine() -> str:
    """'curl' wherever pycurl imports, 'urllib3' otherwise (the tests may set another, see
    ``URLSESSION_ENGINE``)."""
    import os

    chosen = os.environ.get("URLSESSION_ENGINE")
    if chosen in ENGINES:
        return chosen
    return "curl" if _curl_features()[0] else "urllib3"


def _engine(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check.one_of(attribute.name, value, ENGINES)
    if value == "curl" and not _curl_features()[0]:
        raise InvalidArgumentValueError(
            "engine",
            "'engine' 'curl' needs pycurl, which is not installed "
            "(pip install pycurl; or use engine='urllib3')",
        )


def check_url_version(config: ConfigValues, url: str) -> None:
    """HTTP/3 runs over QUIC, which is always TLS: an http:// URL cannot have it."""
    if config.httpVersion == "3" and url[:5].lower() == "http:":
        raise InvalidArgumentValueError(
            "url",
            f"httpVersion '3' (QUIC) needs an https:// URL (got {url!r}); "
            "use httpVersion '2' for h2c over http://",
        )


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


def _to_pairs(value: Any) -> Any:
    if value is None:
        return None
    return tuple(
        (str(k), str(v)) for k, v in (value.items() if isinstance(value, Mapping) else value)
    )


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
    proxyURL: str | None = attrs.field(
        default=None, validator=_optional_str, repr=lambda v: repr(shown_proxy_url(v))
    )
    # Answers a 401 Basic challenge from the origin of each task's first request (never another
    # origin's); given as {'user': ..., 'password': ...}, kept as a pair, never shown in a repr.
    credential: tuple[str, str] | None = attrs.field(
        default=None, converter=_to_credential, repr=False
    )
    # Not Apple's: the most decoded bytes a data/upload task keeps in memory, and a download
    # writes to disk (None: no limit), before failing with -1103 (data length exceeds maximum).
    maximumResponseDataLength: int = attrs.field(default=DEFAULT_MAXIMUM_RESPONSE_DATA)
    maximumDownloadLength: int | None = attrs.field(default=None)
    # Not Apple's: which engine moves the bytes ('curl': libcurl through pycurl, one network
    # thread for the process; 'urllib3': a worker thread per running task), and which HTTP
    # versions it may speak ('auto': h2 where TLS ALPN offers it, else HTTP/1.1).
    engine: str = attrs.field(factory=default_engine, validator=_engine)
    httpVersion: str = attrs.field(default="auto", validator=_v(check.one_of, HTTP_VERSIONS))
    # Apple's proxy dictionary (CFNetwork keys; {} connects directly, None follows the
    # environment), kept frozen as sorted pairs; the getter gives a dict back.
    connectionProxyDictionary: tuple[tuple[str, Any], ...] | None = attrs.field(
        default=None, converter=proxy_dictionary_value
    )
    # A client certificate for servers that ask for one (PEM cert/key/password, or PKCS#12 and
    # its password): read and checked when set; never shown in a repr.
    clientCertificate: tuple[tuple[str, str], ...] | None = attrs.field(
        default=None, converter=client_certificate_value, repr=False
    )
    # host or '*.suffix' -> ['sha256/BASE64', ...]: a TLS server whose leaf key matches none of
    # its host's pins fails with -1202 before a request byte is sent (frozen as sorted pairs).
    pinnedPublicKeys: tuple[tuple[str, tuple[str, ...]], ...] | None = attrs.field(
        default=None, converter=pins_value
    )
    tlsMinimumSupportedProtocolVersion: str = attrs.field(
        default="TLSv1.2", validator=_v(check.one_of, TLS_VERSIONS)
    )
    # Unreliable networks (docs/unreliable-networks.md): Apple's waitsForConnectivity (always on
    # in background sessions); a retry policy after urllib3's Retry (none: no retries); the
    # session's bandwidth limit in bytes per second, each direction, shared by its tasks.
    waitsForConnectivity: bool = attrs.field(default=False, validator=_v(check.boolean))
    retryPolicy: RetryPolicy | None = attrs.field(default=None, converter=retry_policy_value)
    maximumBytesPerSecond: int | None = attrs.field(
        default=None, validator=_v(check.bytes_per_second)
    )
    # Internal (not a property): the environment's proxies, read when the session was made.
    systemProxies: tuple[tuple[str, str], ...] | None = attrs.field(
        default=None, converter=_to_pairs, repr=False, metadata={"internal": True}
    )

    @httpMaximumConnectionsPerHost.validator
    @maximumResponseDataLength.validator
    @maximumDownloadLength.validator
    def _check_count(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        """A count of connections or bytes: an int >= 1 (a bool is not one, though Python says so)."""
        if value is None and attribute.name == "maximumDownloadLength":
            return  # no limit
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
            check_proxy_url("proxyURL", self.proxyURL)
        if self.engine == "urllib3" and self.httpVersion in ("2", "3"):
            raise InvalidArgumentValueError(
                "httpVersion",
                f"'httpVersion' {self.httpVersion!r} needs engine 'curl' "
                "(the urllib3 engine speaks HTTP/1.1 only)",
            )
        if self.httpVersion == "3" and not _curl_features()[1]:
            raise InvalidArgumentValueError(
                "httpVersion", "'httpVersion' '3' needs a libcurl built with HTTP/3 (QUIC)"
            )

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.HTTPHeaderFields)

    @property
    def is_background(self) -> bool:
        return self.type == "background"


CONFIG_FIELDS: frozenset[str] = frozenset(
    a.name for a in attrs.fields(ConfigValues) if not a.metadata.get("internal")
)


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
