"""Events on an asyncio loop: ``delegateQueue`` = the running loop.

Run it as is: ``python example/asyncio_example.py``. It starts the package's local server and
runs three tasks at once — a download, a JSON POST and an upload — awaiting each one's
``sessioncompleted`` through an :class:`asyncio.Future`. Every listener runs on the loop's
thread, so it may touch loop objects (futures, queues) directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import urlsession_module as URLSession
from urlsession_module.testing import LocalServer, content_sha256

SIZE = 4_000_000


class AsyncSession:
    """A thin awaitable layer: ``await s.run('dataTask', {...})`` returns the sessioncompleted."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        cfg = URLSession.createSessionConfiguration({"type": "ephemeral"})
        self.session = URLSession.createSession({"configuration": cfg, "delegateQueue": loop})
        self._waiting: dict[str, asyncio.Future[URLSession.Event]] = {}
        self.session.addEventListener("sessioncompleted", self._on_completed)

    def _on_completed(self, e: URLSession.Event) -> None:
        assert threading.current_thread() is threading.main_thread()  # the loop's thread
        future = self._waiting.pop(e.taskIdentifier)
        if not future.done():
            future.set_result(e)

    async def run(self, method: str, args: dict[str, Any]) -> URLSession.Event:
        # Starting the task and registering its future happen with no await in between, so
        # the loop cannot run the task's listeners before the future exists.
        task_id: str = getattr(self.session, method)(args)
        future: asyncio.Future[URLSession.Event] = self.loop.create_future()
        self._waiting[task_id] = future
        return await future

    async def close(self) -> None:
        self.session.finishTasksAndInvalidate()
        # The session finishes invalidating on this loop: wait for it off the loop.
        await self.loop.run_in_executor(None, self.session.waitForInvalidation, 10.0)


async def main() -> int:
    loop = asyncio.get_running_loop()
    with LocalServer() as srv:
        s = AsyncSession(loop)
        files: dict[str, URLSession.Blob] = {}

        def on_progress(e: URLSession.Event) -> None:
            percent = e.totalBytesWritten / e.totalBytesExpectedToWrite * 100
            print(f"download {e.taskIdentifier}: {percent:3.0f}%")

        def on_downloaded(e: URLSession.Event) -> None:
            files[e.taskIdentifier] = e.data

        def on_completed(e: URLSession.Event) -> None:
            print(f"sessioncompleted {e.taskIdentifier}: HTTP {e.statusCode}")

        s.session.addEventListener("downloadprogress", on_progress)
        s.session.addEventListener("sessioncompleted", on_completed)
        s.session.addEventListener("downloadcompleted", on_downloaded)

        upload_body = b"hello from asyncio\n" * 1000
        download, post, upload = await asyncio.gather(
            s.run("downloadTask", {"url": srv.url(f"/bytes/{SIZE}?rate=8000000")}),
            s.run("dataTask", {"url": srv.url("/echo"), "data": {"hello": "asyncio"}}),
            s.run("uploadTask", {"url": srv.url("/upload"), "data": upload_body, "method": "PUT"}),
        )

        blob = files[download.taskIdentifier]
        ok_download = download.success and hashlib.sha256(
            blob.read()
        ).hexdigest() == content_sha256(SIZE)
        print(
            f"download: HTTP {download.statusCode}, {blob.length} bytes, sha256 ok: {ok_download}"
        )
        echoed = json.loads(post.responseText)
        print(f"POST /echo: HTTP {post.statusCode}, server saw {echoed['body_text']}")
        uploaded = json.loads(upload.responseText)
        ok_upload = uploaded["body_sha256"] == hashlib.sha256(upload_body).hexdigest()
        print(
            f"PUT /upload: HTTP {upload.statusCode}, {uploaded['body_length']} bytes, ok: {ok_upload}"
        )
        # A downloaded file stays until the host moves it (blob.move) or reset() runs.
        Path(str(blob.nativePath)).unlink()
        await s.close()
    return 0 if ok_download and ok_upload and echoed["method"] == "POST" else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
