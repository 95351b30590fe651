"""Uploads from a file are streamed: a 200 MiB upload keeps memory flat (RSS, in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from urlsession_module.testing import LocalServer, content_sha256, iter_content

from ._util import echoed

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]

MIB = 1 << 20
BIG = 200 * MIB
MAX_GROWTH = 32 * MIB


def write_content(path: Path, size: int) -> None:
    """Write the server's deterministic content, so content_sha256(size) is the file's digest."""
    with open(path, "wb") as f:
        for block in iter_content(size, chunk=MIB):
            f.write(block)


_UPLOAD_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import urlsession_module as URLSession

    url, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    session = URLSession.createSession(
        configuration=URLSession.createSessionConfiguration(type="ephemeral")
    )
    progress = {"events": 0, "sent": 0, "last": 0, "expected": set(), "ordered": True}
    completed = []

    def on_progress(e):
        progress["events"] += 1
        progress["sent"] += e.bytesSent
        progress["ordered"] &= e.totalBytesSent > progress["last"]
        progress["last"] = e.totalBytesSent
        progress["expected"].add(e.totalBytesExpectedToSend)

    def on_done(e):
        completed.append({"id": e.taskIdentifier, "success": e.success, "errorCode": e.errorCode,
                          "message": e.message, "statusCode": e.statusCode,
                          "responseText": e.responseText})

    session.addEventListener("sessioncompleted", on_done)
    # warm up: imports, threads, the connection pool and one small upload are in place
    session.uploadTask(url=url, data=b"warm-up" * 1000)
    assert session.waitForTasks(30)
    session.addEventListener("uploadprogress", on_progress)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tid = session.uploadTask(url=url, data=path)
    ok = session.waitForTasks(120)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    session.finishTasksAndInvalidate()
    session.waitForInvalidation(10)
    print(json.dumps({
        "ok": ok,
        "id": tid,
        "growth_kib": after - before,  # ru_maxrss is in KiB on Linux
        "progress": dict(progress, expected=sorted(progress["expected"])),
        "completed": completed[-1],
    }))
    """
)


def test_200_mib_upload_from_file_keeps_memory_flat(server: LocalServer, tmp_path: Path) -> None:
    """A 200 MiB file upload grows peak RSS by under 32 MiB; progress and digest are right."""
    path = tmp_path / "big.bin"
    write_content(path, BIG)
    env = dict(os.environ, URLSESSION_HOME=str(tmp_path / "home"))
    proc = subprocess.run(
        [sys.executable, "-c", _UPLOAD_SCRIPT, server.url("/upload"), str(path), str(BIG)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    done = result["completed"]
    assert done["id"] == result["id"]
    assert (done["success"], done["errorCode"], done["statusCode"]) == (True, 0, 200), done[
        "message"
    ]
    reply = json.loads(done["responseText"])
    assert reply["body_length"] == BIG
    assert reply["body_sha256"] == content_sha256(BIG)
    assert reply["content_type"] == "application/octet-stream"
    progress = result["progress"]
    assert progress["events"] >= BIG // (1 * MIB)  # reported as it goes, block by block
    assert progress["ordered"] is True
    assert progress["sent"] == progress["last"] == BIG
    assert progress["expected"] == [BIG]
    growth = result["growth_kib"] * 1024
    assert growth < MAX_GROWTH, f"peak RSS grew by {growth / MIB:.1f} MiB"


def test_upload_from_path_streams_with_progress(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, tmp_path: Path
) -> None:
    """An upload from a path reports progress per block and guesses the type from the name."""
    size = 3 * MIB + 17
    path = tmp_path / "report.json"
    write_content(path, size)
    session = make_session()
    rec = recorder(session)
    tid = session.uploadTask(url=server.url("/upload"), data=path, method="PUT")
    reply = echoed(rec.completed(tid))
    assert reply == {
        "method": "PUT",
        "body_length": size,
        "body_sha256": content_sha256(size),
        "content_type": "application/json",
    }
    progress = rec.of(tid, "uploadprogress")
    assert len(progress) >= 12
    assert progress[-1].totalBytesSent == size
    assert all(e.totalBytesExpectedToSend == size for e in progress)


def test_upload_of_an_empty_file(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, tmp_path: Path
) -> None:
    """An empty file uploads as an empty body with Content-Length 0."""
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    session = make_session()
    rec = recorder(session)
    tid = session.uploadTask(url=server.url("/echo"), data=str(path))
    echo = echoed(rec.completed(tid))
    assert echo["body_length"] == 0
    assert echo["headers"]["content-length"] == "0"
