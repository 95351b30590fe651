"""``sessionSendsLaunchEvents``: run a session's launch command when its events wait for no host.

The command (an argv list from the configuration) gets ``URLSESSION_LAUNCH_SESSION`` and
``URLSESSION_HOME``; it is run again only once the previous one has exited and a few seconds have
passed, so a host that is slow to start is not launched twice. Children are reaped by :meth:`reap`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

from .._config_values import ConfigValues

__all__ = ["Launcher"]

log = logging.getLogger("urlsession_module.transfer")

RELAUNCH_AFTER = 5.0


class Launcher:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.launched: dict[str, tuple[subprocess.Popen[bytes], float]] = {}

    def maybe_launch(self, session: str, config: ConfigValues | None) -> None:
        if config is None or not config.sessionSendsLaunchEvents or not config.launchCommand:
            return
        previous = self.launched.get(session)
        if previous is not None and previous[0].poll() is None:
            return  # the host we launched is still starting
        if previous is not None and time.monotonic() - previous[1] < RELAUNCH_AFTER:
            return
        env = dict(os.environ, URLSESSION_LAUNCH_SESSION=session, URLSESSION_HOME=str(self.home))
        try:
            proc = subprocess.Popen(
                list(config.launchCommand),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            log.warning("launch command for %s failed: %s", session, exc.strerror)
            return
        log.info("ran the launch command for %s (pid %d)", session, proc.pid)
        self.launched[session] = (proc, time.monotonic())

    def reap(self) -> None:
        """Collect launched hosts that have exited (no zombies while the process runs)."""
        for proc, _ in list(self.launched.values()):
            proc.poll()
