"""A session's configuration as plain data for the wire and the journal, and back (checked).

The one place in ``_background`` that turns the wire's plain dict into ``ConfigValues``, whose
validators refuse what a host must not be able to slip into the transfer process.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._config_values import ConfigValues

__all__ = ["config_from_dict", "config_to_dict"]


def config_to_dict(config: ConfigValues) -> dict[str, Any]:
    d = attrs.asdict(config, recurse=False)
    d["HTTPHeaderFields"] = dict(config.HTTPHeaderFields)
    d["launchCommand"] = list(config.launchCommand) if config.launchCommand else None
    d["retryPolicy"] = config.retryPolicy.to_dict() if config.retryPolicy else None
    return d


def config_from_dict(d: dict[str, Any]) -> ConfigValues:
    """``TypeError``/``ValueError`` if ``d`` is not a configuration this version accepts."""
    known = {a.name for a in attrs.fields(ConfigValues)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown configuration keys: {sorted(unknown)}")
    return ConfigValues(**d)
