"""A scripting host that runs its own loop and drains an ``URLSession.EventQueue`` in it.

Run it as is: ``python example/host_loop_example.py``. Hosts such as game engines, editors or
embedded interpreters own their main loop and run scripts' callbacks only from it. Such a host
hands an :class:`~urlsession_module.EventQueue` to ``createSession`` as ``delegateQueue``; the
transfers run on the package's threads, but no listener runs until the host calls
``queue.drain()``, on its own thread, once per frame.
"""

from __future__ import annotations

import threading
import time

import urlsession_module as URLSession
from urlsession_module.testing import LocalServer

FRAME = 1 / 30  # the host's frame time: 30 frames per second


class Host:
    """A toy host: a frame loop that updates its "UI" and runs the scripts' events."""

    def __init__(self) -> None:
        self.events = URLSession.EventQueue()
        self.frame = 0
        self.progress: dict[str, float] = {}  # what the UI would draw: task → percent
        self.done: dict[str, URLSession.Event] = {}
        self.thread = threading.current_thread()

    # -- what a script registers ---------------------------------------------------------------

    def on_progress(self, e: URLSession.Event) -> None:
        assert threading.current_thread() is self.thread  # listeners run in the host's loop
        self.progress[e.taskIdentifier] = e.totalBytesWritten / e.totalBytesExpectedToWrite * 100

    def on_completed(self, e: URLSession.Event) -> None:
        assert threading.current_thread() is self.thread
        self.done[e.taskIdentifier] = e
        print(f"frame {self.frame:3d}: task {e.taskIdentifier} completed, HTTP {e.statusCode}")

    # -- the host's loop -------------------------------------------------------------------------

    def run_until(self, task_ids: list[str], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while not all(t in self.done for t in task_ids):
            if time.monotonic() > deadline:
                return False
            started = time.monotonic()
            self.frame += 1
            # 1. the host's own work for this frame (here: draw the progress line now and then)
            if self.frame % 10 == 0 and self.progress:
                bars = "  ".join(f"{t}: {p:3.0f}%" for t, p in sorted(self.progress.items()))
                print(f"frame {self.frame:3d}: {bars}")
            # 2. the scripts' events, for at most the rest of the frame
            self.events.drain(timeout=0, max_events=100)
            # 3. sleep out the frame
            time.sleep(max(0.0, FRAME - (time.monotonic() - started)))
        return True


def main() -> int:
    host = Host()
    with LocalServer() as srv:
        cfg = URLSession.createSessionConfiguration({"type": "ephemeral"})
        session = URLSession.createSession({"configuration": cfg, "delegateQueue": host.events})
        session.addEventListener("downloadprogress", host.on_progress)
        session.addEventListener("sessioncompleted", host.on_completed)
        tasks = [
            session.downloadTask({"url": srv.url(f"/bytes/{n}?rate=4000000")})
            for n in (2_000_000, 4_000_000)
        ]
        finished = host.run_until(tasks)
        # This host keeps no file: reset() removes the downloads nobody moved, then calls back
        # through the same queue; waitForInvalidation drains it while it waits.
        session.reset(lambda result: print(f"reset: {result}"))
        session.finishTasksAndInvalidate()
        session.waitForInvalidation(10)
    ok = finished and all(e.success for e in host.done.values())
    print(f"{len(host.done)} task(s) done in {host.frame} frames: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
