"""Downloads in a child process whose download directory is full, read-only or size-limited.

Run as ``python -m tests.reliability._child '<json>'`` (see ``test_files.py``), under
``unshare -m`` when a mount is asked for, so the mount lives and dies with the child and can
never leak into the host. Prints one JSON line: each task's events, and what the download
directory holds afterwards.

``{"urls": [...], "mount": null | "tmpfs:<size>" | "ro-bind", "fsize": null | <bytes>}``
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from typing import Any

import urlsession_module as URLSession


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mount(spec: str, directory: str) -> None:
    if spec.startswith("tmpfs:"):
        size = spec.split(":", 1)[1]
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", directory]
        subprocess.run(cmd, check=True)
    elif spec == "ro-bind":
        subprocess.run(["mount", "--bind", directory, directory], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", directory], check=True)
    else:
        raise ValueError(f"unknown mount {spec!r}")


def main(argv: list[str]) -> int:
    args: dict[str, Any] = json.loads(argv[1])
    session = URLSession.createSession(configuration=URLSession.createSessionConfiguration())
    events: dict[str, list[dict[str, Any]]] = {}

    def record(e: Any) -> None:
        fields = {"type": e.type}
        if e.type == "sessioncompleted":
            fields.update(success=e.success, errorCode=e.errorCode, message=e.message)
        elif e.type == "downloadcompleted":
            fields.update(path=e.data.nativePath, sha256=_sha256(e.data.nativePath))
        events.setdefault(e.taskIdentifier, []).append(fields)

    for name in ("downloadcompleted", "sessioncompleted"):
        session.addEventListener(name, record)
    directory = str(session.downloadDirectory)
    if args.get("mount"):
        _mount(args["mount"], directory)
    if args.get("fsize"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        limit = int(args["fsize"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    ids = [session.downloadTask(url=url) for url in args["urls"]]
    finished = session.waitForTasks(30)
    session.finishTasksAndInvalidate()
    session.waitForInvalidation(10)
    left = {name: os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory)}
    print(json.dumps({"finished": finished, "ids": ids, "events": events, "left": left}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
