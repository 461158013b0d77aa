"""leanrec.runner: run independent jobs serially or on Ray, with quiet progress bars."""

from leanrec.runner.executors import (
    EXECUTOR_KINDS,
    RAY_INSTALL_HINT,
    Executor,
    RayExecutor,
    SerialExecutor,
    make_executor,
)
from leanrec.runner.progress import PROGRESS_ENV, progress, progress_bar, progress_enabled

__all__ = [
    "EXECUTOR_KINDS",
    "PROGRESS_ENV",
    "RAY_INSTALL_HINT",
    "Executor",
    "RayExecutor",
    "SerialExecutor",
    "make_executor",
    "progress",
    "progress_bar",
    "progress_enabled",
]
