"""The architecture controller: an LSTM policy with a learned value baseline, as RCL.

Reinforced Continual Learning (Xu & Zhu, NeurIPS 2018) mapped to a recommendation stream:

==============================  ===========================================================
RCL                             here
==============================  ===========================================================
task ``t``                      session ``s`` (a window of the stream)
LSTM controller, one step per   :class:`ArchitectureController`: one LSTM step per hidden
layer, emits units to add       layer slot (``max_depth`` of them), each emitting a width
                                change from ``(-32, -16, 0, +16, +32)``, then one step
                                emitting a depth change ``(-1, 0, +1)``
state: none (the controller     ``s_t``: :class:`SessionObservation` — widths and depth,
input is the previous action)   parameter share, the current model's loss on the session's
                                first chunk, its change, shares of new users and items,
                                item-popularity and label-rate drift; fed at every step
                                beside the previous action
reward ``R = A_val − α·units``  ``R = AUC_s − λ · p`` (``AUC_s``: prequential AUC of the
                                session, ``p``: shaped parameters / fixed-large's)
value network ``V(s)``          baseline ``b = AUC_ref − λ p₀ + V(s)``: ``AUC_ref`` is the
                                session's AUC of a reference model (fixed 64-32) trained
                                beside the controlled one on the same chunks — the session's
                                difficulty, which no action changes; ``λ p₀`` the penalty of
                                keeping the tower as it is; ``V``
                                (:attr:`ArchitectureController.value`, an MLP on ``s_t``)
                                learns the rest, ``R − AUC_ref + λ p₀``. The advantage is
                                then the change's own effect: ``ΔAUC − λ Δp`` (plus noise)
REINFORCE, ``(R − V) ∇ log π``  :meth:`Controller.learn`: ``−Â log π(a|s) − β H(π(·|s))``,
                                ``Â = clip((R − b) / σ, ±c)``
tens of children per task       one architecture per session, chosen from cheap signals
==============================  ===========================================================

Actor-critic (``algorithm="actor_critic"``, the issue's question whether it does better): the
same LSTM actor; the critic is the value network, fitted by TD(0) to
``r + γ V(s')`` with ``r = R − AUC_ref + λ p₀`` (the reward over the session's difficulty, the
REINFORCE baseline's offset), and the actor's advantage is ``r + γ V(s') − V(s)``. A session's
step therefore waits for the next session's state (:meth:`Controller.decide` takes it), and
a change is credited with the value of the tower it leaves to the next sessions as well.

Cost. RCL trains every sampled child to completion. On a stream the controller decides once per
session from signals the prequential protocol gives for free: the first chunk of the session
is predicted by the current model anyway, its loss is read from those predictions, the other
features are histograms of events already seen. A decision is one LSTM pass (microseconds)
and a session then trains one model, so a session costs at most what training the largest
reachable tower costs, never a search over children (``docs/design/adaptive.md``).

Actions that would leave the limits (widths 16..512, depths 1..3) are masked out of the
softmax, so the log-probability is that of the change actually made; slots beyond the current
depth emit no action. The policy starts from a prior that keeps the architecture about half the
time (``keep_prior``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from leanrec.search.adaptive.config import DEPTH_DELTAS, WIDTH_DELTAS, AdaptiveConfig
from leanrec.search.adaptive.tower import ArchitectureChange


# ---------------------------------------------------------------------------------- state
@dataclass(frozen=True)
class SessionObservation:
    """What every method sees at the start of a session (after its first chunk is predicted).

    Attributes:
        widths: current hidden widths.
        parameter_share: ``p``: shaped parameters over fixed-large's.
        first_loss: log loss of the current model's predictions on the session's first chunk.
        first_auc: their AUC (None when the chunk holds one class only).
        previous_loss: log loss over the previous session (its training loss when it was not
            scored).
        new_user_share / new_item_share: share of the first chunk's events whose user / item
            had no earlier event.
        item_drift: total-variation distance between the item distributions of the first
            chunk and of the previous session (0: same popularity, 1: disjoint items).
        label_drift: ``|positive rate of the first chunk − that of the previous session|``.
    """

    widths: tuple[int, ...]
    parameter_share: float
    first_loss: float
    first_auc: float | None
    previous_loss: float
    new_user_share: float
    new_item_share: float
    item_drift: float
    label_drift: float

    def features(self, config: AdaptiveConfig) -> np.ndarray:
        """The state vector ``s_t``, float32 ``(state_dim(config),)``: width per slot over the
        maximum (0 for an absent layer), depth over the maximum, then the signals."""
        slots = [w / config.max_width for w in self.widths]
        slots += [0.0] * (config.max_depth - len(self.widths))
        signals = [
            len(self.widths) / config.max_depth,
            self.parameter_share,
            self.first_loss,
            10.0 * (self.first_loss - self.previous_loss),
            self.new_user_share,
            self.new_item_share,
            self.item_drift,
            10.0 * self.label_drift,
        ]
        return np.asarray(slots + signals, dtype=np.float32)


def state_dim(config: AdaptiveConfig) -> int:
    """Length of :meth:`SessionObservation.features`."""
    return config.max_depth + 8


def total_variation(first: np.ndarray, second: np.ndarray) -> float:
    """``½ Σ_i |P(i) − Q(i)|`` between the empirical distributions of two code arrays."""
    if len(first) == 0 or len(second) == 0:
        return 0.0
    size = int(max(first.max(), second.max())) + 1
    p = np.bincount(first, minlength=size) / len(first)
    q = np.bincount(second, minlength=size) / len(second)
    return float(0.5 * np.abs(p - q).sum())


# ---------------------------------------------------------------------------------- networks
class ArchitectureController(nn.Module):
    """``π(a | s)`` as an LSTM over decision steps, and ``V(s)``.

    Step ``k`` (``k < max_depth``: layer slot ``k``; ``k = max_depth``: the depth) reads
    ``[s; embed(a_{k−1}); onehot(k)]`` and emits logits over :data:`WIDTH_DELTAS` (slots) or
    :data:`DEPTH_DELTAS` (last step). Shapes: ``s`` is ``(state_dim,)``.
    """

    def __init__(self, config: AdaptiveConfig) -> None:
        super().__init__()
        self.config = config
        steps = config.max_depth + 1
        tokens = len(WIDTH_DELTAS) + len(DEPTH_DELTAS) + 1  # + the start token
        self.start_token = tokens - 1
        self.token = nn.Embedding(tokens, 8)
        self.cell = nn.LSTMCell(state_dim(config) + 8 + steps, config.hidden_size)
        self.width_head = nn.Linear(config.hidden_size, len(WIDTH_DELTAS))
        self.depth_head = nn.Linear(config.hidden_size, len(DEPTH_DELTAS))
        self.value = nn.Sequential(
            nn.Linear(state_dim(config), config.value_hidden),
            nn.Tanh(),
            nn.Linear(config.value_hidden, 1),
        )
        with torch.no_grad():  # V = 0 at first: the baseline starts at the reference's AUC
            self.value[-1].weight.zero_()  # type: ignore[operator]
            self.value[-1].bias.zero_()  # type: ignore[operator]
        with torch.no_grad():  # start exactly at the prior, whatever the state
            for head, keep in ((self.width_head, WIDTH_DELTAS.index(0)),
                               (self.depth_head, DEPTH_DELTAS.index(0))):  # fmt: skip
                head.weight.zero_()
                head.bias.zero_()
                head.bias[keep] = config.keep_prior

    def masks(self, widths: tuple[int, ...]) -> tuple[list[torch.Tensor | None], torch.Tensor]:
        """Allowed actions: per slot a bool mask over width deltas (None: no layer there), and
        a mask over depth deltas."""
        cfg = self.config
        deltas = torch.tensor(WIDTH_DELTAS)
        slots: list[torch.Tensor | None] = []
        for slot in range(cfg.max_depth):
            if slot < len(widths):
                after = widths[slot] + deltas
                slots.append((after >= cfg.min_width) & (after <= cfg.max_width))
            else:
                slots.append(None)
        depth = len(widths) + torch.tensor(DEPTH_DELTAS)
        return slots, (depth >= cfg.min_depth) & (depth <= cfg.max_depth)

    def distributions(
        self, state: torch.Tensor, widths: tuple[int, ...], actions: list[int] | None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:  # fmt: skip
        """Run the decision steps: sample actions (``actions`` None, with ``generator``) or
        score given ones. Returns the action indices (one per existing slot, then the depth
        index), ``Σ log π`` and the summed entropy (scalars)."""
        slot_masks, depth_mask = self.masks(widths)
        steps = self.config.max_depth + 1
        h = state.new_zeros(1, self.config.hidden_size)
        c = state.new_zeros(1, self.config.hidden_size)
        previous = self.start_token
        chosen: list[int] = []
        log_prob = state.new_zeros(())
        entropy = state.new_zeros(())
        given = list(actions) if actions is not None else None
        for step in range(steps):
            inputs = torch.cat([
                state, self.token.weight[previous], torch.eye(steps)[step],
            ])[None]  # fmt: skip
            h, c = self.cell(inputs, (h, c))
            if step < self.config.max_depth:
                mask = slot_masks[step]
                if mask is None:  # no layer in this slot: the "keep" token, no decision
                    previous = WIDTH_DELTAS.index(0)
                    continue
                logits, offset = self.width_head(h)[0], 0
            else:
                mask, logits = depth_mask, self.depth_head(h)[0]
                offset = len(WIDTH_DELTAS)
            logits = logits.masked_fill(~mask, -math.inf)
            probabilities = torch.softmax(logits, dim=0)
            if given is not None:
                action = given.pop(0)
            else:
                action = int(torch.multinomial(probabilities.detach(), 1, generator=generator))
            log_probs = torch.log_softmax(logits, dim=0)
            log_prob = log_prob + log_probs[action]
            entropy = entropy - (probabilities[mask] * log_probs[mask]).sum()
            chosen.append(action)
            previous = offset + action
        return chosen, log_prob, entropy


def change_of(actions: list[int], widths: tuple[int, ...]) -> ArchitectureChange:
    """The :class:`ArchitectureChange` of action indices (one per layer, then the depth)."""
    return ArchitectureChange(
        tuple(WIDTH_DELTAS[a] for a in actions[: len(widths)]), DEPTH_DELTAS[actions[-1]]
    )


# ---------------------------------------------------------------------------------- learning
class Controller:
    """The learning decision-maker of one run: acts at a session's start, learns at its end
    (``algorithm`` ``reinforce`` or ``actor_critic``; ``capacity_model`` is
    :class:`~leanrec.search.adaptive.capacity.CapacityController`).

    Args:
        config: the controller's settings (``penalty`` is ``λ``; ``seed`` seeds the networks
            and the action sampling).
    """

    def __init__(self, config: AdaptiveConfig) -> None:
        self.config = config
        with torch.random.fork_rng():  # seeded networks, torch's own generator untouched
            torch.manual_seed(config.seed)
            self.network = ArchitectureController(config)
        policy_parameters = [p for n, p in self.network.named_parameters()
                             if not n.startswith("value.")]  # fmt: skip
        self.policy_optimizer = torch.optim.Adam(policy_parameters, lr=config.policy_learning_rate)
        self.value_optimizer = torch.optim.Adam(
            self.network.value.parameters(), lr=config.value_learning_rate
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.states: list[np.ndarray] = []
        """``s_t`` of every session learnt from (the value network's training set)."""
        self.rewards: list[float] = []
        """``R_t`` of those sessions."""
        self.residuals: list[float] = []
        """``R_t − AUC_ref,t + λ p₀,t``: what ``V(s_t)`` is fitted to."""
        self.squared_advantages: list[float] = []
        """``(R_t − b_t)²`` seen so far: their mean's root scales the advantage."""
        self.pending: tuple[np.ndarray, tuple[int, ...], list[int], float, float] | None = None
        """The decision awaiting its reward: ``s``, widths, actions, the first chunk's AUC and
        ``λ p₀``."""
        self.awaiting: tuple[np.ndarray, tuple[int, ...], list[int], float] | None = None
        """``actor_critic``: the rewarded decision awaiting the next state ``s'`` (its
        advantage ``r + γ V(s') − V(s)`` needs it): ``s``, widths, actions, ``r``."""
        self.next_states: list[np.ndarray] = []
        """``actor_critic``: ``s'`` of every transition whose next state is known (the
        critic's TD targets ``r + γ V(s')``; the first ``len(next_states)`` of ``states``)."""

    def decide(self, observation: SessionObservation) -> ArchitectureChange:
        """Sample the session's change from ``π(· | s)`` (kept until :meth:`learn`)."""
        state = observation.features(self.config)
        if self.awaiting is not None:  # actor-critic: the previous decision's s' is known now
            self._actor_critic_step(state)
        with torch.no_grad():
            actions, _, _ = self.network.distributions(
                torch.from_numpy(state), observation.widths, None, self.generator
            )
        difficulty = observation.first_auc
        if difficulty is None:  # one class in the first chunk: the mean reward so far
            difficulty = float(np.mean(self.rewards)) if self.rewards else 0.5
        keep_penalty = self.config.penalty * observation.parameter_share
        self.pending = (state, observation.widths, actions, difficulty, keep_penalty)
        return change_of(actions, observation.widths)

    def reward(self, auc: float | None, parameter_share: float) -> float:
        """``R = AUC − λ · p`` (an undefined AUC, one class only in the session, counts 0.5)."""
        return (0.5 if auc is None else auc) - self.config.penalty * parameter_share

    def learn(self, reward: float, reference_auc: float | None = None) -> dict[str, float]:
        """One REINFORCE step on the pending decision with the baseline
        ``b = AUC_ref − λ p₀ + V(s)``, then ``value_steps`` steps of ``V`` on every (state,
        ``R − AUC_ref + λ p₀``) so far. Returns the baseline, the advantage and the losses.

        Args:
            reward: ``R = AUC_s − λ p``.
            reference_auc: the reference model's AUC on the session; None (no reference
                model, or one class only) takes the first chunk's AUC under the model before
                the change, a noisier measure of the session's difficulty.
        """
        if self.pending is None:
            return {}
        state, widths, actions, difficulty, keep_penalty = self.pending
        self.pending = None
        if reference_auc is not None:  # in place of the first chunk's AUC
            difficulty = reference_auc
        offset = difficulty - keep_penalty
        cfg = self.config
        if cfg.algorithm == "actor_critic":  # the step waits for s' (the next decide)
            self.awaiting = (state, widths, actions, reward - offset)
            self.states.append(state)
            self.rewards.append(reward)
            self.residuals.append(reward - offset)
            return {"reward_over_reference": reward - offset}
        s = torch.from_numpy(state)
        with torch.no_grad():
            baseline = offset + float(self.network.value(s[None])[0, 0])
        advantage = reward - baseline
        self.squared_advantages.append(advantage**2)
        scale = math.sqrt(float(np.mean(self.squared_advantages))) or 1.0
        normalised = float(np.clip(advantage / scale, -cfg.advantage_clip, cfg.advantage_clip))
        _, log_prob, entropy = self.network.distributions(s, widths, actions)
        policy_loss = -normalised * log_prob - cfg.entropy_bonus * entropy
        self.policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        self.policy_optimizer.step()
        self.states.append(state)
        self.rewards.append(reward)
        self.residuals.append(reward - offset)
        states = torch.from_numpy(np.stack(self.states))
        targets = torch.tensor(self.residuals, dtype=torch.float32)
        value_loss = torch.zeros(())
        for _ in range(cfg.value_steps):
            value_loss = (self.network.value(states)[:, 0] - targets).pow(2).mean()
            self.value_optimizer.zero_grad(set_to_none=True)
            value_loss.backward()
            self.value_optimizer.step()
        return {
            "baseline": baseline,
            "advantage": advantage,
            "policy_loss": float(policy_loss.detach()),
            "value_loss": float(value_loss.detach()),
        }

    def _actor_critic_step(self, next_state: np.ndarray) -> dict[str, float]:
        """The actor-critic update of the awaiting decision, now that ``s'`` is known.

        ``r = R − AUC_ref + λ p₀`` (the reward over the session's difficulty, as the REINFORCE
        baseline's offset), advantage ``A = r + γ V(s') − V(s)``, actor loss
        ``−clip(A/σ) log π(a|s) − β H``; then ``value_steps`` TD(0) steps of ``V`` on every
        transition whose ``s'`` is known, targets ``r_i + γ V(s'_i)`` held fixed per step."""
        assert self.awaiting is not None
        state, widths, actions, residual = self.awaiting
        self.awaiting = None
        cfg = self.config
        self.next_states.append(next_state)
        s, s_next = torch.from_numpy(state), torch.from_numpy(next_state)
        with torch.no_grad():
            values = self.network.value(torch.stack([s, s_next]))[:, 0]
        value, next_value = float(values[0]), float(values[1])
        advantage = residual + cfg.discount * next_value - value
        self.squared_advantages.append(advantage**2)
        scale = math.sqrt(float(np.mean(self.squared_advantages))) or 1.0
        normalised = float(np.clip(advantage / scale, -cfg.advantage_clip, cfg.advantage_clip))
        _, log_prob, entropy = self.network.distributions(s, widths, actions)
        policy_loss = -normalised * log_prob - cfg.entropy_bonus * entropy
        self.policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        self.policy_optimizer.step()
        count = len(self.next_states)
        states = torch.from_numpy(np.stack(self.states[:count]))
        following = torch.from_numpy(np.stack(self.next_states))
        residuals = torch.tensor(self.residuals[:count], dtype=torch.float32)
        value_loss = torch.zeros(())
        for _ in range(cfg.value_steps):
            with torch.no_grad():
                targets = residuals + cfg.discount * self.network.value(following)[:, 0]
            value_loss = (self.network.value(states)[:, 0] - targets).pow(2).mean()
            self.value_optimizer.zero_grad(set_to_none=True)
            value_loss.backward()
            self.value_optimizer.step()
        return {"advantage": advantage, "value_loss": float(value_loss.detach())}

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything learning changes, as tensors and plain values."""
        return {
            "network": self.network.state_dict(),
            "policy_optimizer": self.policy_optimizer.state_dict(),
            "value_optimizer": self.value_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "states": torch.from_numpy(np.stack(self.states)) if self.states else None,
            "rewards": list(self.rewards),
            "residuals": list(self.residuals),
            "squared_advantages": list(self.squared_advantages),
            "awaiting": None if self.awaiting is None else (
                torch.from_numpy(self.awaiting[0]), list(self.awaiting[1]),
                list(self.awaiting[2]), self.awaiting[3],
            ),
            "next_states": torch.from_numpy(np.stack(self.next_states))
            if self.next_states else None,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where the controller that wrote ``state`` stopped."""
        self.network.load_state_dict(state["network"])
        self.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.generator.set_state(state["generator"])
        states = state["states"]
        self.states = [] if states is None else list(states.numpy())
        self.rewards = list(state["rewards"])
        self.residuals = list(state["residuals"])
        self.squared_advantages = list(state["squared_advantages"])
        self.pending = None
        awaiting = state.get("awaiting")
        self.awaiting = None if awaiting is None else (
            awaiting[0].numpy(), tuple(awaiting[1]), list(awaiting[2]), float(awaiting[3])
        )  # fmt: skip
        following = state.get("next_states")
        self.next_states = [] if following is None else list(following.numpy())


__all__ = [
    "ArchitectureController",
    "Controller",
    "SessionObservation",
    "change_of",
    "state_dim",
    "total_variation",
]
