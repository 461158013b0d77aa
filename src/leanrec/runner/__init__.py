"""leanrec.runner: run directories and row stores, method registries, the final-evaluation
guard, and executors that run independent jobs serially or on Ray, with quiet progress bars."""

from leanrec.runner.executors import (
    EXECUTOR_KINDS,
    JOB_LOG_ENV,
    RAY_INSTALL_HINT,
    Executor,
    JobRecord,
    RayExecutor,
    SerialExecutor,
    Shared,
    init_ray,
    make_executor,
    search_executor,
    shutdown_ray,
)
from leanrec.runner.final import (
    TestDataReadError,
    final_evaluation,
    guard_test_data,
    in_final_evaluation,
)
from leanrec.runner.progress import PROGRESS_ENV, progress, progress_bar, progress_enabled
from leanrec.runner.registry import Registry
from leanrec.runner.rundir import (
    Log,
    RowStore,
    RunDirectory,
    atomic_write_json,
    atomic_write_text,
    jsonable,
)

__all__ = [
    "EXECUTOR_KINDS",
    "JOB_LOG_ENV",
    "PROGRESS_ENV",
    "RAY_INSTALL_HINT",
    "Executor",
    "JobRecord",
    "Log",
    "RayExecutor",
    "Registry",
    "RowStore",
    "RunDirectory",
    "SerialExecutor",
    "Shared",
    "TestDataReadError",
    "atomic_write_json",
    "atomic_write_text",
    "final_evaluation",
    "guard_test_data",
    "in_final_evaluation",
    "init_ray",
    "jsonable",
    "make_executor",
    "progress",
    "progress_bar",
    "progress_enabled",
    "search_executor",
    "shutdown_ray",
]
