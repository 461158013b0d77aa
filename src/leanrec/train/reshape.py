"""Optimiser state across a change of architecture: the moments follow the units.

When :mod:`leanrec.models.expandable` grows, shrinks, adds or removes a hidden layer, the tower's
parameters are replaced by new ones of other shapes. The dense optimiser must then (a) hold the
new parameters in place of the old and (b) keep what it knew about the units that stayed:

* a kept unit's entries of every per-parameter state tensor shaped like its parameter (Adam's
  ``exp_avg`` and ``exp_avg_sq``, Adagrad's ``sum``, ...) move to the unit's new position;
* a new unit's entries start at zero, as a fresh optimiser's would;
* scalar state (Adam's ``step``) is kept as it is: a parameter has one step count, so the
  new entries of a grown parameter share the old ones' count ``t``, and Adam's bias correction
  (``1 - β^t ≈ 1``) treats their zero moments as old. Under a steady gradient ``g`` a new
  entry's step after ``k`` updates is then ``lr (1 - β₁^k) / sqrt(1 - β₂^k)``: 3.2 ``lr`` at
  ``k = 1``, 6.5 ``lr`` at ``k = 10``, 3.2 ``lr`` at ``k = 100``, back near ``lr`` only after
  about a thousand steps (a fresh parameter's is ``lr`` throughout). ``new_second_moment="mean"``
  starts the new entries' second moment at the mean of the parameter's kept entries instead, so
  their steps have the size the parameter's old entries have;
* a parameter whose values were recomposed (the layer after a removed one, ``W_{k+1} W_k``)
  has no unit-wise correspondence: its state starts afresh (step 0), like a new parameter's;
* a removed parameter's state is dropped.

Moving the state instead of rebuilding the optimiser keeps the step sizes of the units that
learnt: a rebuilt Adam restarts every moment and bias correction. Which is better is measured,
not assumed (``docs/design/adaptive.md``): on ML-100K the differences are below 0.001 AUC.

:func:`reshape_stream_trainer` applies an
:class:`~leanrec.models.expandable.ArchitectureChange` to a
:class:`~leanrec.train.stream.StreamTrainer`'s model and moves its dense optimiser's state, so
the optimiser afterwards equals ``Adam(model.dense_parameters() + rest)`` built afresh with
the moved state loaded (its ``state_dict`` round-trips with a trainer built on the re-shaped
model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from leanrec.models.expandable import (
    AppliedChange,
    ArchitectureChange,
    ParameterChange,
    apply_change,
)
from leanrec.train.stream import StreamTrainer

__all__ = [
    "SECOND_MOMENT_KEYS",
    "NewEntries",
    "carry_tensor",
    "move_optimizer_state",
    "reshape_stream_trainer",
]

NewEntries = Literal["zero", "mean"]
"""How new units' second-moment state starts: ``"zero"`` (as a fresh optimiser's) or
``"mean"`` (the mean of the same parameter's carried entries; see the module docstring)."""

SECOND_MOMENT_KEYS = ("exp_avg_sq", "max_exp_avg_sq", "square_avg")
"""State keys of running second moments (Adam, AMSGrad, RMSprop) that ``"mean"`` fills."""


def carry_tensor(
    old: torch.Tensor,
    shape: Sequence[int],
    index: tuple[tuple[torch.Tensor, torch.Tensor] | None, ...],
    fill: NewEntries = "zero",
) -> torch.Tensor:
    """A tensor of ``shape`` holding the carried-over entries of ``old``; the other entries
    are 0 (``fill="zero"``) or the mean of the carried entries (``"mean"``).

    ``index[d]`` is None (dimension ``d`` carried over whole, same size) or
    ``(old_positions, new_positions)``; the entry at old positions ``(i_0, i_1, ...)`` goes to
    the matching new positions.
    """
    if len(index) != old.dim() or len(shape) != old.dim():
        raise ValueError(f"index of {len(index)} dims for a {old.dim()}-dim tensor")
    out = old.new_zeros(tuple(shape))
    old_ix: list[torch.Tensor] = []
    new_ix: list[torch.Tensor] = []
    for d, entry in enumerate(index):
        if entry is None:
            if old.shape[d] != shape[d]:
                raise ValueError(f"dimension {d} is carried whole but changes size")
            entry = (torch.arange(shape[d]), torch.arange(shape[d]))
        view = [1] * old.dim()
        view[d] = -1
        old_ix.append(entry[0].reshape(view))
        new_ix.append(entry[1].reshape(view))
    carried = old[tuple(old_ix)]
    if fill == "mean" and carried.numel():
        out.fill_(carried.mean())
    out[tuple(new_ix)] = carried
    return out


def move_optimizer_state(
    optimizer: torch.optim.Optimizer,
    changes: Sequence[ParameterChange],
    params: Sequence[nn.Parameter] | None = None,
    new_second_moment: NewEntries = "zero",
) -> None:
    """Make ``optimizer`` hold the parameters after ``changes`` with their moved state (see
    the module docstring).

    Args:
        optimizer: any ``torch.optim`` optimiser whose state tensors are shaped like their
            parameter or scalar (Adam, AdamW, Adagrad, RMSprop, SGD with momentum).
        changes: from the tower's operations, in the order they were made (a parameter
            changed twice is followed through both).
        params: the parameter list of the optimiser's single group afterwards, in the order a
            freshly built optimiser would hold them. None: replace each old parameter in
            place, drop the removed ones and append new ones to the last group.
        new_second_moment: ``"zero"``: every new entry's state starts at zero; ``"mean"``:
            new entries of the :data:`SECOND_MOMENT_KEYS` start at the mean of the same
            parameter's carried entries (first moments still start at zero).
    """
    state = optimizer.state
    replaced: dict[int, nn.Parameter] = {}
    removed: set[int] = set()
    added: list[nn.Parameter] = []
    for change in changes:
        old, new = change.old, change.new
        if old is None:
            assert new is not None
            added.append(new)
            continue
        moved = state.pop(old, None)
        if new is None:
            removed.add(id(old))
            added = [p for p in added if p is not old]
            continue
        if moved is not None and change.index is not None:
            state[new] = {
                key: carry_tensor(
                    value,
                    new.shape,
                    change.index,
                    new_second_moment if key in SECOND_MOMENT_KEYS else "zero",
                )
                if isinstance(value, torch.Tensor) and value.shape == old.shape and value.dim()
                else value
                for key, value in moved.items()
            }
        replaced[id(old)] = new
        added = [new if p is old else p for p in added]

    def follow(p: nn.Parameter) -> nn.Parameter:
        while id(p) in replaced:
            p = replaced[id(p)]
        return p

    if params is not None:
        if len(optimizer.param_groups) != 1:
            raise ValueError("params can be given for an optimiser with one group only")
        optimizer.param_groups[0]["params"] = list(params)
    else:
        for group in optimizer.param_groups:
            group["params"] = [follow(p) for p in group["params"] if id(p) not in removed]
        present = {id(p) for g in optimizer.param_groups for p in g["params"]}
        optimizer.param_groups[-1]["params"] += [p for p in added if id(p) not in present]
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for stale in [p for p in state if id(p) not in held]:
        del state[stale]


def reshape_stream_trainer(
    trainer: StreamTrainer,
    change: ArchitectureChange,
    generator: torch.Generator | None = None,
    new_second_moment: NewEntries = "zero",
) -> AppliedChange:
    """Apply ``change`` to the trainer's model (clamped, see
    :func:`~leanrec.models.expandable.apply_change`) and move its dense optimiser's state
    (``new_second_moment``: see :func:`move_optimizer_state`).

    The dense optimiser then holds ``model.dense_parameters()`` followed by the other
    parameters it held (the row path's table fallbacks), as a newly built trainer's would.
    """
    optimizer = trainer.dense_optimizer
    before = {id(p) for p in trainer.model.dense_parameters()}
    rest = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in before]
    applied = apply_change(trainer.model, change, generator)
    move_optimizer_state(
        optimizer,
        applied.parameter_changes,
        trainer.model.dense_parameters() + rest,
        new_second_moment,
    )
    return applied
