"""Digest answers (RFC 7616) checked against the RFC's own worked example, and the choice of
the strongest scheme offered."""

from __future__ import annotations

import re

from urlsession_module._stores._credentials import parse_challenges
from urlsession_module._stores._digest import DigestAnswer, ranked

# RFC 7616 section 3.9.1
RFC_CHALLENGE = {
    "realm": "http-auth@example.org",
    "qop": "auth, auth-int",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
}
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
CREDENTIAL = ("Mufasa", "Circle of Life")
URL = "http://www.example.org/dir/index.html"


def _response(header: str) -> str:
    m = re.search(r'response="([0-9a-f]+)"', header)
    assert m, header
    return m[1]


def test_rfc7616_md5_example() -> None:
    answer = DigestAnswer({**RFC_CHALLENGE, "algorithm": "MD5"}, CREDENTIAL)
    header = answer.header("GET", URL, None, cnonce=RFC_CNONCE)
    assert _response(header) == "8ca523f5e9506fed4657c9700eebdbec"
    assert 'uri="/dir/index.html"' in header and "qop=auth, nc=00000001" in header
    assert f'opaque="{RFC_CHALLENGE["opaque"]}"' in header


def test_rfc7616_sha256_example() -> None:
    answer = DigestAnswer({**RFC_CHALLENGE, "algorithm": "SHA-256"}, CREDENTIAL)
    header = answer.header("GET", URL, None, cnonce=RFC_CNONCE)
    assert _response(header) == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert "algorithm=SHA-256" in header


def test_nonce_count_goes_up_and_the_password_is_never_shown() -> None:
    answer = DigestAnswer({**RFC_CHALLENGE, "algorithm": "MD5"}, CREDENTIAL)
    answer.header("GET", URL, None)
    assert "nc=00000002" in answer.header("GET", URL, None)
    assert "Circle of Life" not in repr(answer)


def test_strongest_scheme_first() -> None:
    offered = parse_challenges(
        [
            'Basic realm="b"',
            'Digest realm="m", nonce="1", algorithm=MD5, qop="auth"',
            'Digest realm="s", nonce="2", algorithm=SHA-256, qop="auth"',
            'Digest realm="x", nonce="3", algorithm=SHA-512-256',
            "Negotiate",
        ]
    )
    assert [p["realm"] for _, p in ranked(offered)] == ["s", "m", "b"]


def test_digest_without_a_qop_we_speak_is_not_answered() -> None:
    assert ranked(parse_challenges(['Digest realm="r", nonce="n", qop="auth-conf"'])) == []
