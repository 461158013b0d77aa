"""Next-item training and evaluation: metrics by hand, full-ranking exclusions, learning."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.data.sequential import NextItemEvalSet, NextItemSplit
from leanrec.evaluate.sampled import evaluate_full, evaluate_sampled, metrics_from_ranks
from leanrec.models.seq import build_next_item_model
from leanrec.train.bpr import TrainingError
from leanrec.train.sequential import (
    SequentialTrainer,
    SequentialTrainerConfig,
    evaluate_next_item,
    sample_training_negatives,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _eval_set(
    inputs: list[list[int]],
    targets: list[int],
    negatives: list[list[int]],
    histories: list[list[int]],
) -> NextItemEvalSet:
    counts = [len(h) for h in histories]
    return NextItemEvalSet(
        users=np.arange(len(targets)),
        inputs=np.array(inputs, dtype=np.int64),
        targets=np.array(targets, dtype=np.int64),
        negatives=np.array(negatives, dtype=np.int64),
        history_indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        history_items=np.array([i for h in histories for i in h], dtype=np.int64),
    )


# ---------------------------------------------------------------------------------- metrics
def test_sampled_metrics_on_a_hand_computed_ranking() -> None:
    # 3 users, target + 10 negatives each; scores are fixed per candidate ID
    negatives = [list(range(11, 21))] * 3
    eval_set = _eval_set([[0, 1], [1, 2], [2, 3]], [1, 2, 3], negatives, [[], [], []])
    item_score = torch.zeros(21)
    item_score[11:21] = torch.arange(10, 0, -1, dtype=torch.float32)  # 11 -> 10, ..., 20 -> 1
    item_score[1] = 100.0  # user 0: above everything -> rank 0
    item_score[2] = 8.5  # user 1: below 10, 9 -> rank 2
    item_score[3] = 4.0  # user 2: 10..5 above (6), 4 tied -> pessimistic rank 7

    def score(inputs: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return item_score[candidates]

    result = evaluate_sampled(score, eval_set, ks=(5, 10), batch_size=2)
    assert result.per_user["rank"].tolist() == [0, 2, 7]
    assert result.per_user["hit@5"].tolist() == [1, 1, 0]
    assert result.per_user["hit@10"].tolist() == [1, 1, 1]
    expected_ndcg5 = [1.0, 1 / math.log2(4), 0.0]
    expected_ndcg10 = [1.0, 1 / math.log2(4), 1 / math.log2(9)]
    np.testing.assert_allclose(result.per_user["ndcg@5"], expected_ndcg5)
    np.testing.assert_allclose(result.per_user["ndcg@10"], expected_ndcg10)
    assert result["hit@5"] == pytest.approx(2 / 3)
    assert result["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 8) / 3)


def test_constant_scores_rank_the_target_last() -> None:
    eval_set = _eval_set([[1]], [1], [[2, 3, 4, 5, 6]], [[]])
    result = evaluate_sampled(lambda i, c: torch.zeros(c.shape), eval_set, ks=(5,))
    assert result.per_user["rank"].tolist() == [5]
    assert result["hit@5"] == 0.0


def test_metrics_from_ranks_matches_definitions() -> None:
    out = metrics_from_ranks(torch.tensor([0, 4, 5, 9]), ks=(5, 10))
    assert out["hit@5"].tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(out["ndcg@10"], [1 / math.log2(r + 2) for r in (0, 4, 5, 9)])
    np.testing.assert_allclose(out["mrr"], [1, 1 / 5, 1 / 6, 1 / 10])


def test_full_ranking_excludes_history_and_padding_but_not_the_target() -> None:
    n_items = 8
    # user 0: history {1, 2, 3}, target 4; user 1: history {1..5}, target 5 (a repeat)
    eval_set = _eval_set([[2, 3], [5, 4]], [4, 5], [[6], [6]], [[1, 2, 3], [1, 2, 3, 4, 5]])
    base = torch.tensor([1e9, 90, 80, 70, 50, 40, 30, 20, 10], dtype=torch.float32)

    def score_all(inputs: torch.Tensor) -> torch.Tensor:
        return base.repeat(len(inputs), 1)

    result = evaluate_full(score_all, eval_set, n_items, ks=(1, 5))
    # user 0: padding (1e9) and history 1..3 excluded -> target 4 is first
    # user 1: history 1..4 excluded, target 5 (also in its history) kept -> first
    assert result.per_user["rank"].tolist() == [0, 0]
    # without exclusions the targets would sit at ranks 3 and 4 among items 1..8
    no_history = _eval_set([[2, 3], [5, 4]], [4, 5], [[6], [6]], [[], []])
    plain = evaluate_full(score_all, no_history, n_items, ks=(1, 5))
    assert plain.per_user["rank"].tolist() == [3, 4]


def test_trimmed_and_full_window_evaluation_agree() -> None:
    data = _cycle_data(n_users=60, n_items=120, seed=5)
    split = NextItemSplit.from_interactions(data, max_length=12, n_negatives=20, seed=0)
    for name in ("sasrec", "gru4rec"):
        model = build_next_item_model(name, split.n_items, {"embedding_dim": 8}, seed=0).eval()
        a = evaluate_sampled(model.score_candidates, split.test, batch_size=7, trim=True)
        b = evaluate_sampled(model.score_candidates, split.test, batch_size=7, trim=False)
        np.testing.assert_array_equal(a.per_user["rank"], b.per_user["rank"])
        c = evaluate_full(model.score_all, split.test, split.n_items, batch_size=9, trim=True)
        d = evaluate_full(model.score_all, split.test, split.n_items, batch_size=9, trim=False)
        np.testing.assert_array_equal(c.per_user["rank"], d.per_user["rank"])


# ---------------------------------------------------------------------------------- training
def _cycle_data(n_users: int, n_items: int, seed: int) -> Interactions:
    """Every user walks a fixed random cycle over all items: the next item is deterministic."""
    rng = np.random.default_rng(seed)
    cycle = rng.permutation(n_items)
    lengths = rng.integers(6, 16, size=n_users)
    starts = rng.integers(0, n_items, size=n_users)
    users = np.repeat(np.arange(n_users), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = cycle[(np.repeat(starts, lengths) + offsets) % n_items]
    return Interactions.from_raw(
        users, items, timestamps=offsets, item_vocab=IdVocabulary.identity(n_items, name="item")
    )


@pytest.fixture(scope="module")
def cycle_split() -> NextItemSplit:
    return NextItemSplit.from_interactions(
        _cycle_data(n_users=400, n_items=150, seed=0), max_length=10, n_negatives=50, seed=0
    )


def _fast_config(**overrides: object) -> SequentialTrainerConfig:
    base: dict[str, object] = {
        "max_epochs": 30,
        "batch_size": 64,
        "learning_rate": 5e-3,
        "patience": 30,
        "num_threads": 1,
        "progress": False,
        "seed": 0,
    }
    base.update(overrides)
    return SequentialTrainerConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "loss", "batching"),
    [
        ("sasrec", "bce", "by_length"),
        ("gru4rec", "sampled_softmax", "random"),
    ],
)
def test_models_learn_a_deterministic_next_item_pattern(
    cycle_split: NextItemSplit, name: str, loss: str, batching: str
) -> None:
    config = {"embedding_dim": 32, "dropout": 0.1}
    if name == "sasrec":
        config["max_length"] = 10
    model = build_next_item_model(name, cycle_split.n_items, config, seed=0)
    trainer = SequentialTrainer(
        model,
        cycle_split,
        _fast_config(loss=loss, batching=batching, softmax_negatives=64, patience=5),
    )
    untrained = trainer.evaluate("valid")["hit@5"]
    result = trainer.fit()
    assert untrained < 0.4
    assert result.best_valid["hit@5"] > 0.9
    assert trainer.evaluate("test", "sampled")["hit@5"] > 0.9
    assert trainer.evaluate("test", "full")["hit@5"] > 0.8


def test_best_validation_state_is_restored(cycle_split: NextItemSplit) -> None:
    model = build_next_item_model("gru4rec", cycle_split.n_items, {"embedding_dim": 8}, seed=0)
    trainer = SequentialTrainer(model, cycle_split, _fast_config(max_epochs=4))
    result = trainer.fit()
    values = [r["valid_ndcg@5"] for r in result.history]
    assert result.best_epoch == int(np.argmax(values)) + 1
    assert trainer.evaluate("valid")["ndcg@5"] == pytest.approx(max(values), abs=1e-12)
    assert result.epochs_run == 4 and result.stop_reason == "epochs"


def test_time_budget_and_patience_stop_training(cycle_split: NextItemSplit) -> None:
    model = build_next_item_model("gru4rec", cycle_split.n_items, {"embedding_dim": 8}, seed=0)
    result = SequentialTrainer(model, cycle_split, _fast_config(max_seconds=0.0)).fit()
    assert result.stop_reason == "time budget" and result.epochs_run == 1
    model = build_next_item_model("gru4rec", cycle_split.n_items, {"embedding_dim": 8}, seed=0)
    # a zero learning rate never improves after the first validation
    trainer = SequentialTrainer(model, cycle_split, _fast_config(learning_rate=0.0, patience=2))
    result = trainer.fit()
    assert result.stop_reason == "patience" and result.epochs_run == 3


def test_nan_loss_raises_training_error(cycle_split: NextItemSplit) -> None:
    model = build_next_item_model("sasrec", cycle_split.n_items, {"max_length": 10}, seed=0)
    with torch.no_grad():
        next(model.encoder.parameters()).fill_(math.nan)
    trainer = SequentialTrainer(model, cycle_split, _fast_config(max_epochs=1))
    with pytest.raises(TrainingError, match="loss became nan"):
        trainer.fit()


def test_resume_continues_from_the_checkpoint(cycle_split: NextItemSplit, tmp_path: Path) -> None:
    path = tmp_path / "seq.pt"
    cfg = _fast_config(max_epochs=2)
    model = build_next_item_model("gru4rec", cycle_split.n_items, {"embedding_dim": 8}, seed=0)
    SequentialTrainer(model, cycle_split, cfg, checkpoint_path=path).fit()
    model2 = build_next_item_model("gru4rec", cycle_split.n_items, {"embedding_dim": 8}, seed=0)
    trainer = SequentialTrainer(model2, cycle_split, _fast_config(max_epochs=3), path)
    result = trainer.fit(resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]


@pytest.mark.parametrize("stop", ["time budget", "patience"])
def test_resume_of_a_run_that_stopped_early_trains_nothing_more(
    cycle_split: NextItemSplit, tmp_path: Path, stop: str
) -> None:
    path = tmp_path / "seq.pt"
    if stop == "time budget":
        cfg = _fast_config(max_epochs=5, max_seconds=0.0)
    else:  # a zero learning rate never improves after the first validation
        cfg = _fast_config(max_epochs=5, learning_rate=0.0, patience=1)

    def fresh() -> SequentialTrainer:
        model = build_next_item_model("gru4rec", cycle_split.n_items, {"embedding_dim": 8}, 0)
        return SequentialTrainer(model, cycle_split, cfg, path)

    done = fresh().fit()
    assert done.stop_reason == stop and done.epochs_run < 5
    again = fresh()
    resumed = again.fit(resume=True)
    assert resumed.stop_reason == stop
    assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in done.history]
    assert resumed.seconds >= again.elapsed_seconds > 0  # the old run's clock, not a new one


def test_training_negatives_avoid_the_training_sequence(cycle_split: NextItemSplit) -> None:
    rng = np.random.default_rng(0)
    users = np.repeat(cycle_split.train_users, 5)
    negatives = sample_training_negatives(
        users, 3, cycle_split.n_items, cycle_split.train_keys, rng
    )
    assert negatives.shape == (len(users), 3)
    assert negatives.min() >= 1 and negatives.max() <= cycle_split.n_items
    keys = users[:, None] * (cycle_split.n_items + 1) + negatives
    assert not np.isin(keys, cycle_split.train_keys).any()


def test_length_batches_cover_every_window_once(cycle_split: NextItemSplit) -> None:
    model = build_next_item_model("gru4rec", cycle_split.n_items, {"embedding_dim": 8}, seed=0)
    trainer = SequentialTrainer(model, cycle_split, _fast_config(batch_size=32))
    batches = trainer.epoch_batches()
    rows = np.concatenate(batches)
    assert np.array_equal(np.sort(rows), trainer.rows)
    positions = np.array([trainer.lengths[b].sum() for b in batches])
    budget = 32 * trainer.lengths[trainer.rows].mean()
    assert positions.max() <= budget + trainer.lengths.max()
    assert len(batches) == math.ceil(trainer.lengths[trainer.rows].sum() / budget)


def test_trainer_checks_its_inputs(cycle_split: NextItemSplit) -> None:
    model = build_next_item_model("gru4rec", cycle_split.n_items + 1, {"embedding_dim": 8})
    with pytest.raises(ValueError, match="items"):
        SequentialTrainer(model, cycle_split)
    model = build_next_item_model("gru4rec", cycle_split.n_items, {"embedding_dim": 8})
    with pytest.raises(ValueError, match="valid_metric"):
        SequentialTrainer(model, cycle_split, _fast_config(valid_metric="recall@20"))
    with pytest.raises(ValueError, match="protocol"):
        evaluate_next_item(model, cycle_split.valid, "sometimes")  # type: ignore[arg-type]
