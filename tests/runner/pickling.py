"""An executor that runs jobs in this process but ships everything as Ray would: ``fn`` and
every job through pickle, shared values pickled once and unpickled per read, results through
pickle on the way back; it also says it runs elsewhere (``in_process = False``), so callers
take their remote path. Results equal to the serial executor's show that a search's jobs
depend on nothing but what they carry."""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from leanrec.runner.executors import Executor, JobRecord, OnResult, Shared

T = TypeVar("T")
R = TypeVar("R")


class Pickled(Shared[T]):
    """A value stored once as bytes; every read unpickles a fresh copy (as a Ray worker does)."""

    def __init__(self, value: T) -> None:
        self.data = pickle.dumps(value)

    def get(self) -> T:
        value: T = pickle.loads(self.data)
        return value


class PicklingExecutor(Executor):
    in_process = False

    def __init__(self) -> None:
        super().__init__("pickled")
        self.shared = 0

    def share(self, value: T) -> Shared[T]:
        self.shared += 1
        return Pickled(value)

    def map(
        self, fn: Callable[[T], R], jobs: Sequence[T], on_result: OnResult | None = None
    ) -> list[R]:
        shipped = pickle.dumps(fn)
        results = []
        for index, job in enumerate(jobs):
            began = time.perf_counter()
            result = pickle.loads(shipped)(pickle.loads(pickle.dumps(job)))
            result = pickle.loads(pickle.dumps(result))
            seconds = time.perf_counter() - began
            self._record(JobRecord("pickled", index, "pickled", os.getpid(), seconds))
            results.append(result)
            if on_result is not None:
                on_result(index, result)
        return results

    def __repr__(self) -> str:
        return "PicklingExecutor()"


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their wall times (the only fields that differ between executors)."""
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in rows]
