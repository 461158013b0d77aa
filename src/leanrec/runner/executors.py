"""Executors run independent jobs (trials, seeds, cells, masks) and return results in job order.

:class:`SerialExecutor` runs them one after another in this process; :class:`RayExecutor`
spreads them over a Ray cluster: the one ``RAY_ADDRESS`` (or ``address``) names, else a local
cluster it starts bound to the loopback address. Code that schedules work takes an
:class:`Executor` and does not care which::

    executor = make_executor("ray", num_cpus_per_job=2)
    data = executor.share(split)                         # ray.put once, read by every job
    scores = executor.map(Retrain(data), masks)          # scores[i] belongs to masks[i]

``fn`` and the jobs must be picklable for Ray (module-level functions or classes, plain data);
large inputs go through :meth:`Executor.share` so that they are stored once per search, not
copied into every job. Every executor records where each job ran (:attr:`Executor.records`:
node ID, process, seconds), and ``LEANREC_JOB_LOG=path`` appends those records to a JSON-lines
file, so one can check which node of a cluster trained what.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from leanrec.runner.progress import progress_bar

T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E", bound="Executor")

RAY_INSTALL_HINT = "Ray is not installed: run `pip install leanrec[ray]` (or `pip install ray`)."
LOOPBACK = "127.0.0.1"
"""The address a local Ray cluster binds to (Ray otherwise picks the machine's network one)."""
JOB_LOG_ENV = "LEANREC_JOB_LOG"
"""Environment variable naming a JSON-lines file that every executor appends its job records to."""
LOCAL_NODE = "local"
"""The node ID recorded for jobs run in this process (no Ray node)."""

OnResult = Callable[[int, Any], None]
"""``on_result(index, result)``: called in job order as soon as job ``index`` and every job
before it are done (so a caller can store finished rows of a long map as it goes)."""


@dataclass(frozen=True)
class JobRecord:
    """Where and how long one job ran."""

    desc: str
    """The executor's label of the map the job belonged to."""
    index: int
    """Position of the job in its map."""
    node_id: str
    """Ray node ID (hex), or ``"local"`` for a job run in this process."""
    pid: int
    """Process that ran it."""
    seconds: float
    """Wall time of the job itself (not of waiting for a worker)."""


class Shared(Generic[T]):
    """A value every job of a search reads, stored once: jobs hold the handle, not the value.

    Serial executors hold the value itself; Ray holds an object reference (``ray.put`` once),
    and :meth:`get` on a worker reads it from the object store (NumPy arrays without a copy).
    """

    def get(self) -> T:
        """The shared value."""
        raise NotImplementedError


class InProcess(Shared[T]):
    """The value itself (jobs run in this process, or are pickled with it)."""

    def __init__(self, value: T) -> None:
        self.value = value

    def get(self) -> T:
        return self.value


class InObjectStore(Shared[T]):
    """A Ray object reference; picklable, so a job sent to any node carries only the reference."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def get(self) -> T:
        ray = _import_ray()
        value: T = ray.get(self.ref)
        return value


class Executor(ABC):
    """Runs ``fn`` on each job; subclasses decide where.

    Attributes:
        records: a :class:`JobRecord` per job run by this executor, in the order the jobs
            finished.
    """

    in_process: bool = True
    """Whether jobs run in this process (they may then write to the caller's log and files)."""

    def __init__(self, desc: str | None = "jobs") -> None:
        self.desc = desc
        self.records: list[JobRecord] = []
        self._shared_once: dict[int, tuple[Any, Shared[Any]]] = {}

    @abstractmethod
    def map(
        self, fn: Callable[[T], R], jobs: Sequence[T], on_result: OnResult | None = None
    ) -> list[R]:
        """``[fn(job) for job in jobs]``, in job order; the first failing job's error is raised.

        Args:
            on_result: called with ``(index, result)`` in job order as results come in.
        """

    def share(self, value: T) -> Shared[T]:
        """``value`` as a handle that jobs read with ``.get()`` (default: the value itself)."""
        return InProcess(value)

    def share_once(self, value: T) -> Shared[T]:
        """:meth:`share`, stored once per executor for the same object (by identity): a value
        that several ``map`` calls of one search read, such as a validation subset, goes to the
        object store once per search. The executor keeps the value alive, so the value must not
        change while the executor is in use."""
        held = self._shared_once.get(id(value))
        if held is None or held[0] is not value:
            held = (value, self.share(value))
            self._shared_once[id(value)] = held
        handle: Shared[T] = held[1]
        return handle

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release resources this executor acquired (default: nothing)."""

    def _record(self, record: JobRecord) -> None:
        self.records.append(record)
        path = os.environ.get(JOB_LOG_ENV)
        if path:
            with Path(path).open("a") as handle:
                handle.write(json.dumps(asdict(record)) + "\n")

    def __enter__(self: E) -> E:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs jobs one after another in this process, with a progress bar on a terminal.

    Args:
        show_progress: force the bar on/off; ``None`` shows it when stderr is a terminal (see
            :func:`leanrec.runner.progress.progress`).
        desc: label of the progress bar and of the job records.
    """

    def __init__(self, show_progress: bool | None = None, desc: str | None = "jobs") -> None:
        super().__init__(desc)
        self.show_progress = show_progress

    def map(
        self, fn: Callable[[T], R], jobs: Sequence[T], on_result: OnResult | None = None
    ) -> list[R]:
        results = []
        with progress_bar(total=len(jobs), desc=self.desc, enabled=self.show_progress) as bar:
            for index, job in enumerate(jobs):
                began = time.perf_counter()
                result = fn(job)
                self._record(
                    JobRecord(
                        self.desc or "jobs",
                        index,
                        LOCAL_NODE,
                        os.getpid(),
                        time.perf_counter() - began,
                    )
                )
                results.append(result)
                if on_result is not None:
                    on_result(index, result)
                bar.update(1)
        return results

    def __repr__(self) -> str:
        return "SerialExecutor()"


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(RAY_INSTALL_HINT) from err
    return ray


def is_loopback(address: str) -> bool:
    """Whether a Ray address (``host:port``, ``ray://host:port``) names this machine's loopback
    interface (read from the text: no name is looked up)."""
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def init_ray(address: str | None = None, **init_kwargs: Any) -> str | None:
    """Connect to the cluster at ``address`` (``RAY_ADDRESS`` when None), or start a local one
    bound to 127.0.0.1; returns the temporary directory of a started local cluster (for
    :func:`shutdown_ray` to remove), else None.

    A local cluster never joins another Ray instance of the machine (``address="local"``),
    runs no dashboard unless asked, keeps its files in a temporary directory of its own, and
    starts in Ray's single-machine mode (:func:`_single_machine_mode`): its node address is
    127.0.0.1 and every one of its processes listens on 127.0.0.1 only. A driver connecting to
    a loopback address says it is on that address too (Ray looks for a node at the driver's
    address), so that it finds a cluster started with ``--node-ip-address`` of that address,
    and keeps the address while it connects (:mod:`leanrec.runner.ray_node`: Ray would replace
    127.0.0.1 by the machine's network address, where a loopback cluster does not listen).
    """
    ray = _import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and address != "local":
        if not is_loopback(address):
            ray.init(address=address, **init_kwargs)
            return None
        from leanrec.runner.ray_node import loopback_addresses_kept

        host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
        init_kwargs.setdefault("_node_ip_address", "127.0.0.1" if host == "localhost" else host)
        with loopback_addresses_kept():
            ray.init(address=address, **init_kwargs)
        return None
    init_kwargs.setdefault("_node_ip_address", LOOPBACK)
    init_kwargs.setdefault("include_dashboard", False)
    temp_dir = None
    if "_temp_dir" not in init_kwargs:
        # short: Ray's socket paths live below it and must stay under 108 characters
        temp_dir = tempfile.mkdtemp(prefix="lr-ray-", dir="/tmp" if os.name == "posix" else None)
        init_kwargs["_temp_dir"] = temp_dir
    with _single_machine_mode():
        ray.init(address="local", **init_kwargs)
    return temp_dir


@contextlib.contextmanager
def _single_machine_mode() -> Iterator[None]:
    """Ray's mode for one machine, the one it uses on macOS and Windows, while a local cluster
    starts.

    On Linux Ray treats every node as part of a possible multi-machine cluster: it replaces a
    node address of 127.0.0.1 by the machine's network address and its servers listen on
    every interface. In single-machine mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) it keeps
    127.0.0.1 and its servers listen there only. The variable is read when Ray is imported and
    by the processes the cluster starts (they inherit it), so both the module's flag and the
    environment are set, and restored once the cluster runs.
    """
    from ray._private import ray_constants

    name = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    saved_env, saved_flag = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved_env


def shutdown_ray(temp_dir: str | None = None) -> None:
    """``ray.shutdown()``, then remove the local cluster's temporary directory if given."""
    _import_ray().shutdown()
    if temp_dir is not None:
        shutil.rmtree(temp_dir, ignore_errors=True)


_WAIT_SECONDS = 0.2
"""How long one ``ray.wait`` waits for more jobs to finish before the bar is updated."""


def _call_job(fn: Callable[[T], R], job: T) -> tuple[R, str, int, float]:
    """Ray task body: any picklable callable (function, partial, callable object) works; the
    result comes back with the node, process and seconds of the job."""
    import ray

    began = time.perf_counter()
    result = fn(job)
    node = ray.get_runtime_context().get_node_id()
    return result, node, os.getpid(), time.perf_counter() - began


class RayExecutor(Executor):
    """Runs each job as a Ray task; results come back in job order.

    Ray is imported only when jobs are run (or data shared), so this class can be built and
    configured without Ray installed.

    Args:
        address: cluster to connect to (``"127.0.0.1:6379"``, ``"ray://host:10001"``, ...).
            ``None`` uses the ``RAY_ADDRESS`` environment variable when set, else starts a
            local cluster on this machine, bound to 127.0.0.1 (:func:`init_ray`).
        num_cpus_per_job: CPUs Ray reserves per job (may be fractional); this bounds how many
            jobs run at once on each node.
        show_progress: force the progress bar on/off; ``None`` shows it on a terminal.
        desc: label of the progress bar and of the job records.
        **init_kwargs: passed to ``ray.init`` (e.g. ``num_cpus=4`` for a local cluster).
    """

    in_process = False

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_job: float = 1,
        show_progress: bool | None = None,
        desc: str | None = "ray jobs",
        **init_kwargs: Any,
    ) -> None:
        if num_cpus_per_job <= 0:
            raise ValueError(f"num_cpus_per_job must be positive, got {num_cpus_per_job}")
        super().__init__(desc)
        self.address = address
        self.num_cpus_per_job = num_cpus_per_job
        self.show_progress = show_progress
        self.init_kwargs = init_kwargs
        self._started_ray = False
        self._temp_dir: str | None = None

    def _resolved_address(self) -> str | None:
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def _ensure_ray(self) -> ModuleType:
        ray = _import_ray()
        if not ray.is_initialized():
            self._temp_dir = init_ray(self._resolved_address(), **self.init_kwargs)
            self._started_ray = True
        return ray

    def share(self, value: T) -> Shared[T]:
        """``value`` in the object store (``ray.put`` once); jobs carry only the reference."""
        ray = self._ensure_ray()
        return InObjectStore(ray.put(value))

    def map(
        self, fn: Callable[[T], R], jobs: Sequence[T], on_result: OnResult | None = None
    ) -> list[R]:
        if len(jobs) == 0:
            return []
        ray = self._ensure_ray()
        remote_call = ray.remote(num_cpus=self.num_cpus_per_job)(_call_job)
        fn_ref = ray.put(fn)  # shipped once, not once per job
        refs = [remote_call.remote(fn_ref, job) for job in jobs]
        index_of = {ref: index for index, ref in enumerate(refs)}
        results: dict[int, Any] = {}
        reported = 0
        pending = list(refs)
        with progress_bar(total=len(refs), desc=self.desc, enabled=self.show_progress) as bar:
            try:
                while pending:
                    done, pending = ray.wait(
                        pending, num_returns=len(pending), timeout=_WAIT_SECONDS
                    )
                    # ray.get raises the first failure now, not after every job finished
                    for ref, (result, node, pid, seconds) in zip(done, ray.get(done)):
                        index = index_of[ref]
                        results[index] = result
                        self._record(JobRecord(self.desc or "jobs", index, node, pid, seconds))
                    while reported in results:
                        if on_result is not None:
                            on_result(reported, results[reported])
                        reported += 1
                    bar.update(len(done))
            except BaseException:
                for ref in pending:
                    ray.cancel(ref)
                raise
        return [results[index] for index in range(len(refs))]

    def close(self) -> None:
        """Shut Ray down (and remove its temporary directory) if this executor started it."""
        if self._started_ray:
            shutdown_ray(self._temp_dir)
            self._started_ray = False
            self._temp_dir = None

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


def search_executor(kind: str, num_cpus_per_job: float = 1.0, desc: str = "jobs") -> Executor:
    """The executor a search's configuration names (its ``executor`` and
    ``executor_cpus_per_job`` fields), without a progress bar: the search logs its own lines.
    One search opens one (a local Ray cluster starts once) and closes it when done."""
    if kind == "ray":
        return RayExecutor(num_cpus_per_job=num_cpus_per_job, show_progress=False, desc=desc)
    return make_executor(kind, show_progress=False, desc=desc)


__all__ = [
    "EXECUTOR_KINDS",
    "JOB_LOG_ENV",
    "LOCAL_NODE",
    "LOOPBACK",
    "RAY_INSTALL_HINT",
    "Executor",
    "InObjectStore",
    "InProcess",
    "JobRecord",
    "OnResult",
    "RayExecutor",
    "SerialExecutor",
    "Shared",
    "init_ray",
    "is_loopback",
    "make_executor",
    "search_executor",
    "shutdown_ray",
]
