"""The configuration values and the stores import no pyee, directly or through the package.

Read with ``ast`` (nothing imported): what needs only the values (the stores, the transport, the
background transfer process) must not pull in the event machinery of the proxies.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import urlsession_module

PACKAGE = Path(urlsession_module.__file__).parent


def _file_of(module: str) -> Path | None:
    """The source file of ``urlsession_module.<module>`` (None: not one of the package's)."""
    base = PACKAGE.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str) -> tuple[set[str], set[str]]:
    """What ``module`` imports: (package modules, relative to the package; other top-level names)."""
    path = _file_of(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    inner: set[str] = set()
    outer: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            outer.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            outer.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".") if package else []
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, *([node.module] if node.module else [])])
            for name in [base, *(f"{base}.{a.name}".strip(".") for a in node.names)]:
                if name and _file_of(name) is not None:
                    inner.add(name)
    return inner, outer


def _reach(start: str) -> tuple[set[str], set[str]]:
    """Every package module ``start`` reaches through its imports, and every other name."""
    seen: set[str] = set()
    outside: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        inner, outer = _imports(module)
        todo.extend(inner)
        outside |= outer
    return seen, outside


@pytest.mark.parametrize(
    "module",
    [
        "_config_values",
        "_stores",
        *(f"_stores.{p.stem}" for p in (PACKAGE / "_stores").glob("_*.py")),
    ],
)
def test_values_and_stores_import_no_pyee(module: str) -> None:
    """Neither pyee nor a module that needs it (the proxies, the configuration proxy)."""
    reached, outside = _reach(module)
    assert "pyee" not in outside, sorted(reached)
    assert not {"_proxy", "_configuration", "_dispatch"} & reached, sorted(reached)
