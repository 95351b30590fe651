"""A host that hands background downloads over, then ends in one of the ways the promise names.

Run as ``python -m tests.reliability._handover_child '<json>'`` with ``URLSESSION_HOME`` set.
Prints each identifier ``downloadTask`` returned on its own line, flushed at once, so the parent
knows exactly which calls had returned when the process ended.

``{"identifier": str, "urls": [...], "end": "kill" | "return" | "exit" | "raise", "kill_after": n,
"stop": bool}`` (``stop``: print ``attached`` and wait for a line on stdin before the calls)

- ``kill``: SIGKILL itself right after the ``kill_after``-th call returned (no atexit, nothing
  flushed: only what the kernel holds reaches the transfer process);
- ``return`` / ``exit`` / ``raise``: the end of the script, ``sys.exit(0)``, an uncaught
  exception: the package's exit hook must wait until every task is journaled.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import urlsession_module as URLSession


def main() -> None:
    spec = json.loads(sys.argv[1])
    cfg = URLSession.createSessionConfiguration({"identifier": spec["identifier"]})
    # A queue nobody drains: this host never acknowledges an event, like one that is killed.
    session = URLSession.createSession(
        {"configuration": cfg, "delegateQueue": URLSession.EventQueue()}
    )
    if spec.get("stop"):  # the parent stops the transfer process now
        sys.stdout.write("attached\n")
        sys.stdout.flush()
        sys.stdin.readline()
    for i, url in enumerate(spec["urls"]):
        if spec["end"] == "kill" and i == spec["kill_after"]:
            os.kill(os.getpid(), signal.SIGKILL)
        sys.stdout.write(session.downloadTask({"url": url}) + "\n")
        sys.stdout.flush()
    if spec["end"] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif spec["end"] == "exit":
        sys.exit(0)
    elif spec["end"] == "raise":
        raise RuntimeError("the host script failed after its hand-overs")


if __name__ == "__main__":
    main()
