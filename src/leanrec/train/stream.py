"""Training a pointwise model along an event stream, chunk by chunk (test, then train).

:class:`StreamTrainer` gives :func:`~leanrec.evaluate.prequential.run_prequential` its three
callables for one :class:`~leanrec.models.stream.StreamModel`:

* ``predict(chunk)``: accept the chunk's IDs (``extend_ids``: a new ID reads what its table
  gives an ID without state, e.g. the shared fallback vector), score every event in eval mode,
  and return ``P(label = 1) = σ(ŷ)`` (objective ``"bce"``) or the rating ``r̄ + ŷ``
  (objective ``"mse"``, ``r̄`` the mean rating of the first chunk learnt);
* ``learn(chunk)``: the stream tables ``observe`` the chunk (a table assigns rows here, so no
  row exists for an ID before the chunk holding its first event is learnt), then ``passes``
  shuffled passes of mini-batches, each one step of Adam on the dense parameters and one step
  on the tables, by one of two paths:

  - ``torch.optim`` (``table_optimizer`` ``"adam"`` / ``"adagrad"``): the model's own forward
    and an optimiser over every table parameter on the mean loss; per-row optimiser state
    follows the rows (each table's ``row_sync``). With Adagrad and ``sparse_rows`` the
    tables' rows get sparse gradients (:func:`sparse_row_gradients`: the same update rule,
    but a step touches only the rows of its batch);
  - row-wise (``"row_sgd"``, ``"row_adagrad"``, ``"row_rmsprop"``, ``"row_adam"``; CTR models
    on :class:`~leanrec.embeddings.GrowingEmbedding` tables): the rows of the chunk's events
    are read once per chunk; per batch, the distinct rows of each field table are gathered
    into a leaf tensor, the model scores them through :meth:`StreamModel.logits_of_vectors`
    (no batch object, no embedder), and a :class:`~leanrec.train.row_optim.RowOptimizer` per
    model slot (its columns of the field table, :class:`~leanrec.embeddings.columns.ColumnRows`:
    own step size and accumulator, e.g. the first-order weights') updates only those rows on
    the gradient of the **summed** per-event loss (a step size per event, as a one-event
    learner's). No step walks the whole table;

  the per-event losses of the chunk are kept in :attr:`StreamTrainer.last_losses`;
* ``memory()``: embedding bytes (:meth:`StreamModel.embedding_bytes`).

Loss per mini-batch ``b``: ``mean(BCE(σ(ŷ), y))`` on the label, or ``mean((r̄ + ŷ − r)²)`` on
the rating.

:func:`run_stream` runs the whole protocol and is resumable: after every ``checkpoint_every``
chunks it writes the prequential record and the trainer state (model with its tables and ID
maps, both optimisers, the shuffling and initialisation generators) into a fresh directory
``chunk-NNNNNN`` that appears by one rename, so a kill at any moment leaves the last complete
pair. A new run on the same directory continues from it and gives the same totals as a run
that was never stopped (the evaluator's counters are rebuilt by replaying, which is exact).

:func:`tune_on_warmup` chooses learning rate, passes and batch size on the warm-up only: the
warm-up prefix is itself cut into a training prefix and a validation suffix that is scored
prequentially; the evaluated stream is never looked at.

Example:
    >>> model = build_stream_model("deepfm", embedding_dim=16, seed=0)
    >>> trainer = StreamTrainer(model, StreamTrainerConfig(objective="bce"))
    >>> record = run_stream(stream, stream.plan(size=1000, warmup_fraction=0.2), trainer)
    >>> record.summary()["total"]["auc"]
    0.79...
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
import torch
from torch.nn import functional as F

from leanrec.data.events import Chunk, EventStream
from leanrec.embeddings.columns import ColumnRows
from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.evaluate.prequential import (
    Prediction,
    PrequentialRecord,
    StreamChunk,
    run_prequential,
)
from leanrec.models.stream import FIRST_ORDER_SUFFIX, StreamModel
from leanrec.options import check_at_least, check_positive
from leanrec.train.checkpoint import load_checkpoint, save_atomic
from leanrec.train.row_optim import RowOptimizer, RowRule
from leanrec.train.step import TrainingError

Objective = Literal["bce", "mse"]
TableOptimizer = Literal["adam", "adagrad", "row_sgd", "row_adagrad", "row_rmsprop", "row_adam"]
TABLE_OPTIMIZERS: tuple[str, ...] = get_args(TableOptimizer)

__all__ = [
    "StreamTrainer",
    "StreamTrainerConfig",
    "TuningResult",
    "latest_checkpoint",
    "run_stream",
    "sparse_row_gradients",
    "tune_on_warmup",
]


@dataclass
class StreamTrainerConfig:
    """How a :class:`StreamTrainer` learns each chunk."""

    objective: Objective = "bce"
    """``"bce"`` on the label (probabilities: AUC, log loss, accuracy) or ``"mse"`` on the
    rating (predicted ratings: MSE)."""
    learning_rate: float = 1e-3
    """Adam step size of the dense parameters (and of the tables unless
    ``table_learning_rate`` is set)."""
    table_learning_rate: float | None = None
    """Step size of the table optimiser (None: ``learning_rate``)."""
    table_optimizer: TableOptimizer = "adam"
    """``"adam"`` or ``"adagrad"``: a ``torch.optim`` optimiser over every table parameter on
    the gradient of the mean loss; ``"row_sgd"``, ``"row_adagrad"``, ``"row_rmsprop"``,
    ``"row_adam"``: a :class:`~leanrec.train.row_optim.RowOptimizer` per table that updates
    only the rows the mini-batch touched, on the gradient of the **summed** per-event loss
    (a step size per event, as a one-event learner's; needs a CTR model on
    :class:`~leanrec.embeddings.GrowingEmbedding` tables)."""
    bias_learning_rate: float | None = None
    """Row optimisers only: step size of the first-order (1-wide, per-ID bias) columns of the
    field tables (None: ``table_learning_rate``)."""
    row_decay: float = 0.99
    """Row optimisers only: ``ρ``, the decay of RMSprop's accumulator and Adam's second
    moment."""
    passes: int = 1
    """Shuffled passes over each chunk."""
    batch_size: int = 256
    """Events per gradient step."""
    predict_batch_size: int = 8192
    """Events scored at once by ``predict``."""
    seed: int = 0
    """Seeds the shuffling generator (the model's own seed is its builder's)."""
    sparse_rows: bool = False
    """``torch.optim`` Adagrad only: the tables' rows get sparse gradients
    (:func:`sparse_row_gradients`), so a step touches only the rows of its batch instead of
    walking the whole table (time per event then does not grow with the IDs held). The update
    rule is the same, but sums of an event's gradients are rounded in another order, and
    Adagrad's first step on a row (``lr · g / |g|``) turns a last-bit difference of a
    near-zero gradient into a full step: runs agree to about 1e-7 on a short stream and drift
    apart at the level of the seed spread on a long one. Off by default, so earlier runs
    reproduce; streams with millions of IDs need it on."""

    def __post_init__(self) -> None:
        if self.sparse_rows and self.table_optimizer != "adagrad":
            raise ValueError(
                "sparse_rows needs table_optimizer='adagrad' (torch.optim.Adam has no sparse "
                f"form), got {self.table_optimizer!r}; the row optimisers ('row_adagrad', ...) "
                "touch only their rows already"
            )
        if self.objective not in ("bce", "mse"):
            raise ValueError(f"objective must be 'bce' or 'mse', got {self.objective!r}")
        if self.table_optimizer not in TABLE_OPTIMIZERS:
            raise ValueError(
                f"table_optimizer must be one of {TABLE_OPTIMIZERS}, got {self.table_optimizer!r}"
            )
        check_at_least(self, 1, "passes", "batch_size", "predict_batch_size")
        check_positive(self, "learning_rate")


class StreamTrainer:
    """Predict-then-learn callables for :func:`run_prequential` (see the module docstring).

    Args:
        model: the stream model (its tables are the stream tables).
        config: the training settings.
    """

    def __init__(self, model: StreamModel, config: StreamTrainerConfig | None = None) -> None:
        self.model = model
        self.config = config or StreamTrainerConfig()
        cfg = self.config
        table_lr = cfg.table_learning_rate or cfg.learning_rate
        self.row_optimizers: dict[str, RowOptimizer] = {}
        """Row path only: one row optimiser per model slot (its columns of the field table),
        by slot name (:attr:`StreamModel.columns`)."""
        self.table_optimizer: torch.optim.Optimizer | None = None
        """``torch.optim`` path only: the optimiser over the tables' parameters."""
        if cfg.table_optimizer.startswith("row_"):
            dense = model.dense_parameters() + self._row_tables_and_rest(table_lr)
            # one fused kernel per step: at d = 16 a step of the per-tensor Adam costs about
            # as much as the row optimisers of every table together
            self.dense_optimizer = torch.optim.Adam(dense, lr=cfg.learning_rate, fused=True)
        else:
            self.dense_optimizer = torch.optim.Adam(model.dense_parameters(), lr=cfg.learning_rate)
            table_parameters = model.table_parameters()
            self.table_optimizer = (
                torch.optim.Adam(table_parameters, lr=table_lr)
                if cfg.table_optimizer == "adam"
                else torch.optim.Adagrad(table_parameters, lr=table_lr)
            )
            if cfg.sparse_rows:
                sparse_row_gradients(model)
            for table in model.id_tables().values():
                table.row_sync(self.table_optimizer)
        self.rng = np.random.default_rng(cfg.seed)
        self.rating_offset: float | None = None
        """``r̄``: mean rating of the first chunk learnt (objective ``"mse"``)."""
        self.chunks_learned = 0
        self.last_losses: np.ndarray | None = None
        """Per-event losses of the last chunk learnt, shape ``(n,)`` float32, in the chunk's
        event order: BCE on the label or squared error on the rating, each computed in the
        forward pass of the event's mini-batch of the last pass (before that batch's step)."""

    def _row_tables_and_rest(self, table_lr: float) -> list[torch.nn.Parameter]:
        """Build a row optimiser per model slot (its columns of the field table); return the
        field tables' other parameters (e.g. the fallback vector), which the dense Adam then
        updates."""
        cfg = self.config
        if not self.model.reads_vectors:
            raise ValueError(
                f"row optimisers need a CTR model, got {type(self.model.model).__name__}"
            )
        rule = cast(RowRule, cfg.table_optimizer.removeprefix("row_"))
        rest: list[torch.nn.Parameter] = []
        tables = self.model.id_tables()
        for name, table in tables.items():
            if not isinstance(table, GrowingEmbedding):
                raise ValueError(
                    f"row optimisers need GrowingEmbedding tables, {name!r} is a "
                    f"{type(table).__name__}"
                )
            rest += [p for p in table.parameters() if p is not table.weight]
        for name, columns in self.model.columns.items():
            lr = table_lr
            if name.endswith(FIRST_ORDER_SUFFIX) and cfg.bias_learning_rate is not None:
                lr = cfg.bias_learning_rate
            table = cast(GrowingEmbedding, tables[columns.field])
            rows = ColumnRows(table, columns.start, columns.stop)
            self.row_optimizers[name] = RowOptimizer(rows, rule, lr, decay=cfg.row_decay)
        return rest

    # ------------------------------------------------------------------ the three callables
    def _ids(self, batch: StreamChunk) -> dict[str, torch.Tensor]:
        self.model.extend_ids(batch.observed.sizes)
        return {
            field: torch.from_numpy(batch.observed.index[field])
            for field in self.model.stream_fields
        }

    def _target(self, batch: StreamChunk) -> torch.Tensor:
        if self.config.objective == "bce":
            return torch.from_numpy(batch.events.label)
        if batch.events.rating is None:
            raise ValueError(f"stream {batch.events.name!r} has no ratings for the MSE objective")
        return torch.from_numpy(batch.events.rating)

    @torch.no_grad()
    def predict(self, batch: StreamChunk) -> Prediction:
        """Score the chunk's events before learning them, shape ``(n,)``."""
        ids = self._ids(batch)
        self.model.eval()
        n = len(batch)
        step = self.config.predict_batch_size
        logits = torch.cat(
            [self.model({f: v[s : s + step] for f, v in ids.items()}) for s in range(0, n, step)]
        ).double()
        if not bool(torch.isfinite(logits).all()):
            raise TrainingError(
                f"the model diverged before chunk {batch.chunk.index} (non-finite predictions)"
            )
        if self.config.objective == "bce":
            return Prediction(probability=torch.sigmoid(logits).numpy())
        return Prediction(rating=(logits + (self.rating_offset or 0.0)).numpy())

    def learn(self, batch: StreamChunk) -> None:
        """Observe the chunk (tables assign rows), then ``passes`` shuffled passes of steps;
        per-event losses go to :attr:`last_losses`."""
        ids = self._ids(batch)
        target = self._target(batch)
        if self.config.objective == "mse" and self.rating_offset is None:
            self.rating_offset = float(target.double().mean())
        self.model.observe(ids)  # between optimiser steps: relayouts move optimiser state
        self.model.train()
        n = len(batch)
        size = self.config.batch_size
        losses = torch.empty(n)
        step = self._row_step(ids) if self.row_optimizers else self._torch_step(ids)
        for _ in range(self.config.passes):
            order = torch.from_numpy(self.rng.permutation(n))
            for start in range(0, n, size):
                rows = order[start : start + size]
                losses[rows] = step(rows, target[rows])
        self.last_losses = losses.numpy()
        self.chunks_learned += 1

    def _event_losses(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-event losses ``(B,)``: BCE on the label or squared error on the rating."""
        if self.config.objective == "bce":
            return F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        assert self.rating_offset is not None
        return (logits + self.rating_offset - target).pow(2)

    def _torch_step(
        self, ids: Mapping[str, torch.Tensor]
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """One step of both ``torch.optim`` optimisers on the mean loss of events ``rows``."""
        assert self.table_optimizer is not None
        table_optimizer = self.table_optimizer

        def step(rows: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            logits = self.model({f: v[rows] for f, v in ids.items()})
            if self.config.objective == "bce":  # the fused mean, as this path always had
                loss = F.binary_cross_entropy_with_logits(logits, target)
            else:
                assert self.rating_offset is not None
                loss = F.mse_loss(logits + self.rating_offset, target)
            with torch.no_grad():
                per_event = self._event_losses(logits, target)
            self.dense_optimizer.zero_grad(set_to_none=True)
            table_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.dense_optimizer.step()
            table_optimizer.step()
            return per_event

        return step

    def _row_step(
        self, ids: Mapping[str, torch.Tensor]
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """One step on events ``rows``: dense Adam on the mean loss, and each slot's row
        optimiser on the summed loss of the distinct rows the batch touched in its field table
        (its columns of the gradient).

        The rows of the chunk's events are read once per chunk (after ``observe``)."""
        tables = {f: cast(GrowingEmbedding, t) for f, t in self.model.id_tables().items()}
        chunk_rows = {f: table.rows(ids[f]) for f, table in tables.items()}
        all_held = all(bool((r >= 0).all()) for r in chunk_rows.values())
        columns = self.model.columns
        slots = [(optimizer, columns[name]) for name, optimizer in self.row_optimizers.items()]

        def step(events: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            distinct: dict[str, torch.Tensor] = {}
            leaves: dict[str, torch.Tensor] = {}
            vectors: dict[str, torch.Tensor] = {}
            for field, table in tables.items():
                rows = chunk_rows[field][events]
                unique, inverse = torch.unique(rows, return_inverse=True)
                distinct[field] = unique
                held_rows = unique if all_held else unique.clamp(min=0)
                leaf = table.weight.detach().index_select(0, held_rows).requires_grad_()
                leaves[field] = leaf
                vector = leaf.index_select(0, inverse)  # (B, width of the field table)
                if not all_held:  # IDs without a row read the fallback vector
                    vector = torch.where((rows >= 0)[:, None], vector, table.fallback)
                vectors[field] = vector
            logits = self.model.logits_of_vectors(vectors)
            per_event = self._event_losses(logits, target)
            self.dense_optimizer.zero_grad(set_to_none=True)
            per_event.mean().backward()
            self.dense_optimizer.step()
            scale = float(len(events))  # leaf.grad is of the mean: scale it to the sum
            for optimizer, slot in slots:
                unique = distinct[slot.field]
                grad = leaves[slot.field].grad
                assert grad is not None
                grad = grad[:, slot.start : slot.stop]
                if all_held:
                    optimizer.step(unique, grad, scale=scale)
                else:
                    keep = unique >= 0
                    optimizer.step(unique[keep], grad[keep], scale=scale)
            return per_event.detach()

        return step

    def memory(self) -> int:
        """Embedding bytes held now (the stream tables, per-ID state included)."""
        return self.model.embedding_bytes()

    def optimizer_bytes(self) -> int:
        """Bytes of both optimisers' state tensors (reported beside embedding bytes)."""
        total = sum(optimizer.nbytes() for optimizer in self.row_optimizers.values())
        optimizers: list[torch.optim.Optimizer] = [self.dense_optimizer]
        if self.table_optimizer is not None:
            optimizers.append(self.table_optimizer)
        for optimizer in optimizers:
            for state in optimizer.state.values():
                for value in state.values():
                    if isinstance(value, torch.Tensor):
                        total += value.numel() * value.element_size()
        return total

    def bytes_report(self) -> dict[str, int]:
        """``embedding`` (tables with per-ID state), ``dense`` (the rest of the model) and
        ``optimizer`` (state of both optimisers), in bytes."""
        return {
            "embedding": self.model.embedding_bytes(),
            "dense": self.model.dense_bytes(),
            "optimizer": self.optimizer_bytes(),
        }

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`learn` changes, as tensors and plain values (loadable with
        ``torch.load(weights_only=True)``)."""
        generator = self.model.generator
        return {
            "config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "dense_optimizer": self.dense_optimizer.state_dict(),
            "table_optimizer": (
                self.table_optimizer.state_dict()
                if self.table_optimizer is not None
                else {n: o.state_dict() for n, o in self.row_optimizers.items()}
            ),
            "shuffle_rng": self.rng.bit_generator.state,
            "table_generator": None if generator is None else generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "rating_offset": self.rating_offset,
            "chunks_learned": self.chunks_learned,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue exactly where the trainer that wrote ``state`` stopped (same model build
        and config)."""
        if state["config"] != dataclasses.asdict(self.config):
            raise ValueError(
                f"checkpoint was written with {state['config']}, this trainer has "
                f"{dataclasses.asdict(self.config)}"
            )
        self.model.load_state_dict(state["model"])
        self.dense_optimizer.load_state_dict(state["dense_optimizer"])
        if self.table_optimizer is not None:
            self.table_optimizer.load_state_dict(state["table_optimizer"])
        else:
            for name, optimizer in self.row_optimizers.items():
                optimizer.load_state_dict(state["table_optimizer"][name])
        self.rng.bit_generator.state = state["shuffle_rng"]
        if self.model.generator is not None and state["table_generator"] is not None:
            self.model.generator.set_state(state["table_generator"])
        torch.set_rng_state(state["torch_rng"])
        self.rating_offset = state["rating_offset"]
        self.chunks_learned = int(state["chunks_learned"])


def sparse_row_gradients(model: torch.nn.Module) -> int:
    """Give the rows of every :class:`~leanrec.embeddings.GrowingEmbedding` in ``model``
    (every stream table's own rows) sparse gradients; returns how many tables.

    ``torch.optim.Adagrad`` then makes the same updates as on dense gradients (a row whose
    gradient is zero keeps its value and its sum of squares either way), but a step touches
    only the rows its batch looked up instead of walking the whole table, so the time per
    event no longer grows with the IDs held. Adam has no sparse form here and stays dense."""
    tables = [m for m in model.modules() if isinstance(m, GrowingEmbedding)]
    for table in tables:
        table.sparse_grad = True
    return len(tables)


# ---------------------------------------------------------------------------------- running
CHECKPOINT_PREFIX = "chunk-"


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The most recent complete checkpoint directory ``chunk-NNNNNN`` in ``directory``."""
    folder = Path(directory)
    if not folder.is_dir():
        return None
    done = sorted(p for p in folder.glob(CHECKPOINT_PREFIX + "*") if p.is_dir())
    return done[-1] if done else None


def _save_checkpoint(
    directory: Path, chunk: Chunk, record: PrequentialRecord, trainer: StreamTrainer
) -> Path:
    """Write record + trainer into ``.chunk-N.tmp/`` and rename it to ``chunk-N/`` (one
    atomic step), then drop older checkpoints."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{CHECKPOINT_PREFIX}{chunk.index:06d}"
    staging = directory / f".{name}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    record.save(staging / "record.npz")
    save_atomic(trainer.state_dict(), staging / "trainer.pt")
    target = directory / name
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    for older in directory.glob(CHECKPOINT_PREFIX + "*"):
        if older.is_dir() and older.name < name:
            shutil.rmtree(older)
    return target


def run_stream(
    stream: EventStream,
    plan: Sequence[Chunk],
    trainer: StreamTrainer,
    *,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    stop_chunk: int | None = None,
    on_chunk_end: Callable[[Chunk, PrequentialRecord], None] | None = None,
) -> PrequentialRecord:
    """Prequential run of ``trainer`` over ``plan``; resumes from ``checkpoint_dir``.

    Args:
        stream: the events.
        plan: warm-up then evaluated chunks (:meth:`EventStream.plan`).
        trainer: a freshly built trainer (on resume its state is replaced by the checkpoint's).
        checkpoint_dir: where checkpoints go; when it holds one, the run continues after it.
        checkpoint_every: checkpoint after every this many chunks (and after the last).
        stop_chunk: stop before this chunk (default: the end of the plan).
        on_chunk_end: called after each chunk (after any checkpoint) with the record.

    Returns:
        The prequential record (``record.summary()``).
    """
    record = None
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    if folder is not None:
        latest = latest_checkpoint(folder)
        if latest is not None:
            record = PrequentialRecord.load(latest / "record.npz")
            trainer.load_state_dict(load_checkpoint(latest / "trainer.pt"))
    last = len(plan) if stop_chunk is None else stop_chunk

    def chunk_end(chunk: Chunk, current: PrequentialRecord, _counters: object) -> None:
        if folder is not None and (
            (chunk.index + 1) % checkpoint_every == 0 or chunk.index + 1 == last
        ):
            _save_checkpoint(folder, chunk, current, trainer)
        if on_chunk_end is not None:
            on_chunk_end(chunk, current)

    fields = tuple(dict.fromkeys(("user", "item", *trainer.model.stream_fields)))
    return run_prequential(
        stream,
        plan,
        trainer.predict,
        trainer.learn,
        trainer.memory,
        record=record,
        fields=fields,
        stop_chunk=stop_chunk,
        on_chunk_end=chunk_end,
    )


# ---------------------------------------------------------------------------------- tuning
@dataclass
class TuningResult:
    """What :func:`tune_on_warmup` tried and chose.

    Attributes:
        best: the chosen config.
        trials: one row per config: the settings tried, ``score`` (validation AUC for
            ``"bce"``, minus validation MSE for ``"mse"``), the validation metrics and seconds.
        train_events / validation_events: the two parts of the warm-up, ``[0, a)`` and
            ``[a, b)``.
    """

    best: StreamTrainerConfig
    trials: list[dict[str, Any]]
    train_events: tuple[int, int]
    validation_events: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": dataclasses.asdict(self.best),
            "trials": self.trials,
            "train_events": list(self.train_events),
            "validation_events": list(self.validation_events),
        }


def expand_grid(
    base: StreamTrainerConfig, grid: Mapping[str, Sequence[Any]]
) -> list[StreamTrainerConfig]:
    """Every combination of ``grid`` (field name -> values) applied to ``base``, in the
    order of ``itertools.product``."""
    names = list(grid)
    return [
        dataclasses.replace(base, **dict(zip(names, values, strict=True)))
        for values in itertools.product(*(grid[n] for n in names))
    ]


def tune_on_warmup(
    stream: EventStream,
    build: Callable[[StreamTrainerConfig], StreamTrainer],
    configs: Sequence[StreamTrainerConfig],
    *,
    warmup_fraction: float = 0.2,
    validation_fraction: float = 0.25,
    chunk_size: int = 1000,
) -> TuningResult:
    """Choose the config scoring best on a validation suffix of the warm-up.

    The warm-up ``[0, W)`` (``W = floor(warmup_fraction · n)``) is cut into a training prefix
    and a validation suffix (the last ``validation_fraction`` of it). Each config trains a
    fresh trainer (``build(config)``) prequentially on the warm-up alone: the prefix is only
    learnt, the suffix is predicted then learnt chunk by chunk, exactly as the evaluated stream
    will be. Score: validation AUC (``"bce"``) or minus validation MSE (``"mse"``); ties keep
    the earlier config; a config whose model diverges (non-finite predictions,
    :class:`~leanrec.train.step.TrainingError`) gets score None and is never chosen. No event
    after ``W`` is read.
    """
    if not configs:
        raise ValueError("tune_on_warmup needs at least one config")
    boundary = stream.warmup_size(warmup_fraction)
    prefix = stream[0:boundary]
    plan = prefix.plan(size=chunk_size, warmup_fraction=1.0 - validation_fraction)
    split = next((c.start for c in plan if not c.warmup), boundary)
    if split >= boundary:
        raise ValueError("the warm-up is too short to hold a validation suffix")
    trials: list[dict[str, Any]] = []
    best: tuple[float, StreamTrainerConfig] | None = None
    for config in configs:
        trainer = build(config)
        try:
            summary = run_stream(prefix, plan, trainer).summary()
        except TrainingError as error:  # a diverging setting loses, the others still run
            trials.append(
                {"config": dataclasses.asdict(config), "score": None, "error": str(error)}
            )
            continue
        total = summary["total"]
        if config.objective == "bce":
            score = total["auc"] if total["auc"] is not None else -np.inf
        else:
            score = -total["mse"] if total["mse"] is not None else -np.inf
        trials.append(
            {
                "config": dataclasses.asdict(config),
                "score": score,
                "validation": {k: total[k] for k in ("auc", "log_loss", "accuracy", "mse")},
                "seconds": summary["timing"]["predict_seconds"]
                + summary["timing"]["learn_seconds"],
            }
        )
        if best is None or score > best[0]:
            best = (score, config)
    if best is None:
        raise TrainingError("every config diverged on the warm-up")
    return TuningResult(best[1], trials, (0, split), (split, boundary))
