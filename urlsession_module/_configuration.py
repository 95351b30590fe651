"""``SessionConfiguration``: the three kinds of URLSessionConfiguration over a frozen attrs value.

The proxy holds one frozen :class:`ConfigValues`; every assignment makes a new value with
``attrs.evolve``, so validators run on creation and on every change alike, and a session's copy is
just the value it was handed (nothing the user does later can reach it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from . import _validate as check

# The values and their validators live in ``_config_values`` (no pyee); all its names are
# re-exported so that modules importing them from here keep working.
from ._config_values import *  # noqa: F403  (the re-export above)
from ._config_values import CONFIG_FIELDS, ConfigValues, make_values
from ._proxy import Proxy
from ._proxy_values import thaw_proxy_dictionary
from ._tls_values import thaw_pins
from .exceptions import CreationOnlyError, InvalidArgumentTypeError

__all__ = ["SessionConfiguration"]


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
            if name == "pinnedPublicKeys":
                return thaw_pins(value)
            if name == "clientCertificate" and value is not None:
                return dict(value)
            if name == "connectionProxyDictionary":
                return thaw_proxy_dictionary(value)
            if name == "credential" and value is not None:
                return {"user": value[0], "password": value[1]}
            if name == "retryPolicy" and value is not None:
                return value.to_dict()
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
