"""The sans-IO retry and connectivity rules (_state/_retry.py), with an injected clock."""

from __future__ import annotations

import pytest

from urlsession_module._request import Request, ResponseInfo
from urlsession_module._state import Failed, ResponseStarted
from urlsession_module._state._retry import (
    BACKOFF_MAX,
    CONNECTIVITY_MAX,
    RetryGate,
    RetryPolicy,
    retry_after_seconds,
    retry_policy_value,
)
from urlsession_module.exceptions import ErrorCode

GET = Request("GET", "http://127.0.0.1:1/x")
NOW = 1_000_000.0


def _status(code: int, retry_after: str | None = None) -> ResponseStarted:
    headers = (("Retry-After", retry_after),) if retry_after else ()
    return ResponseStarted(ResponseInfo("http://127.0.0.1:1/x", code, headers))


def test_backoff_doubles_and_is_capped() -> None:
    gate = RetryGate(retry_policy_value({"total": 20, "backoffFactor": 1}), False, GET, NOW + 1e6)
    lost = Failed(ErrorCode.NETWORK_CONNECTION_LOST, "lost")
    waits = [gate.check(lost, NOW) for _ in range(9)]
    assert [w - NOW for w in waits if isinstance(w, float)] == [1, 2, 4, 8, 16, 32, 64, 120, 120]
    assert BACKOFF_MAX == 120


def test_total_bounds_retries_then_the_input_goes_to_the_machine() -> None:
    gate = RetryGate(retry_policy_value({"total": 2}), False, GET, NOW + 100)
    refused = Failed(ErrorCode.CANNOT_CONNECT_TO_HOST, "refused")
    assert isinstance(gate.check(refused, NOW), float)
    assert isinstance(gate.check(refused, NOW), float)
    assert gate.check(refused, NOW) is None
    assert gate.retries == 2


def test_retry_after_is_honoured_up_to_the_deadline() -> None:
    policy = retry_policy_value({"total": 3})
    gate = RetryGate(policy, False, GET, NOW + 10)
    assert gate.check(_status(503, "5"), NOW) == NOW + 5
    assert gate.check(_status(503, "30"), NOW) is None  # past the resource deadline
    no_respect = RetryGate(
        retry_policy_value({"total": 3, "respectRetryAfter": False}), False, GET, NOW + 10
    )
    assert no_respect.check(_status(503, "30"), NOW) == NOW


def test_only_listed_statuses_and_replayable_methods() -> None:
    policy = retry_policy_value({"total": 3, "statusCodes": [502]})
    assert RetryGate(policy, False, GET, NOW + 10).check(_status(503), NOW) is None
    assert RetryGate(policy, False, GET, NOW + 10).check(_status(502), NOW) == NOW
    post = Request("POST", "http://127.0.0.1:1/x")
    assert RetryGate(policy, False, post, NOW + 10).check(_status(502), NOW) is None
    lost = Failed(ErrorCode.NETWORK_CONNECTION_LOST)
    assert RetryGate(policy, False, post, NOW + 10).check(lost, NOW) is None


def test_http_date_retry_after() -> None:
    assert retry_after_seconds("Thu, 01 Jan 1970 00:16:50 GMT", 1000.0) == 10.0
    assert retry_after_seconds("soon", 0.0) is None
    assert retry_after_seconds(None, 0.0) is None


def test_waiting_for_connectivity_backs_off_capped_and_announces_once() -> None:
    gate = RetryGate(None, True, Request("POST", "http://127.0.0.1:1/x"), NOW + 60)
    refused = Failed(ErrorCode.CANNOT_CONNECT_TO_HOST, "refused")
    delays = []
    for _ in range(6):
        at = gate.check(refused, NOW)
        assert isinstance(at, float)
        delays.append(at - NOW)
        if len(delays) == 1:
            assert gate.announce
            gate.announce = False
        else:
            assert not gate.announce
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert CONNECTIVITY_MAX == 2.0


def test_waiting_ends_with_minus_1001_at_the_deadline() -> None:
    gate = RetryGate(None, True, GET, NOW + 1)
    out = gate.check(Failed(ErrorCode.CANNOT_FIND_HOST, "no such host"), NOW + 0.9)
    assert isinstance(out, Failed) and out.code == ErrorCode.TIMED_OUT
    assert "waiting for connectivity" in out.message


def test_a_connection_lost_after_the_response_began_is_no_outage() -> None:
    gate = RetryGate(None, True, GET, NOW + 60)
    assert gate.check(_status(200), NOW) is None
    assert gate.check(Failed(ErrorCode.NETWORK_CONNECTION_LOST), NOW) is None
    gate.new_run()
    assert isinstance(gate.check(Failed(ErrorCode.NETWORK_CONNECTION_LOST), NOW), float)


@pytest.mark.parametrize(
    "value",
    [{"total": 1, "extra": 1}, {"total": -2}, {"backoffFactor": float("inf")}, [1, 2]],
)
def test_bad_policies_name_the_argument(value: object) -> None:
    with pytest.raises(Exception) as info:
        retry_policy_value(value)
    assert getattr(info.value, "argument", None) == "retryPolicy"


def test_policy_round_trips_as_plain_data() -> None:
    policy = retry_policy_value({"total": 2, "statusCodes": [500, 503]})
    assert isinstance(policy, RetryPolicy)
    assert retry_policy_value(policy.to_dict()) == policy
