"""Resume data in background sessions (issue 16): the partial files of the transfer process.

A background download grows in ``downloads/<session>/<task>.part`` under the state directory,
which the transfer process and its hosts share (same user, same directory, same resume-data
key: :mod:`~urlsession_module._transport._resume` signs with the key kept there). So:

* a download that ends failed (or cancelled by ``cancelByProducingResumeData``) hands its
  partial file to :func:`~urlsession_module._transport._resume.produce_resume_data`, in the
  transfer process, and its journaled ``sessioncompleted`` carries the ``resumeData``: the host
  that asked, or one relaunched later and reading the replay, gets it;
* ``downloadTask({'resumeData'})`` in a background session is checked on the host, at the
  call, and the host moves the partial file to where the new task's download grows
  (:func:`adopt_for_task`) before handing the task over with the resume data's validator: the
  transfer process then continues it as it continues a download after a crash (``Range`` and
  ``If-Range`` from the ``.part`` file and the journaled validator), also after a restart.

A partial file no one can continue (no validator, no bytes, a plain cancel) is removed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import attrs

from .._events import SessionCompleted
from .._state import TaskKind
from .._storage import background_key, part_name, private_dir
from .._transport._resume import ResumeData, adopt, produce_resume_data
from ..exceptions import ErrorCode
from ._journal import Journal, TaskRecord

__all__ = ["adopt_for_task", "download_dir", "settle_partial"]


def download_dir(home: Path, session: str) -> Path:
    """Where a background session's downloads grow (the transfer process's and its hosts')."""
    return home / "downloads" / background_key(session)


def adopt_for_task(home: Path, session: str, task_id: str, data: ResumeData) -> str:
    """Host side: move resume data's partial file to where task ``task_id`` grows; returns the
    validator ``If-Range`` will send."""
    folder = private_dir(download_dir(home, session))
    return adopt(data, str(folder), task_id)[1]


def settle_partial(
    home: Path, journal: Journal, rec: TaskRecord, payload: SessionCompleted, wanted: bool
) -> SessionCompleted:
    """A background download's end: what becomes of the partial file it kept.

    ``wanted``: the task was cancelled by ``cancelByProducingResumeData`` (a plain cancel keeps
    nothing, as Apple's). A failure that can be continued carries ``resumeData``.
    """
    if rec.kind != TaskKind.DOWNLOAD.value or payload.success:
        return payload
    part = download_dir(home, rec.session) / part_name(rec.id)
    try:
        size = part.stat().st_size
    except OSError:
        return payload
    data = None
    if wanted or payload.errorCode != ErrorCode.CANCELLED:
        validator = (journal.task(rec.id) or rec).validator
        url = rec.request.get("url")
        if isinstance(url, str):
            data = produce_resume_data(url, validator, str(part), size)
    with contextlib.suppress(OSError):
        os.unlink(part)  # (moved already when it became resume data)
    return attrs.evolve(payload, resumeData=data) if data else payload
