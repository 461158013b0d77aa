"""Executor jobs over an event stream: what every stream policy's runners share.

A stream experiment (the adaptive architecture, AutoAssign+) scores choices on the warm-up and
then runs each row — one method at one setting and seed — over the whole stream, every one an
independent executor job (serial in this process, or on Ray) that reads the stream through a
:class:`~leanrec.runner.executors.Shared` handle. The part that does not depend on the policy
lives here:

- :class:`SharedStreamRunner`: the experiment's settings and the stream's handle; the stream
  is opened with torch's thread count set first (a Ray worker starts with its own count).
- :class:`StreamRowRunner`: one row over the stream. It looks the method up, names the row
  (:func:`row_tag`), gives it the checkpoint folder ``<run>/checkpoints/<tag>`` (so that a
  killed job resumes mid-stream), logs ``<tag>: streaming``, times the row (``seconds``, the
  row's last field) and removes the folder once the row is done; the policy's stream pass is
  the hook :meth:`StreamRowRunner.stream_row`, which reports its progress every
  ``log_every``-th step through :class:`StreamRow`::

      class RowRunner(StreamRowRunner[MyExperiment, RowJob, MyMethod]):
          methods = METHODS

          def stream_row(self, job, method, stream, row):
              def progress(chunk, record):
                  if row.due(chunk.index):
                      row.log(f"chunk {chunk.index + 1}")

              with final_evaluation():
                  record = run_stream(stream, plan, trainer, checkpoint_dir=row.checkpoints,
                                      on_chunk_end=progress)
              return {**row_key(job, ROW_KEY), "total": record.summary()["total"]}

Runners are picklable, as Ray needs: module-level classes holding plain settings, the stream's
handle, the run directory's path and, when the jobs run in this process, the log.
"""

from __future__ import annotations

import shutil
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import torch

from leanrec.data.events import EventStream
from leanrec.runner.executors import Shared
from leanrec.runner.registry import Named, Registry
from leanrec.runner.rundir import Log, file_in

CHECKPOINTS = "checkpoints"
"""The run directory's folder of the rows being run: one folder per row, named by its tag."""


class StreamSettings(Protocol):
    """The settings of an experiment that the shared part of its jobs reads."""

    @property
    def num_threads(self) -> int:
        """Torch threads per job (0: leave torch's count as it is)."""
        ...

    @property
    def log_every(self) -> int:
        """A progress line every this many steps (sessions, chunks) of a row."""
        ...


class StreamRowJob(Protocol):
    """What :class:`StreamRowRunner` reads of a row's job: its method and its tag."""

    @property
    def method(self) -> str:
        """The registered name of the row's method."""
        ...

    @property
    def tag(self) -> str:
        """The row's name in the log and of its checkpoint folder (:func:`row_tag`)."""
        ...


E = TypeVar("E", bound=StreamSettings)
J = TypeVar("J", bound=StreamRowJob)
M = TypeVar("M", bound=Named)


def row_key(job: object, key: tuple[str, ...]) -> dict[str, Any]:
    """The fields ``key`` names (a run's ``ROW_KEY``) of ``job``, in that order: the first
    fields of the row or warm-up score the job returns, which its row store is keyed by."""
    return {name: getattr(job, name) for name in key}


def row_tag(job: object, key: tuple[str, ...]) -> str:
    """The ``-``-joined values of ``job``'s ``key`` fields: strings as they are, None as
    ``none``, other numbers in ``:g`` format, the field ``seed`` as ``seed<seed>``. For
    instance ``bce-autoassign-2-seed0`` (objective, method, knob, seed) or
    ``fixed_small-none-seed1`` (method, λ, seed): the row's checkpoint folder and log prefix."""
    parts = []
    for name, value in row_key(job, key).items():
        if name == "seed":
            parts.append(f"seed{value}")
        elif value is None:
            parts.append("none")
        elif isinstance(value, str):
            parts.append(value)
        else:
            parts.append(f"{value:g}")
    return "-".join(parts)


def remove_empty_checkpoints(run_path: str | Path) -> None:
    """Remove the run directory's ``checkpoints/`` folder when no row left a folder in it
    (every row finished: nothing is left to resume); a folder that holds one is kept."""
    checkpoints = Path(run_path) / CHECKPOINTS
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()


@dataclass(frozen=True)
class StreamRow:
    """The running row as :meth:`StreamRowRunner.stream_row` sees it: where it checkpoints
    and where it reports."""

    tag: str
    """The row's tag (:func:`row_tag`): the prefix of its log lines."""
    checkpoints: Path
    """``<run>/checkpoints/<tag>``: where the stream pass checkpoints and resumes from
    (``checkpoints/`` exists, this folder only once the pass writes to it); removed when the
    row is done."""
    log_every: int
    """A progress line every this many steps."""
    sink: Log | None = None
    """The experiment's log; None off the experiment's process (the row logs nothing)."""

    def due(self, step: int) -> bool:
        """Whether a progress line is due after the 0-based step ``step`` (a session, a
        chunk): every ``log_every``-th step (steps ``log_every − 1``, ``2·log_every − 1``,
        ...), and only where there is a log."""
        return self.sink is not None and (step + 1) % self.log_every == 0

    def log(self, message: str) -> None:
        """``<tag>: <message>`` to the log, if there is one."""
        if self.sink is not None:
            self.sink(f"{self.tag}: {message}")


class SharedStreamRunner(Generic[E]):
    """An executor job's callable that reads a stream shared by every job of the map (the
    warm-up or the whole stream). Picklable: it holds the experiment's settings and the
    stream's handle, not the stream.

    Args:
        experiment: the experiment's settings (``num_threads`` is read here).
        stream: the stream's handle (:meth:`~leanrec.runner.executors.Executor.share`).
    """

    def __init__(self, experiment: E, stream: Shared[EventStream]) -> None:
        self.experiment = experiment
        self.stream = stream

    def open_stream(self) -> EventStream:
        """The stream, after setting torch's threads to the experiment's ``num_threads`` (when
        it is set): a job on a Ray worker runs with that worker's own count otherwise."""
        if self.experiment.num_threads:
            torch.set_num_threads(self.experiment.num_threads)
        return self.stream.get()


class StreamRowRunner(SharedStreamRunner[E], Generic[E, J, M], ABC):
    """Runs a stream experiment's rows (jobs ``J`` of methods ``M``): the shared part of a row
    around the policy's stream pass, :meth:`stream_row` (see the module docstring).

    A subclass sets :attr:`methods` and writes :meth:`stream_row`; its own fields (sizes the
    driver measured, a reference) are set in its ``__init__`` after this one's.

    Args:
        experiment: the experiment's settings (``num_threads``, ``log_every``).
        stream: the whole stream's handle.
        run_path: the run directory (a path: a job off this process cannot hold the object);
            checkpoints and saved models go under it.
        log: the experiment's log; None when the jobs run off this process.
    """

    methods: Registry[M]
    """The policy's method registry: a job's ``method`` is looked up there."""

    def __init__(
        self, experiment: E, stream: Shared[EventStream], run_path: str, log: Log | None = None
    ) -> None:
        super().__init__(experiment, stream)
        self.run_path = run_path
        self.log = log

    def __call__(self, job: J) -> dict[str, Any]:
        """The row of ``job``: :meth:`stream_row`'s, with its wall time ``seconds`` last."""
        stream = self.open_stream()
        method = self.methods[job.method]
        row = StreamRow(
            tag=job.tag,
            checkpoints=file_in(self.run_path, f"{CHECKPOINTS}/{job.tag}"),
            log_every=self.experiment.log_every,
            sink=self.log,
        )
        row.log("streaming")
        began = time.perf_counter()
        result = self.stream_row(job, method, stream, row)
        result["seconds"] = time.perf_counter() - began
        shutil.rmtree(row.checkpoints, ignore_errors=True)
        return result

    @abstractmethod
    def stream_row(self, job: J, method: M, stream: EventStream, row: StreamRow) -> dict[str, Any]:
        """The policy's pass over ``stream`` for ``job`` (its final evaluation: the part that
        reads the evaluated stream runs inside
        :func:`~leanrec.runner.final.final_evaluation`), checkpointing to
        ``row.checkpoints`` and reporting through ``row``.

        Returns:
            The row, starting with :func:`row_key`'s fields; ``seconds`` is added after it.
        """


__all__ = [
    "CHECKPOINTS",
    "SharedStreamRunner",
    "StreamRow",
    "StreamRowJob",
    "StreamRowRunner",
    "StreamSettings",
    "remove_empty_checkpoints",
    "row_key",
    "row_tag",
]
