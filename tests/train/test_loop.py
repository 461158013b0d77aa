"""The epoch loop on its own: a scripted trainer whose validation values are set by hand, so
every stop, best epoch and step size below is worked out in a comment."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from leanrec.train import loop
from leanrec.train.bpr import TrainerConfig
from leanrec.train.checkpoint import load_checkpoint
from leanrec.train.loop import EpochLoop, EpochOutcome, LoopConfig
from leanrec.train.pointwise import CTRTrainerConfig

TIMING = {"train_seconds", "eval_seconds", "samples_per_second"}


class KilledError(RuntimeError):
    """Stands for a kill in the middle of an epoch."""


class ScriptedTrainer(EpochLoop[torch.nn.Linear]):
    """A one-weight model; each epoch moves the weight by ``lr · (numpy draw + torch draw)``
    (both generators, as sampling and dropout would). Validation returns ``scores[epoch]``, or
    without scores ``-|w - 1|`` of the current weight."""

    def __init__(
        self,
        scores: list[float] | None = None,
        kill_at: int | None = None,
        checkpoint_path: Path | None = None,
        first_scored_epoch: int = 1,
    ) -> None:
        self.model = torch.nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.model.weight.zero_()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1.0)
        self.rng = np.random.default_rng(0)
        self.checkpoint_path = checkpoint_path
        self.scores = scores
        self.first_scored_epoch = first_scored_epoch
        self.kill_at = kill_at
        self.rates: dict[int, float] = {}
        """Step size each epoch trained with."""
        self.weights: dict[int, float] = {}
        """Weight after each epoch (seen by the hook)."""
        self.validated: list[int] = []
        self.on_epoch = self._remember
        self._reset_progress()

    def _remember(self, epoch: int, record: dict[str, float]) -> None:
        self.weights[epoch] = self.weight

    @property
    def weight(self) -> float:
        return float(self.model.weight.detach()[0, 0])

    def train_step(self, epoch: int) -> EpochOutcome:
        rate = self.optimizer.param_groups[0]["lr"]
        self.rates[epoch] = rate
        with torch.no_grad():
            self.model.weight.add_(rate * (self.rng.normal() + float(torch.randn(()))))
        if epoch == self.kill_at:
            raise KilledError(f"killed in epoch {epoch}")
        return EpochOutcome(loss=self.weight**2)

    def validate_step(self, epoch: int) -> dict[str, float]:
        self.validated.append(epoch)
        if self.scores is None:
            return {"valid_score": -abs(self.weight - 1.0)}
        return {"valid_score": self.scores[epoch - self.first_scored_epoch]}


def rules(**settings: object) -> LoopConfig:
    base: dict[str, object] = {"max_epochs": 10, "patience": 100, "metric": "valid_score"}
    return LoopConfig(**{**base, **settings})  # type: ignore[arg-type]


def without_timing(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in record.items() if k not in TIMING} for record in history]


# ---------------------------------------------------------------------------- early stopping
def test_patience_stops_at_the_third_evaluation_without_improvement() -> None:
    # best 0.3 at epoch 2; 0.2, 0.25 and an equal 0.3 (no gain) are the three bad ones
    trainer = ScriptedTrainer([0.1, 0.3, 0.2, 0.25, 0.3, 0.29, 0.5])
    result = trainer.run_epochs(rules(patience=3))
    assert (result.stop_reason, result.epochs_run, result.best_epoch) == ("patience", 5, 2)
    assert result.stopped_early and result.best_valid == {"score": 0.3}
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    assert trainer.weight == trainer.weights[2] != trainer.weights[5]  # epoch 2's weights back


def test_a_run_without_a_stop_trains_every_epoch_and_keeps_the_best() -> None:
    trainer = ScriptedTrainer([0.1, 0.4, 0.2])
    result = trainer.run_epochs(rules(max_epochs=3, patience=2))
    assert (result.stop_reason, result.epochs_run, result.best_epoch) == ("epochs", 3, 2)
    assert not result.stopped_early


def test_min_delta_counts_tiny_gains_as_none_but_keeps_their_weights() -> None:
    creeping = [0.30, 0.305, 0.308, 0.309, 0.35]
    # without min_delta every step is a gain: all five epochs, the last is best
    plain = ScriptedTrainer(creeping).run_epochs(rules(max_epochs=5, patience=3))
    assert (plain.epochs_run, plain.best_epoch) == (5, 5)
    # +0.005, +0.008, +0.009 over 0.30 are not more than 0.01: three bad, stop at epoch 4;
    # the weights of the best value (0.309, epoch 4) are still kept
    strict = ScriptedTrainer(creeping).run_epochs(rules(max_epochs=5, patience=3, min_delta=0.01))
    assert (strict.stop_reason, strict.epochs_run, strict.best_epoch) == ("patience", 4, 4)
    # the CTR rule: only a gain of more than min_delta moves the best weights (epoch 1 stays)
    ctr = ScriptedTrainer(creeping).run_epochs(
        rules(max_epochs=5, patience=3, min_delta=0.01, best_needs_min_delta=True)
    )
    assert (ctr.stop_reason, ctr.epochs_run, ctr.best_epoch) == ("patience", 4, 1)


def test_min_delta_is_measured_from_the_value_that_last_reset_patience() -> None:
    # 0.309 is bad (+0.009); 0.318 is 0.018 above the reference 0.30 though only 0.009 above
    # the best 0.309: it resets patience; 0.319 and 0.320 are bad again: stop at 5 (a reference
    # that followed the best would have stopped at 3)
    scores = [0.30, 0.309, 0.318, 0.319, 0.320]
    result = ScriptedTrainer(scores).run_epochs(rules(max_epochs=5, patience=2, min_delta=0.01))
    assert (result.stop_reason, result.epochs_run, result.best_epoch) == ("patience", 5, 5)


def test_min_epochs_warm_up_neither_stops_nor_decays() -> None:
    plateau_then_learning = [0.30, 0.29, 0.29, 0.28, 0.40, 0.35, 0.34]
    # no warm-up: epochs 2 and 3 are two bad evaluations, stop at 3 before it learns
    plain = ScriptedTrainer(plateau_then_learning).run_epochs(rules(patience=2, lr_decay=0.5))
    assert (plain.stop_reason, plain.epochs_run, plain.best_epoch) == ("patience", 3, 1)
    # warm-up of 4 epochs: 2-4 count for nothing; 5 improves; 6 and 7 are the two bad ones
    trainer = ScriptedTrainer(plateau_then_learning)
    warm = trainer.run_epochs(rules(patience=2, lr_decay=0.5, min_epochs=4))
    assert (warm.stop_reason, warm.epochs_run, warm.best_epoch) == ("patience", 7, 5)
    assert trainer.rates == {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.0, 7: 0.5}
    assert trainer.optimizer.param_groups[0]["lr"] == 0.25


# ---------------------------------------------------------------------------- cadence and decay
def test_lr_decays_after_each_counted_evaluation_on_the_eval_every_cadence() -> None:
    # eval_every 2 with 7 epochs: validations at 2, 4, 6 and 7 (the last epoch always)
    by_epoch = [0.0, 0.0, 0.5, 0.0, 0.4, 0.0, 0.45, 0.6]
    trainer = ScriptedTrainer(by_epoch, first_scored_epoch=0)
    result = trainer.run_epochs(rules(max_epochs=7, eval_every=2, lr_decay=0.5))
    assert trainer.validated == [2, 4, 6, 7]
    # 0.5 at 2 improves; 0.4 at 4 and 0.45 at 6 do not (halvings after 4 and after 6);
    # 0.6 at 7 improves
    assert trainer.rates == {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 0.5, 6: 0.5, 7: 0.25}
    assert result.best_epoch == 7 and trainer.optimizer.param_groups[0]["lr"] == 0.25
    assert [("valid_score" in r) for r in result.history] == [False, True] * 3 + [True]


def test_validate_initial_makes_the_start_epoch_zero_and_can_keep_it() -> None:
    # the start scores 0.5; epochs 1 and 2 are below it: two bad evaluations, two halvings
    trainer = ScriptedTrainer([0.5, 0.45, 0.48, 0.6], first_scored_epoch=0)
    result = trainer.run_epochs(rules(patience=2, lr_decay=0.5, validate_initial=True))
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    assert (result.best_epoch, result.epochs_run, result.stop_reason) == (0, 2, "patience")
    assert trainer.weight == 0.0  # the starting weight is back
    assert sorted(trainer.weights) == [0, 1, 2]  # the hook saw epoch 0 too
    assert trainer.optimizer.param_groups[0]["lr"] == 0.25


def test_without_validation_the_last_epoch_is_the_best() -> None:
    class Unvalidated(ScriptedTrainer):
        def validate_step(self, epoch: int) -> dict[str, float]:
            return {}

    trainer = Unvalidated()
    result = trainer.run_epochs(rules(max_epochs=3, patience=0, has_validation=False))
    assert (result.best_epoch, result.epochs_run, result.stop_reason) == (3, 3, "epochs")
    assert result.best_valid == {} and trainer.weight == trainer.weights[3]


# ---------------------------------------------------------------------------- time budget
@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A clock for the loop that only moves when a test moves it: ``clock[0]`` seconds."""
    now = [0.0]
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    return now


class TimedTrainer(ScriptedTrainer):
    """Every epoch takes 1 s of training and 0.6 s of validation on the fake clock."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__([0.1 * e for e in range(1, 11)])
        self.clock = clock

    def train_step(self, epoch: int) -> EpochOutcome:
        self.clock[0] += 1.0
        return super().train_step(epoch)

    def validate_step(self, epoch: int) -> dict[str, float]:
        self.clock[0] += 0.6
        return super().validate_step(epoch)


def test_time_budget_stops_after_the_epoch_that_spends_it(clock: list[float]) -> None:
    # nothing validated on the way (eval_every 10): the clock after training epoch e reads e s,
    # so 2.5 s are spent once epoch 3 trains; that epoch is still validated (3.6 s in all)
    trainer = TimedTrainer(clock)
    result = trainer.run_epochs(rules(eval_every=10, max_seconds=2.5))
    assert (result.stop_reason, result.epochs_run) == ("time budget", 3)
    assert trainer.validated == [3] and result.best_epoch == 3
    assert result.seconds == pytest.approx(3.6)


def test_end_of_epoch_budget_check_counts_the_validation(clock: list[float]) -> None:
    # budget 1.5 s: epoch 1 trains to 1.0 (in budget) and validates to 1.6
    after_training = TimedTrainer(clock).run_epochs(rules(max_seconds=1.5))
    assert after_training.epochs_run == 2  # checked after training only: epoch 2 starts
    clock[0] = 0.0
    end_of_epoch = TimedTrainer(clock).run_epochs(
        rules(max_seconds=1.5, budget_check="end_of_epoch")
    )
    assert (end_of_epoch.stop_reason, end_of_epoch.epochs_run) == ("time budget", 1)


def test_a_step_that_runs_out_of_time_itself_ends_the_run() -> None:
    class OutOfTime(ScriptedTrainer):
        def train_step(self, epoch: int) -> EpochOutcome:
            return dataclasses.replace(super().train_step(epoch), budget_spent=True)

    trainer = OutOfTime([0.3, 0.4])
    result = trainer.run_epochs(rules(eval_every=5))
    assert (result.stop_reason, result.epochs_run, trainer.validated) == ("time budget", 1, [1])


# ---------------------------------------------------------------------------- kill and resume
@pytest.mark.parametrize("kill_at", [3, 7])
def test_a_killed_run_resumes_to_the_same_result(tmp_path: Path, kill_at: int) -> None:
    settings = rules(max_epochs=12, eval_every=2, patience=3, lr_decay=0.5, validate_initial=True)
    whole_trainer = ScriptedTrainer()
    whole = whole_trainer.run_epochs(settings)
    assert whole.epochs_run > kill_at  # the kill happens before the run would end

    path = tmp_path / "state.pt"
    with pytest.raises(KilledError):
        ScriptedTrainer(kill_at=kill_at, checkpoint_path=path).run_epochs(settings)
    # the last checkpoint is of the last validated epoch before the kill
    saved_epoch = int(load_checkpoint(path)["epoch"])
    assert saved_epoch == (kill_at - 1) // 2 * 2
    resumed_trainer = ScriptedTrainer(checkpoint_path=path)
    resumed = resumed_trainer.run_epochs(settings, resume=True)
    # it trained only the epochs after the checkpoint, at the decayed step sizes it had reached
    after = range(saved_epoch + 1, whole.epochs_run + 1)
    assert resumed_trainer.rates == {e: whole_trainer.rates[e] for e in after}

    assert (resumed.best_epoch, resumed.epochs_run, resumed.stop_reason) == (
        whole.best_epoch,
        whole.epochs_run,
        whole.stop_reason,
    )
    assert without_timing(resumed.history) == without_timing(whole.history)
    assert resumed_trainer.weight == whole_trainer.weight  # the same best weights
    rates = [t.optimizer.param_groups[0]["lr"] for t in (resumed_trainer, whole_trainer)]
    assert rates[0] == rates[1]


def test_a_resume_of_a_finished_run_trains_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    first = ScriptedTrainer([0.5, 0.4, 0.3], checkpoint_path=path)
    done = first.run_epochs(rules(patience=2))
    assert (done.stop_reason, done.epochs_run, done.best_epoch) == ("patience", 3, 1)
    again = ScriptedTrainer([], checkpoint_path=path)  # no scores: any validation would fail
    resumed = again.run_epochs(rules(patience=2), resume=True)
    assert (resumed.stop_reason, resumed.epochs_run, resumed.best_epoch) == ("patience", 3, 1)
    assert again.rates == {} and again.weight == first.weight == first.weights[1]


# ---------------------------------------------------------------------------- configs
def test_loop_config_reads_the_same_named_fields_of_each_trainer_config() -> None:
    bpr = LoopConfig.matching(
        TrainerConfig(max_epochs=7, patience=3, lr_decay=0.5, min_epochs=2, seed=5),
        metric="valid_ndcg@20",
    )
    assert (bpr.max_epochs, bpr.patience, bpr.lr_decay, bpr.min_epochs, bpr.seed) == (
        7, 3, 0.5, 2, 5,
    )  # fmt: skip
    ctr = LoopConfig.matching(CTRTrainerConfig(max_epochs=4), metric="valid_auc", eval_every=1)
    assert (ctr.max_epochs, ctr.patience, ctr.lr_decay, ctr.metric) == (4, 2, 1.0, "valid_auc")
