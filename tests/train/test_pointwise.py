"""Pointwise CTR training: learning, best-epoch selection, NaN, time budget, evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.data.behavior import BehaviorSamples
from leanrec.evaluate.pointwise import auc, log_loss
from leanrec.models.ctr import CTRModel, build_ctr_model
from leanrec.train import pointwise
from leanrec.train.bpr import TrainingError
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, evaluate_ctr
from tests.models.ctr.synthetic import make_samples

SMALL = {"embedding_dim": 8, "mlp_dims": (32, 16)}


@pytest.fixture(scope="module")
def data() -> tuple[BehaviorSamples, BehaviorSamples]:
    train, _ = make_samples(6000, seed=1)
    valid, _ = make_samples(2000, seed=2)
    return train, valid


def small_model(name: str = "deepfm") -> CTRModel:
    return build_ctr_model(name, make_samples(1)[0].feature_map, seed=0, **SMALL)


def test_trainer_learns_the_synthetic_data_and_keeps_the_best_epoch(
    data: tuple[BehaviorSamples, BehaviorSamples],
) -> None:
    train, valid = data
    model = small_model("din")
    config = CTRTrainerConfig(batch_size=256, learning_rate=3e-3, max_epochs=4, num_threads=1)
    result = CTRTrainer(config).fit(model, train, valid)
    aucs = [record["valid_auc"] for record in result.history]
    assert result.best_valid["auc"] > 0.75
    assert result.best_valid["auc"] == max(aucs)
    assert result.best_epoch == int(np.argmax(aucs)) + 1
    # the model holds the best epoch's weights: re-evaluating reproduces its numbers
    assert evaluate_ctr(model, valid) == pytest.approx(result.best_valid, abs=1e-9)
    assert result.seconds < 30
    assert result.samples_per_second > 0
    assert result.history[0]["samples_per_second"] > 0
    assert result.extra["parameters"]["embedding"] == model.embedding_parameters()
    assert not model.training


def test_best_state_is_restored_when_later_epochs_are_worse(
    data: tuple[BehaviorSamples, BehaviorSamples], monkeypatch: pytest.MonkeyPatch
) -> None:
    train, valid = data
    small_train = train.subset(np.arange(512))
    scripted = iter([0.6, 0.8, 0.7, 0.65, 0.9])

    def fake_evaluate(model: CTRModel, samples: BehaviorSamples, batch_size: int) -> dict:
        return {"auc": next(scripted), "logloss": 0.5}

    monkeypatch.setattr(pointwise, "evaluate_ctr", fake_evaluate)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def snapshot(epoch: int, record: dict[str, float]) -> None:
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    model = small_model()
    config = CTRTrainerConfig(batch_size=128, max_epochs=10, patience=2)
    result = CTRTrainer(config, on_epoch=snapshot).fit(model, small_train, valid)
    assert result.best_epoch == 2
    assert result.best_valid == {"auc": 0.8, "logloss": 0.5}
    assert result.stop_reason == "patience" and result.epochs_run == 4
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in snapshots[2].items())
    assert not all(torch.equal(state[k], v) for k, v in snapshots[4].items())


def test_validate_initial_keeps_the_starting_weights_when_no_epoch_beats_them(
    data: tuple[BehaviorSamples, BehaviorSamples], monkeypatch: pytest.MonkeyPatch
) -> None:
    train, valid = data
    scripted = iter([0.9, 0.8, 0.85, 0.7])  # epoch 0 (the starting weights), then 1, 2, 3

    def fake_evaluate(model: CTRModel, samples: BehaviorSamples, batch_size: int) -> dict:
        return {"auc": next(scripted), "logloss": 0.5}

    monkeypatch.setattr(pointwise, "evaluate_ctr", fake_evaluate)
    model = small_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    config = CTRTrainerConfig(batch_size=128, max_epochs=10, patience=2, validate_initial=True)
    result = CTRTrainer(config).fit(model, train.subset(np.arange(512)), valid)
    assert result.best_epoch == 0 and result.best_valid == {"auc": 0.9, "logloss": 0.5}
    assert result.stop_reason == "patience" and result.epochs_run == 2
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in start.items())


def test_nan_loss_raises_training_error(data: tuple[BehaviorSamples, BehaviorSamples]) -> None:
    train, valid = data
    model = small_model()
    with torch.no_grad():
        model.embedding_tables()["user_id"].weight.fill_(float("nan"))  # type: ignore[operator]
    with pytest.raises(TrainingError, match=r"deepfm: loss became nan at epoch 1, batch 0"):
        CTRTrainer(CTRTrainerConfig(batch_size=256)).fit(model, train, valid)


def test_time_budget_stops_after_one_batch_and_still_evaluates(
    data: tuple[BehaviorSamples, BehaviorSamples],
) -> None:
    train, valid = data
    config = CTRTrainerConfig(batch_size=100, max_seconds=0.0, max_epochs=5)
    result = CTRTrainer(config).fit(small_model("xdeepfm"), train, valid)
    assert result.stop_reason == "time budget" and result.stopped_early
    assert result.epochs_run == 1
    assert result.train_seconds > 0
    assert result.samples_per_second == pytest.approx(100 / result.train_seconds)
    assert set(result.best_valid) == {"auc", "logloss"}


def test_without_validation_the_last_epoch_is_kept_and_l2_runs(
    data: tuple[BehaviorSamples, BehaviorSamples],
) -> None:
    train, _ = data
    config = CTRTrainerConfig(batch_size=256, max_epochs=2, l2=1e-2)
    result = CTRTrainer(config).fit(small_model("wide_deep"), train.subset(np.arange(1000)))
    assert result.best_epoch == 2 and result.best_valid == {}
    assert result.stop_reason == "epochs"
    assert all(np.isfinite(r["loss"]) for r in result.history)


def test_evaluate_ctr_matches_the_metrics_and_restores_the_mode(
    data: tuple[BehaviorSamples, BehaviorSamples],
) -> None:
    _, valid = data
    model = small_model("dnn")
    model.train()
    metrics = evaluate_ctr(model, valid, batch_size=300)
    assert model.training
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(valid.batch(np.arange(len(valid)))))
    assert metrics["auc"] == pytest.approx(auc(valid.labels, probs), abs=1e-12)
    assert metrics["logloss"] == pytest.approx(log_loss(valid.labels, probs), rel=1e-6)
    with pytest.raises(ValueError, match="empty"):
        evaluate_ctr(model, valid.subset(np.arange(0)))


def test_cosine_factor_matches_hand_computed_values() -> None:
    config = CTRTrainerConfig(lr_schedule="cosine")
    assert config.lr_factor(0, 8) == pytest.approx(1.0)
    assert config.lr_factor(2, 8) == pytest.approx((1 + np.cos(np.pi / 4)) / 2)  # 0.8536
    assert config.lr_factor(4, 8) == pytest.approx(0.5)
    assert config.lr_factor(8, 8) == pytest.approx(0.0, abs=1e-12)
    second_half = CTRTrainerConfig(lr_schedule="cosine", schedule_window=(0.5, 1.0))
    assert second_half.lr_factor(0, 8) == pytest.approx(0.5)  # picks up where (0, 0.5) ended
    assert second_half.lr_factor(4, 8) == pytest.approx((1 + np.cos(0.75 * np.pi)) / 2)
    assert CTRTrainerConfig().lr_factor(5, 8) == 1.0
    with pytest.raises(ValueError, match="lr_schedule"):
        CTRTrainerConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="schedule_window"):
        CTRTrainerConfig(lr_schedule="cosine", schedule_window=(0.6, 0.4))


def test_cosine_schedule_sets_each_batch_step_size(
    data: tuple[BehaviorSamples, BehaviorSamples], monkeypatch: pytest.MonkeyPatch
) -> None:
    train, _ = data
    seen: list[float] = []
    real_step = torch.optim.Adam.step

    def recording_step(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    subset = train.subset(np.arange(512))  # 4 batches of 128 per epoch, 2 epochs: S = 8
    config = CTRTrainerConfig(
        batch_size=128, max_epochs=2, learning_rate=0.01, lr_schedule="cosine"
    )
    CTRTrainer(config).fit(small_model(), subset)
    expected = [0.01 * (1 + np.cos(np.pi * s / 8)) / 2 for s in range(8)]
    assert seen == pytest.approx(expected)


class _KilledError(Exception):
    pass


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(
    data: tuple[BehaviorSamples, BehaviorSamples], tmp_path
) -> None:
    train, valid = data
    config = CTRTrainerConfig(
        batch_size=512, learning_rate=3e-3, max_epochs=3, num_threads=1, lr_schedule="cosine"
    )
    whole = small_model()
    uninterrupted = CTRTrainer(config).fit(whole, train, valid)

    def kill_after_first_epoch(epoch: int, record: dict) -> None:
        if epoch == 1:
            raise _KilledError  # after the checkpoint of epoch 1 is written

    path = tmp_path / "train_state.pt"
    with pytest.raises(_KilledError):
        CTRTrainer(config, kill_after_first_epoch, checkpoint_path=path).fit(
            small_model(), train, valid
        )
    assert path.exists()
    resumed_model = small_model()
    resumed = CTRTrainer(config, checkpoint_path=path).fit(resumed_model, train, valid, True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.best_epoch == uninterrupted.best_epoch
    assert resumed.best_valid == uninterrupted.best_valid
    for (name, mine), theirs in zip(
        resumed_model.state_dict().items(), whole.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, theirs), name
