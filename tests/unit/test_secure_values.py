"""Issue 15's configuration values as plain data: which proxy a URL takes, pins by host, and the
round trip to the transfer process (the wire's JSON) of every new property."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.peers._certs import PeerCerts, make_certs
from urlsession_module._background._settings import config_from_dict, config_to_dict
from urlsession_module._config_values import make_values
from urlsession_module._proxy_values import choose_proxy, proxy_dictionary_value
from urlsession_module._tls_values import pins_for, pins_value

PIN = "sha256/" + "A" * 43 + "="


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> PeerCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


def test_dictionary_exceptions_names_suffixes_ips_and_cidr() -> None:
    d = proxy_dictionary_value(
        {
            "HTTPEnable": True,
            "HTTPProxy": "proxy.example",
            "HTTPPort": 3128,
            "ExceptionsList": ["intranet", "*.corp.example", "192.0.2.7", "10.0.0.0/8", "::1"],
        }
    )
    go = lambda url: choose_proxy(url, None, d, None)  # noqa: E731
    assert go("http://example.org/").url == "http://proxy.example:3128"  # type: ignore[union-attr]
    for direct in (
        "http://intranet/",
        "http://a.corp.example/",
        "http://corp.example/",
        "http://192.0.2.7/",
        "http://10.1.2.3/",
        "http://[::1]:8080/",
    ):
        assert go(direct) is None, direct
    assert go("https://example.org/") is None  # no HTTPS proxy and no SOCKS: direct


def test_precedence_and_environment_rules() -> None:
    env = (("http", "http://env-proxy:8080"), ("no", "skip.example"))
    assert choose_proxy("http://a.example/", None, None, env).host == "env-proxy"  # type: ignore[union-attr]
    assert choose_proxy("http://x.skip.example/", None, None, env) is None
    assert choose_proxy("http://a.example/", None, (), env) is None  # {} connects directly
    chosen = choose_proxy("http://a.example/", "socks5h://u:p@s:1080", (), env)
    assert chosen is not None and (chosen.scheme, chosen.credential) == ("socks5h", ("u", "p"))
    assert chosen.url == "socks5h://s:1080" and "u:p" not in repr(chosen)


def test_pins_by_host_and_one_label_wildcards() -> None:
    pins = pins_value({"API.example": [PIN], "*.cdn.example": [PIN.replace("A", "B", 1)]})
    assert pins_for(pins, "api.example") == (PIN,)
    assert pins_for(pins, "img.cdn.example") == (PIN.replace("A", "B", 1),)
    assert pins_for(pins, "a.b.cdn.example") == ()
    assert pins_for(pins, "other.example") == ()
    assert pins_value({"h": ["sha256//" + PIN[7:]]}) == (("h", (PIN,)),)  # curl's form too


def test_a_pin_whose_base64_begins_with_a_slash_is_ours_not_curls() -> None:
    """A SHA-256 whose base64 begins with '/' reads 'sha256//...' in our form: it is taken as
    it is (1 key in 64 did not, depending on trustme's random key), and curl's form still works."""
    slashed = "sha256//" + "A" * 42 + "="
    assert pins_value({"h": [slashed]}) == (("h", (slashed,)),)
    assert pins_value({"h": ["sha256//" + slashed[7:]]}) == (("h", (slashed,)),)


def test_new_properties_cross_to_the_transfer_process(certs: PeerCerts) -> None:
    values = make_values(
        {
            "identifier": "com.test.secure",
            "connectionProxyDictionary": {
                "SOCKSEnable": 1,
                "SOCKSProxy": "s",
                "ExceptionsList": ["a"],
            },
            "clientCertificate": {
                "pkcs12File": str(certs.client_p12),
                "password": certs.client_key_password,
            },
            "pinnedPublicKeys": {"h.example": [PIN]},
            "tlsMinimumSupportedProtocolVersion": "TLSv1.3",
        }
    )
    values = type(values)(**{**config_to_dict(values), "systemProxies": {"http": "http://p:1"}})
    back = config_from_dict(json.loads(json.dumps(config_to_dict(values))))
    assert back == values
    assert certs.client_key_password not in repr(values)


def test_client_certificate_key_inside_the_certificate_file(
    certs: PeerCerts, tmp_path: Path
) -> None:
    values = make_values({"clientCertificate": {"certFile": str(certs.client_combined)}})
    assert dict(values.clientCertificate or ()) == {"certFile": str(certs.client_combined)}


def test_proxy_password_not_in_the_configurations_repr() -> None:
    values = make_values({"proxyURL": "http://proxy-user:Pr0xy-Secret@127.0.0.1:3128"})
    assert "Pr0xy-Secret" not in repr(values)
    assert "http://***@127.0.0.1:3128" in repr(values)
