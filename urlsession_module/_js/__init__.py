"""The JavaScript host: Titanium scripts run as they are, ``require('com.appcelerator.urlSession')``
returning this package (``urlsession run app.js``; ``urlsession_module.js`` for Python hosts).

Needs the optional ``js`` extra (PythonMonkey); importing this package without it raises an
ImportError that says so. See docs/javascript.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from ._engine import JSSyntaxError
from ._host import JSHost, RunResult

__all__ = ["JSHost", "JSSyntaxError", "RunResult", "run_script"]


def run_script(
    path: str | os.PathLike[str],
    *,
    app_id: str | None = None,
    url_map: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    clicks: Sequence[str] = (),
    background_fetch: bool = False,
    timeout: float | None = None,
    stream: TextIO | None = None,
    jasmine: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Run the script at ``path`` (see :class:`JSHost`); the app id defaults to its file name."""
    name = app_id or os.path.splitext(os.path.basename(os.fspath(path)))[0] or "app"
    host = JSHost(
        app_id=name,
        url_map=url_map,
        clicks=clicks,
        background_fetch=background_fetch,
        timeout=timeout,
        stream=stream,
        jasmine=jasmine,
    )
    return host.run_file(path)
