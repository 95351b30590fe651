"""The one module that touches the JavaScript engine (PythonMonkey, i.e. SpiderMonkey).

Why PythonMonkey: of the engines on PyPI that let JavaScript call Python synchronously and pass
functions both ways (see docs/javascript.md for the measurements), it had the cheapest calls
(a listener call about 6 µs, a call into Python about 1.4 µs), full ES2022 syntax, and needs no
data written outside its wheel. Its one constraint is the engine's: JavaScript runs only on the
thread that first used it, which the host respects by draining an ``EventQueue`` on its thread.
Promise jobs and the engine's own timers need a running asyncio loop, so the host runs one.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

try:
    import pythonmonkey as pm
except ImportError as exc:  # the optional extra is not installed
    raise ImportError(
        "the JavaScript host needs the 'js' extra: pip install 'urlsession_module[js]' "
        f"(PythonMonkey could not be imported: {exc})"
    ) from exc

__all__ = ["JSSyntaxError", "compile_script", "load_library", "load_prelude"]

PARAMETERS = (
    "require",
    "Ti",
    "Titanium",
    "setTimeout",
    "setInterval",
    "clearTimeout",
    "clearInterval",
    "console",
)


class JSSyntaxError(Exception):
    """The script does not parse; the message names the file, line and column."""


def load_prelude(py: dict[str, Any]) -> Any:
    """Evaluate the JavaScript half of the host and give it the Python callables ``py``."""
    source = resources.files(__package__).joinpath("prelude.js").read_text(encoding="utf-8")
    factory = pm.eval(source, {"filename": "urlsession_module/_js/prelude.js"})
    return factory(py)


def load_library(path: str) -> None:
    """Evaluate a library file (jasmine-core's ``jasmine.js``) at the engine's global level."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        pm.eval(source, {"filename": path})
    except pm.SpiderMonkeyError as exc:
        raise JSSyntaxError(_syntax_message(str(exc), path)) from None


def compile_script(source: str, filename: str) -> Any:
    """The script as a function of the Titanium globals, not yet run.

    Wrapped in a function so each run has its own top level (the engine is one per process),
    with the wrapper's header on line 0: line and column numbers are the file's own.
    """
    header = f"(function ({', '.join(PARAMETERS)}) {{\n"
    try:
        return pm.eval(header + source + "\n})", {"filename": filename, "lineno": 0})
    except pm.SpiderMonkeyError as exc:
        raise JSSyntaxError(_syntax_message(str(exc), filename)) from None


def _syntax_message(text: str, filename: str) -> str:
    # PythonMonkey says "Error in file F, on line L, column C:\n<source line>\n<caret>\nMessage".
    m = re.match(r"Error in file (.*?), on line (\d+), column (\d+):\n(.*)", text, re.S)
    if m is None:
        return text.strip()
    rest = m.group(4).rstrip("\n").split("\n")
    return f"{m.group(1)}:{m.group(2)}:{m.group(3)}: {rest[-1]}\n" + "\n".join(rest[:-1])
