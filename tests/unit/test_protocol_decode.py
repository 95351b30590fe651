"""The background wire's frame decoding: orjson where installed, the json module behind it."""

from __future__ import annotations

import json

import pytest

from urlsession_module._background import _protocol
from urlsession_module._background._protocol import decode, encode
from urlsession_module._background._wire import MessageError


def test_orjson_reads_the_frames_where_installed() -> None:
    pytest.importorskip("orjson")  # (setup.cfg installs it on CPython: present in the suite)
    assert _protocol._fast_loads is not None


@pytest.mark.parametrize(
    "value",
    [
        {"op": "ack", "n": 3, "f": 1.5, "s": "é\u2603", "l": [None, True, False]},
        {"big": 2**70, "neg": -(2**65)},  # beyond 64 bits: orjson refuses, json reads
        {"inf": float("inf"), "x": float("-inf")},  # our encoder writes Infinity (allow_nan)
    ],
)
def test_what_we_encode_decodes_the_same_either_way(value: dict[str, object]) -> None:
    frame = encode(value)
    assert decode(frame) == json.loads(frame) == value


@pytest.mark.parametrize("frame", [b"not json", b"\xff\xfe", b'{"a": ', b""])
def test_a_frame_that_is_not_json_is_a_message_error(frame: bytes) -> None:
    with pytest.raises(MessageError, match="JSON object"):
        decode(frame)
