"""The import rules docs/architecture.md states, held by walking every module's imports (ast).

A rule written only in a document drifts: the last round's architecture page said the background
protocol imported no pyee while it reached pyee through the configuration proxy. Here each
module's imports (static, also those under ``TYPE_CHECKING`` are left out: they cost nothing at
run time) are read from its source and followed through the package, so an indirect import
counts as much as a direct one.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "urlsession_module"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

# The sans-IO centre: what decides a task's life and what crosses to the transfer process.
SANS_IO = (
    "urlsession_module.exceptions",
    "urlsession_module._urls",
    "urlsession_module._events",
    "urlsession_module._request",
    "urlsession_module._state",
    "urlsession_module._scheduler",
    "urlsession_module._config_values",
    "urlsession_module._background._wire",
    "urlsession_module._background._message",
    "urlsession_module._background._snapshot",
    "urlsession_module._background._fields",
    "urlsession_module._background._settings",
    "urlsession_module._proxy_values",
    "urlsession_module._tls_values",
)
FORBIDDEN_IN_SANS_IO = (
    "pyee",
    "urllib3",
    "pycurl",
    "socket",
    "threading",
    "hishel",
    "sqlite3",
    "ssl",
)

# Layers, lowest first: a module may import its own layer and those below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    # plain values and rules: what a task is, what crosses to the transfer process
    (
        *SANS_IO,
        "urlsession_module._validate",
        "urlsession_module._types",
        "urlsession_module._client_certs",
    ),
    # the pieces that do IO, each on its own: files, stores, the wire, listeners, delivery
    (
        "urlsession_module._storage",
        "urlsession_module._stores",
        "urlsession_module._transport",
        "urlsession_module._proxy",
        "urlsession_module._dispatch",
        "urlsession_module._delivery",
        "urlsession_module._driver",
        "urlsession_module._background._journal",
        "urlsession_module._background._protocol",
    ),
    # what puts them together: tasks, sessions, the background link and transfer process
    (
        "urlsession_module._configuration",
        "urlsession_module._arguments",
        "urlsession_module._task",
        "urlsession_module._runner",
        "urlsession_module._background",
        "urlsession_module._session",
    ),
    # the surfaces: the module proxy and the command-line tool
    ("urlsession_module", "urlsession_module.__main__", "urlsession_module._cli"),
)
# The JavaScript host is a surface too (it runs the module as an app would; `urlsession run`
# reaches it): placed beside the CLI, whose layer is the last one.
LAYERS = (*LAYERS[:-1], (*LAYERS[-1], "urlsession_module._js", "urlsession_module.js"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _all_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _all_modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of(name: str) -> set[str]:
    """Absolute names this module imports at run time (relative imports resolved)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse)
                continue
            for child in ast.walk(node):
                if isinstance(child, ast.Import):
                    found.update(alias.name for alias in child.names)
                elif isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package.split(".")
                        base = base[: len(base) - (child.level - 1)]
                        target = ".".join(base + ([child.module] if child.module else []))
                    else:
                        target = child.module or ""
                    # `from . import _validate` imports a module, not a name of the package
                    modules = {f"{target}.{a.name}" for a in child.names} & MODULES.keys()
                    found.update(modules)
                    if len(modules) < len(child.names):
                        found.add(target)

    visit(tree.body)
    return found


def _package_module(name: str) -> str | None:
    """The module of the package a dotted import names (a name inside one maps to it)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def _closure(name: str) -> frozenset[str]:
    """Every import reached from ``name``, following the package's own modules (parents too)."""
    seen: set[str] = set()
    todo = [name]
    reached: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = current.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in MODULES and parent not in seen and parent != PACKAGE:
                todo.append(parent)
        for imported in _imports_of(current):
            reached.add(imported)
            own = _package_module(imported)
            if own is not None and own != PACKAGE:
                todo.append(own)
    return frozenset(reached)


def _layer_of(name: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matching prefix, layer)
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (name == prefix or name.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), index)
    return None if best is None else best[1]


@pytest.mark.parametrize("name", SANS_IO)
def test_sans_io_modules_import_no_io(name: str) -> None:
    """The state machine, events, scheduler and wire messages reach no pyee, urllib3, socket or thread."""
    assert name in MODULES, f"{name} is named in the layering rules but does not exist"
    bad = sorted(
        imported for imported in _closure(name) if imported.split(".")[0] in FORBIDDEN_IN_SANS_IO
    )
    assert not bad, f"{name} reaches {bad}"


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if not n.startswith(f"{PACKAGE}.testing"))
)
def test_no_module_imports_a_higher_layer(name: str) -> None:
    """A lower layer never imports a higher one (the package's root is the top)."""
    mine = _layer_of(name)
    assert mine is not None, f"{name} is in no layer of the rules: place it"
    higher = sorted(
        imported
        for imported in _imports_of(name)
        if imported.startswith(PACKAGE)
        and (theirs := _layer_of(imported)) is not None
        and theirs > mine
    )
    assert not higher, f"{name} (layer {mine}) imports {higher}"


# What needs only the values (the stores, and through them the transport and the transfer
# process) must not pull in the event machinery: not pyee, nor a module that needs it.
PROXY_MACHINERY = ("_proxy", "_configuration", "_dispatch")


@pytest.mark.parametrize(
    "name",
    [
        "urlsession_module._config_values",
        *sorted(n for n in MODULES if n.startswith("urlsession_module._stores")),
    ],
)
def test_values_and_stores_import_no_pyee(name: str) -> None:
    """Neither pyee nor the proxies, the configuration proxy or the dispatchers."""
    reached = _closure(name)
    assert "pyee" not in {i.split(".")[0] for i in reached}, sorted(reached)
    machinery = {f"{PACKAGE}.{m}" for m in PROXY_MACHINERY}
    assert not machinery & {_package_module(i) for i in reached}, sorted(reached)


def test_only_the_cli_imports_the_test_server() -> None:
    """The shipped test server is for demos and tests: no transfer code depends on it."""
    users = sorted(
        name
        for name in MODULES
        if not name.startswith((f"{PACKAGE}.testing", f"{PACKAGE}._cli"))
        and any(i.startswith(f"{PACKAGE}.testing") for i in _imports_of(name))
    )
    assert not users


def test_the_rules_can_fail() -> None:
    """The walker sees an indirect import: _session reaches pyee through the proxy."""
    assert "pyee" in {i.split(".")[0] for i in _closure("urlsession_module._session")}


JS_ENGINES = ("pythonmonkey", "STPyV8", "quickjs", "py_mini_racer")


def test_only_the_js_host_imports_a_js_engine() -> None:
    """The engine is an optional extra: only ``_js`` imports it (the CLI only through ``_js``,
    when ``urlsession run`` runs), so nothing else breaks without it."""
    users = sorted(
        name
        for name in MODULES
        if any(i.split(".")[0] in JS_ENGINES for i in _imports_of(name))
        and not name.startswith(f"{PACKAGE}._js")
    )
    assert not users
    assert any(i.split(".")[0] == "pythonmonkey" for i in _closure(f"{PACKAGE}._js"))
    cli = {i for n in MODULES if n.startswith(f"{PACKAGE}._cli") for i in _imports_of(n)}
    assert not {i for i in cli if i.split(".")[0] in JS_ENGINES}
