"""Background uploads from a relative path (issue 19.12): the path is resolved at the call,
because the transfer process reads the file from its own working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from urlsession_module.testing import LocalServer, content_bytes, content_sha256

from ._util import echoed
from .test_background import Transfer, _bg_session


def test_background_upload_from_a_relative_path(
    server: LocalServer,
    transfer: Transfer,
    recorder: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The transfer process uploads the file the caller named relative to its own directory."""
    session = _bg_session()  # the transfer process starts here, in the test's directory
    rec = recorder(session)
    transfer.pid()
    (tmp_path / "photo.jpg").write_bytes(content_bytes(30_000))
    monkeypatch.chdir(tmp_path)  # the host moves on; the transfer process does not
    tid = session.uploadTask({"url": server.url("/upload"), "data": "photo.jpg", "method": "PUT"})
    done = rec.completed(tid, 30)
    assert done.success, done.message
    assert echoed(done)["body_sha256"] == content_sha256(30_000)
    session.finishTasksAndInvalidate()
    assert session.waitForInvalidation(10)
