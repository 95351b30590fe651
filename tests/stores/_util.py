"""Helpers of the store tests: run a task and wait for it, requests the server saw, unique URLs."""

from __future__ import annotations

import json
import uuid
from typing import Any

from urlsession_module.testing import LocalServer, RequestRecord

#: A host of its own: runs GET data tasks (argv[2:]) in a session made from argv[1] (JSON
#: configuration properties), prints their results as one JSON list.
HOST_SCRIPT = """
import json, sys
import urlsession_module as URLSession

config = json.loads(sys.argv[1])
session = URLSession.createSession(configuration=URLSession.createSessionConfiguration(config))
done = {}
session.addEventListener(
    "sessioncompleted",
    lambda e: done.__setitem__(
        e.taskIdentifier,
        {"success": e.success, "statusCode": e.statusCode, "text": e.responseText},
    ),
)
results = []
for url in sys.argv[2:]:
    tid = session.dataTask(url=url, method="GET")
    assert session.getTask(tid).wait(30), "task did not complete"
    results.append(done[tid])
session.finishTasksAndInvalidate()
assert session.waitForInvalidation(10)
print(json.dumps(results))
"""


def get(session: Any, rec: Any, url: str, **args: Any) -> Any:
    """Run a data task (GET unless told) and return its sessioncompleted event (bounded wait)."""
    args.setdefault("method", "GET")
    return rec.completed(session.dataTask(url=url, **args), 30)


def cookies_of(event: Any) -> dict[str, str]:
    """The cookies /cookies saw, from its sessioncompleted event."""
    assert event.success and event.statusCode == 200, (event.errorCode, event.message)
    result: dict[str, str] = json.loads(event.responseText)["cookies"]
    return result


def tag() -> str:
    """A marker that makes a URL this test's own (the server is shared by the whole run)."""
    return uuid.uuid4().hex[:12]


def seen(server: LocalServer, marker: str) -> list[RequestRecord]:
    """The requests the server received whose path holds ``marker``, oldest first."""
    return [r for r in server.requests if marker in r.path]
