"""The ``leanrec`` controller (a learned model of the reward), the actor-critic variant of the
``paper`` controller, and the method variants: numbers derived by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from leanrec.search.adaptive import METHODS, AdaptiveConfig, AdaptiveExperiment, Controller
from leanrec.search.adaptive.baselines import AdaptiveController
from leanrec.search.adaptive.capacity import MIN_MEASUREMENTS, CapacityController
from leanrec.search.adaptive.config import controller_preset
from leanrec.search.adaptive.policy import SessionObservation
from leanrec.search.adaptive.tower import ArchitectureChange, build_model, tower_parameters


def observation(widths: tuple[int, ...] = (200, 80)) -> SessionObservation:
    return SessionObservation(
        widths=widths, parameter_share=0.137, first_loss=0.60, first_auc=0.70,
        previous_loss=0.58, new_user_share=0.1, new_item_share=0.05, item_drift=0.4,
        label_drift=0.02,
    )  # fmt: skip


# ---------------------------------------------------------------------------------- counting
@pytest.mark.parametrize("widths", [(64, 32), (200, 80), (512, 256, 128), (16,)])
def test_tower_parameters_count_as_the_tower_does(widths: tuple[int, ...]) -> None:
    experiment = AdaptiveExperiment(model="deepfm")
    _, tower = build_model(experiment, widths, seed=0)
    assert tower_parameters(tower.input_dim, widths) == tower.num_parameters()
    # DeepFM's default on a 48-wide input: 48·200 + 200 + 200·80 + 80 + 80 = 25,960
    assert tower_parameters(48, (200, 80)) == 25960


# ---------------------------------------------------------------------------------- capacity
def _controller(penalty: float = 0.02, **changes: float) -> CapacityController:
    config = AdaptiveConfig(algorithm="capacity_model", penalty=penalty, **changes)  # type: ignore[arg-type]
    # input 48: reference 64-32 = 48·64 + 64 + 64·32 + 32 + 32 = 5,248; large 189,440
    return CapacityController(config, 48, 5248, 189440)


def test_capacity_value_is_the_auc_gap_per_doubling() -> None:
    controller = _controller()
    # 200-80 has 25,960 parameters: u = log2(25,960 / 5,248) = 2.3065 doublings
    u = math.log2(25960 / 5248)
    out = controller.learn(0.80, 0.79, (200, 80))
    assert out["doublings"] == pytest.approx(u)
    assert out["capacity_value"] == pytest.approx(0.01 / u)
    # a tower as large as the reference measures nothing (|u| < 0.25)
    out = controller.learn(0.80, 0.70, (64, 32))
    assert "capacity_value" not in out and controller.values == [pytest.approx(0.01 / u)]
    # no reference AUC: nothing measured, but the session counts for the recency weights
    controller.learn(0.80, None, (200, 80))
    assert controller.learned == 3


def test_estimate_is_recency_weighted_with_its_standard_error() -> None:
    controller = _controller(capacity_halflife=1.0)
    for value in (0.004, 0.001, 0.002):  # u = 1 exactly: P = 2 · 5,248
        controller.values.append(value)
        controller.sessions.append(controller.learned)
        controller.learned += 1
    mean, error = controller.estimate()  # type: ignore[misc]
    # weights 1/4, 1/2, 1 (ages 2, 1, 0): mean = (0.001 + 0.0005 + 0.002) / 1.75 = 0.002
    assert mean == pytest.approx(0.002)
    # variance = (¼·0.002² + ½·0.001² + 1·0) / 1.75 = 1.5e-6 / 1.75; n_eff = 1.75² / 1.3125
    variance = (0.25 * 0.002**2 + 0.5 * 0.001**2) / 1.75
    assert error == pytest.approx(math.sqrt(variance / (1.75**2 / 1.3125)))


def test_no_change_before_enough_measurements() -> None:
    controller = _controller(penalty=0.0)  # growth is free: any positive value would grow
    for _ in range(MIN_MEASUREMENTS - 1):
        controller.learn(0.80, 0.70, (200, 80))
        assert controller.decide(observation()) == ArchitectureChange((0, 0))
    controller.learn(0.80, 0.70, (200, 80))
    assert controller.decide(observation()) == ArchitectureChange((32, 32))


def test_the_decision_prices_each_candidate() -> None:
    controller = _controller(penalty=0.02, confidence=0.0)
    controller.values, controller.sessions, controller.learned = [0.003] * 3, [0, 1, 2], 3
    scores = {c.width_deltas: (gain, margin) for c, gain, margin in controller.scores((200, 80))}
    # +32 on both: 232-112 has 48·232 + 232 + 232·112 + 112 + 112 = 37,576 parameters;
    # gain = 0.003 · log2(37,576 / 25,960) − 0.02 · (37,576 − 25,960) / 189,440
    expected = 0.003 * math.log2(37576 / 25960) - 0.02 * 11616 / 189440
    assert scores[(32, 32)][0] == pytest.approx(expected)
    assert scores[(0, 0)] == (0.0, 0.0)
    best = max(scores, key=lambda d: scores[d][0])
    assert controller.decide(observation()).width_deltas == best
    # a capacity value of zero: every growth costs, every shrink saves: shrink by 32
    controller.values = [0.0] * 3
    assert controller.decide(observation()) == ArchitectureChange((-32, -32))


def test_a_noisy_estimate_keeps_the_tower() -> None:
    controller = _controller(penalty=0.0, confidence=1.0)
    # weights ¼, ½, 1: mean (0.00275 − 0.0045 + 0.001) / 1.75 = −0.0004, spread ±0.01: the gain
    # of shrinking (0.0004 per doubling) is far below one standard error (about 0.004)
    controller.values, controller.sessions = [0.011, -0.009, 0.001], [0, 1, 2]
    controller.learned = 3
    assert controller.decide(observation()) == ArchitectureChange((0, 0))


def test_candidates_are_cut_to_the_limits() -> None:
    controller = _controller()
    deltas = [c.width_deltas for c in controller.candidates((16, 500))]
    # -32 and -16 both cut to 0 on the first layer; +16 and +32 cut to +12 on the second
    assert deltas == [(0, -32), (0, -16), (0, 0), (16, 12), (32, 12)]


def test_capacity_controller_state_round_trips() -> None:
    first = _controller(shift_threshold=6.0)
    for auc in (0.80, 0.81, 0.79, 0.82):
        first.decide(observation())
        first.learn(auc, 0.78, (200, 80))
    second = _controller(shift_threshold=6.0)
    second.load_state_dict(first.state_dict())
    assert second.estimate() == first.estimate()
    assert second.item_drifts == first.item_drifts == [0.4] * 4
    assert second.decide(observation()) == first.decide(observation())
    assert second.last_shift == first.last_shift


def test_shrinks_stop_at_the_floor() -> None:
    controller = _controller(penalty=0.02, confidence=0.0, floor_widths=(64, 32))
    controller.values, controller.sessions, controller.learned = [0.0] * 3, [0, 1, 2], 3
    # capacity worth nothing: shrink by 32 from 200-80, but from 80-40 only to 64-32 (the floor
    # cuts −32 to −16 and −8), and at the floor nothing is left to shrink: keep
    assert controller.decide(observation((200, 80))) == ArchitectureChange((-32, -32))
    assert controller.decide(observation((80, 40))) == ArchitectureChange((-16, -8))
    assert controller.decide(observation((64, 32))) == ArchitectureChange((0, 0))
    deltas = [c.width_deltas for c in controller.candidates((64, 32))]
    assert deltas == [(0, 0), (16, 16), (32, 32)]
    # a layer already below its floor is not shrunk further, nor pushed up by the floor
    assert controller.floor((40, 16)) == (40, 16)


def _drifted(item_drift: float, widths: tuple[int, ...] = (64, 32)) -> SessionObservation:
    return SessionObservation(
        widths=widths, parameter_share=0.028, first_loss=0.60, first_auc=0.70,
        previous_loss=0.58, new_user_share=0.0, new_item_share=0.0, item_drift=item_drift,
        label_drift=0.0,
    )  # fmt: skip


def test_a_shift_of_the_input_grows_at_once() -> None:
    controller = _controller(penalty=0.02, shift_threshold=6.0, floor_widths=(64, 32))
    # no measurement yet (the estimate would keep): history 0.26, 0.27, 0.28 (mean 0.27,
    # sd 0.01); 0.30 is 3 sd above: no shift; 0.81 is (0.81 − 0.2775) / sd(0.26..0.30) far above
    for drift in (0.26, 0.27, 0.28):
        assert controller.decide(_drifted(drift)) == ArchitectureChange((0, 0))
        assert controller.last_shift is None or abs(controller.last_shift) < 6.0
    assert controller.decide(_drifted(0.30)) == ArchitectureChange((0, 0))
    assert controller.last_shift == pytest.approx(3.0)
    history = np.array([0.26, 0.27, 0.28, 0.30])
    assert not controller.shifted
    change = controller.decide(_drifted(0.81))
    assert change == ArchitectureChange((32, 32)) and controller.shifted
    assert controller.last_shift == pytest.approx((0.81 - history.mean()) / history.std(ddof=1))
    # at the width limit the rule has nothing to grow: the priced decision (keep) stands
    assert controller.decide(_drifted(5.0, (512, 512))) == ArchitectureChange((0, 0))
    assert not controller.shifted
    # without the rule the same drift changes nothing
    plain = _controller(penalty=0.02)
    for drift in (0.26, 0.27, 0.28, 0.30, 0.81):
        assert plain.decide(_drifted(drift)) == ArchitectureChange((0, 0))


# ---------------------------------------------------------------------------------- actor-critic
def test_actor_critic_steps_once_the_next_state_is_known() -> None:
    config = AdaptiveConfig(algorithm="actor_critic", entropy_bonus=0.0, discount=0.5)
    controller = Controller(config)
    controller.decide(observation())
    assert controller.pending is not None
    state, widths, actions, _, _ = controller.pending
    s = torch.from_numpy(state)
    before = float(controller.network.distributions(s, widths, actions)[1].detach())
    stats = controller.learn(0.90, reference_auc=0.70)
    # r = R − AUC_ref + λ p₀: the step waits for s'
    assert stats["reward_over_reference"] == pytest.approx(0.90 - 0.70 + config.penalty * 0.137)
    assert controller.awaiting is not None
    assert float(controller.network.distributions(s, widths, actions)[1].detach()) == before
    restored = Controller(config)
    restored.load_state_dict(controller.state_dict())
    assert restored.awaiting is not None
    np.testing.assert_array_equal(restored.awaiting[0], controller.awaiting[0])
    for each in (controller, restored):
        each.decide(observation((216, 80)))  # s' known: A = r + γ V(s') − V(s) = r (V = 0)
        assert each.awaiting is None and len(each.next_states) == 1
    after = float(controller.network.distributions(s, widths, actions)[1].detach())
    assert after > before  # a positive advantage raised log π(a|s)
    for a, b in zip(controller.network.parameters(), restored.network.parameters(), strict=True):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------------- methods
def test_variants_configure_their_controller() -> None:
    base = AdaptiveConfig()
    assert controller_preset(base, "paper") == base
    assert controller_preset(base, "leanrec").algorithm == "capacity_model"
    with pytest.raises(ValueError, match="unknown controller preset"):
        controller_preset(base, "nope")
    a2c = METHODS["adaptive_a2c"]
    assert isinstance(a2c, AdaptiveController)
    assert a2c.configure(base).algorithm == "actor_critic" and a2c.penalty_from == "adaptive"
    ewc = METHODS["adaptive_leanrec_ewc"].configure(base)
    assert (ewc.algorithm, ewc.protection) == ("capacity_model", "ewc")
    # the leanrec preset starts at fixed-small, never shrinks below it, measures against a
    # fixed-medium reference and grows on a shift of the input; the paper preset keeps RCL's
    leanrec = METHODS["adaptive_leanrec"].configure(base)
    assert (leanrec.initial_widths, leanrec.floor_widths) == ((64, 32), (64, 32))
    assert (leanrec.reference_widths, leanrec.shift_threshold) == ((200, 80), 6.0)
    assert METHODS["adaptive_leanrec"].initial_widths(AdaptiveExperiment()) == (64, 32)
    paper = METHODS["adaptive"].configure(base)
    assert (leanrec.new_unit_boost, paper.new_unit_boost) == (10.0, 1.0)
    # tighter limits than the defaults cut the preset's towers to them
    tight = METHODS["adaptive_leanrec"].configure(
        AdaptiveConfig(initial_widths=(32,), max_width=48, max_depth=1)
    )
    assert (tight.initial_widths, tight.floor_widths) == ((48,), (48,))
    assert (paper.initial_widths, paper.reference_widths) == ((200, 80), (64, 32))
    assert (paper.floor_widths, paper.shift_threshold) == (None, None)
    assert METHODS["adaptive_leanrec_freeze"].penalty_from == "adaptive_leanrec"
    experiment = AdaptiveExperiment()
    assert METHODS["adaptive_leanrec"].lambda_grid(experiment) == experiment.leanrec_lambda_grid
    assert METHODS["adaptive"].lambda_grid(experiment) == experiment.lambda_grid
    assert METHODS["fixed_small"].configure(base) is base


def test_only_a_shift_growth_is_boosted() -> None:
    # the method's decider marks the shift rule's growth for the boost, a priced growth not
    decider = METHODS["adaptive_leanrec"].decider(AdaptiveExperiment(),
                                                  AdaptiveConfig(penalty=0.0))  # fmt: skip
    for drift in (0.26, 0.27, 0.28):
        assert decider.decide(_drifted(drift)).change is None
        decider.learn(0.0, 0.80, {"auc": 0.70, "widths": [64, 32]})  # medium wins: grow
    priced = decider.decide(_drifted(0.27))
    assert priced.change == ArchitectureChange((32, 32)) and not priced.boost
    shifted = decider.decide(_drifted(0.90, (96, 64)))
    assert shifted.change == ArchitectureChange((32, 32)) and shifted.boost
