"""The transfer process's answer to a transient failure: the task goes round again, or ends.

Split out of :mod:`._runner` (which calls :func:`retry_or_fail` once the transport returned).
The session's ``retryPolicy`` retries made so far are journaled with the task, so a restarted
transfer process goes on counting where the killed one stopped.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

from .._config_values import ConfigValues
from ._attempt import Attempt, waiting_for_connectivity
from ._journal import QUEUED

if TYPE_CHECKING:
    from ._runner import Runner

__all__ = ["MAX_BACKOFF", "retry_or_fail"]

log = logging.getLogger("urlsession_module.transfer")

MAX_BACKOFF = 60.0


def retry_or_fail(runner: Runner, run: Attempt, cfg: ConfigValues) -> None:
    """A transient failure the transport reported: queue the task again after its wait (the
    policy's, the server's ``Retry-After``, or the runner's own backoff), until the resource
    timeout; then it ends with the failure the retry rule names."""
    rec = runner.journal.task(run.rec.id) or run.rec
    assert run.retry is not None
    attempts = rec.attempts + 1
    after = run.retry.retry_after
    policy_retries = rec.policy_retries
    if run.delay is not None:  # the session's retryPolicy chose this retry and its wait
        delay = run.delay
        policy_retries = run.policy_retries + 1
    elif after is not None:
        delay = after
    else:
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (attempts - 1))
    deadline = rec.created + cfg.timeoutIntervalForResource
    if time.time() + delay < deadline and not run.user_cancelled:
        log.info("task %s: retry %d in %.1fs (%s)", rec.id, attempts, delay, run.retry.message)
        if rec.attempts == 0 and (waiting := waiting_for_connectivity(run)) is not None:
            runner.publish(rec, run.machine, [waiting])  # Apple's, once: it always waits
        runner.journal.update_task(
            rec.id,
            state=QUEUED,
            attempts=attempts,
            next_attempt_at=time.time() + delay,
            policy_retries=policy_retries,
            metrics=None if run.metrics is None else json.dumps(run.metrics.to_dict()),
        )
        run.requeued = True
        with runner.cond:
            runner.scheduler.finished(run.rec)  # before it is queued again: one slot each
            if runner.running.get(rec.id) is run:
                del runner.running[rec.id]  # a cancel from now on finds it in the queue
                runner.ended.discard(rec.id)
            runner._enqueue(runner.journal.task(rec.id) or rec)
        return
    run.give_up()
