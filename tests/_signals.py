"""A Ctrl-C delivered the way the kernel may deliver it: to a thread that is not the main one."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def sigint_to_another_thread(after: float = 0.3) -> Iterator[None]:
    """SIGINT, ``after`` seconds from now, to a thread that only sleeps.

    Python runs the handler (KeyboardInterrupt) in the main thread, but only once that thread
    runs Python again: a main thread blocked on a lock would not see it until woken.
    """
    bystander = threading.Thread(target=time.sleep, args=(after + 3,), daemon=True)
    bystander.start()
    assert bystander.ident is not None
    timer = threading.Timer(after, signal.pthread_kill, (bystander.ident, signal.SIGINT))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
