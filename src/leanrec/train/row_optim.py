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

from collections.abc import Iterable, Sequence
from typing import Any, Literal, get_args

import torch
from torch import nn

from leanrec.embeddings.growing import RowEvent, RowRelayout, RowStorage

RowRule = Literal["sgd", "adagrad", "rmsprop", "adam"]
ROW_RULES: tuple[str, ...] = get_args(RowRule)

EmbeddingOptimizer = Literal["dense_adam", "sparse_adam", "rowwise_adagrad"]
"""How a trainer updates its embedding tables:

* ``"dense_adam"``: one ``torch.optim.Adam`` over every parameter; each step walks every row
  of every table (``O(N d)``), and rows the batch did not read still move on their momentum;
* ``"sparse_adam"``: Adam on the rows a batch read only ("lazy" Adam, as ``torch.optim.SparseAdam``
  but with a step count per row for the bias corrections, so a row's first update has the same
  size whenever it comes); a step costs ``O(k d)`` for ``k`` rows read. With a dense gradient
  (a graph model propagating every row) every row steps at once, which is Adam itself;
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
    "trainer_optimizer",
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


class RowWiseOptimizer(torch.optim.Optimizer):
    """Row-wise updates of table rows plus dense Adam on everything else, as one optimiser.

    Each row parameter ``W`` (``(N, d)``, ``(N, 1)``, or ``(N,)`` seen as ``(N, 1)``) gets a
    sparse gradient from the batch's lookups: ``k`` distinct rows ``r`` ``(k,)`` and their
    summed gradients ``G`` ``(k, d)`` (a dense gradient, as from a graph model's propagation,
    counts as all ``N`` rows). With ``η`` the group's ``lr`` and ``λ`` its ``weight_decay``
    (L2 added to the gradient, on the rows read only), for every row ``n`` in ``r``:

    * ``"sparse_adam"``: ``t_n ← t_n + 1``, ``m_n ← β₁ m_n + (1 − β₁) g_n``,
      ``v_n ← β₂ v_n + (1 − β₂) g_n²``,
      ``w_n ← w_n − η (m_n / (1 − β₁^{t_n})) / (√(v_n / (1 − β₂^{t_n})) + ε)``;
    * ``"rowwise_adagrad"``: ``s_n ← s_n + mean(g_n²)``, ``w_n ← w_n − η g_n / (√s_n + ε)``.

    A row not in ``r`` is not read or written: it is bit-identical after the step. State
    (``self.state[W]``): ``step`` ``(N,)``, ``exp_avg`` and ``exp_avg_sq`` (shaped as ``W``)
    for Adam; ``sum`` ``(N,)`` for Adagrad. Dense parameters are stepped by an inner
    ``torch.optim.Adam`` that shares this optimiser's ``state`` and group dicts, so
    :meth:`state_dict`, ``load_state_dict``, learning-rate decay and schedulers cover both.

    Args:
        row_groups: groups of row parameters (``params``, optional ``lr``, ``weight_decay``).
        dense_groups: groups of the other parameters, as ``torch.optim.Adam`` takes them.
        rule: ``"sparse_adam"`` or ``"rowwise_adagrad"``.
        lr: default ``η`` of every group.
        betas: ``(β₁, β₂)`` of both Adams.
        eps: ``ε``.
        fused: build the inner Adam fused (CPU: torch >= 2.4), as the sequential trainer does.

    Example:
        >>> table = FullEmbedding(1000, 16)
        >>> optimizer = RowWiseOptimizer([{"params": [table.weight]}], [], "sparse_adam")
        >>> with sparse_gradients([table]):
        ...     table.lookup(torch.tensor([3, 7])).sum().backward()
        >>> optimizer.step()  # rows 3 and 7 move, the 998 others are untouched
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
    ) -> None:
        if rule not in ("sparse_adam", "rowwise_adagrad"):
            raise ValueError(f"rule must be 'sparse_adam' or 'rowwise_adagrad', got {rule!r}")
        self.rule = rule
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
        if self._dense is not None:
            self._dense.param_groups = [g for g in self.param_groups if not g["rowwise"]]
            self._dense.state = self.state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._link_dense()

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """Update the rows each row parameter's gradient names, then the dense parameters."""
        if closure is not None:
            raise ValueError("RowWiseOptimizer takes no closure")
        for group in self.param_groups:
            if not group["rowwise"]:
                continue
            for parameter in group["params"]:
                if parameter.grad is not None:
                    self._row_step(parameter, group)
        if self._dense is not None:
            self._dense.step()

    def _row_step(self, parameter: torch.Tensor, group: ParamGroup) -> None:
        weight = parameter.data.view(parameter.shape[0], -1)  # (N, d)
        grad = parameter.grad
        assert grad is not None
        if grad.is_sparse:
            grad = grad.coalesce()
            rows: torch.Tensor | None = grad.indices()[0]  # (k,) distinct, sorted
            values = grad.values().reshape(-1, weight.shape[1])  # (k, d)
        else:
            rows, values = None, grad.reshape(weight.shape)  # every row: (N, d)
        state = self.state[parameter]
        if not state:
            state.update(self._fresh_state(weight))
        read = weight if rows is None else weight.index_select(0, rows)  # (k, d)
        if group["weight_decay"]:
            values = values.add(read, alpha=group["weight_decay"])
        if self.rule == "sparse_adam":
            moved = _adam_rows(state, rows, read, values, group)
        else:
            moved = _adagrad_rows(state, rows, read, values, group)
        if rows is not None:
            weight.index_copy_(0, rows, moved)

    def _fresh_state(self, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = weight.shape[0]
        if self.rule == "rowwise_adagrad":
            return {"sum": torch.zeros(rows, device=weight.device)}
        return {
            "step": torch.zeros(rows, device=weight.device),
            "exp_avg": torch.zeros_like(weight),
            "exp_avg_sq": torch.zeros_like(weight),
        }


def _gather(tensor: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    return tensor if rows is None else tensor.index_select(0, rows)


def _scatter(tensor: torch.Tensor, rows: torch.Tensor | None, values: torch.Tensor) -> None:
    if rows is not None:
        tensor.index_copy_(0, rows, values)


def _adam_rows(
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
    correction1 = 1.0 - torch.pow(beta1, step)  # (k,)
    root_correction2 = (1.0 - torch.pow(beta2, step)).sqrt_()  # (k,)
    denominator = (exp_avg_sq.sqrt() / root_correction2[:, None]).add_(group["eps"])
    step_size = (group["lr"] / correction1)[:, None]  # (k, 1)
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
