"""Row-wise sparse optimisers: update only the rows a mini-batch touched.

Two optimisers share the update rules of this module:

* :class:`RowWiseOptimizer` (a ``torch.optim.Optimizer``) is what the BPR, CTR and sequential
  trainers use with ``embedding_optimizer="sparse_adam"`` or ``"rowwise_adagrad"``: the tables'
  :meth:`~leanrec.embeddings.EmbeddingTable.row_parameters` receive sparse gradients (the rows
  a batch looked up) and are updated row by row; every other parameter keeps dense Adam, in
  the same optimiser, so learning-rate decay, schedules and checkpoints see one object;
* :class:`RowOptimizer` serves the stream tables (below).

Stream tables: :class:`RowOptimizer`.

A dense ``torch.optim`` optimiser over a stream table walks every row of ``weight``
``(capacity, d)`` at every step (Adagrad's ``sqrt`` over the whole table, Adam's moments), even
though a mini-batch of ``B`` events touches at most ``B`` rows per table. On ML-1M
(10k rows per table, batches of 64-256) that walk is most of a step's time. The optimisers here
take the summed gradient of the touched rows only and update them in place:

* the trainer gathers the rows of a batch once, ``leaf = weight[rows]`` (``rows``: the
  ``k`` distinct rows, shape ``(k,)``), lets autograd fill ``leaf.grad`` ``(k, d)``, and calls
  :meth:`RowOptimizer.step` with the rows and the gradient of the **summed** per-event loss
  (each event moves its rows as a one-event SGD learner such as river's would). A trainer
  whose backward ran on the mean loss of ``B`` events passes that gradient with
  ``scale=B``: the factor goes into the step's scalars, not into a ``(k, d)`` product;
* per-row state (one accumulator per row, or Adam's two moments per value) lives beside the
  table and follows its rows: the optimiser listens to the table's
  :class:`~leanrec.embeddings.growing.RowRelayout` (state moves with the rows) and
  :class:`~leanrec.embeddings.growing.RowReset` (a row given to a new ID starts afresh) events,
  like :class:`~leanrec.embeddings.growing.OptimizerRowSync` does for ``torch.optim``.

Update rules for one touched row ``w`` ``(d,)`` with summed gradient ``g`` ``(d,)``, step size
``η``:

* ``sgd``: ``w ← w − η g``;
* ``adagrad`` (row-wise, one accumulator per row as in TorchRec's row-wise Adagrad):
  ``s ← s + mean(g²)``, ``w ← w − η g / (√s + ε)``; its step shrinks forever;
* ``rmsprop`` (row-wise, decaying): ``s ← ρ s + (1 − ρ) mean(g²)``,
  ``w ← w − η g / (√s + ε)``; the step stays open to drift;
* ``adam`` (lazy, per value, a step count per row): ``t ← t + 1``, ``m ← β₁ m + (1 − β₁) g``,
  ``v ← ρ v + (1 − ρ) g²``, ``w ← w − η (m / (1 − β₁ᵗ)) / (√(v / (1 − ρᵗ)) + ε)``.

Everything is plain tensor arithmetic on the touched rows (no Python loop per row), so a step
costs ``O(k d)`` and is deterministic. At ``d = 16`` and ``k`` of a few hundred, a step costs
its number of tensor operations more than its arithmetic, so the rules are written with as
few as they need (gather the touched rows, update them in place, write them back).

Example:
    >>> table = GrowingEmbedding(4, 2, min_capacity=4)
    >>> rows = table.allocate(torch.arange(4))
    >>> optimizer = RowOptimizer(table, "sgd", learning_rate=0.5)
    >>> optimizer.step(torch.tensor([1]), torch.tensor([[2.0, -2.0]]))  # row 1 moves by (-1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
import torch
from torch import nn

from leanrec.embeddings.base import sparse_rows
from leanrec.embeddings.growing import RowEvent, RowRelayout, RowStorage
from leanrec.train import row_kernel

RowRule = Literal["sgd", "adagrad", "rmsprop", "adam"]
ROW_RULES: tuple[str, ...] = get_args(RowRule)

EmbeddingOptimizer = Literal["dense_adam", "sparse_adam", "lazy_adam", "rowwise_adagrad"]
"""How a trainer updates its embedding tables:

* ``"dense_adam"``: one ``torch.optim.Adam`` over every parameter; each step walks every row
  of every table (``O(N d)``), and rows the batch did not read still move on their momentum;
* ``"sparse_adam"``: Adam on the rows a batch read, each row catching up in closed form on
  the steps it skipped when it is read again (and at every epoch's end), so the weights follow
  dense Adam's trajectory (up to ``ε`` in the skipped steps) at ``O(k d)`` per step for ``k``
  rows read. With a dense gradient (a graph model propagating every row) it is Adam itself;
* ``"lazy_adam"``: Adam on the rows a batch read, skipped steps lost (as
  ``torch.optim.SparseAdam``, with a step count per row for the bias corrections): rows read
  rarely move less than under dense Adam;
* ``"rowwise_adagrad"``: TorchRec's row-wise Adagrad, one accumulator per row
  (``s ← s + mean(g²)``, ``w ← w − η g / (√s + ε)``); 4 bytes of state per row instead of
  Adam's ``8 d``, but a step size that only shrinks.
"""
EMBEDDING_OPTIMIZERS: tuple[str, ...] = get_args(EmbeddingOptimizer)

__all__ = [
    "EMBEDDING_OPTIMIZERS",
    "ROW_RULES",
    "EmbeddingOptimizer",
    "RowOptimizer",
    "RowRule",
    "RowWiseOptimizer",
    "check_resumed_embedding_optimizer",
    "checked_row_kernel",
    "kernel_matches_torch",
    "trainer_optimizer",
    "use_row_kernel",
]


class RowOptimizer:
    """One row-wise optimiser for the ``weight`` of one table (see the module docstring).

    Args:
        table: the table (its ``weight`` ``(capacity, d)`` Parameter and its row events).
        rule: ``"sgd"``, ``"adagrad"``, ``"rmsprop"`` or ``"adam"``.
        learning_rate: ``η``.
        decay: ``ρ``, the decay of RMSprop's accumulator and of Adam's second moment.
        momentum: ``β₁``, Adam's first-moment decay.
        eps: ``ε`` in the denominators.

    Attributes:
        state: per-row tensors with first dimension ``capacity``: ``sum`` ``(capacity,)``
            (adagrad, rmsprop), or ``exp_avg`` / ``exp_avg_sq`` ``(capacity, d)`` and ``step``
            ``(capacity,)`` (adam); empty for sgd.
    """

    def __init__(
        self,
        table: RowStorage,
        rule: RowRule = "sgd",
        learning_rate: float = 0.05,
        decay: float = 0.99,
        momentum: float = 0.9,
        eps: float = 1e-8,
    ) -> None:
        if rule not in ROW_RULES:
            raise ValueError(f"rule must be one of {ROW_RULES}, got {rule!r}")
        if learning_rate <= 0 or not 0.0 <= decay < 1.0 or not 0.0 <= momentum < 1.0:
            raise ValueError("need learning_rate > 0, 0 <= decay < 1 and 0 <= momentum < 1")
        self.table = table
        self.rule = rule
        self.learning_rate = learning_rate
        self.decay = decay
        self.momentum = momentum
        self.eps = eps
        self.state: dict[str, torch.Tensor] = {}
        self._ensure_state()
        table.add_listener(self)

    # ------------------------------------------------------------------ state
    def _shapes(self) -> dict[str, tuple[int, ...]]:
        capacity = self.table.capacity
        width = int(self.table.weight.shape[1])
        if self.rule in ("adagrad", "rmsprop"):
            return {"sum": (capacity,)}
        if self.rule == "adam":
            return {
                "exp_avg": (capacity, width),
                "exp_avg_sq": (capacity, width),
                "step": (capacity,),
            }
        return {}

    def _ensure_state(self) -> None:
        for key, shape in self._shapes().items():
            if key not in self.state:
                self.state[key] = torch.zeros(shape, device=self.table.weight.device)

    def __call__(self, event: RowEvent) -> None:
        """Follow the table's rows: move state on a relayout, zero it on a reset."""
        if isinstance(event, RowRelayout):
            self.state = {key: event.move(value) for key, value in self.state.items()}
        else:
            for value in self.state.values():
                value[event.rows] = 0

    def nbytes(self) -> int:
        """Bytes of the per-row state."""
        return sum(v.numel() * v.element_size() for v in self.state.values())

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "state": {k: v.clone() for k, v in self.state.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["rule"] != self.rule:
            raise ValueError(f"row optimiser state is {state['rule']!r}, not {self.rule!r}")
        self.state = {k: v.clone() for k, v in state["state"].items()}

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def step(self, rows: torch.Tensor, grad: torch.Tensor, scale: float = 1.0) -> None:
        """Update the touched rows in place, on the gradient ``scale * grad``.

        Args:
            rows: distinct rows of ``weight``, shape ``(k,)`` int64.
            grad: their gradients, shape ``(k, d)``: summed over the events, or the gradient
                of a mean over ``scale`` events (then ``scale * grad`` is the summed one).
            scale: the factor of ``grad``, applied to the step's scalars (``η``, the energy
                ``mean(g²)``, Adam's moments) rather than to a ``(k, d)`` product.
        """
        weight = self.table.weight.data
        lr = self.learning_rate * scale
        if self.rule == "sgd":
            weight.index_add_(0, rows, grad, alpha=-lr)
            return
        if self.rule in ("adagrad", "rmsprop"):
            accumulator = self.state["sum"]
            energy = grad.square().mean(dim=1)  # (k,), mean(g²) of the unscaled gradient
            total = accumulator.index_select(0, rows)
            if self.rule == "adagrad":
                total.add_(energy, alpha=scale * scale)
            else:
                total.mul_(self.decay).add_(energy, alpha=(1.0 - self.decay) * scale * scale)
            accumulator.index_copy_(0, rows, total)
            denominator = total.sqrt_().add_(self.eps)  # (k,), √s + ε
            moved = weight.index_select(0, rows).addcdiv_(grad, denominator[:, None], value=-lr)
            weight.index_copy_(0, rows, moved)
            return
        # adam, lazily per row: each row counts its own steps for the bias corrections
        if scale != 1.0:
            grad = grad * scale
        step = self.state["step"][rows] + 1.0  # (k,)
        self.state["step"][rows] = step
        m = self.state["exp_avg"][rows] * self.momentum + grad * (1.0 - self.momentum)
        v = self.state["exp_avg_sq"][rows] * self.decay + grad.pow(2) * (1.0 - self.decay)
        self.state["exp_avg"][rows] = m
        self.state["exp_avg_sq"][rows] = v
        m_hat = m / (1.0 - self.momentum**step)[:, None]
        v_hat = v / (1.0 - self.decay**step)[:, None]
        weight.index_add_(0, rows, m_hat / (v_hat.sqrt() + self.eps), alpha=-self.learning_rate)


# ---------------------------------------------------------------------------- trainers' optimiser
ParamGroup = dict[str, Any]


class _CaughtUp(NamedTuple):
    """Rows :meth:`RowWiseOptimizer.catch_up` brought up to the global step ``now``, held
    until the step takes them (or :meth:`RowWiseOptimizer._settle` writes them): their
    weights and moments, ``(k, d)`` each, not yet written to the table and the state."""

    rows: torch.Tensor
    """``(k,)`` distinct, sorted."""
    weight: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    now: int


ROW_WISE_RULES = ("sparse_adam", "lazy_adam", "rowwise_adagrad")
TAIL_PRECISION = 1e-18
"""Terms of the catch-up sums below this fraction of the first are dropped."""
DENSE_SHARE = 4
"""``sparse_adam`` steps every row at once (the same update: a row without gradient takes its
gradient-free Adam step) when a batch reads at least ``1 / DENSE_SHARE`` of a table's rows:
a few passes over a small table cost less than gathering and scattering most of it."""


class RowWiseOptimizer(torch.optim.Optimizer):
    """Row-wise updates of table rows plus dense Adam on everything else, as one optimiser.

    Each row parameter ``W`` (``(N, d)``, ``(N, 1)``, or ``(N,)`` seen as ``(N, 1)``) gets a
    sparse gradient from the batch's lookups: ``k`` distinct rows ``r`` ``(k,)`` and their
    summed gradients ``G`` ``(k, d)`` (a dense gradient, as from a graph model's propagation,
    counts as all ``N`` rows). Only rows in ``r`` are read and written by a step: every other
    row is bit-identical after it. With ``η`` the group's ``lr`` and ``λ`` its
    ``weight_decay`` (L2 added to the gradient of the rows read), the rules are:

    * ``"sparse_adam"``: Adam, caught up. Between two reads of a row, dense Adam would still
      move it at every step on its decaying moments (``m_{s+j} = β₁ʲ m_s``,
      ``v_{s+j} = β₂ʲ v_s``). Those ``k`` skipped steps are applied when the row is read again
      (or at :meth:`flush`), in closed form::

          w ← w − η m_s / √v_s · Σ_{j=1..k} ρʲ c(s + j),   ρ = β₁ / √β₂,
          c(i) = √(1 − β₂ⁱ) / (1 − β₁ⁱ),   m ← β₁ᵏ m,   v ← β₂ᵏ v,

      then the row takes the usual Adam step at the global step ``t`` with its gradient. The
      sum is ``A(s) − ρᵏ A(s + k)`` with ``A(i) = Σ_{j≥1} ρʲ c(i + j)``, a table over steps
      computed once (``O(1)`` per row). The result is dense Adam's trajectory up to ``ε``
      in the skipped steps (dropped there), to a learning rate that changed between the
      reads (the current one is used) and to ``λ`` (applied on reads only), at a cost of
      ``O(k d)`` per step. On float32 CPU tables the catch-up and step of the rows read run
      in a compiled kernel where one builds (:mod:`leanrec.train.row_kernel`; one loop per
      row instead of about ten torch passes, the same bits), else in torch;
    * ``"lazy_adam"``: Adam on the rows read only, each row counting its own steps for the
      bias corrections (``torch.optim.SparseAdam`` counts globally); skipped steps are lost,
      so rows read rarely move less than under dense Adam;
    * ``"rowwise_adagrad"``: ``s_n ← s_n + mean(g_n²)``, ``w_n ← w_n − η g_n / (√s_n + ε)``
      (TorchRec's row-wise Adagrad: 4 bytes of state per row).

    State (``self.state[W]``): ``exp_avg``, ``exp_avg_sq`` (shaped as ``W``) with ``step``
    (the global step, ``()`` float64) and ``last`` (each row's last step, ``(N,)``) for
    ``sparse_adam``, or ``step`` ``(N,)`` (each row's count) for ``lazy_adam``; ``sum``
    ``(N,)`` for Adagrad. Dense parameters are stepped by an inner ``torch.optim.Adam`` that
    shares this optimiser's ``state`` and group dicts, so :meth:`state_dict`,
    ``load_state_dict``, learning-rate decay and schedulers cover both.

    Args:
        row_groups: groups of row parameters (``params``, optional ``lr``, ``weight_decay``).
        dense_groups: groups of the other parameters, as ``torch.optim.Adam`` takes them.
        rule: ``"sparse_adam"``, ``"lazy_adam"`` or ``"rowwise_adagrad"``.
        lr: default ``η`` of every group.
        betas: ``(β₁, β₂)`` of both Adams (``sparse_adam`` needs ``β₁ < √β₂``).
        eps: ``ε``.
        fused: build the inner Adam fused (CPU: torch >= 2.4), as the sequential trainer does.
        dense_share: ``sparse_adam`` steps every row at once when a batch reads at least
            ``1 / dense_share`` of a table's rows (the same update, cheaper on small tables);
            None: always row by row.

    Example:
        >>> table = FullEmbedding(1000, 16)
        >>> optimizer = RowWiseOptimizer([{"params": [table.weight]}], [], "sparse_adam")
        >>> with sparse_gradients([table]):
        ...     table.lookup(torch.tensor([3, 7])).sum().backward()
        >>> optimizer.step()  # rows 3 and 7 move, the 998 others are not touched
    """

    def __init__(
        self,
        row_groups: Sequence[ParamGroup],
        dense_groups: Sequence[ParamGroup],
        rule: str = "sparse_adam",
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fused: bool = False,
        dense_share: int | None = DENSE_SHARE,
    ) -> None:
        if rule not in ROW_WISE_RULES:
            raise ValueError(f"rule must be one of {ROW_WISE_RULES}, got {rule!r}")
        if rule == "sparse_adam" and not betas[0] < math.sqrt(betas[1]):
            raise ValueError(f"sparse_adam needs beta1 < sqrt(beta2), got betas {betas}")
        self.rule = rule
        self.dense_share = dense_share
        self._tails: dict[tuple[float, float], torch.Tensor] = {}
        self._caught_up: dict[torch.Tensor, _CaughtUp] = {}
        self._workspaces: dict[torch.Tensor, torch.Tensor] = {}
        """Per row parameter: the compiled kernel's arrays for the rows it holds, ``(3, K,
        d)``, reused from step to step (a new 10 MB array per step costs its page faults)."""
        """Per row parameter: the rows :meth:`catch_up` brought up to date since the last
        step, whose moments are not yet written back."""
        dense = [dict(group) for group in dense_groups if list(group["params"])]
        self._dense: torch.optim.Adam | None = None
        if dense:
            self._dense = _adam(dense, lr=lr, betas=betas, eps=eps, fused=fused)
        rows = [
            {"weight_decay": 0.0, **group, "rowwise": True, "betas": betas, "eps": eps}
            for group in row_groups
            if list(group["params"])
        ]
        dense_dicts = self._dense.param_groups if self._dense is not None else []
        super().__init__(rows + dense_dicts, {"lr": lr, "rowwise": False})
        self._link_dense()

    def _link_dense(self) -> None:
        """Let the inner Adam see this optimiser's dense groups and state (after a load)."""
        self._group_of = {
            id(p): group for group in self.param_groups if group["rowwise"] for p in group["params"]
        }
        if self._dense is not None:
            self._dense.param_groups = [g for g in self.param_groups if not g["rowwise"]]
            self._dense.state = self.state

    def catch_up(self, parameter: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor | None:
        """``sparse_adam``: bring the rows ``index`` ``(B,)`` (repeats allowed) of
        ``parameter`` up to the last step before they are read, so the coming gradient is
        taken where dense Adam would take it. Tables call it through their
        :attr:`~leanrec.embeddings.EmbeddingTable.catch_up` (pass this method to
        :func:`~leanrec.embeddings.base.sparse_gradients`); a no-op for other rules.

        Returns the rows read, ``parameter[index]`` with ``parameter``'s sparse gradient
        (:func:`~leanrec.embeddings.base.sparse_rows`), gathered from the caught-up rows
        instead of the table (the same values), or None when none of them had anything to
        catch up (the table reads them itself). ``index`` None: every row of ``parameter``
        is about to be read as stored (a table's ``all()``): what is held is written first.

        The caught-up weights and moments of the distinct rows are held (:class:`_CaughtUp`)
        for the coming :meth:`step`, whose gradient names the same rows, so a step reads and
        writes each row's weights and moments once. A second read of rows already held (a
        graph model reads the batch's rows again for its L2 term) is served from them;
        anything that reads other pending rows, the state or the whole table first writes
        them back (:meth:`_settle`)."""
        if index is None:
            self._settle(parameter)
            return None
        read = self._caught_up_rows(parameter, index)
        return None if read is None else sparse_rows(parameter, read, index)

    @torch.no_grad()
    def _caught_up_rows(self, parameter: torch.Tensor, index: torch.Tensor) -> torch.Tensor | None:
        """:meth:`catch_up`'s work: the rows ``parameter[index]`` ``(B, w)`` caught up, or None
        when none of them had anything to catch up (then the table holds their values)."""
        state = self.state.get(parameter)
        group = self._group_of.get(id(parameter))
        if self.rule != "sparse_adam" or not state or group is None:
            return None
        now = int(state["step"])
        flat = index.reshape(-1)
        held = self._caught_up.get(parameter)
        if held is not None:  # a second read: served from the held rows if it names no other
            position = torch.searchsorted(held.rows, flat).clamp_(max=len(held.rows) - 1)
            if torch.equal(held.rows.index_select(0, position), flat):
                return _gather(held.weight, position)
        # a held row is either pending (its last step is written when it is settled) or
        # stored as held (nothing was pending), so None below never reads a stale row
        if not bool((state["last"].index_select(0, flat) < now).any()):
            return None
        self._settle(parameter)  # other rows before the step: the first read's go in first
        # distinct and sorted, as the coalesced gradient of the step will name them; a row
        # with nothing pending gets a zero move and unit decays, which leave it bit-identical
        rows, inverse = _distinct(flat)
        last = state["last"].index_select(0, rows)  # (k,)
        weight = parameter.data.view(parameter.shape[0], -1)
        tails = self._tail_table(group["betas"], now)
        skipped = now - last.double()  # (k,)
        kernel = _kernel_for(weight, state)
        if kernel is not None:  # the same values, one pass over each row
            workspace = self._workspaces.get(parameter)
            if workspace is None or workspace.shape[1] < len(rows):
                size = (3, len(rows) + len(rows) // 4, weight.shape[1])
                workspace = torch.empty(size, dtype=weight.dtype)
                self._workspaces[parameter] = workspace
            factors = _catch_up_factors(last.double(), skipped, tails, group, weight.dtype)
            read, exp_avg, exp_avg_sq = _kernel_catch_up(
                kernel, weight, state, rows, factors, workspace[:, : len(rows)]
            )
        else:
            read = _gather(weight, rows)
            exp_avg, exp_avg_sq = (
                _gather(state["exp_avg"], rows),
                _gather(state["exp_avg_sq"], rows),
            )
            _catch_up(state, rows, read, skipped, tails, group, (exp_avg, exp_avg_sq), last)
        self._caught_up[parameter] = _CaughtUp(rows, read, exp_avg, exp_avg_sq, now)
        return _gather(read, inverse)

    def _settle(self, parameter: torch.Tensor | None = None) -> None:
        """Write the rows :meth:`catch_up` holds for ``parameter`` (None: every parameter)
        into the table and the state: weights, moments and last steps."""
        for key in [parameter] if parameter is not None else list(self._caught_up):
            caught_up = self._caught_up.pop(key, None)
            if caught_up is None:
                continue
            state = self.state[key]
            _scatter(key.data.view(key.shape[0], -1), caught_up.rows, caught_up.weight)
            _scatter(state["exp_avg"], caught_up.rows, caught_up.exp_avg)
            _scatter(state["exp_avg_sq"], caught_up.rows, caught_up.exp_avg_sq)
            state["last"].index_fill_(0, caught_up.rows, float(caught_up.now))

    def state_dict(self) -> dict[str, Any]:
        self._settle()
        return super().state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._caught_up.clear()  # the loaded state replaces what a lookup caught up
        super().load_state_dict(state_dict)
        self._link_dense()

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """Update the rows each row parameter's gradient names, then the dense parameters.
        Rows a lookup caught up for a parameter without gradient are written as they are."""
        if closure is not None:
            raise ValueError("RowWiseOptimizer takes no closure")
        for group in self.param_groups:
            if not group["rowwise"]:
                continue
            for parameter in group["params"]:
                if parameter.grad is not None:
                    self._row_step(parameter, group)
        self._settle()
        if self._dense is not None:
            self._dense.step()

    @torch.no_grad()
    def flush(self) -> None:
        """``sparse_adam``: apply every row's pending skipped steps now, so the weights are
        dense Adam's at this step (trainers call it before validating; ``O(N d)``). Other
        rules keep no pending steps."""
        if self.rule != "sparse_adam":
            return
        self._settle()
        for group in self.param_groups:
            if not group["rowwise"]:
                continue
            for parameter in group["params"]:
                state = self.state.get(parameter)
                if not state:
                    continue
                weight = parameter.data.view(parameter.shape[0], -1)
                now = int(state["step"])
                skipped = now - state["last"].double()  # (N,)
                if bool((skipped > 0).any()):
                    tails = self._tail_table(group["betas"], now)
                    _catch_up(state, None, weight, skipped, tails, group)
                    state["last"].fill_(now)

    def _row_step(self, parameter: torch.Tensor, group: ParamGroup) -> None:
        weight = parameter.data.view(parameter.shape[0], -1)  # (N, d)
        grad = parameter.grad
        assert grad is not None
        if grad.is_sparse:
            grad = grad.coalesce()
            rows: torch.Tensor | None = grad.indices()[0]  # (k,) distinct, sorted
            values = grad.values().reshape(-1, weight.shape[1])  # (k, d)
            share = self.dense_share
            if self.rule == "sparse_adam" and share and len(values) * share >= len(weight):
                assert rows is not None
                values = torch.zeros_like(weight).index_copy_(0, rows, values)  # (N, d)
                rows = None
        else:
            rows, values = None, grad.reshape(weight.shape)  # every row: (N, d)
        state = self.state[parameter]
        if not state:
            state.update(self._fresh_state(weight))
        caught_up = self._caught_up.get(parameter)
        if caught_up is not None and (rows is None or not torch.equal(rows, caught_up.rows)):
            self._settle(parameter)  # read other rows than the gradient names: the slow way
            caught_up = None
        self._caught_up.pop(parameter, None)
        if caught_up is not None:
            assert rows is not None
            kernel = _kernel_for(weight, state)
            if kernel is not None:  # the held rows stepped and written in one pass
                now = int(state["step"]) + 1
                _kernel_adam_step(kernel, weight, state, caught_up, rows, values, group, now)
                state["step"].fill_(now)
                return
            read = caught_up.weight  # (k, d), the rows as the lookup read them
        else:
            read = _gather(weight, rows)  # (k, d), or every row in place
        if group["weight_decay"]:
            values = values.add(read, alpha=group["weight_decay"])
        if self.rule == "sparse_adam":
            now = int(state["step"]) + 1
            tails = self._tail_table(group["betas"], now)
            moments = None if caught_up is None else (caught_up.exp_avg, caught_up.exp_avg_sq)
            moved = _caught_up_adam_rows(state, rows, read, values, group, now, tails, moments)
        elif self.rule == "lazy_adam":
            moved = _lazy_adam_rows(state, rows, read, values, group)
        else:
            moved = _adagrad_rows(state, rows, read, values, group)
        _scatter(weight, rows, moved)

    def _fresh_state(self, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = weight.shape[0]
        if self.rule == "rowwise_adagrad":
            return {"sum": torch.zeros(rows, device=weight.device)}
        state = {"exp_avg": torch.zeros_like(weight), "exp_avg_sq": torch.zeros_like(weight)}
        if self.rule == "lazy_adam":
            return {"step": torch.zeros(rows, device=weight.device), **state}
        return {
            "step": torch.zeros((), dtype=torch.float64),
            # float32 like the weights (a load casts state to the parameter's dtype): exact
            # step numbers up to 2^24
            "last": torch.zeros(rows, device=weight.device),
            **state,
        }

    def _tail_table(self, betas: tuple[float, float], upto: int) -> torch.Tensor:
        """``A(i)`` for ``i = 0 .. upto`` at least (float64), grown by doubling."""
        key = (float(betas[0]), float(betas[1]))
        table = self._tails.get(key)
        if table is None or len(table) <= upto:
            size = max(1024, 2 * (upto + 1))
            start = 0 if table is None else len(table)
            grown = _tail_sums(key[0], key[1], start, size)
            table = grown if table is None else torch.cat([table, grown])
            self._tails[key] = table
        return table


def _tail_sums(beta1: float, beta2: float, start: int, stop: int) -> torch.Tensor:
    """``A(i) = Σ_{j=1..J} ρʲ c(i + j)`` for ``i`` in ``[start, stop)``, float64 ``(stop −
    start,)``, with ``J`` where ``ρᴶ`` falls below :data:`TAIL_PRECISION`."""
    ratio = beta1 / math.sqrt(beta2)
    if ratio == 0.0:
        return torch.zeros(stop - start, dtype=torch.float64)
    terms = max(1, math.ceil(math.log(TAIL_PRECISION) / math.log(ratio)))
    offsets = torch.arange(1, terms + 1, dtype=torch.float64)  # (J,)
    weights = torch.pow(ratio, offsets)  # (J,)
    chunks = []
    for first in range(start, stop, 1024):
        steps = torch.arange(first, min(stop, first + 1024), dtype=torch.float64)[:, None]
        steps = steps + offsets[None, :]  # (chunk, J): i + j
        corrections = torch.sqrt(1.0 - torch.pow(beta2, steps)) / (1.0 - torch.pow(beta1, steps))
        chunks.append(corrections @ weights)
    return torch.cat(chunks)


def _wide(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` ``(n, d)`` float32 seen as ``(n, d / 4)`` 16-byte elements, for copying
    rows (torch's CPU ``index_copy_`` moves one element at a time: a quarter of the moves for
    the same bytes and bits, half the time at 600k rows), or ``tensor`` itself where its
    layout does not allow it."""
    if (
        tensor.dim() == 2
        and tensor.dtype == torch.float32
        and tensor.shape[1] % 4 == 0
        and tensor.is_contiguous()
    ):
        try:
            return tensor.view(torch.complex128)
        except RuntimeError:  # a storage offset that is no multiple of 16 bytes
            pass
    return tensor


def _distinct(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(index, return_inverse=True)`` of a 1-d int64 ``index`` ``(B,)``: the
    sorted distinct values ``(k,)`` and each entry's position among them ``(B,)``. On the CPU
    through NumPy, whose sort of 16k IDs takes a third of torch's time (the same result)."""
    if index.device.type != "cpu":
        return torch.unique(index, return_inverse=True)
    values, inverse = np.unique(index.numpy(), return_inverse=True)
    return torch.from_numpy(values), torch.from_numpy(inverse.reshape(-1).astype(np.int64))


def _whole_rows(tensor: torch.Tensor) -> np.ndarray | None:
    """``tensor`` ``(n, d)`` as a NumPy array of ``n`` elements of one row's bytes each (the
    same memory), so that copying ``k`` rows is ``k`` copies of ``d`` values' bytes, or None
    where it cannot be seen so (not a contiguous 2-d CPU tensor of a NumPy dtype)."""
    if tensor.device.type != "cpu" or tensor.dim() != 2 or not tensor.is_contiguous():
        return None
    try:
        array = tensor.detach().numpy()
    except (RuntimeError, TypeError):  # a dtype NumPy lacks (bfloat16)
        return None
    return array.view(np.dtype((np.void, array.shape[1] * array.itemsize))).reshape(-1)


def _gather(tensor: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """``tensor[rows]`` (``rows`` ``(k,)``, a new tensor), every row (``tensor`` itself)
    when None.

    A CPU table's rows are copied whole by NumPy (``np.take`` of one element per row):
    torch's CPU ``index_select`` and ``index_copy_`` move one element at a time (16 bytes at
    best, through :func:`_wide`); whole rows take two thirds of their time on 8k-13k rows of
    200k-400k-row tables, the same bytes."""
    if rows is None:
        return tensor
    whole = _whole_rows(tensor)
    if whole is not None and rows.device.type == "cpu":
        taken = np.take(whole, rows.numpy())  # (k,) rows of bytes
        return torch.from_numpy(taken.view(tensor.detach().numpy().dtype)).view(
            len(rows), tensor.shape[1]
        )
    wide = _wide(tensor)
    if wide is tensor:
        return tensor.index_select(0, rows)
    return wide.index_select(0, rows).view(tensor.dtype)


def _scatter(tensor: torch.Tensor, rows: torch.Tensor | None, values: torch.Tensor) -> None:
    """``tensor[rows] = values`` (``rows`` distinct; nothing when ``rows`` is None:
    ``values`` were updated in place). Whole rows through NumPy where both allow it, as
    :func:`_gather`."""
    if rows is None:
        return
    whole, whole_values = _whole_rows(tensor), _whole_rows(values)
    if (
        whole is not None
        and whole_values is not None
        and whole.dtype == whole_values.dtype
        and values.dtype == tensor.dtype
        and rows.device.type == "cpu"
    ):
        whole[rows.numpy()] = whole_values
        return
    wide, wide_values = _wide(tensor), _wide(values)
    if wide is tensor or wide_values is values:
        tensor.index_copy_(0, rows, values)
    else:
        wide.index_copy_(0, rows, wide_values)


SMALLEST_NORMAL = torch.finfo(torch.float32).tiny
"""``2⁻¹²⁶``: float32's smallest normal number."""


def _root(exp_avg_sq: torch.Tensor) -> torch.Tensor:
    """The catch-up's denominator ``√v + 10⁻³⁰`` of the second moments ``v`` ``(k, d)`` (a
    new tensor; the ``10⁻³⁰`` makes ``0 / 0 = 0`` for values that never had a gradient), in
    one or two passes instead of two or (on zeros) ten times one.

    Where every ``v ≥ 2⁻¹²⁶`` (float32's smallest normal number), ``√v ≥ 2⁻⁶³`` and adding
    ``10⁻³⁰`` (under half a unit in the last place of ``2⁻⁶³``) leaves it as it is: the root
    alone is bit for bit the sum. Where some ``v`` is below (zeros: rows never stepped),
    torch's CPU ``sqrt`` takes 4-10x its usual time, and rows never stepped are most of the
    rows a batch reads in a first epoch at 20M interactions: the root is taken of
    ``max(v, 2⁻¹²⁶)``. Those values have ``m = 0`` (the row never had a gradient, or its
    moments decayed over skipped steps, ``m`` as ``β₁ˢ`` and ``v`` as ``β₂ˢ``: ``0.9ˢ``
    against ``0.999ˢ``, ``m`` reaches 0 long before ``v`` falls below ``2⁻¹²⁶``), so
    ``m / root`` is ``±0`` with either root, of the same sign, and the catch-up is bit for
    bit the same. It would differ where ``m ≠ 0`` and ``v < 2⁻¹²⁶`` together: gradient
    values below about ``10⁻¹⁹``, or ``β₁`` close to ``β₂``."""
    if exp_avg_sq.numel() == 0 or float(exp_avg_sq.amin()) >= SMALLEST_NORMAL:
        return exp_avg_sq.sqrt()
    return exp_avg_sq.clamp_min(SMALLEST_NORMAL).sqrt_()


def _catch_up(
    state: dict[str, torch.Tensor],
    rows: torch.Tensor | None,
    weight: torch.Tensor,
    skipped: torch.Tensor,
    tails: torch.Tensor,
    group: ParamGroup,
    moments: tuple[torch.Tensor, torch.Tensor] | None = None,
    last: torch.Tensor | None = None,
) -> None:
    """Apply ``skipped`` ``(k,)`` gradient-free Adam steps to ``weight`` ``(k, d)`` (the rows
    ``rows``, every row when None) and decay their moments (in place; ``moments`` are the
    gathered ``(m, v)`` of the rows, else the state's own tensors are used; ``last`` the
    gathered last steps ``(k,)``, else gathered here)."""
    exp_avg, exp_avg_sq = (
        moments if moments is not None else (state["exp_avg"], state["exp_avg_sq"])
    )
    last = (last if last is not None else _gather(state["last"], rows)).double()  # (k,)
    move, decay1, decay2 = _catch_up_factors(last, skipped, tails, group, weight.dtype)
    root = _root(exp_avg_sq)  # (k, d): √v + 1e-30, 0 / 0 = 0 where v never had a gradient
    weight.addcdiv_(exp_avg * move[:, None], root)
    exp_avg.mul_(decay1[:, None])
    exp_avg_sq.mul_(decay2[:, None])


def _catch_up_factors(
    last: torch.Tensor,
    skipped: torch.Tensor,
    tails: torch.Tensor,
    group: ParamGroup,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's factors of the catch-up of ``skipped`` ``(k,)`` steps after its last step
    ``last`` ``(k,)`` (both float64), rounded to ``dtype``: the move ``−η (A(s) − ρᵏ A(s +
    k))`` that multiplies ``m / √v``, and the decays ``β₁ᵏ`` and ``β₂ᵏ`` of the moments,
    ``(k,)`` each. Computed by torch in float64 for both the torch path and the compiled
    kernel (:mod:`leanrec.train.row_kernel`), so the two share their roundings."""
    beta1, beta2 = group["betas"]
    ratio = beta1 / math.sqrt(beta2)
    index = last.long()
    total = tails[index] - torch.pow(ratio, skipped) * tails[index + skipped.long()]  # (k,)
    return (
        (total * -group["lr"]).to(dtype),
        torch.pow(beta1, skipped).to(dtype),
        torch.pow(beta2, skipped).to(dtype),
    )


# ---------------------------------------------------------------------------- compiled row kernel
_KERNEL: dict[str, row_kernel.RowKernel | None] = {}
"""The kernel once loaded and checked against the torch path (``"kernel"``), or None."""
_KERNEL_ENABLED = [True]


def use_row_kernel(enabled: bool) -> None:
    """Let ``sparse_adam`` use the compiled row kernel (:mod:`leanrec.train.row_kernel`) where
    it loads, or always run its torch code (the same results; for tests and timings)."""
    _KERNEL_ENABLED[0] = enabled


def checked_row_kernel() -> row_kernel.RowKernel | None:
    """:func:`leanrec.train.row_kernel.load`, checked once against the torch path on random
    rows (:func:`kernel_matches_torch`); None where it does not load or differs."""
    if "kernel" not in _KERNEL:
        kernel = row_kernel.load()
        if kernel is not None:
            for square_root in row_kernel.torch_square_roots():
                kernel.use_square_root(square_root)
                if kernel_matches_torch(kernel):
                    break
            else:
                row_kernel.LOG.warning(
                    "row kernel differs from torch here: sparse_adam runs its torch code"
                )
                kernel = None
        _KERNEL["kernel"] = kernel
    return _KERNEL["kernel"]


def kernel_matches_torch(
    kernel: row_kernel.RowKernel, widths: Sequence[int] = (64, 17, 1), seed: int = 0
) -> bool:
    """Whether ``kernel`` catches up and steps random rows bit for bit as the torch path does
    (:func:`_catch_up` then :func:`_caught_up_adam_rows`, with and without weight decay), on
    tables of each width in ``widths`` whose rows hold zeros (never stepped), small and large
    moments, and last steps from 0 to the step before."""
    generator = torch.Generator().manual_seed(seed)
    now, betas = 40, (0.9, 0.999)
    tails = _tail_sums(betas[0], betas[1], 0, 4 * now)
    for width in widths:
        size, count = 300, 97
        weight = torch.randn(size, width, generator=generator)
        exp_avg = torch.randn(size, width, generator=generator) * 1e-2
        exp_avg_sq = torch.rand(size, width, generator=generator).pow_(4) * 1e-3
        exp_avg[: size // 4], exp_avg_sq[: size // 4] = 0.0, 0.0  # rows never stepped
        last = torch.randint(0, now, (size,), generator=generator).float()
        last[: size // 4] = 0.0
        rows = torch.randperm(size, generator=generator)[:count].sort().values
        grad = torch.randn(count, width, generator=generator) * 1e-1
        for decay in (0.0, 1e-2):
            group = {"lr": 3e-3, "betas": betas, "eps": 1e-8, "weight_decay": decay}
            results = []
            for use_kernel in (False, True):
                table = weight.clone()
                state = {
                    "exp_avg": exp_avg.clone(),
                    "exp_avg_sq": exp_avg_sq.clone(),
                    "last": last.clone(),
                    "step": torch.tensor(float(now - 1), dtype=torch.float64),
                }
                last_read = state["last"].index_select(0, rows)
                skipped = (now - 1) - last_read.double()
                if use_kernel:
                    factors = _catch_up_factors(
                        last_read.double(), skipped, tails, group, torch.float32
                    )
                    read, m, v = _kernel_catch_up(kernel, table, state, rows, factors)
                    caught = [read.clone(), m.clone(), v.clone()]
                    held = _CaughtUp(rows, read, m, v, now - 1)
                    _kernel_adam_step(kernel, table, state, held, rows, grad, group, now)
                else:
                    read = _gather(table, rows)
                    m, v = _gather(state["exp_avg"], rows), _gather(state["exp_avg_sq"], rows)
                    _catch_up(state, rows, read, skipped, tails, group, (m, v), last_read)
                    caught = [read.clone(), m.clone(), v.clone()]
                    values = grad.add(read, alpha=decay) if decay else grad
                    moved = _caught_up_adam_rows(
                        state, rows, read, values, group, now, tails, (m, v)
                    )
                    _scatter(table, rows, moved)
                results.append(
                    [*caught, table, state["exp_avg"], state["exp_avg_sq"], state["last"]]
                )
            for torch_array, kernel_array in zip(*results, strict=True):
                if not torch.equal(torch_array.view(torch.int32), kernel_array.view(torch.int32)):
                    return False
    return True


def _kernel_for(
    weight: torch.Tensor, state: dict[str, torch.Tensor]
) -> row_kernel.RowKernel | None:
    """The kernel if it may step ``weight`` ``(N, d)`` and its ``sparse_adam`` ``state``:
    float32, contiguous, on the CPU (what the kernel's loops address); else None."""
    if not _KERNEL_ENABLED[0]:
        return None
    arrays = (weight, state["exp_avg"], state["exp_avg_sq"])
    if not all(
        a.device.type == "cpu" and a.dtype == torch.float32 and a.is_contiguous() for a in arrays
    ) or not all(a.shape == weight.shape for a in arrays[1:]):
        return None
    last = state["last"]
    if last.dtype != torch.float32 or not last.is_contiguous() or len(last) != len(weight):
        return None
    return checked_row_kernel()


def _kernel_catch_up(
    kernel: row_kernel.RowKernel,
    weight: torch.Tensor,
    state: dict[str, torch.Tensor],
    rows: torch.Tensor,
    factors: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows ``rows`` ``(k,)`` of ``weight`` and of both moments, caught up by the kernel
    with :func:`_catch_up_factors`' ``factors``: ``(k, d)`` arrays, as :func:`_gather` and
    :func:`_catch_up` give them, written into ``out`` ``(3, k, d)`` (contiguous) or new."""
    rows = rows.contiguous()
    move, decay1, decay2 = (f.contiguous() for f in factors)
    if out is None:
        out = torch.empty((3, len(rows), weight.shape[1]), dtype=weight.dtype)
    kernel.catch_up_rows(
        weight.data_ptr(),
        state["exp_avg"].data_ptr(),
        state["exp_avg_sq"].data_ptr(),
        rows.data_ptr(),
        len(rows),
        weight.shape[1],
        move.data_ptr(),
        decay1.data_ptr(),
        decay2.data_ptr(),
        out[0].data_ptr(),
        out[1].data_ptr(),
        out[2].data_ptr(),
        kernel.vector_sqrt,
        kernel.sqrt_mode,
        kernel.set_threads,
    )
    return out[0], out[1], out[2]


def _kernel_adam_step(
    kernel: row_kernel.RowKernel,
    weight: torch.Tensor,
    state: dict[str, torch.Tensor],
    held: _CaughtUp,
    rows: torch.Tensor,
    grad: torch.Tensor,
    group: ParamGroup,
    now: int,
) -> None:
    """``sparse_adam``'s step at global step ``now`` of the held rows ``held`` (the rows
    ``rows`` ``(k,)``, caught up to ``now - 1``) with ``grad`` ``(k, d)`` (weight decay not
    yet added), written by the kernel into ``weight``, the moments and the last steps: what
    :func:`_caught_up_adam_rows` and the scatter of the moved rows do, bit for bit."""
    beta1, beta2 = group["betas"]
    rows, grad = rows.contiguous(), grad.contiguous()
    held_arrays = [a.contiguous() for a in (held.weight, held.exp_avg, held.exp_avg_sq)]
    kernel.adam_step_rows(
        weight.data_ptr(),
        state["exp_avg"].data_ptr(),
        state["exp_avg_sq"].data_ptr(),
        state["last"].data_ptr(),
        rows.data_ptr(),
        len(rows),
        weight.shape[1],
        *(a.data_ptr() for a in held_arrays),
        grad.data_ptr(),
        1 if group["weight_decay"] else 0,
        float(group["weight_decay"]),
        beta1,
        1.0 - beta1,
        beta2,
        1.0 - beta2,
        math.sqrt(1.0 - beta2**now),
        group["eps"],
        -group["lr"] / (1.0 - beta1**now),
        float(now),
        kernel.vector_sqrt,
        kernel.sqrt_mode,
        kernel.set_threads,
    )


def _caught_up_adam_rows(
    state: dict[str, torch.Tensor],
    rows: torch.Tensor | None,
    weight: torch.Tensor,
    grad: torch.Tensor,
    group: ParamGroup,
    now: int,
    tails: torch.Tensor,
    moments: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``sparse_adam`` at global step ``now`` on ``weight`` ``(k, d)`` (the rows read; in
    place when ``rows`` is None) with ``grad`` ``(k, d)``; returns the moved rows.
    ``moments``: the rows' ``(m, v)`` already caught up to step ``now - 1`` (by
    :meth:`RowWiseOptimizer.catch_up`), else gathered and caught up here."""
    beta1, beta2 = group["betas"]
    if moments is not None:
        exp_avg, exp_avg_sq = moments
    else:
        exp_avg = _gather(state["exp_avg"], rows)
        exp_avg_sq = _gather(state["exp_avg_sq"], rows)
        skipped = (now - 1) - _gather(state["last"], rows).double()  # (k,) since the row's last
        if bool((skipped > 0).any()):
            _catch_up(state, rows, weight, skipped, tails, group, (exp_avg, exp_avg_sq))
    exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    denominator = (exp_avg_sq.sqrt() / math.sqrt(1.0 - beta2**now)).add_(group["eps"])
    weight.addcdiv_(exp_avg, denominator, value=-group["lr"] / (1.0 - beta1**now))
    _scatter(state["exp_avg"], rows, exp_avg)
    _scatter(state["exp_avg_sq"], rows, exp_avg_sq)
    if rows is None:
        state["last"].fill_(now)
    else:
        state["last"].index_fill_(0, rows, float(now))
    state["step"].fill_(now)
    return weight


def _lazy_adam_rows(
    state: dict[str, torch.Tensor],
    rows: torch.Tensor | None,
    weight: torch.Tensor,
    grad: torch.Tensor,
    group: ParamGroup,
) -> torch.Tensor:
    """Lazy Adam on ``weight`` ``(k, d)`` (the rows read, in place when ``rows`` is None:
    every row) with ``grad`` ``(k, d)``; returns the moved rows."""
    beta1, beta2 = group["betas"]
    step = _gather(state["step"], rows).add_(1.0)  # (k,)
    exp_avg = _gather(state["exp_avg"], rows).mul_(beta1).add_(grad, alpha=1.0 - beta1)
    exp_avg_sq = _gather(state["exp_avg_sq"], rows).mul_(beta2)
    exp_avg_sq.addcmul_(grad, grad, value=1.0 - beta2)
    _scatter(state["step"], rows, step)
    _scatter(state["exp_avg"], rows, exp_avg)
    _scatter(state["exp_avg_sq"], rows, exp_avg_sq)
    # bias corrections in float64: 1 - 0.999 in float32 is off by 6e-5 of itself
    count = step.to(torch.float64)
    correction1 = 1.0 - torch.pow(beta1, count)  # (k,)
    root_correction2 = (1.0 - torch.pow(beta2, count)).sqrt_().to(weight.dtype)  # (k,)
    denominator = (exp_avg_sq.sqrt() / root_correction2[:, None]).add_(group["eps"])
    step_size = (group["lr"] / correction1).to(weight.dtype)[:, None]  # (k, 1)
    return weight.addcdiv_(exp_avg * step_size, denominator, value=-1.0)


def _adagrad_rows(
    state: dict[str, torch.Tensor],
    rows: torch.Tensor | None,
    weight: torch.Tensor,
    grad: torch.Tensor,
    group: ParamGroup,
) -> torch.Tensor:
    """Row-wise Adagrad on ``weight`` ``(k, d)`` with ``grad`` ``(k, d)`` (see
    :class:`RowWiseOptimizer`); returns the moved rows."""
    total = _gather(state["sum"], rows).add_(grad.square().mean(dim=1))  # (k,)
    _scatter(state["sum"], rows, total)
    denominator = total.sqrt().add_(group["eps"])[:, None]  # (k, 1)
    return weight.addcdiv_(grad, denominator, value=-group["lr"])


def flush_rows(optimizer: torch.optim.Optimizer) -> None:
    """:meth:`RowWiseOptimizer.flush` when ``optimizer`` is one (trainers call it at the end
    of every epoch, before validating); nothing otherwise."""
    if isinstance(optimizer, RowWiseOptimizer):
        optimizer.flush()


def _adam(groups: list[ParamGroup], fused: bool = False, **options: Any) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``groups``, fused when asked and supported."""
    if fused:
        try:
            return torch.optim.Adam(groups, fused=True, **options)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(groups, **options)


def trainer_optimizer(
    embedding_optimizer: str,
    groups: Sequence[ParamGroup],
    row_parameters: Iterable[nn.Parameter],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    embedding_learning_rate: float | None = None,
    fused: bool = False,
) -> torch.optim.Optimizer:
    """The optimiser of a trainer's parameter ``groups`` (dicts of ``params`` and options).

    ``"dense_adam"``: ``torch.optim.Adam(groups)`` exactly as the trainers always built it.
    Otherwise each group is split into its parameters in ``row_parameters`` (the tables'
    :meth:`~leanrec.embeddings.EmbeddingTable.row_parameters`), updated by the row-wise rule
    with the group's options and ``lr = embedding_learning_rate`` (None: ``lr``), and the rest
    (dense Adam, the group's options), in one :class:`RowWiseOptimizer`.
    """
    if embedding_optimizer not in EMBEDDING_OPTIMIZERS:
        raise ValueError(
            f"embedding_optimizer must be one of {EMBEDDING_OPTIMIZERS}, got "
            f"{embedding_optimizer!r}"
        )
    if embedding_optimizer == "dense_adam":
        return _adam([dict(g) for g in groups], lr=lr, betas=betas, eps=eps, fused=fused)
    row_ids = {id(p) for p in row_parameters}
    row_groups: list[ParamGroup] = []
    dense_groups: list[ParamGroup] = []
    for group in groups:
        params = list(group["params"])
        options = {key: value for key, value in group.items() if key != "params"}
        row_groups.append({**options, "params": [p for p in params if id(p) in row_ids]})
        if embedding_learning_rate is not None:
            row_groups[-1]["lr"] = embedding_learning_rate
        dense_groups.append({**options, "params": [p for p in params if id(p) not in row_ids]})
    return RowWiseOptimizer(
        row_groups, dense_groups, embedding_optimizer, lr=lr, betas=betas, eps=eps, fused=fused
    )


def check_resumed_embedding_optimizer(state: dict[str, Any], embedding_optimizer: str) -> None:
    """Refuse to resume a checkpoint ``state`` trained with another embedding optimiser.

    The optimisers keep different state (lazy Adam's per-row step counts, row-wise Adagrad's
    one accumulator per row), so loading one into another would silently restart or corrupt
    it. A checkpoint written before the option existed was trained with ``"dense_adam"``.
    """
    saved = state.get("config", {}).get("embedding_optimizer", "dense_adam")
    if saved != embedding_optimizer:
        raise ValueError(
            f"the checkpoint was trained with embedding_optimizer {saved!r}, this run has "
            f"{embedding_optimizer!r}: resume with the same setting"
        )
