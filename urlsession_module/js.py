"""Run Titanium JavaScript against this package: the public face of the JavaScript host.

::

    from urlsession_module.js import run_script

    result = run_script("app.js", url_map={"https://example.com/": "http://127.0.0.1:8000/"})
    raise SystemExit(result.status)

Needs the ``js`` extra (``pip install 'urlsession_module[js]'``). See docs/javascript.md.
"""

from __future__ import annotations

from ._js import JSHost, JSSyntaxError, RunResult, run_script

__all__ = ["JSHost", "JSSyntaxError", "RunResult", "run_script"]
