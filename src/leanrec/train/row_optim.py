"""Row-wise sparse optimisers for stream tables: update only the rows a mini-batch touched.

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

from typing import Any, Literal, get_args

import torch

from leanrec.embeddings.growing import RowEvent, RowRelayout, RowStorage

RowRule = Literal["sgd", "adagrad", "rmsprop", "adam"]
ROW_RULES: tuple[str, ...] = get_args(RowRule)

__all__ = ["ROW_RULES", "RowOptimizer", "RowRule"]


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
