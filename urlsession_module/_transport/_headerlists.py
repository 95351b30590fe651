"""Filling urllib3's ``HTTPHeaderDict`` lists directly, for both engines' hot paths.

``HTTPHeaderDict(pairs)`` and ``add`` walk urllib3's ``extend``/``add`` per header (a few µs a
task, in every request's and every curl response's headers); its container is a dict of
``lowercased name -> [name as given, value, value, ...]``, which this fills the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

__all__ = ["add_pairs"]


def add_pairs(container: MutableMapping[str, list[str]], pairs: Iterable[tuple[str, str]]) -> None:
    """Add ``pairs`` to an ``HTTPHeaderDict``'s ``_container``, repeated names kept in order."""
    for name, value in pairs:
        low = name.lower()
        values = container.get(low)
        if values is None:
            container[low] = [name, value]
        else:
            values.append(value)
