"""Executors run independent jobs (trials, seeds, datasets) and return results in job order.

:class:`SerialExecutor` runs them one after another in this process; :class:`RayExecutor`
spreads them over a Ray cluster (a local one by default). Code that schedules work takes an
:class:`Executor` and does not care which::

    executor = make_executor("ray", num_cpus_per_job=2)
    scores = executor.map(train_and_evaluate, configs)   # scores[i] belongs to configs[i]

``fn`` and the jobs must be picklable for Ray (module-level functions, plain data).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeVar

from leanrec.runner.progress import progress, progress_bar

T = TypeVar("T")
R = TypeVar("R")

RAY_INSTALL_HINT = "Ray is not installed: run `pip install leanrec[ray]` (or `pip install ray`)."


class Executor(ABC):
    """Runs ``fn`` on each job; subclasses decide where."""

    @abstractmethod
    def map(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        """``[fn(job) for job in jobs]``, in job order; the first failing job's error is raised."""

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release resources this executor acquired (default: nothing)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs jobs one after another in this process, with a progress bar on a terminal.

    Args:
        show_progress: force the bar on/off; ``None`` shows it when stderr is a terminal (see
            :func:`leanrec.runner.progress.progress`).
        desc: label of the progress bar.
    """

    def __init__(self, show_progress: bool | None = None, desc: str | None = "jobs") -> None:
        self.show_progress = show_progress
        self.desc = desc

    def map(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        return [
            fn(job)
            for job in progress(jobs, total=len(jobs), desc=self.desc, enabled=self.show_progress)
        ]

    def __repr__(self) -> str:
        return "SerialExecutor()"


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(RAY_INSTALL_HINT) from err
    return ray


_WAIT_SECONDS = 0.2
"""How long one ``ray.wait`` waits for more jobs to finish before the bar is updated."""


def _call_job(fn: Callable[[T], R], job: T) -> R:
    """Ray task body: any picklable callable (function, partial, callable object) works."""
    return fn(job)


class RayExecutor(Executor):
    """Runs each job as a Ray task; results come back in job order.

    Ray is imported only when jobs are run, so this class can be built (and configured)
    without Ray installed.

    Args:
        address: cluster to connect to (``"auto"``, ``"ray://host:10001"``, ...). ``None``
            uses the ``RAY_ADDRESS`` environment variable when set, else starts a local
            cluster on this machine.
        num_cpus_per_job: CPUs Ray reserves per job (may be fractional); this bounds how many
            jobs run at once.
        show_progress: force the progress bar on/off; ``None`` shows it on a terminal.
        **init_kwargs: passed to ``ray.init`` (e.g. ``num_cpus=4`` for a local cluster).
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_job: float = 1,
        show_progress: bool | None = None,
        **init_kwargs: Any,
    ) -> None:
        if num_cpus_per_job <= 0:
            raise ValueError(f"num_cpus_per_job must be positive, got {num_cpus_per_job}")
        self.address = address
        self.num_cpus_per_job = num_cpus_per_job
        self.show_progress = show_progress
        self.init_kwargs = init_kwargs
        self._started_ray = False

    def _resolved_address(self) -> str | None:
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def _ensure_ray(self) -> ModuleType:
        ray = _import_ray()
        if not ray.is_initialized():
            ray.init(
                address=self._resolved_address(),
                ignore_reinit_error=True,
                **self.init_kwargs,
            )
            self._started_ray = True
        return ray

    def map(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        if len(jobs) == 0:
            return []
        ray = self._ensure_ray()
        remote_call = ray.remote(num_cpus=self.num_cpus_per_job)(_call_job)
        fn_ref = ray.put(fn)  # shipped once, not once per job
        refs = [remote_call.remote(fn_ref, job) for job in jobs]
        pending = list(refs)
        with progress_bar(total=len(refs), desc="ray jobs", enabled=self.show_progress) as bar:
            try:
                while pending:
                    done, pending = ray.wait(
                        pending, num_returns=len(pending), timeout=_WAIT_SECONDS
                    )
                    ray.get(done)  # raise the first failure now, not after every job finished
                    bar.update(len(done))
            except BaseException:
                for ref in pending:
                    ray.cancel(ref)
                raise
        return list(ray.get(refs))

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._started_ray:
            ray = _import_ray()
            ray.shutdown()
            self._started_ray = False

    def __repr__(self) -> str:
        return (
            f"RayExecutor(address={self._resolved_address()!r}, "
            f"num_cpus_per_job={self.num_cpus_per_job})"
        )


EXECUTOR_KINDS = ("serial", "ray")


def make_executor(kind: str = "serial", **kwargs: Any) -> Executor:
    """Build an executor by name: ``"serial"`` (:class:`SerialExecutor`) or ``"ray"``
    (:class:`RayExecutor`); ``kwargs`` go to its constructor."""
    if kind == "serial":
        return SerialExecutor(**kwargs)
    if kind == "ray":
        return RayExecutor(**kwargs)
    raise ValueError(f"unknown executor kind {kind!r}; choose one of {', '.join(EXECUTOR_KINDS)}")


__all__ = [
    "EXECUTOR_KINDS",
    "RAY_INSTALL_HINT",
    "Executor",
    "RayExecutor",
    "SerialExecutor",
    "make_executor",
]
