"""Retries and waiting for connectivity in foreground sessions: the rules, sans-IO.

A run of a task ends; was it a "not now" worth another run, and when? That is decided here,
from the input that ended the run (:func:`~._background.transient`'s rule, which the background
transfer process applies too), the session's ``retryPolicy`` and ``waitsForConnectivity``, the
runs made so far and the resource deadline. The caller (``_task.TaskRun``) holds the input
back from the machine, stops the transfer, and requeues the task through the scheduler at the
time answered here; when the answer is "no", the input goes to the machine as usual.

The policy is urllib3's ``Retry`` in camelCase (``total``, ``backoffFactor``, ``statusCodes``,
``respectRetryAfter``): the delay before retry *n* (1-based) is ``backoffFactor * 2**(n-1)``,
at most :data:`BACKOFF_MAX`, or the server's ``Retry-After`` when it asks for longer. Only
replayable requests are retried: idempotent methods, whose body (if any) is bytes or a file.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from typing import Any

import attrs

from .._request import Request
from ..exceptions import ErrorCode, InvalidArgumentTypeError, InvalidArgumentValueError
from ._background import Retry, transient
from ._inputs import Failed, Input, ResponseStarted

__all__ = [
    "BACKOFF_MAX",
    "CONNECTIVITY_CODES",
    "REPLAYABLE_METHODS",
    "RetryGate",
    "RetryPolicy",
    "background_retry",
    "connectivity_delay",
    "replayable",
    "retry_after_seconds",
    "retry_delay",
    "retry_policy_value",
    "wants_retry",
]

BACKOFF_MAX = 120.0  # urllib3's Retry.DEFAULT_BACKOFF_MAX
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
DEFAULT_STATUS_CODES = frozenset({413, 429, 503})  # urllib3's RETRY_AFTER_STATUS_CODES
# Failures that mean the host could not be reached (waitsForConnectivity waits these out).
CONNECTIVITY_CODES = frozenset(
    {
        ErrorCode.CANNOT_FIND_HOST,
        ErrorCode.CANNOT_CONNECT_TO_HOST,
        ErrorCode.NETWORK_CONNECTION_LOST,
    }
)
# waitsForConnectivity's backoff: 0.25 s doubling to at most 2 s, so a host that comes up is
# found within 2 s of it listening.
CONNECTIVITY_FIRST = 0.25
CONNECTIVITY_MAX = 2.0
_KEYS = ("total", "backoffFactor", "statusCodes", "respectRetryAfter")


@attrs.frozen
class RetryPolicy:
    """A session's ``retryPolicy``: how often and how patiently a replayable task is retried."""

    total: int = 0
    backoffFactor: float = 0.0
    statusCodes: frozenset[int] = DEFAULT_STATUS_CODES
    respectRetryAfter: bool = True

    def to_dict(self) -> dict[str, Any]:
        """As the user gives it (JSON-safe: the wire to the transfer process carries it)."""
        return {
            "total": self.total,
            "backoffFactor": self.backoffFactor,
            "statusCodes": sorted(self.statusCodes),
            "respectRetryAfter": self.respectRetryAfter,
        }


def retry_policy_value(value: Any, argument: str = "retryPolicy") -> RetryPolicy | None:
    """``retryPolicy`` checked: a dict of the four keys (each optional), or None for none."""
    if value is None or isinstance(value, RetryPolicy):
        return value
    if not isinstance(value, Mapping):
        raise InvalidArgumentTypeError(
            argument, f"{argument!r} must be a dict with keys {list(_KEYS)} (got {value!r})"
        )
    unknown = sorted(str(k) for k in set(value) - set(_KEYS))
    if unknown:
        raise InvalidArgumentValueError(
            argument, f"{argument!r} has unknown keys {unknown} (known: {list(_KEYS)})"
        )
    total = value.get("total", 0)
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise InvalidArgumentValueError(
            argument, f"{argument!r} 'total' must be an int >= 0 (got {total!r})"
        )
    factor = value.get("backoffFactor", 0.0)
    if (
        isinstance(factor, bool)
        or not isinstance(factor, (int, float))
        or not math.isfinite(factor)
        or factor < 0
    ):
        raise InvalidArgumentValueError(
            argument, f"{argument!r} 'backoffFactor' must be a number >= 0 (got {factor!r})"
        )
    codes = value.get("statusCodes", sorted(DEFAULT_STATUS_CODES))
    if isinstance(codes, (str, bytes)) or not isinstance(codes, (list, tuple, set, frozenset)):
        raise InvalidArgumentTypeError(
            argument, f"{argument!r} 'statusCodes' must be a list of ints (got {codes!r})"
        )
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise InvalidArgumentValueError(
                argument,
                f"{argument!r} 'statusCodes' must hold HTTP status codes (got {code!r})",
            )
    respect = value.get("respectRetryAfter", True)
    if not isinstance(respect, bool):
        raise InvalidArgumentTypeError(
            argument, f"{argument!r} 'respectRetryAfter' must be a bool (got {respect!r})"
        )
    return RetryPolicy(total, float(factor), frozenset(codes), respect)


def replayable(request: Request) -> bool:
    """Whether the request may go again: an idempotent method (never POST, as urllib3's
    ``Retry``); a body, if any, comes from bytes or a file, so it can be sent again."""
    return request.method.upper() in REPLAYABLE_METHODS


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None if absent or
    unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, float(when.timestamp()) - now)


def wants_retry(
    event: Input, policy: RetryPolicy | None, request: Request, now: float
) -> Retry | None:
    """Whether this input from the wire ends the run as a "not now" the policy retries.

    Failures are :func:`transient`'s (refused, lost, timed out, host not found); a response
    whose status is in ``statusCodes`` too (its ``Retry-After`` kept when respected).
    """
    if policy is None or policy.total <= 0 or not replayable(request):
        return None
    if isinstance(event, ResponseStarted):
        status = event.response.statusCode
        if status not in policy.statusCodes:
            return None
        after = retry_after_seconds(event.response.header("retry-after"), now)
        return Retry(0, f"status {status}", after if policy.respectRetryAfter else None)
    if isinstance(event, Failed):
        return transient(event)
    return None


def retry_delay(
    policy: RetryPolicy, retry: Retry, retries_done: int, now: float, deadline: float
) -> float | None:
    """Seconds to wait before the next run, or None: no retries left, or the wait (a server's
    ``Retry-After`` included) would pass the resource deadline."""
    if retries_done >= policy.total:
        return None
    delay = min(BACKOFF_MAX, policy.backoffFactor * (2.0**retries_done))
    if retry.retry_after is not None:
        delay = max(delay, retry.retry_after)
    if now + delay >= deadline:
        return None
    return delay


def background_retry(
    event: Input,
    policy: RetryPolicy | None,
    request: Request,
    retries_done: int,
    now: float,
    deadline: float,
) -> tuple[Retry, float | None] | None:
    """Whether an input ends a background attempt to be tried again, and the policy's delay.

    Without a ``retryPolicy`` the transfer process's own rule (:func:`transient`, its delay
    chosen by the runner), as Apple's background sessions retry by themselves. With one, a host
    that cannot be reached is still always waited out (a background session always waits for
    connectivity; delay None: the runner's backoff), and anything else is the policy's: its
    ``statusCodes``, ``total``, backoff and ``Retry-After``, replayable requests only. When the
    policy does not retry, the input goes to the machine (a last 503 is the task's answer).
    """
    if policy is None:
        retry = transient(event)
        return None if retry is None else (retry, None)
    if isinstance(event, Failed) and event.code in CONNECTIVITY_CODES:
        retry = transient(event)
        return None if retry is None else (retry, None)
    retry = wants_retry(event, policy, request, now)
    if retry is None:
        return None
    delay = retry_delay(policy, retry, retries_done, now, deadline)
    return None if delay is None else (retry, delay)


def connectivity_delay(event: Input, waits: int, now: float, deadline: float) -> float | None:
    """waitsForConnectivity: the wait before trying an unreachable host again (capped
    exponential backoff), or None when ``event`` is no connectivity failure."""
    if not isinstance(event, Failed) or event.code not in CONNECTIVITY_CODES:
        return None
    delay = min(CONNECTIVITY_MAX, CONNECTIVITY_FIRST * (2.0**waits))
    return max(0.0, min(delay, deadline - now))


@attrs.define
class RetryGate:
    """One task's retries and waits for connectivity, across its runs (sans-IO: the caller
    passes ``now``).

    :meth:`check` is asked about every input from the wire before the machine sees it: it
    answers None (the machine takes it), a float (the run ends here; run again at that time),
    or another input for the machine instead (the resource deadline passed while waiting:
    -1001). ``announce`` turns True once, the first time the task waits for connectivity.
    """

    policy: RetryPolicy | None
    waits_for_connectivity: bool
    request: Request
    deadline: float  # epoch seconds: the task's creation + timeoutIntervalForResource
    retries: int = 0
    waits: int = 0
    responded: bool = False  # this run got a response head (a lost connection is no outage)
    announce: bool = False
    announced: bool = False

    def new_run(self) -> None:
        self.responded = False

    def check(self, event: Input, now: float) -> float | Input | None:
        if self.waits_for_connectivity and not self.responded:
            delay = connectivity_delay(event, self.waits, now, self.deadline)
            if delay is not None:
                if now + delay >= self.deadline or delay <= 0:
                    assert isinstance(event, Failed)
                    return Failed(
                        ErrorCode.TIMED_OUT,
                        f"the resource timeout passed while waiting for connectivity "
                        f"({event.message or ErrorCode(event.code).description})",
                        metrics=event.metrics,
                    )
                self.waits += 1
                if not self.announced:
                    self.announce = self.announced = True
                return now + delay
        retry = wants_retry(event, self.policy, self.request, now)
        if retry is not None and self.policy is not None:
            delay = retry_delay(self.policy, retry, self.retries, now, self.deadline)
            if delay is not None:
                self.retries += 1
                return now + delay
        if isinstance(event, ResponseStarted):
            self.responded = True
        return None
