"""``python -m urlsession_module``: the ``urlsession`` command-line tool.

``python -m urlsession_module demo`` runs a real download and upload with progress bars against
the package's local server; ``get``, ``put``/``post``, ``status``, ``cancel`` and ``serve`` are
described in ``docs/cli.md`` and ``python -m urlsession_module --help``.
"""

from __future__ import annotations

import sys

from ._cli import ExitCode, build_parser, main

__all__ = ["ExitCode", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
