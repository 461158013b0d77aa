"""Stream trainer: no row before an ID's first event, kill/resume, warm-up-only tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from leanrec.data.events import Chunk, EventStream
from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.evaluate.prequential import StreamChunk, run_prequential
from leanrec.models.stream import build_stream_model
from leanrec.train.stream import (
    StreamTrainer,
    StreamTrainerConfig,
    expand_grid,
    latest_checkpoint,
    run_stream,
    tune_on_warmup,
)


@pytest.fixture(scope="module")
def stream() -> EventStream:
    return make_synthetic_stream(
        3000, n_users=300, n_items=200, dim=4, rating_noise=0.3, seed=5, name="syn"
    )


def _trainer(objective: str = "bce", model: str = "deepfm", **config: Any) -> StreamTrainer:
    stream_model = build_stream_model(
        model,
        embedding_dim=8,
        seed=0,
        **({"mlp_dims": (16,)} if model != "neumf" else {"mlp_layers": [8]}),
    )
    return StreamTrainer(
        stream_model, StreamTrainerConfig(objective=objective, batch_size=64, **config)
    )  # type: ignore[arg-type]


def _first_position(codes: np.ndarray) -> np.ndarray:
    """Position of the first event of each code (codes are in first-appearance order)."""
    first = np.full(codes.max() + 1, -1)
    seen = np.unique(codes, return_index=True)
    first[seen[0]] = seen[1]
    return first


@pytest.mark.parametrize("model", ["deepfm", "neumf"])
def test_no_row_before_the_first_event_and_every_seen_id_has_one(
    stream: EventStream, model: str, one_torch_thread: None
) -> None:
    trainer = _trainer(model=model)
    first = {f: _first_position(stream.ids[f].codes) for f in ("user", "item")}
    checks = {"predict": 0, "learn": 0}
    predict, learn = trainer.predict, trainer.learn

    def rows_held_by(field: str) -> np.ndarray:
        held = None
        for name, table in trainer.model.id_tables().items():
            if trainer.model.fields[name] != field:
                continue
            assert isinstance(table, GrowingEmbedding)
            mask = (table.row_of_id[: table.num_embeddings] >= 0).numpy()
            held = mask if held is None else held
            assert np.array_equal(mask, held)  # every table of a field agrees
        assert held is not None
        return np.flatnonzero(held)

    def checked_predict(batch: StreamChunk) -> Any:
        out = predict(batch)  # extend_ids ran: new IDs are in range but hold no row yet
        for field in ("user", "item"):
            assert (first[field][rows_held_by(field)] < batch.chunk.start).all()
        checks["predict"] += 1
        return out

    def checked_learn(batch: StreamChunk) -> None:
        learn(batch)
        for field in ("user", "item"):
            held = rows_held_by(field)
            assert (first[field][held] < batch.chunk.stop).all()
            seen = np.unique(stream.ids[field].codes[: batch.chunk.stop])
            assert np.array_equal(held, seen)  # all-unique: every seen ID holds a row
        checks["learn"] += 1

    trainer.predict, trainer.learn = checked_predict, checked_learn  # type: ignore[method-assign]
    plan = stream.plan(size=250, warmup_fraction=0.2)
    record = run_stream(stream, plan, trainer)
    # warm-up 600 events: chunks of 250, 250, 100; then 2400 evaluated events in 10 chunks
    assert checks == {"predict": 10, "learn": 13}
    assert record.summary()["evaluated_events"] == 2400


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without wall-clock seconds."""
    chunks = [
        {k: v for k, v in c.items() if not k.startswith("seconds")} for c in summary["chunks"]
    ]
    return {**{k: v for k, v in summary.items() if k not in ("timing", "chunks")}, "chunks": chunks}


class KilledError(RuntimeError):
    pass


@pytest.mark.parametrize(
    ("objective", "every", "kill_at", "optimizer"),
    [
        ("bce", 1, 7, "adam"),
        ("mse", 3, 8, "adam"),
        ("bce", 4, 2, "adam"),
        ("bce", 3, 7, "row_adam"),
        ("mse", 2, 5, "row_rmsprop"),
    ],
)
def test_killed_run_resumes_to_identical_totals(
    stream: EventStream,
    tmp_path: Path,
    objective: str,
    every: int,
    kill_at: int,
    optimizer: str,
    one_torch_thread: None,
) -> None:
    plan = stream.plan(size=250, warmup_fraction=0.2)
    options: dict[str, Any] = {"table_optimizer": optimizer}
    if optimizer.startswith("row_"):
        options["table_learning_rate"] = 0.01
    reference = run_stream(
        stream,
        plan,
        _trainer(objective, **options),
        checkpoint_dir=tmp_path / "ref",
        checkpoint_every=every,
    )

    broken = _trainer(objective, **options)
    learn = broken.learn

    def dying_learn(batch: StreamChunk) -> None:
        if batch.chunk.index == kill_at:
            raise KilledError
        learn(batch)

    broken.learn = dying_learn  # type: ignore[method-assign]
    with pytest.raises(KilledError):
        run_stream(stream, plan, broken, checkpoint_dir=tmp_path / "run", checkpoint_every=every)
    latest = latest_checkpoint(tmp_path / "run")
    if kill_at < every:  # killed before the first checkpoint: the rerun starts afresh
        assert latest is None
    else:  # the last checkpoint is after chunk (kill_at // every) * every - 1
        assert latest is not None and latest.name == f"chunk-{(kill_at // every) * every - 1:06d}"
    resumed = run_stream(
        stream,
        plan,
        _trainer(objective, **options),
        checkpoint_dir=tmp_path / "run",
        checkpoint_every=every,
    )
    assert _comparable(resumed.summary()) == _comparable(reference.summary())
    assert resumed.summary()["chunks_done"] == len(plan)
    metric = "auc" if objective == "bce" else "mse"
    assert resumed.summary()["total"][metric] is not None
    # one checkpoint is kept: the last
    assert [p.name for p in (tmp_path / "run").iterdir()] == [f"chunk-{len(plan) - 1:06d}"]


def test_resume_refuses_another_config(stream: EventStream, tmp_path: Path) -> None:
    plan = stream.plan(size=500, warmup_fraction=0.2)
    run_stream(stream, plan, _trainer(), checkpoint_dir=tmp_path, stop_chunk=2)
    with pytest.raises(ValueError, match="checkpoint was written with"):
        run_stream(stream, plan, _trainer(passes=2), checkpoint_dir=tmp_path)


def test_learning_beats_chance_and_reports_bytes(
    stream: EventStream, one_torch_thread: None
) -> None:
    plan = stream.plan(size=250, warmup_fraction=0.2)
    trainer = _trainer(table_optimizer="adagrad", table_learning_rate=0.1)
    summary = run_stream(stream, plan, trainer).summary()
    assert summary["total"]["auc"] > 0.6
    report = trainer.bytes_report()
    assert summary["memory"]["bytes"][-1] == report["embedding"]
    assert report["embedding"] == sum(t.nbytes() for t in trainer.model.id_tables().values())
    assert report["optimizer"] > 0 and report["dense"] > 0
    # memory only grows with all-unique rows (nothing is ever freed)
    assert np.all(np.diff(summary["memory"]["bytes"]) >= 0)


def test_tune_on_warmup_reads_only_the_warmup(stream: EventStream) -> None:
    warmup = stream.warmup_size(0.2)  # 600 events
    seen: list[int] = []

    def build(config: StreamTrainerConfig) -> StreamTrainer:
        trainer = _trainer(**{k: getattr(config, k) for k in ("learning_rate", "passes")})
        learn = trainer.learn

        def spying_learn(batch: StreamChunk) -> None:
            seen.append(batch.chunk.stop)
            learn(batch)

        trainer.learn = spying_learn  # type: ignore[method-assign]
        return trainer

    configs = expand_grid(StreamTrainerConfig(), {"learning_rate": [1e-3, 1e-2], "passes": [1, 2]})
    assert [(c.learning_rate, c.passes) for c in configs] == [
        (1e-3, 1),
        (1e-3, 2),
        (1e-2, 1),
        (1e-2, 2),
    ]
    result = tune_on_warmup(stream, build, configs, validation_fraction=0.5, chunk_size=100)
    assert max(seen) == warmup
    assert result.train_events == (0, 300) and result.validation_events == (300, 600)
    scores = [t["score"] for t in result.trials]
    assert result.best == configs[int(np.argmax(scores))]
    assert len(result.trials) == 4


def test_plan_chunks_are_what_the_trainer_learns(stream: EventStream) -> None:
    plan = [Chunk(0, 0, 100, warmup=True), Chunk(1, 100, 200)]
    trainer = _trainer("mse")
    record = run_stream(stream, plan, trainer)
    assert trainer.chunks_learned == 2
    assert trainer.rating_offset == pytest.approx(float(stream.rating[:100].mean()), rel=1e-6)
    assert record.summary()["total"]["n_rated"] == 100


def _one_chunk(stream: EventStream, start: int, stop: int) -> StreamChunk:
    """Events ``[start, stop)`` as the argument ``learn`` gets from the evaluator."""
    chunks: list[StreamChunk] = []
    plan = [Chunk(0, start, stop, warmup=True)]
    run_prequential(stream, plan, lambda b: np.zeros(len(b)), chunks.append, lambda: 0)
    return chunks[0]


@pytest.mark.parametrize("objective", ["bce", "mse"])
def test_row_sgd_steps_each_row_by_its_summed_event_gradients(
    stream: EventStream, objective: str, one_torch_thread: None
) -> None:
    """One batch of the whole chunk: every row must move by ``-lr * Σ_events ∂loss_e/∂row``,
    the gradient of the summed per-event loss taken through the model's ordinary forward."""
    batch = _one_chunk(stream, 0, 200)
    trainer = _trainer(objective, table_optimizer="row_sgd", table_learning_rate=0.05)
    trainer.config.batch_size = 200
    model = trainer.model
    ids = {f: torch.from_numpy(batch.observed.index[f]) for f in model.stream_fields}
    model.extend_ids(batch.observed.sizes)
    model.observe(ids)
    target = torch.from_numpy(batch.events.label if objective == "bce" else batch.events.rating)
    offset = float(target.double().mean())
    logits = model(ids)  # the generic lookup path
    if objective == "bce":
        losses = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, reduction="none"
        )
    else:
        losses = (logits + offset - target).pow(2)
    weights = [t.weight for t in model.id_tables().values()]
    grads = torch.autograd.grad(losses.sum(), weights)
    expected = [(w - 0.05 * g).detach() for w, g in zip(weights, grads, strict=True)]
    trainer.learn(batch)
    for name, w, e in zip(model.id_tables(), weights, expected, strict=True):
        assert torch.allclose(w, e, atol=1e-6), name
    # the loss the trainer reports per event is the one before the step, in event order
    assert trainer.last_losses is not None
    assert np.allclose(trainer.last_losses, losses.detach().numpy(), atol=1e-5)


def _summed_loss_gradients(trainer: StreamTrainer, batch: StreamChunk) -> list[torch.Tensor]:
    """Gradients of the chunk's summed BCE for each field table's ``weight``, after the
    tables observed the chunk (its IDs hold rows)."""
    model = trainer.model
    ids = {f: torch.from_numpy(batch.observed.index[f]) for f in model.stream_fields}
    model.extend_ids(batch.observed.sizes)
    model.observe(ids)
    target = torch.from_numpy(batch.events.label)
    losses = torch.nn.functional.binary_cross_entropy_with_logits(
        model(ids), target, reduction="none"
    )
    weights = [t.weight for t in model.id_tables().values()]
    return list(torch.autograd.grad(losses.sum(), weights))


def test_first_order_columns_step_with_their_own_rate_and_accumulator(
    stream: EventStream, one_torch_thread: None
) -> None:
    """DeepFM's field table holds the ``d``-wide vector (columns ``0:8``) and the first-order
    weight (column ``8``); each slot has its own row optimiser over its columns: row SGD moves
    the vector by ``-0.05 g`` and the weight by ``-0.5 g`` (``bias_learning_rate``), and row
    Adagrad's accumulator of a slot is ``mean(g²)`` over that slot's columns only."""
    batch = _one_chunk(stream, 0, 200)
    trainer = _trainer(table_optimizer="row_sgd", table_learning_rate=0.05, bias_learning_rate=0.5)
    trainer.config.batch_size = 200
    slots = {"user", "user.first_order", "item", "item.first_order"}
    assert set(trainer.row_optimizers) == slots
    weights = [t.weight for t in trainer.model.id_tables().values()]
    grads = _summed_loss_gradients(trainer, batch)
    assert all(g[:, 8].abs().max() > 0 and g[:, :8].abs().max() > 0 for g in grads)
    rate = torch.tensor([0.05] * 8 + [0.5])
    expected = [(w - rate * g).detach() for w, g in zip(weights, grads, strict=True)]
    trainer.learn(batch)
    for w, e in zip(weights, expected, strict=True):
        assert torch.allclose(w, e, atol=1e-6)

    trainer = _trainer(table_optimizer="row_adagrad", table_learning_rate=0.05)
    trainer.config.batch_size = 200
    grads = _summed_loss_gradients(trainer, batch)
    trainer.learn(batch)
    for field, g in zip(("user", "item"), grads, strict=True):
        vector = trainer.row_optimizers[field].state["sum"]
        weight = trainer.row_optimizers[f"{field}.first_order"].state["sum"]
        assert torch.allclose(vector, g[:, :8].pow(2).mean(dim=1), rtol=1e-5, atol=1e-6)
        assert torch.allclose(weight, g[:, 8].pow(2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["adagrad", "row_adagrad"])
def test_last_losses_are_the_losses_of_the_chunk_before_learning(
    stream: EventStream, optimizer: str, one_torch_thread: None
) -> None:
    batch = _one_chunk(stream, 0, 128)
    trainer = _trainer(table_optimizer=optimizer, table_learning_rate=0.1)
    trainer.config.batch_size = 128
    trainer.learn(_one_chunk(stream, 0, 64))  # rows for part of the chunk, a learnt model
    probability = trainer.predict(batch).probability
    assert probability is not None
    trainer.learn(batch)
    label = batch.events.label.astype(np.float64)
    bce = -(label * np.log(probability) + (1 - label) * np.log(1 - probability))
    assert trainer.last_losses is not None and trainer.last_losses.shape == (128,)
    # predict read the fallback vector for IDs first seen after the first 64 events, learn
    # gave them rows first: the losses agree on the events whose user and item were known
    known = np.ones(128, dtype=bool)
    for field in ("user", "item"):
        index = batch.observed.index[field]
        known &= np.isin(index, index[:64])
    assert 10 < known.sum() < 128
    assert np.allclose(trainer.last_losses[known], bce[known], atol=1e-4)
    assert not np.allclose(trainer.last_losses, bce, atol=1e-4)


def test_tuning_skips_a_diverging_config(stream: EventStream, one_torch_thread: None) -> None:
    base = StreamTrainerConfig(objective="mse", table_optimizer="row_sgd", batch_size=64)
    configs = expand_grid(base, {"table_learning_rate": [1e4, 0.01]})

    def build(config: StreamTrainerConfig) -> StreamTrainer:
        return _trainer(
            "mse", table_optimizer="row_sgd", table_learning_rate=config.table_learning_rate
        )

    result = tune_on_warmup(stream, build, configs, validation_fraction=0.5, chunk_size=100)
    assert result.trials[0]["score"] is None and "diverged" in result.trials[0]["error"]
    assert result.best == configs[1]


def test_sparse_rows_make_the_same_adagrad_updates_as_dense_gradients(
    stream: EventStream, one_torch_thread: None
) -> None:
    # the same model and stream with the tables' rows on dense and on sparse gradients:
    # Adagrad's update of a row whose gradient is zero is zero either way, so the predictions
    # agree to float rounding (on this short stream; see StreamTrainerConfig.sparse_rows)
    plan = stream.plan(size=500, warmup_fraction=0.2)
    probabilities = []
    for sparse in (False, True):
        trainer = _trainer(table_optimizer="adagrad", learning_rate=3e-4,
                           table_learning_rate=0.1, sparse_rows=sparse)  # fmt: skip
        tables = [m for m in trainer.model.modules() if isinstance(m, GrowingEmbedding)]
        assert tables and all(t.sparse_grad == sparse for t in tables)
        record = run_stream(stream, plan, trainer)
        probabilities.append(record.arrays()["probability"])
    scored = ~np.isnan(probabilities[0])
    assert scored.sum() == 2400
    np.testing.assert_allclose(probabilities[1][scored], probabilities[0][scored], atol=1e-6)
    with pytest.raises(ValueError, match="sparse_rows needs table_optimizer='adagrad'"):
        StreamTrainerConfig(table_optimizer="adam", sparse_rows=True)
