from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.data.interactions import IdVocabulary, Interactions, Split
from leanrec.data.splits import ratio_split
from leanrec.data.synthetic import make_synthetic
from leanrec.models import build_model
from leanrec.train import BPRTrainer, NegativeSampler, TrainerConfig, TrainingError
from leanrec.train.bpr import learning_rate_at


@pytest.fixture(scope="module")
def split() -> Split:
    data = make_synthetic(n_users=300, n_items=200, n_interactions=9000, seed=3)
    return ratio_split(data, ratios=(0.8, 0.1, 0.1), seed=3)


def test_negatives_are_never_training_items() -> None:
    rng = np.random.default_rng(0)
    # dense-ish data: 30 users x 12 items, each user has 9 of 12 items
    users = np.repeat(np.arange(30), 9)
    items = np.concatenate([rng.choice(12, 9, replace=False) for _ in range(30)])
    data = Interactions.from_raw(users, items)
    sampler = NegativeSampler(data, rng)
    negatives = sampler.sample(data.users)
    assert not sampler.is_positive(data.users, negatives).any()
    several = sampler.sample(data.users, n_negatives=4)
    assert several.shape == (len(data), 4)
    assert not sampler.is_positive(np.repeat(data.users[:, None], 4, 1), several).any()
    assert sampler.unresolved == 0


def test_membership_matches_a_set_of_the_training_pairs() -> None:
    """Queries in any order and shape (1-d, 2-d), users without interactions, the first and
    last keys: the sorted search answers as a set of the training pairs does, in the callers'
    order."""
    rng = np.random.default_rng(1)
    users = rng.integers(0, 50, 600)
    users[users == 7] = 8  # user 7 has no interactions
    items = rng.integers(0, 40, 600)
    data = Interactions.from_raw(
        np.append(users, [0, 49]),
        np.append(items, [0, 39]),
        user_vocab=IdVocabulary.identity(50),
        item_vocab=IdVocabulary.identity(40),
    )
    sampler = NegativeSampler(data, rng)
    pairs = set(zip(data.users.tolist(), data.items.tolist()))
    query_users = rng.integers(0, data.n_users, (300, 3))
    query_items = rng.integers(0, data.n_items, (300, 3))
    query_users[:100, 0], query_items[:100, 0] = data.users[:100], data.items[:100]
    expected = np.array(
        [(u, i) in pairs for u, i in zip(query_users.ravel().tolist(), query_items.ravel())]
    ).reshape(300, 3)
    assert expected[:100, 0].all() and not expected.all()
    assert np.array_equal(sampler.is_positive(query_users, query_items), expected)
    flat = sampler.is_positive(query_users[:, 1], query_items[:, 1])
    assert flat.shape == (300,) and np.array_equal(flat, expected[:, 1])
    assert not sampler.is_positive(np.full(40, 7), np.arange(40)).any()


def test_training_beats_untrained_on_validation(split: Split) -> None:
    model = build_model("mf", split.train, {"embedding_dim": 16}, seed=0)
    config = TrainerConfig(max_epochs=15, learning_rate=0.01, l2=1e-5, batch_size=512, patience=100)
    trainer = BPRTrainer(model, split.train, split.valid, config)
    untrained = trainer.validate()
    assert untrained is not None
    result = trainer.fit()
    assert result.best_valid["ndcg@20"] > 2 * untrained.mean["ndcg@20"]
    assert result.best_valid["ndcg@20"] > 0.05


def test_best_epoch_is_argmax_of_validation_and_weights_restored(split: Split) -> None:
    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    config = TrainerConfig(max_epochs=8, learning_rate=0.05, batch_size=1024, patience=100)
    trainer = BPRTrainer(model, split.train, split.valid, config)
    result = trainer.fit()
    values = [r["valid_ndcg@20"] for r in result.history]
    assert result.best_epoch == int(np.argmax(values)) + 1
    final = trainer.validate()
    assert final is not None
    assert final.mean["ndcg@20"] == pytest.approx(max(values), abs=1e-9)


def test_early_stopping_stops_after_patience(split: Split) -> None:
    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    # a learning rate of 0 never improves after the first evaluation
    config = TrainerConfig(max_epochs=50, learning_rate=0.0, patience=3)
    result = BPRTrainer(model, split.train, split.valid, config).fit()
    assert result.stopped_early
    assert result.epochs_run == 4
    assert result.best_epoch == 1


def test_nan_loss_raises_clear_error(split: Split) -> None:
    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    with torch.no_grad():
        model.user_embedding.weight[0, 0] = float("nan")
    trainer = BPRTrainer(model, split.train, split.valid, TrainerConfig(max_epochs=1))
    with pytest.raises(TrainingError, match="loss became nan at epoch 1"):
        trainer.fit()


def test_unknown_valid_metric_is_named(split: Split) -> None:
    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    trainer = BPRTrainer(
        model, split.train, split.valid, TrainerConfig(max_epochs=1, valid_metric="auc@3")
    )
    with pytest.raises(ValueError, match="auc@3"):
        trainer.fit()


@pytest.mark.parametrize("model_name", ["mf", "lightgcn"])
def test_resume_equals_uninterrupted_run(split: Split, tmp_path: Path, model_name: str) -> None:
    config = TrainerConfig(max_epochs=4, learning_rate=0.01, batch_size=1024, patience=100, seed=7)

    def fresh() -> torch.nn.Module:
        return build_model(model_name, split.train, {"embedding_dim": 8}, seed=1)

    straight = fresh()
    BPRTrainer(straight, split.train, split.valid, config).fit()

    interrupted = fresh()
    first = TrainerConfig(**{**config.__dict__, "max_epochs": 2})
    BPRTrainer(
        interrupted, split.train, split.valid, first, checkpoint_path=tmp_path / "s.pt"
    ).fit()
    resumed_model = fresh()
    resumed = BPRTrainer(
        resumed_model, split.train, split.valid, config, checkpoint_path=tmp_path / "s.pt"
    )
    result = resumed.fit(resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    for key, value in straight.state_dict().items():
        assert torch.allclose(resumed_model.state_dict()[key], value), key


@pytest.mark.parametrize("stop", ["time budget", "patience"])
def test_resume_of_a_run_that_stopped_early_trains_nothing_more(
    split: Split, tmp_path: Path, stop: str
) -> None:
    if stop == "time budget":
        config = TrainerConfig(max_epochs=5, learning_rate=0.01, batch_size=1024, max_seconds=1e-9)
    else:  # learning rate 0: validation never improves after epoch 1
        config = TrainerConfig(max_epochs=5, learning_rate=0.0, batch_size=1024, patience=1)
    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    first = BPRTrainer(model, split.train, split.valid, config, checkpoint_path=tmp_path / "s.pt")
    done = first.fit()
    assert done.stop_reason == stop and done.epochs_run < 5
    again = BPRTrainer(
        build_model("mf", split.train, {"embedding_dim": 8}, seed=0),
        split.train,
        split.valid,
        config,
        checkpoint_path=tmp_path / "s.pt",
    )
    resumed = again.fit(resume=True)
    assert resumed.stop_reason == stop
    assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in done.history]
    assert resumed.seconds >= again.elapsed_seconds > 0  # the old run's clock, not a new one


def test_time_budget_stops_training_and_still_validates(split: Split) -> None:
    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    config = TrainerConfig(max_epochs=1000, eval_every=50, max_seconds=0.0, patience=100)
    result = BPRTrainer(model, split.train, split.valid, config).fit()
    assert result.epochs_run == 1
    assert result.stop_reason == "time budget"
    assert "valid_ndcg@20" in result.history[0]


def test_several_negatives_train_and_loss_averages_pairs(split: Split) -> None:
    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    config = TrainerConfig(max_epochs=3, learning_rate=0.01, n_negatives=4, batch_size=512)
    trainer = BPRTrainer(model, split.train, split.valid, config)
    before = trainer.validate()
    result = trainer.fit()
    assert before is not None and result.best_valid["ndcg@20"] > before.mean["ndcg@20"]
    # an untrained model's mean pairwise loss is log 2 whatever the number of negatives
    fresh = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    with torch.no_grad():
        for table in fresh.embedding_tables().values():
            table.weight.zero_()
    zero = BPRTrainer(fresh, split.train, None, TrainerConfig(n_negatives=4, learning_rate=0.0))
    assert zero.train_epoch(1) == pytest.approx(np.log(2), abs=1e-6)


def scripted_trainer(
    split: Split,
    config: TrainerConfig,
    validation: list[float],
    checkpoint_path: Path | None = None,
) -> BPRTrainer:
    """A trainer of a small MF whose validations return ``validation``'s NDCG@20, in order."""
    from leanrec.evaluate import RankingResult

    scores = iter(validation)

    class ScriptedValidation(BPRTrainer):
        def validate(self) -> RankingResult:
            return RankingResult(
                users=np.arange(1), per_user={}, mean={"ndcg@20": next(scores)},
                n_users_skipped=0, seconds=0.0,
            )  # fmt: skip

    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=0)
    return ScriptedValidation(
        model, split.train, split.valid, config, checkpoint_path=checkpoint_path
    )


def test_learning_rate_decays_after_each_evaluation_without_improvement(split: Split) -> None:
    config = TrainerConfig(max_epochs=4, learning_rate=0.1, lr_decay=0.5, patience=100)
    trainer = scripted_trainer(split, config, [0.5, 0.4, 0.45, 0.6])
    trainer.fit()
    # epochs 2 and 3 do not beat 0.5: two halvings; epoch 4 improves: no more
    assert all(g["lr"] == pytest.approx(0.025) for g in trainer.optimizer.param_groups)
    assert trainer.best_epoch == 4
    # the rule read back from the history (what a refit starts from)
    rates = [learning_rate_at(trainer.history, trainer.config, e) for e in (1, 2, 3, 4, 5)]
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.025])


def test_min_epochs_keeps_early_evaluations_from_stopping_or_decaying(split: Split) -> None:
    plateau_then_learning = [0.30, 0.29, 0.29, 0.28, 0.40, 0.35, 0.34]
    plain = TrainerConfig(max_epochs=7, learning_rate=0.1, lr_decay=0.5, patience=2)
    stopped = scripted_trainer(split, plain, plateau_then_learning).fit()
    # without a warm-up the plateau stops it at epoch 3, before it learns
    assert stopped.stop_reason == "patience" and stopped.epochs_run == 3
    assert stopped.best_epoch == 1
    warm = dataclasses.replace(plain, min_epochs=4)
    trainer = scripted_trainer(split, warm, plateau_then_learning)
    result = trainer.fit()
    # epochs 2-4 count for nothing; epoch 5 improves; epochs 6 and 7 are the two bad ones
    assert result.best_epoch == 5 and result.epochs_run == 7
    assert result.stop_reason == "patience"
    assert all(g["lr"] == pytest.approx(0.025) for g in trainer.optimizer.param_groups)
    rates = [learning_rate_at(trainer.history, warm, e) for e in (4, 5, 6, 7, 8)]
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.025])


def test_min_delta_counts_tiny_gains_as_no_improvement_but_keeps_the_best(split: Split) -> None:
    creeping = [0.30, 0.305, 0.308, 0.309, 0.35]
    plain = TrainerConfig(max_epochs=5, learning_rate=0.1, lr_decay=0.5, patience=3)
    assert scripted_trainer(split, plain, creeping).fit().epochs_run == 5
    strict = dataclasses.replace(plain, min_delta=0.01)
    trainer = scripted_trainer(split, strict, creeping)
    result = trainer.fit()
    # +0.005, +0.003, +0.001 over 0.30: three bad evaluations, three halvings, stop at epoch 4
    assert result.stop_reason == "patience" and result.epochs_run == 4
    assert result.best_epoch == 4  # the tiny gains are still the best weights
    assert all(g["lr"] == pytest.approx(0.0125) for g in trainer.optimizer.param_groups)
    rates = [learning_rate_at(trainer.history, strict, e) for e in (1, 2, 3, 4, 5)]
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125])


def test_min_delta_reference_survives_a_resume(split: Split, tmp_path: Path) -> None:
    # 0.318 is more than 0.01 above the reference 0.30, though only 0.009 above the best 0.309:
    # it resets patience only if the reference survives the resume
    scores = [0.30, 0.309, 0.318, 0.319, 0.320]
    config = TrainerConfig(max_epochs=5, learning_rate=0.1, patience=2, min_delta=0.01)
    whole = scripted_trainer(split, config, scores).fit()
    assert whole.epochs_run == 5 and whole.best_epoch == 5
    path = tmp_path / "s.pt"
    first = dataclasses.replace(config, max_epochs=2)
    scripted_trainer(split, first, scores[:2], checkpoint_path=path).fit()
    resumed = scripted_trainer(split, config, scores[2:], checkpoint_path=path).fit(resume=True)
    assert (resumed.epochs_run, resumed.best_epoch) == (5, 5)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5]


def test_validate_initial_keeps_the_starting_weights_when_no_epoch_beats_them(
    split: Split,
) -> None:
    config = TrainerConfig(
        max_epochs=10, learning_rate=0.1, lr_decay=0.5, patience=2, validate_initial=True
    )
    trainer = scripted_trainer(split, config, [0.5, 0.45, 0.48, 0.6])
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.fit()
    # epochs 1 and 2 are below the start's 0.5: two bad evaluations, two halvings, stop
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    assert result.best_epoch == 0 and result.best_valid == {"ndcg@20": 0.5}
    assert result.stop_reason == "patience" and result.epochs_run == 2
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in start.items())
    assert all(g["lr"] == pytest.approx(0.025) for g in trainer.optimizer.param_groups)
    assert [learning_rate_at(trainer.history, config, e) for e in (1, 2, 3)] == pytest.approx(
        [0.1, 0.05, 0.025]
    )
    # without it the same scores pick epoch 2 (epoch 1 is the first evaluation)
    plain = dataclasses.replace(config, validate_initial=False)
    assert scripted_trainer(split, plain, [0.45, 0.48, 0.44, 0.43]).fit().best_epoch == 2


def test_validate_initial_is_not_repeated_by_a_resume(split: Split, tmp_path: Path) -> None:
    config = TrainerConfig(max_epochs=3, learning_rate=0.1, patience=5, validate_initial=True)
    path = tmp_path / "s.pt"
    first = dataclasses.replace(config, max_epochs=1)
    scripted_trainer(split, first, [0.5, 0.4], checkpoint_path=path).fit()
    # two scores left for epochs 2 and 3: a repeated epoch-0 evaluation would run out of them
    resumed = scripted_trainer(split, config, [0.55, 0.3], checkpoint_path=path).fit(resume=True)
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3]
    assert resumed.best_epoch == 2 and resumed.best_valid == {"ndcg@20": 0.55}


def test_a_saved_config_with_the_old_epochs_key_still_loads() -> None:
    saved = dataclasses.asdict(TrainerConfig(max_epochs=7, patience=3))
    saved["epochs"] = saved.pop("max_epochs")  # a config.json written before the rename
    with pytest.warns(DeprecationWarning, match="'epochs' is now 'max_epochs'"):
        loaded = TrainerConfig.from_dict(saved)
    assert loaded == TrainerConfig(max_epochs=7, patience=3)
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="no_such_field"):
        TrainerConfig.from_dict({**saved, "no_such_field": 1})
    with pytest.warns(DeprecationWarning):
        assert TrainerConfig.from_dict({**saved, "no_such_field": 1}, drop_unknown=True) == loaded
