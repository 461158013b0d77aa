"""The controller and its baselines as method objects sharing one small interface.

A method names the tower a run starts from and, per run, builds a :class:`SessionDecider`:
at the start of every session (after its first chunk is predicted) ``decide`` sees the
:class:`~leanrec.search.adaptive.policy.SessionObservation` and returns a :class:`Decision`
(a change of the tower, a reset, or nothing); at the session's end ``learn`` gets the
session's reward. The experiment is a loop over ``METHODS.resolve(names)``.

- ``fixed_small`` (64-32), ``fixed_medium`` (200-80, DeepFM's default), ``fixed_large``
  (512-256-128, the largest the controller may reach): never change;
- ``always_grow``: ``+n`` units on every layer every session (progressive / expandable
  networks), up to the width limit;
- ``retrain_medium``: the 200-80 tower re-initialised from scratch at every session start (the
  embedding tables keep what they learnt: the shaped part is what is retrained);
- ``loss_threshold``: the DEN-style rule without learning: +32 units per layer when the first
  chunk's loss rose by more than ``loss_threshold`` (relative) over the previous session's,
  −16 per layer when it fell by more than that;
- ``adaptive``: the controller, ``paper`` preset (:class:`~leanrec.search.adaptive.policy.
  Controller`: RCL's LSTM policy and REINFORCE);
- ``adaptive_a2c``: the same with the advantage actor-critic (``algorithm="actor_critic"``),
  at ``adaptive``'s ``λ``;
- ``adaptive_leanrec``: the ``leanrec`` preset (:class:`~leanrec.search.adaptive.capacity.
  CapacityController`: changes priced by a learned model of the reward), its own ``λ`` grid;
- ``adaptive_leanrec_freeze`` / ``adaptive_leanrec_ewc``: the ``leanrec`` controller with
  forgetting protection (old units frozen after a growth, or the EWC penalty), at
  ``adaptive_leanrec``'s ``λ``: the comparison with plain fine-tuning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from leanrec.runner.registry import Registry
from leanrec.search.adaptive.capacity import CapacityController
from leanrec.search.adaptive.config import AdaptiveConfig, AdaptiveExperiment, controller_preset
from leanrec.search.adaptive.policy import Controller, SessionObservation
from leanrec.search.adaptive.tower import (
    LARGE_WIDTHS,
    ArchitectureChange,
    input_width,
    tower_parameters,
)


@dataclass(frozen=True)
class Decision:
    """What a method does at a session's start: ``change`` the tower (None: keep it), or
    ``reset`` it (re-initialise at its widths); ``boost``: the units the change grows learn at
    ``AdaptiveConfig.new_unit_boost`` times the dense step for the session (a growth for a
    shift of the input)."""

    change: ArchitectureChange | None = None
    reset: bool = False
    boost: bool = False


class SessionDecider(Protocol):
    """One run's decision-maker."""

    def decide(self, observation: SessionObservation) -> Decision: ...

    def learn(
        self, reward: float, reference_auc: float | None, row: dict[str, Any]
    ) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class AdaptiveMethod(Protocol):
    """A registered method: its name, whether ``λ`` changes it, whether it learns (then a
    reference model runs beside it), its starting tower and its per-run decider. A method
    that uses ``λ`` takes the headline ``λ`` chosen on the warm-up for ``penalty_from`` (its
    own name: it is chosen from its own grid, ``lambda_grid``, and swept)."""

    @property
    def name(self) -> str: ...

    @property
    def uses_penalty(self) -> bool: ...

    @property
    def penalty_from(self) -> str: ...

    def lambda_grid(self, experiment: AdaptiveExperiment) -> tuple[float, ...]: ...

    def configure(self, config: AdaptiveConfig) -> AdaptiveConfig:
        """The run's controller settings (protection included) from the experiment's."""
        ...

    @property
    def learns(self) -> bool: ...

    def initial_widths(self, experiment: AdaptiveExperiment) -> tuple[int, ...]: ...

    def decider(self, experiment: AdaptiveExperiment, config: AdaptiveConfig) -> SessionDecider: ...


class _Stateless:
    """A decider without learning or state."""

    def learn(
        self, reward: float, reference_auc: float | None, row: dict[str, Any]
    ) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class _Keep(_Stateless):
    def decide(self, observation: SessionObservation) -> Decision:
        return Decision()


@dataclass(frozen=True)
class FixedTower:
    """The same tower for the whole stream."""

    name: str
    widths: tuple[int, ...]
    uses_penalty: bool = False
    learns: bool = False
    penalty_from: str = ""

    def lambda_grid(self, experiment: AdaptiveExperiment) -> tuple[float, ...]:
        return ()

    def configure(self, config: AdaptiveConfig) -> AdaptiveConfig:
        return config

    def initial_widths(self, experiment: AdaptiveExperiment) -> tuple[int, ...]:
        return self.widths

    def decider(self, experiment: AdaptiveExperiment, config: AdaptiveConfig) -> SessionDecider:
        return _Keep()


class _Grow(_Stateless):
    def __init__(self, units: int) -> None:
        self.units = units

    def decide(self, observation: SessionObservation) -> Decision:
        return Decision(ArchitectureChange((self.units,) * len(observation.widths)))


@dataclass(frozen=True)
class AlwaysGrow:
    """``+n`` units (``AdaptiveExperiment.grow_units``) per layer every session, from 200-80."""

    name: str = "always_grow"
    uses_penalty: bool = False
    learns: bool = False
    penalty_from: str = ""

    def lambda_grid(self, experiment: AdaptiveExperiment) -> tuple[float, ...]:
        return ()

    def configure(self, config: AdaptiveConfig) -> AdaptiveConfig:
        return config

    def initial_widths(self, experiment: AdaptiveExperiment) -> tuple[int, ...]:
        return MEDIUM

    def decider(self, experiment: AdaptiveExperiment, config: AdaptiveConfig) -> SessionDecider:
        return _Grow(experiment.grow_units)


class _Reset(_Stateless):
    def decide(self, observation: SessionObservation) -> Decision:
        return Decision(reset=True)


@dataclass(frozen=True)
class RetrainMedium:
    """The 200-80 tower re-initialised at every session start."""

    name: str = "retrain_medium"
    uses_penalty: bool = False
    learns: bool = False
    penalty_from: str = ""

    def lambda_grid(self, experiment: AdaptiveExperiment) -> tuple[float, ...]:
        return ()

    def configure(self, config: AdaptiveConfig) -> AdaptiveConfig:
        return config

    def initial_widths(self, experiment: AdaptiveExperiment) -> tuple[int, ...]:
        return MEDIUM

    def decider(self, experiment: AdaptiveExperiment, config: AdaptiveConfig) -> SessionDecider:
        return _Reset()


class _Threshold(_Stateless):
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def decide(self, observation: SessionObservation) -> Decision:
        depth = len(observation.widths)
        rise = (observation.first_loss - observation.previous_loss) / max(
            observation.previous_loss, 1e-12
        )
        if rise > self.threshold:
            return Decision(ArchitectureChange((32,) * depth))
        if rise < -self.threshold:
            return Decision(ArchitectureChange((-16,) * depth))
        return Decision()


@dataclass(frozen=True)
class LossThreshold:
    """Grow when the session's first-chunk loss rises, prune when it falls (no learning)."""

    name: str = "loss_threshold"
    uses_penalty: bool = False
    learns: bool = False
    penalty_from: str = ""

    def lambda_grid(self, experiment: AdaptiveExperiment) -> tuple[float, ...]:
        return ()

    def configure(self, config: AdaptiveConfig) -> AdaptiveConfig:
        return config

    def initial_widths(self, experiment: AdaptiveExperiment) -> tuple[int, ...]:
        return MEDIUM

    def decider(self, experiment: AdaptiveExperiment, config: AdaptiveConfig) -> SessionDecider:
        return _Threshold(experiment.loss_threshold)


class _Controlled:
    def __init__(self, config: AdaptiveConfig) -> None:
        self.controller = Controller(config)

    def decide(self, observation: SessionObservation) -> Decision:
        return Decision(self.controller.decide(observation))

    def learn(
        self, reward: float, reference_auc: float | None, row: dict[str, Any]
    ) -> dict[str, float]:
        return self.controller.learn(reward, reference_auc)

    def state_dict(self) -> dict[str, Any]:
        return self.controller.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state)


class _Priced:
    def __init__(self, controller: CapacityController) -> None:
        self.controller = controller

    def decide(self, observation: SessionObservation) -> Decision:
        change = self.controller.decide(observation)
        if not any(change.width_deltas):
            return Decision()
        return Decision(change, boost=self.controller.shifted)

    def learn(
        self, reward: float, reference_auc: float | None, row: dict[str, Any]
    ) -> dict[str, float]:
        return self.controller.learn(row["auc"], reference_auc, tuple(row["widths"]))

    def state_dict(self) -> dict[str, Any]:
        return self.controller.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state)


@dataclass(frozen=True)
class AdaptiveController:
    """A controller preset (:data:`~leanrec.search.adaptive.config.CONTROLLER_PRESETS`) with
    optional field overrides, starting from ``AdaptiveConfig.initial_widths``."""

    name: str = "adaptive"
    preset: str = "paper"
    overrides: dict[str, Any] = field(default_factory=dict)
    """Fields of :class:`AdaptiveConfig` set over the preset (a variant of it)."""
    penalty_from: str = "adaptive"
    uses_penalty: bool = True
    learns: bool = True

    def lambda_grid(self, experiment: AdaptiveExperiment) -> tuple[float, ...]:
        if self.preset == "leanrec":
            return experiment.leanrec_lambda_grid
        return experiment.lambda_grid

    def initial_widths(self, experiment: AdaptiveExperiment) -> tuple[int, ...]:
        return self.configure(experiment.controller).initial_widths

    def configure(self, config: AdaptiveConfig) -> AdaptiveConfig:
        """``config`` with the preset's fields and the overrides set over it."""
        return dataclasses.replace(controller_preset(config, self.preset), **self.overrides)

    def decider(self, experiment: AdaptiveExperiment, config: AdaptiveConfig) -> SessionDecider:
        config = self.configure(config)
        if config.algorithm == "capacity_model":
            width = input_width(experiment)
            return _Priced(CapacityController(
                config, width, tower_parameters(width, config.reference_widths),
                tower_parameters(width, LARGE_WIDTHS),
            ))  # fmt: skip
        return _Controlled(config)


SMALL: tuple[int, ...] = (64, 32)
MEDIUM: tuple[int, ...] = (200, 80)
LARGE: tuple[int, ...] = (512, 256, 128)

METHODS: Registry[AdaptiveMethod] = Registry("adaptive-architecture method")
"""Every method the experiment can run, in the default table order."""
METHODS.add(FixedTower("fixed_small", SMALL))
METHODS.add(FixedTower("fixed_medium", MEDIUM))
METHODS.add(FixedTower("fixed_large", LARGE))
METHODS.add(AlwaysGrow())
METHODS.add(RetrainMedium())
METHODS.add(LossThreshold())
METHODS.add(AdaptiveController())
METHODS.add(AdaptiveController("adaptive_a2c", overrides={"algorithm": "actor_critic"}))
METHODS.add(AdaptiveController("adaptive_leanrec", "leanrec", penalty_from="adaptive_leanrec"))
for _protection in ("freeze", "ewc"):
    METHODS.add(AdaptiveController(
        f"adaptive_leanrec_{_protection}", "leanrec", {"protection": _protection},
        penalty_from="adaptive_leanrec",
    ))  # fmt: skip

__all__ = [
    "LARGE",
    "MEDIUM",
    "METHODS",
    "SMALL",
    "AdaptiveMethod",
    "Decision",
    "SessionDecider",
]
