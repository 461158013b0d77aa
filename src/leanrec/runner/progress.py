"""Progress bars that stay quiet in logs: tqdm, shown only when stderr is a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")

PROGRESS_ENV = "LEANREC_PROGRESS"
"""Environment variable forcing progress bars on (``1``) or off (``0``)."""


def progress_enabled(enabled: bool | None = None) -> bool:
    """Whether to show a progress bar.

    An explicit ``enabled`` wins; else ``LEANREC_PROGRESS=1`` / ``0`` forces it on / off; else
    it is shown only when stderr is a terminal (so CI logs and redirected output stay clean).
    """
    if enabled is not None:
        return enabled
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str | None = None,
    enabled: bool | None = None,
) -> Iterator[T]:
    """Iterate over ``iterable`` with a tqdm bar when :func:`progress_enabled` says so.

    Args:
        iterable: what to iterate over.
        total: number of items, when ``len(iterable)`` is not available.
        desc: label shown before the bar.
        enabled: force the bar on/off; ``None`` decides from the environment and the terminal.
    """
    bar: Iterator[T] = tqdm(
        iterable, total=total, desc=desc, disable=not progress_enabled(enabled), leave=False
    )
    return bar


def progress_bar(
    total: int | None = None, desc: str | None = None, enabled: bool | None = None
) -> tqdm[Any]:
    """A bar updated by hand (``bar.update(n)``, ``bar.close()``), shown as :func:`progress`."""
    return tqdm(total=total, desc=desc, disable=not progress_enabled(enabled), leave=False)


__all__ = ["PROGRESS_ENV", "progress", "progress_bar", "progress_enabled"]
