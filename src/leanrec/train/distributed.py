"""Data-parallel training under ``torchrun``: one process per rank, each training on its own
part of every batch, gradients averaged, so that all ranks hold the same weights after every
step.

``leanrec train`` started by ``torchrun --nproc_per_node N --rdzv-backend leanrec-loopback ...``
(:mod:`leanrec.train.loopback_rendezvous`; ``--master_addr 127.0.0.1`` works too) finds
``WORLD_SIZE`` / ``RANK`` in its environment; :func:`data_parallel` then joins the gloo process
group once and the BPR and CTR trainers train through a :class:`DataParallel`. Without those
variables (or with ``WORLD_SIZE=1``) :func:`data_parallel` is None and nothing here runs: a
single-process run is the code path it always was.

How a step is split (``N`` ranks, global batch of ``b = batch_size`` samples):

* **Same draws on every rank.** Every rank holds the run's one generator (seeded alike) and
  draws the epoch's whole order (and, for BPR, its negatives), so the global batches are the
  ones a single process trains on; rank ``r`` trains on its part ``[b r / N, b (r+1) / N)`` of
  each (:meth:`DataParallel.part`). The parts of an epoch are disjoint and cover it. The draw is
  ``O(n)`` on every rank, which is small beside the training of ``n / N`` samples up to many
  ranks (see ``docs/design/scaling-out.md``).
* **Batch semantics: ``batch_size`` is the global batch.** A rank's loss is the mean over its
  part times ``N n_r / b`` (1 when the parts are equal), so the averaged gradient is the
  gradient of the mean loss over the global batch: the learning rate, the number of steps per
  epoch and the L2 penalty mean what they mean in one process, and a run under ``torchrun``
  follows the single-process run up to the rounding of the sums. A batch smaller than ``N``
  (an empty part) is skipped on every rank.
* **Gradients.** Parameters with dense gradients are averaged by
  :class:`~torch.nn.parallel.DistributedDataParallel` around a module whose ``forward`` is the
  batch loss. Its reducer expects a sparse gradient only from ``nn.Embedding(sparse=True)``
  modules, and leanrec's tables switch sparse gradients on for the training block only, so
  under a row-wise optimiser (``sparse_adam``, ``lazy_adam``, ``rowwise_adagrad``) the tables'
  row parameters are taken out of DDP (as TorchRec takes its sharded tables out) and
  :meth:`DataParallel.average_row_gradients` averages their sparse gradients: one all-gather
  of the rows and one of the values, concatenated in rank order and coalesced (what gloo's own
  sparse all-reduce does), the same result on every rank. ``sparse_adam``'s deferred rows are
  caught up before the step on every rank. When nothing is left for DDP (MF and LightGCN under
  a row-wise optimiser) no DDP wrapper is built (DDP refuses a module with nothing to reduce).
* **Evaluation, checkpoints.** Validation runs on rank 0 alone and its record is broadcast
  (:meth:`DataParallel.broadcast`), so early stopping, best weights and learning-rate decay
  decide alike on every rank; the time budget is rank 0's clock. Checkpoints are written by
  rank 0 and hold every rank's torch generator; every rank resumes from the same file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")

CatchUp = Callable[[torch.Tensor, torch.Tensor], None]
"""``sparse_adam``'s ``catch_up(parameter, rows)`` (see :mod:`leanrec.train.row_optim`)."""

_GROUP: DataParallel | None = None


@dataclass(frozen=True)
class DataParallel:
    """The ranks of a data-parallel run (a gloo process group already joined).

    Attributes:
        rank: this process's rank, 0 .. ``world_size - 1`` (rank 0 validates and checkpoints).
        world_size: ``N``, the number of processes.
    """

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (which validates, tests and writes files)."""
        return self.rank == 0

    # ------------------------------------------------------------------ sharding
    def part(self, start: int, stop: int) -> slice:
        """This rank's part of the global batch ``[start, stop)``: contiguous, disjoint across
        ranks, sizes differing by at most one (``[b r / N, b (r+1) / N)`` from ``start``)."""
        size = stop - start
        return slice(
            start + size * self.rank // self.world_size,
            start + size * (self.rank + 1) // self.world_size,
        )

    def loss_weight(self, part_size: int, batch_size: int) -> float:
        """``N n_r / b``: scales the mean loss of a part of ``part_size`` samples so that the
        average over ranks is the gradient of the global batch's mean (1 for equal parts)."""
        return self.world_size * part_size / batch_size

    # ------------------------------------------------------------------ agreement
    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        box: list[Any] = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[no-any-return]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over ranks of ``values`` (float64 all-reduce)."""
        tensor = torch.tensor(list(values), dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ gradients
    def synchronize_start(self, module: nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers (dense ones)."""
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                if not tensor.is_sparse and tensor.numel():
                    dist.broadcast(tensor.data, src=0)

    def wrap(self, loss_module: nn.Module, row_parameters: Iterable[nn.Parameter]) -> nn.Module:
        """``loss_module`` under DDP with ``row_parameters`` and every buffer left out (the
        buffers — graphs, seen items — are built alike from the same data), or
        ``loss_module`` itself when no trainable parameter is left for DDP."""
        from torch.nn.parallel import DistributedDataParallel

        row_ids = {id(p) for p in row_parameters}
        ignored = [name for name, p in loss_module.named_parameters() if id(p) in row_ids]
        ignored += [name for name, _ in loss_module.named_buffers()]
        left = [p for p in loss_module.parameters() if p.requires_grad and id(p) not in row_ids]
        if not left:
            return loss_module
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(loss_module, ignored)
        return DistributedDataParallel(loss_module)  # ignored buffers are never broadcast

    def average_row_gradients(
        self, parameters: Sequence[torch.Tensor], catch_up: CatchUp | None = None
    ) -> None:
        """Replace each parameter's sparse (or dense) gradient by its average over ranks.

        Sparse gradients (``indices (1, nnz)``, ``values (nnz, *row)``) are coalesced, then the
        rows and values of every rank are all-gathered (two collectives for all parameters,
        padded to the longest), concatenated in rank order and coalesced again, and divided by
        ``N``: the same tensor on every rank. A gradient that is None on every rank stays None
        (the optimiser then skips the parameter, as in one process). ``catch_up`` (sparse_adam)
        brings the averaged gradient's rows up to date first, so a row that another rank read
        moves on this rank exactly as there.
        """
        if not parameters:
            return
        local = [_row_gradient(p) for p in parameters]
        counts = torch.tensor([-1 if g is None else len(g[0]) for g in local], dtype=torch.int64)
        all_counts = torch.zeros(self.world_size * len(parameters), dtype=torch.int64)
        _all_gather_flat(all_counts, counts)
        all_counts = all_counts.reshape(self.world_size, len(parameters))  # (N, P)
        widths = [_row_width(p) for p in parameters]
        rows_out = all_counts.clamp(min=0).sum(dim=1)  # (N,) rows per rank
        values_out = (all_counts.clamp(min=0) * torch.tensor(widths)).sum(dim=1)  # (N,)
        dtype = next((g[1].dtype for g in local if g is not None), torch.float32)
        rows = torch.cat(
            [g[0] for g in local if g is not None] or [torch.zeros(0, dtype=torch.int64)]
        )
        values = torch.cat(
            [g[1].reshape(-1) for g in local if g is not None] or [torch.zeros(0, dtype=dtype)]
        )
        gathered_rows = _all_gather_padded(rows, rows_out)
        gathered_values = _all_gather_padded(values, values_out)
        for index, parameter in enumerate(parameters):
            counts_of = all_counts[:, index]
            if bool((counts_of < 0).all()):
                parameter.grad = None
                continue
            row_pieces, value_pieces = [], []
            for rank in range(self.world_size):
                before = all_counts[rank, :index].clamp(min=0)
                row_start = int(before.sum())
                value_start = int((before * torch.tensor(widths[:index])).sum())
                count = max(0, int(counts_of[rank]))
                row_pieces.append(gathered_rows[rank][row_start : row_start + count])
                value_pieces.append(
                    gathered_values[rank][value_start : value_start + count * widths[index]]
                )
            row_shape = parameter.shape[1:]
            merged = torch.sparse_coo_tensor(
                torch.cat(row_pieces)[None, :],
                torch.cat(value_pieces).reshape(-1, *row_shape),
                parameter.shape,
                check_invariants=False,
            ).coalesce()
            averaged = torch.sparse_coo_tensor(
                merged.indices(),
                merged.values() / self.world_size,
                parameter.shape,
                is_coalesced=True,
                check_invariants=False,
            )
            if catch_up is not None:
                catch_up(parameter, averaged.indices()[0])
            if parameter.grad is not None and not parameter.grad.is_sparse:
                parameter.grad = averaged.to_dense()
            else:
                parameter.grad = averaged

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (one small broadcast)."""
        tensor = torch.tensor([1 if flag else 0], dtype=torch.int64)
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())

    def barrier(self) -> None:
        dist.barrier()


def _row_gradient(parameter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(rows (k,), values (k, *row))`` of a parameter's gradient (coalesced when sparse;
    every row when dense), None without one."""
    grad = parameter.grad
    if grad is None:
        return None
    if grad.is_sparse:
        grad = grad.coalesce()
        return grad.indices()[0], grad.values()
    return torch.arange(grad.shape[0]), grad


def _row_width(parameter: torch.Tensor) -> int:
    """Values per row of ``parameter`` (``d`` of an ``(N, d)`` table, 1 of packed values)."""
    width = 1
    for size in parameter.shape[1:]:
        width *= int(size)
    return width


def _all_gather_padded(tensor: torch.Tensor, sizes: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's 1-d ``tensor`` (of ``sizes[r]`` elements on rank ``r``), padded to the
    longest for the all-gather and cut back."""
    longest = int(sizes.max())
    padded = torch.zeros(longest, dtype=tensor.dtype)
    padded[: len(tensor)] = tensor
    out = torch.zeros(len(sizes) * longest, dtype=tensor.dtype)
    _all_gather_flat(out, padded)
    return [out[r * longest : r * longest + int(sizes[r])] for r in range(len(sizes))]


def _all_gather_flat(out: torch.Tensor, tensor: torch.Tensor) -> None:
    """All-gather ``tensor`` ``(m,)`` of every rank into ``out`` ``(N m,)``, in rank order."""
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    gather(out, tensor)


def data_parallel() -> DataParallel | None:
    """The data-parallel group of this process: None in a single process (no ``torchrun``
    environment, or ``WORLD_SIZE=1``); else joins the gloo process group on the first call
    (``MASTER_ADDR`` / ``MASTER_PORT`` of ``torchrun``). With a loopback ``MASTER_ADDR`` and
    no ``GLOO_SOCKET_IFNAME``, gloo is bound to the loopback interface too (it would
    otherwise use the address the host name resolves to)."""
    global _GROUP
    if _GROUP is not None:
        return _GROUP
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    if not dist.is_initialized():
        address = os.environ.get("MASTER_ADDR", "")
        if address.startswith("127.") or address in ("localhost", "::1"):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo0" if sys.platform == "darwin" else "lo")
        dist.init_process_group("gloo")
    _GROUP = DataParallel(dist.get_rank(), dist.get_world_size())
    return _GROUP


def is_main_process() -> bool:
    """True in a single process and on rank 0 of a data-parallel run."""
    group = data_parallel()
    return group is None or group.is_main


def finish() -> None:
    """Leave the process group (end of a data-parallel run; nothing in a single process)."""
    global _GROUP
    if _GROUP is not None and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _GROUP = None


__all__ = ["DataParallel", "data_parallel", "finish", "is_main_process"]
