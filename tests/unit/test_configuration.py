"""``SessionConfiguration``: the three kinds, Apple's defaults, validation, the session's copy."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import urlsession_module as URLSession
from urlsession_module import (
    CreationOnlyError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidArgumentValueError,
    SessionConfiguration,
)
from urlsession_module._config_values import CONFIG_FIELDS, ConfigValues

SEVEN_DAYS = 7 * 24 * 3600


def make(props: dict[str, Any] | None = None, **kwargs: Any) -> SessionConfiguration:
    return URLSession.createSessionConfiguration(props, **kwargs)


# -- the three kinds --------------------------------------------------------------------------


def test_identifier_makes_a_background_configuration() -> None:
    """An identifier alone makes a background configuration (what Titanium always made)."""
    cfg = make({"identifier": "com.example.bg"})
    assert (cfg.type, cfg.identifier) == ("background", "com.example.bg")
    assert cfg._values.is_background


def test_no_identifier_makes_a_default_configuration() -> None:
    """Without an identifier the kind is 'default' and identifier is None."""
    cfg = make()
    assert (cfg.type, cfg.identifier) == ("default", None)
    assert not cfg._values.is_background


@pytest.mark.parametrize("kind", ["default", "ephemeral"])
def test_explicit_kinds(kind: str) -> None:
    """type='default' and type='ephemeral' are honoured."""
    assert make(type=kind).type == kind


def test_explicit_background_type() -> None:
    """type='background' with an identifier is a background configuration."""
    cfg = make(type="background", identifier="bg")
    assert (cfg.type, cfg.identifier) == ("background", "bg")


@pytest.mark.parametrize("identifier", ["", "   ", None])
def test_background_needs_a_non_empty_identifier(identifier: Any) -> None:
    """A background configuration needs a non-empty str identifier, naming 'identifier'."""
    with pytest.raises(InvalidArgumentValueError) as info:
        make(type="background", identifier=identifier)
    assert info.value.argument == "identifier"


@pytest.mark.parametrize("identifier", [5, b"bg", ["bg"]])
def test_identifier_must_be_a_str(identifier: Any) -> None:
    """A non-str identifier is a type error naming 'identifier'."""
    with pytest.raises(InvalidArgumentTypeError) as info:
        make(identifier=identifier)
    assert info.value.argument == "identifier"


def test_empty_identifier_alone_is_refused() -> None:
    """identifier='' alone is refused (it asks for a background configuration)."""
    with pytest.raises(InvalidArgumentValueError) as info:
        make(identifier="")
    assert info.value.argument == "identifier"


@pytest.mark.parametrize("kind", ["default", "ephemeral"])
def test_identifier_with_default_or_ephemeral_refused(kind: str) -> None:
    """An identifier with type 'default' or 'ephemeral' is refused, naming 'identifier'."""
    with pytest.raises(InvalidArgumentValueError, match="only for background") as info:
        make(type=kind, identifier="x")
    assert info.value.argument == "identifier"


@pytest.mark.parametrize("kind", ["Background", "shared", "", None, 1])
def test_unknown_type_refused(kind: Any) -> None:
    """type must be one of the three kinds, naming 'type'."""
    with pytest.raises(InvalidArgumentValueError) as info:
        make(type=kind)
    assert info.value.argument == "type"


# -- Apple's defaults -------------------------------------------------------------------------


def test_apple_defaults() -> None:
    """Defaults follow URLSessionConfiguration's."""
    cfg = make()
    assert cfg.timeoutIntervalForRequest == 60
    assert cfg.timeoutIntervalForResource == SEVEN_DAYS
    assert cfg.httpMaximumConnectionsPerHost == 6
    assert cfg.httpShouldSetCookies is True
    assert cfg.httpCookieAcceptPolicy == "onlyFromMainDocumentDomain"
    assert cfg.requestCachePolicy == "useProtocolCachePolicy"
    assert cfg.isDiscretionary is False
    assert cfg.sessionSendsLaunchEvents is True
    assert cfg.HTTPHeaderFields == {}
    assert cfg.tlsVerify is True
    assert (cfg.caBundle, cfg.proxyURL, cfg.launchCommand) == (None, None, None)
    assert cfg.bubbleParent is True


def test_background_has_the_same_defaults() -> None:
    """A background configuration has the same defaults as a default one (but its kind)."""
    bg = make(identifier="bg")._values
    default = make()._values
    for name in CONFIG_FIELDS - {"type", "identifier"}:
        assert getattr(bg, name) == getattr(default, name), name


def test_properties_given_at_creation() -> None:
    """Any property can be given in the creation dict."""
    cfg = make(
        {
            "identifier": "bg",
            "timeoutIntervalForRequest": 12.5,
            "timeoutIntervalForResource": 99,
            "httpMaximumConnectionsPerHost": 2,
            "httpShouldSetCookies": False,
            "httpCookieAcceptPolicy": "never",
            "requestCachePolicy": "reloadIgnoringLocalCacheData",
            "isDiscretionary": True,
            "sessionSendsLaunchEvents": False,
            "launchCommand": ["python", "app.py"],
            "tlsVerify": False,
            "caBundle": "/etc/ssl/ca.pem",
            "proxyURL": "http://proxy.local:3128",
            "HTTPHeaderFields": {"X-App": "demo"},
        }
    )
    assert cfg.timeoutIntervalForRequest == 12.5
    assert cfg.timeoutIntervalForResource == 99
    assert cfg.httpMaximumConnectionsPerHost == 2
    assert cfg.httpShouldSetCookies is False
    assert cfg.httpCookieAcceptPolicy == "never"
    assert cfg.requestCachePolicy == "reloadIgnoringLocalCacheData"
    assert (cfg.isDiscretionary, cfg.sessionSendsLaunchEvents) == (True, False)
    assert cfg.launchCommand == ["python", "app.py"]
    assert (cfg.tlsVerify, cfg.caBundle) == (False, "/etc/ssl/ca.pem")
    assert cfg.proxyURL == "http://proxy.local:3128"
    assert cfg.HTTPHeaderFields == {"X-App": "demo"}


def test_unknown_key_refused_naming_it() -> None:
    """An unknown property in the creation dict is refused, naming that key."""
    with pytest.raises(InvalidArgumentValueError, match="timeoutIntervalForRequests") as info:
        make({"timeoutIntervalForRequests": 5})
    assert info.value.argument == "timeoutIntervalForRequests"


def test_unknown_property_assignment_refused() -> None:
    """Assigning an unknown property raises AttributeError naming it; reading one too."""
    cfg = make()
    with pytest.raises(AttributeError, match="timeout"):
        cfg.timeout = 5
    with pytest.raises(AttributeError, match="nope"):
        _ = cfg.nope
    with pytest.raises(AttributeError):
        cfg.applyProperties({"nope": 1})


# -- HTTPHeaderFields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "exc"),
    [
        pytest.param({1: "x"}, InvalidArgumentTypeError, id="int-name"),
        pytest.param({b"X": "x"}, InvalidArgumentTypeError, id="bytes-name"),
        pytest.param({"X-A": 1}, InvalidArgumentTypeError, id="int-value"),
        pytest.param({"X-A": None}, InvalidArgumentTypeError, id="none-value"),
        pytest.param({"X-A": b"x"}, InvalidArgumentTypeError, id="bytes-value"),
        pytest.param({"X-A": "a\r\nInjected: 1"}, InvalidArgumentValueError, id="crlf-value"),
        pytest.param({"X-A": "a\nb"}, InvalidArgumentValueError, id="lf-value"),
        pytest.param({"X-A": "a\rb"}, InvalidArgumentValueError, id="cr-value"),
        pytest.param({"X-A": "a\x00b"}, InvalidArgumentValueError, id="nul-value"),
        pytest.param({"X A": "x"}, InvalidArgumentValueError, id="space-in-name"),
        pytest.param({"X-A:": "x"}, InvalidArgumentValueError, id="colon-in-name"),
        pytest.param({"X\r\nB": "x"}, InvalidArgumentValueError, id="crlf-name"),
        pytest.param({"": "x"}, InvalidArgumentValueError, id="empty-name"),
        pytest.param({"Ünïcode": "x"}, InvalidArgumentValueError, id="non-token-name"),
        pytest.param([("X-A", "x")], InvalidArgumentTypeError, id="list-not-dict"),
        pytest.param("X-A: x", InvalidArgumentTypeError, id="str-not-dict"),
    ],
)
def test_header_fields_validated(headers: Any, exc: type[Exception]) -> None:
    """HTTPHeaderFields must be str → str with token names and no CR/LF, at creation and on set."""
    with pytest.raises(exc) as info:
        make(HTTPHeaderFields=headers)
    assert info.value.argument == "HTTPHeaderFields"  # type: ignore[attr-defined]
    cfg = make(HTTPHeaderFields={"X-Ok": "1"})
    with pytest.raises(exc):
        cfg.HTTPHeaderFields = headers
    assert cfg.HTTPHeaderFields == {"X-Ok": "1"}


def test_header_fields_accepts_valid_headers() -> None:
    """Valid header names (tokens) and values (with spaces, tabs, punctuation) are kept."""
    headers = {"X-Token_1.v2": "a b\tc; d=e", "Accept": "*/*", "X-Empty": ""}
    cfg = make(HTTPHeaderFields=headers)
    assert cfg.HTTPHeaderFields == headers


def test_header_fields_returns_a_copy() -> None:
    """Mutating the dict read from HTTPHeaderFields does not change the configuration."""
    source = {"X-A": "1"}
    cfg = make(HTTPHeaderFields=source)
    source["X-B"] = "2"
    read = cfg.HTTPHeaderFields
    read["X-C"] = "3"
    assert cfg.HTTPHeaderFields == {"X-A": "1"}


def test_header_fields_none_means_empty() -> None:
    """HTTPHeaderFields=None is the same as an empty dict."""
    cfg = make(HTTPHeaderFields={"X-A": "1"})
    cfg.HTTPHeaderFields = None
    assert cfg.HTTPHeaderFields == {}


# -- every property validated on set ------------------------------------------------------------

BAD_VALUES: list[tuple[str, Any, type[Exception]]] = [
    ("timeoutIntervalForRequest", 0, InvalidArgumentValueError),
    ("timeoutIntervalForRequest", -1.5, InvalidArgumentValueError),
    ("timeoutIntervalForRequest", float("nan"), InvalidArgumentValueError),
    ("timeoutIntervalForRequest", "60", InvalidArgumentTypeError),
    ("timeoutIntervalForRequest", True, InvalidArgumentTypeError),
    ("timeoutIntervalForResource", 0, InvalidArgumentValueError),
    ("timeoutIntervalForResource", None, InvalidArgumentTypeError),
    ("httpMaximumConnectionsPerHost", 0, InvalidArgumentValueError),
    ("httpMaximumConnectionsPerHost", 2.5, InvalidArgumentTypeError),
    ("httpMaximumConnectionsPerHost", True, InvalidArgumentTypeError),
    ("httpShouldSetCookies", 1, InvalidArgumentTypeError),
    ("httpShouldSetCookies", "yes", InvalidArgumentTypeError),
    ("httpCookieAcceptPolicy", "sometimes", InvalidArgumentValueError),
    ("requestCachePolicy", "whatever", InvalidArgumentValueError),
    ("isDiscretionary", None, InvalidArgumentTypeError),
    ("sessionSendsLaunchEvents", 0, InvalidArgumentTypeError),
    ("launchCommand", [], InvalidArgumentTypeError),
    ("launchCommand", "python app.py", InvalidArgumentTypeError),
    ("launchCommand", ["python", 3], InvalidArgumentTypeError),
    ("tlsVerify", "false", InvalidArgumentTypeError),
    ("caBundle", 3, InvalidArgumentTypeError),
    ("proxyURL", 3, InvalidArgumentTypeError),
    ("proxyURL", "ftp://proxy.local", InvalidArgumentValueError),
    ("proxyURL", "", InvalidArgumentValueError),
    ("HTTPHeaderFields", {"X": 1}, InvalidArgumentTypeError),
    ("credential", "user:password", InvalidArgumentTypeError),
    ("credential", {"user": "u", "password": 1}, InvalidArgumentTypeError),
    ("credential", {"user": "a:b", "password": "p"}, InvalidArgumentValueError),
    ("credential", {"user": "u", "password": "p", "realm": "r"}, InvalidArgumentValueError),
    ("maximumResponseDataLength", 0, InvalidArgumentValueError),
    ("maximumResponseDataLength", None, InvalidArgumentTypeError),
    ("maximumResponseDataLength", 1.5, InvalidArgumentTypeError),
    ("maximumDownloadLength", -1, InvalidArgumentValueError),
    ("maximumDownloadLength", "1", InvalidArgumentTypeError),
    ("engine", "libcurl", InvalidArgumentValueError),
    ("httpVersion", "1.0", InvalidArgumentValueError),
    ("httpVersion", 2, InvalidArgumentValueError),
    ("proxyURL", "gopher://proxy.local:70", InvalidArgumentValueError),
    ("proxyURL", "socks4://proxy.local:1080", InvalidArgumentValueError),
    ("proxyURL", "http://proxy.local:70000", InvalidArgumentValueError),
    ("proxyURL", "http://proxy.local:0", InvalidArgumentValueError),
    ("proxyURL", "http://:8080", InvalidArgumentValueError),
    ("connectionProxyDictionary", "http://proxy.local", InvalidArgumentTypeError),
    ("connectionProxyDictionary", {"HTTPProxyHost": "p"}, InvalidArgumentValueError),
    ("connectionProxyDictionary", {"HTTPPort": 70000}, InvalidArgumentValueError),
    ("connectionProxyDictionary", {"HTTPPort": "8080"}, InvalidArgumentTypeError),
    ("connectionProxyDictionary", {"HTTPProxy": "http://p"}, InvalidArgumentValueError),
    ("connectionProxyDictionary", {"HTTPEnable": "yes"}, InvalidArgumentValueError),
    ("connectionProxyDictionary", {"ExceptionsList": "localhost"}, InvalidArgumentTypeError),
    ("connectionProxyDictionary", {"ExceptionsList": ["a", 1]}, InvalidArgumentTypeError),
    ("connectionProxyDictionary", {"ExceptionsList": ["10.0.0.0/33"]}, InvalidArgumentValueError),
    ("clientCertificate", "/etc/client.pem", InvalidArgumentTypeError),
    ("clientCertificate", {"certFile": "/nonexistent/c.pem"}, InvalidArgumentValueError),
    ("clientCertificate", {"keyFile": "/nonexistent/k.pem"}, InvalidArgumentValueError),
    ("clientCertificate", {"certFile": 3}, InvalidArgumentTypeError),
    ("pinnedPublicKeys", ["sha256/x"], InvalidArgumentTypeError),
    ("pinnedPublicKeys", {"h.example": "sha256/" + "A" * 43 + "="}, InvalidArgumentTypeError),
    ("pinnedPublicKeys", {"h.example": []}, InvalidArgumentTypeError),
    ("pinnedPublicKeys", {"h.example": ["md5/abc"]}, InvalidArgumentValueError),
    ("pinnedPublicKeys", {"h.example": ["sha256/not base64!"]}, InvalidArgumentValueError),
    ("pinnedPublicKeys", {"h.example": ["sha256/AAAA"]}, InvalidArgumentValueError),
    (
        "pinnedPublicKeys",
        {"http://h.example/": ["sha256/" + "A" * 43 + "="]},
        InvalidArgumentValueError,
    ),
    ("pinnedPublicKeys", {"*.*.example": ["sha256/" + "A" * 43 + "="]}, InvalidArgumentValueError),
    ("tlsMinimumSupportedProtocolVersion", "TLSv1.1", InvalidArgumentValueError),
    ("tlsMinimumSupportedProtocolVersion", 1.3, InvalidArgumentValueError),
    ("waitsForConnectivity", "yes", InvalidArgumentTypeError),
    ("maximumBytesPerSecond", 0, InvalidArgumentValueError),
    ("maximumBytesPerSecond", -1024, InvalidArgumentValueError),
    ("maximumBytesPerSecond", 1.5, InvalidArgumentTypeError),
    ("maximumBytesPerSecond", True, InvalidArgumentTypeError),
    ("retryPolicy", {"totl": 3}, InvalidArgumentValueError),
    ("retryPolicy", {"total": -1}, InvalidArgumentValueError),
    ("retryPolicy", {"total": 2.5}, InvalidArgumentValueError),
    ("retryPolicy", {"backoffFactor": -1}, InvalidArgumentValueError),
    ("retryPolicy", {"statusCodes": [99]}, InvalidArgumentValueError),
    ("retryPolicy", {"statusCodes": "503"}, InvalidArgumentTypeError),
    ("retryPolicy", {"respectRetryAfter": 1}, InvalidArgumentTypeError),
    ("retryPolicy", 3, InvalidArgumentTypeError),
]


@pytest.mark.parametrize(
    ("name", "value", "exc"), BAD_VALUES, ids=[f"{n}={v!r}" for n, v, _ in BAD_VALUES]
)
def test_every_property_validated_on_creation_and_set(
    name: str, value: Any, exc: type[Exception]
) -> None:
    """A bad value raises the same error, naming the property, at creation and on assignment."""
    with pytest.raises(exc) as info:
        make({name: value})
    assert isinstance(info.value, InvalidArgumentError)
    assert info.value.argument == name
    cfg = make()
    before = getattr(cfg, name)
    with pytest.raises(exc) as info:
        setattr(cfg, name, value)
    assert info.value.argument == name  # type: ignore[attr-defined]
    with pytest.raises(exc):
        cfg[name] = value
    with pytest.raises(exc):
        cfg.applyProperties({name: value})
    assert getattr(cfg, name) == before


def test_every_field_has_a_bad_value_case() -> None:
    """BAD_VALUES above covers every settable configuration property."""
    assert {n for n, _, _ in BAD_VALUES} == CONFIG_FIELDS - {"type", "identifier"}


def test_properties_can_be_set() -> None:
    """Good values set through attribute, item and applyProperties are read back."""
    cfg = make()
    cfg.timeoutIntervalForRequest = 5
    cfg["httpMaximumConnectionsPerHost"] = 1
    cfg.applyProperties({"httpShouldSetCookies": False, "launchCommand": ["app"]})
    assert cfg.timeoutIntervalForRequest == 5
    assert cfg["httpMaximumConnectionsPerHost"] == 1
    assert cfg.httpShouldSetCookies is False
    assert cfg.launchCommand == ["app"]
    cfg.launchCommand = None
    assert cfg.launchCommand is None


def test_apply_properties_is_all_or_nothing() -> None:
    """applyProperties with one bad value sets none of the others."""
    cfg = make()
    with pytest.raises(InvalidArgumentValueError) as info:
        cfg.applyProperties({"timeoutIntervalForRequest": 5, "httpMaximumConnectionsPerHost": 0})
    assert info.value.argument == "httpMaximumConnectionsPerHost"
    assert cfg.timeoutIntervalForRequest == 60


def test_bubble_parent_validated() -> None:
    """bubbleParent on a configuration must be a bool."""
    cfg = make()
    cfg.bubbleParent = False
    assert cfg.bubbleParent is False
    with pytest.raises(InvalidArgumentTypeError):
        cfg.bubbleParent = "no"


# -- creation-only ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [("identifier", "other"), ("type", "ephemeral")])
def test_identifier_and_type_are_creation_only(name: str, value: str) -> None:
    """identifier and type cannot change after creation, whichever way they are set."""
    cfg = make(identifier="bg")
    with pytest.raises(CreationOnlyError, match=name):
        setattr(cfg, name, value)
    with pytest.raises(CreationOnlyError):
        cfg[name] = value
    with pytest.raises(CreationOnlyError):
        cfg.applyProperties({"timeoutIntervalForRequest": 5, name: value})
    assert (cfg.type, cfg.identifier, cfg.timeoutIntervalForRequest) == ("background", "bg", 60)


def test_config_values_are_frozen() -> None:
    """The underlying value object cannot be changed in place."""
    values = make()._values
    assert isinstance(values, ConfigValues)
    with pytest.raises(AttributeError):
        values.timeoutIntervalForRequest = 1  # type: ignore[misc]


def test_repr_and_dir() -> None:
    """repr shows kind and identifier; dir lists the configuration properties."""
    assert repr(make(identifier="bg")) == "<SessionConfiguration type='background' identifier='bg'>"
    assert repr(make()) == "<SessionConfiguration type='default'>"
    assert set(dir(make())) >= CONFIG_FIELDS


# -- the session's copy -------------------------------------------------------------------------


def test_session_copy_unaffected_by_later_changes(make_session: Callable[..., Any]) -> None:
    """A session keeps the configuration it was created with; later changes do not reach it."""
    cfg = URLSession.createSessionConfiguration(
        {"identifier": "com.example.copy", "HTTPHeaderFields": {"X-A": "1"}}
    )
    session = URLSession.createSession({"configuration": cfg})
    try:
        cfg.timeoutIntervalForRequest = 5
        cfg.HTTPHeaderFields = {"X-B": "2"}
        cfg.httpMaximumConnectionsPerHost = 1
        copy = session.configuration
        assert copy.timeoutIntervalForRequest == 60
        assert copy.HTTPHeaderFields == {"X-A": "1"}
        assert copy.httpMaximumConnectionsPerHost == 6
        assert copy.identifier == "com.example.copy"
    finally:
        session.invalidateAndCancel()
        assert session.waitForInvalidation(10)


def test_changing_the_read_copy_does_not_change_the_session(
    make_session: Callable[..., Any],
) -> None:
    """session.configuration hands out a copy: changing it leaves the session's own unchanged."""
    session = make_session(timeoutIntervalForRequest=30)
    copy = session.configuration
    copy.timeoutIntervalForRequest = 1
    assert session.configuration.timeoutIntervalForRequest == 30
    assert session.configuration is not copy


def test_session_configuration_is_read_only(make_session: Callable[..., Any]) -> None:
    """Assigning session.configuration raises."""
    session = make_session()
    with pytest.raises(AttributeError):
        session.configuration = URLSession.createSessionConfiguration()


# -- the state directory ------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_dir_honours_urlsession_home(state_home: Path) -> None:
    """state_dir() is $URLSESSION_HOME, created private (0700)."""
    assert not state_home.exists()
    path = URLSession.state_dir()
    assert path == state_home
    assert path.is_dir()
    assert _mode(path) == 0o700


def test_state_dir_created_private_whatever_the_umask(state_home: Path) -> None:
    """Whatever the umask (here one that even drops the owner's write bit) it ends up 0700."""
    old = os.umask(0o277)
    try:
        path = URLSession.state_dir()
    finally:
        os.umask(old)
    assert _mode(path) == 0o700


def test_state_dir_fixes_a_pre_existing_open_directory(state_home: Path) -> None:
    """A pre-existing 0755 state directory is made 0700."""
    state_home.mkdir(parents=True)
    state_home.chmod(0o755)
    (state_home / "keep.txt").write_text("kept")
    assert URLSession.state_dir() == state_home
    assert _mode(state_home) == 0o700
    assert (state_home / "keep.txt").read_text() == "kept"


def test_state_dir_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$URLSESSION_HOME may start with ~."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("URLSESSION_HOME", "~/state")
    assert URLSession.state_dir() == tmp_path / "state"
    assert _mode(tmp_path / "state") == 0o700
