"""Argument checks shared by the configuration and the session: one wording for every refusal.

Messages follow attrs' shape, ``'url' must be an http(s) URL (got 'ftp://x')``, and every error
names the argument, so a user reading a traceback knows which key of their dict to fix.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .exceptions import InvalidArgumentTypeError, InvalidArgumentValueError, UnsupportedURLError

# RFC 9110 token: the characters a header name or a method may have.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # always fullmatch: "$" would let "X\n" in
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_URL_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")  # \s: Unicode white space too (NBSP, U+2028...)


def header_fields(argument: str, value: Any) -> dict[str, str]:
    """A dict of str → str whose names are tokens and whose values hold no CR, LF or NUL."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentTypeError(
            argument, f"{argument!r} must be a dict of str to str (got {value!r})"
        )
    out: dict[str, str] = {}
    for name, val in value.items():
        if not isinstance(name, str):
            raise InvalidArgumentTypeError(
                argument, f"{argument!r} header names must be str (got {name!r})"
            )
        if not isinstance(val, str):
            raise InvalidArgumentTypeError(
                argument, f"{argument!r} value of header {name!r} must be str (got {val!r})"
            )
        if not _TOKEN.fullmatch(name):
            raise InvalidArgumentValueError(
                argument, f"{argument!r} has an invalid header name {name!r}"
            )
        if _BAD_VALUE.search(val):
            raise InvalidArgumentValueError(
                argument,
                f"{argument!r} value of header {name!r} must not contain CR, LF or NUL (got {val!r})",
            )
        try:
            val.encode("latin-1")  # what HTTP/1.1 can carry in a header (http.client's encoding)
        except UnicodeEncodeError:
            raise InvalidArgumentValueError(
                argument,
                f"{argument!r} value of header {name!r} must be Latin-1 text (got {val!r})",
            ) from None
        out[name] = val
    return out


def method(argument: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(argument, f"{argument!r} must be a str (got {value!r})")
    if not _TOKEN.fullmatch(value):
        raise InvalidArgumentValueError(
            argument, f"{argument!r} must be an HTTP method token (got {value!r})"
        )
    return value.upper() if value.lower() in _STANDARD_METHODS else value


_STANDARD_METHODS = {"get", "head", "post", "put", "delete", "options", "trace", "patch", "connect"}


def http_url(argument: str, value: Any) -> str:
    """An absolute http(s) URL with a host; anything else is refused before the network."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidArgumentValueError(argument, f"{argument!r} is required and must not be empty")
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(argument, f"{argument!r} must be a str (got {value!r})")
    if _BAD_VALUE.search(value) or _URL_SPACE.search(value.strip()):
        # urllib.parse quietly drops tabs and newlines and keeps other control characters: a
        # URL with one would reach the network as some other URL, or fail there with -1000.
        raise InvalidArgumentValueError(
            argument,
            f"{argument!r} must not contain whitespace or control characters (got {value!r})",
        )
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise UnsupportedURLError(
            argument, f"{argument!r} is not a valid URL ({exc}) (got {value!r})"
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsupportedURLError(argument, f"{argument!r} must be an http(s) URL (got {value!r})")
    if not parts.hostname:
        raise UnsupportedURLError(argument, f"{argument!r} must have a host (got {value!r})")
    return value.strip()


def positive_number(argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentTypeError(argument, f"{argument!r} must be a number (got {value!r})")
    if not value > 0:
        raise InvalidArgumentValueError(argument, f"{argument!r} must be > 0 (got {value!r})")
    return float(value)


def boolean(argument: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentTypeError(argument, f"{argument!r} must be a bool (got {value!r})")
    return value


def one_of(argument: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidArgumentValueError(
            argument, f"{argument!r} must be one of {choices} (got {value!r})"
        )
    return str(value)


@functools.lru_cache(maxsize=256)
def snake_case(name: str) -> str:
    """``requestHeaders`` → ``request_headers``, ``HTTPHeaderFields`` → ``http_header_fields``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@functools.lru_cache(maxsize=64)
def _aliases(known: frozenset[str]) -> dict[str, str]:
    """snake_case spelling → Titanium name, for the names that have two spellings (cached: every
    task creation asks, always with one of a few sets)."""
    return {snake_case(k): k for k in known if snake_case(k) != k}


def args_dict(
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    known: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Titanium passes one dict, Python users pass keywords: accept either, or both merged.

    With ``known`` (the Titanium names), the snake_case spelling a Python user reaches for is
    accepted too and comes back under the Titanium name; giving both spellings is refused.
    """
    if len(args) > 1:
        raise InvalidArgumentTypeError("args", f"{name}() takes one dict or keyword arguments")
    merged: dict[str, Any] = {}
    if args:
        if args[0] is None:
            pass
        elif not isinstance(args[0], Mapping):
            raise InvalidArgumentTypeError("args", f"{name}() takes a dict (got {args[0]!r})")
        else:
            merged.update(args[0])
    merged.update(kwargs)
    for key in merged:
        if not isinstance(key, str):
            raise InvalidArgumentTypeError(
                "args", f"{name}() argument names must be str (got {key!r})"
            )
    if known is None:
        return merged
    titanium = _aliases(known if isinstance(known, frozenset) else frozenset(known))
    out: dict[str, Any] = {}
    for key, value in merged.items():
        target = titanium.get(key, key)
        if target in out:
            raise InvalidArgumentValueError(
                key, f"{name}() got {target!r} twice (as {target!r} and {key!r})"
            )
        out[target] = value
    return out


def check_timeout(call: str, timeout: Any) -> float | None:
    """A wait's ``timeout``: None (no limit) or a number of seconds.

    Checked at the call, so ``timeout='1'`` names the argument rather than failing as a bare
    TypeError deep in a comparison.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidArgumentTypeError(
            "timeout", f"{call}(): 'timeout' must be a number of seconds or None (got {timeout!r})"
        )
    if math.isnan(timeout):
        raise InvalidArgumentValueError(
            "timeout", f"{call}(): 'timeout' must be a number of seconds (got {timeout!r})"
        )
    return float(timeout)


def bytes_per_second(argument: str, value: Any) -> int | None:
    """A bandwidth limit: None (no limit) or an int >= 1, bytes per second."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentTypeError(
            argument, f"{argument!r} must be an int of bytes per second (got {value!r})"
        )
    if value < 1:
        raise InvalidArgumentValueError(
            argument, f"{argument!r} must be >= 1 byte per second (got {value!r})"
        )
    return value
