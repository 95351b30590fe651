"""Filling and reading urllib3's ``HTTPHeaderDict`` lists directly, for the hot paths.

``HTTPHeaderDict(pairs)`` and ``add`` walk urllib3's ``extend``/``add`` per header (a few µs a
task, in every request's and every curl response's headers), and its ``items()`` view
and ``iteritems`` are a generator step a line; its container is a dict of
``lowercased name -> [name as given, value, value, ...]``, which these fill and read the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

__all__ = ["add_pairs", "pairs_of"]


def add_pairs(container: MutableMapping[str, list[str]], pairs: Iterable[tuple[str, str]]) -> None:
    """Add ``pairs`` to an ``HTTPHeaderDict``'s ``_container``, repeated names kept in order."""
    for name, value in pairs:
        low = name.lower()
        values = container.get(low)
        if values is None:
            container[low] = [name, value]
        else:
            values.append(value)


def pairs_of(container: MutableMapping[str, list[str]]) -> list[tuple[str, str]]:
    """The (name, value) pairs of an ``HTTPHeaderDict``'s ``_container``, in urllib3's order."""
    return [(vs[0], v) for vs in container.values() for v in vs[1:]]
