"""The end state every reliability scenario checks, in one place.

A task ends with exactly one ``sessioncompleted``, the last of its events, with the expected
code; a failed download had no ``downloadcompleted``; the session's download directory holds
no partial file, only the files of downloads that were handed over.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from urlsession_module import ErrorCode
from urlsession_module._storage import safe_name

from .conftest import note


def settle(session: Any, timeout: float = 5.0) -> None:
    """Wait until everything queued for delivery so far has been delivered.

    A marker goes through the session's own delivery queue (not ``flush()``, which also
    clears idle connections and so would change what a scenario is measuring).
    """
    done = threading.Event()
    dispatcher = session._dispatcher
    dispatcher.submit(done.set)
    if dispatcher.host_drained:
        dispatcher.drain(timeout)
    assert done.wait(timeout), "the delivery queue did not drain"


def leftovers(session: Any, rec: Any) -> list[str]:
    """Files in the download directory that no ``downloadcompleted`` handed over.

    The files of tasks still running (their ``.part``, or a finished file whose
    ``downloadcompleted`` is on its way) are theirs, not debris.
    """
    delivered = {
        os.path.basename(e.data.nativePath) for e in rec.events if e.type == "downloadcompleted"
    }
    running = [safe_name(t.taskIdentifier) for t in session.tasks]
    theirs = {f".{name}.part" for name in running}
    prefixes = tuple(f"{name}-" for name in running)
    return sorted(
        name
        for name in os.listdir(session.downloadDirectory)
        if name not in delivered
        and name not in theirs
        and not (prefixes and name.startswith(prefixes))
    )


def check_end(
    rec: Any,
    session: Any,
    tid: str,
    code: int,
    *,
    status: int | None = None,
    timeout: float = 15.0,
) -> Any:
    """Wait for ``tid``'s end and check the contract; returns its ``sessioncompleted``."""
    note("expected", describe(code, status))
    try:
        done = rec.completed(tid, timeout)
    except AssertionError:
        note("observed", f"no sessioncompleted within {timeout:g} s")
        raise
    settle(session)
    events = rec.of(tid)
    types = [e.type for e in events]
    note(
        "observed",
        describe(done.errorCode, done.statusCode)
        + ("" if "downloadcompleted" not in types else ", file handed over")
        + ("" if not leftovers(session, rec) else ", debris left"),
    )
    assert types.count("sessioncompleted") == 1, types
    assert types[-1] == "sessioncompleted", types
    assert (done.success, done.errorCode) == (code == ErrorCode.OK, code), (
        done.errorCode,
        done.message,
    )
    if code != ErrorCode.OK:
        assert isinstance(done.message, str) and done.message.strip()
        assert "downloadcompleted" not in types, "a broken body was handed over"
    else:
        assert done.message == ""
    if status is not None:
        assert done.statusCode == status, done.statusCode
    left = leftovers(session, rec)
    assert left == [], left
    return done


def describe(code: int, status: int | None) -> str:
    """``-1005 (network connection lost), status 200`` — how the docs table reads an outcome."""
    name = (
        ErrorCode(code).name.lower().replace("_", " ")
        if code in ErrorCode._value2member_map_
        else "?"
    )
    text = "success" if code == ErrorCode.OK else f"{code} ({name})"
    return text if status is None else f"{text}, status {status}"


def check_download(rec: Any, tid: str) -> bytes:
    """The bytes of the one file ``tid`` handed over."""
    (completed,) = rec.of(tid, "downloadcompleted")
    with open(completed.data.nativePath, "rb") as f:
        return f.read()
