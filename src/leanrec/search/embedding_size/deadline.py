"""Stop a long experiment at a time limit, only where everything done so far is on disk.

An embedding-size experiment on ML-1M (the ``paper`` preset's 300 fresh-model search steps,
then every retraining from scratch) takes longer than one sitting. Every stage already resumes
from its own checkpoint, so a killed run loses only the work since that checkpoint. Inside
:func:`time_limit`, the experiment instead stops itself at the first checkpoint written after
the limit, losing nothing: after a search iteration (its state is saved before the iteration's
hook runs) and after a validated epoch of a (pre)training (the trainer saves before it calls
its epoch hook). Stages that write no checkpoint along the way (PEP's threshold learning, the
screen) run to their end first.

Example::

    with time_limit(1.9 * 3600):
        try:
            run_experiment(experiment)
        except TimeLimitError as stop:
            print(stop)  # run it again to resume
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_STOP_AT: ContextVar[float | None] = ContextVar("embedding_size_stop_at", default=None)
"""``time.monotonic()`` after which the next checkpoint ends the run (None: no limit)."""


class TimeLimitError(RuntimeError):
    """The experiment stopped at the time limit right after a checkpoint; running it again
    resumes from there."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Within the block, :func:`check_time_limit` raises :class:`TimeLimitError` once
    ``seconds`` have passed (None: never)."""
    if seconds is not None and seconds < 0:
        raise ValueError(f"a time limit must be >= 0 seconds, got {seconds}")
    token = _STOP_AT.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _STOP_AT.reset(token)


def check_time_limit(after: str) -> None:
    """Raise :class:`TimeLimitError` if the limit of the enclosing :func:`time_limit` has
    passed. Call it only where the run's progress is on disk; ``after`` names that point in
    the message."""
    stop_at = _STOP_AT.get()
    if stop_at is not None and time.monotonic() >= stop_at:
        raise TimeLimitError(
            f"time limit reached after {after}; everything up to it is saved, run the same "
            "command again to resume"
        )
