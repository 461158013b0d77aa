"""Off-policy actor-critic for a discrete action (Degris, White & Sutton, Off-PAC, ICML 2012).

The algorithm in one place, readable top to bottom:

- an actor ``π(a | s)``: ``(B, state_dim) -> (B, n_actions)`` logits, softmax;
- a critic ``Q(s, ·)``: ``(B, state_dim) -> (B, n_actions)``, one value per action, trained by
  temporal difference on replayed transitions with an expected-SARSA target under the current
  policy and a Polyak-averaged target critic::

      y = r + γ (1 − done) Σ_a' π(a' | s') Q_target(s', a')          (TD target)
      L_Q = mean (Q(s, a) − y)²

- the actor by policy gradient with importance sampling: a replayed decision was drawn by an
  older behaviour policy ``b(a | s)`` (stored with the transition), so its term is weighted by
  the truncated ratio ``ρ = min(π(a | s) / b(a | s), c)``; the advantage uses the critic with
  the policy's own value as baseline::

      A = Q(s, a) − Σ_a' π(a' | s) Q(s, a')
      L_π = − mean( ρ · A · log π(a | s) ) − β · mean H(π(· | s))

  (``ρ`` and ``A`` are constants of the gradient; ``β`` is a small entropy bonus that keeps the
  policy from collapsing before the critic has learnt anything).

Behaviour probabilities come from :meth:`DiscreteActorCritic.act`, which samples from
``(1 − ε) π + ε / n_actions`` so that every action keeps a probability of at least
``ε / n_actions`` and the ratio stays bounded. No recommender code lives here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from leanrec.rl.replay import ReplayBuffer, Transitions


@dataclass
class ActorCriticConfig:
    """Hyper-parameters of :class:`DiscreteActorCritic`."""

    actor_hidden: int = 32
    """Width of the actor's hidden layer (states are a handful of features)."""
    critic_hidden: int = 32
    """Width of the critic's hidden layer."""
    actor_lr: float = 1e-3
    """Adam step size of the actor."""
    critic_lr: float = 1e-3
    """Adam step size of the critic."""
    gamma: float = 0.9
    """Discount ``γ``."""
    tau: float = 0.01
    """Polyak rate of the target critic."""
    importance_clip: float = 2.0
    """``c``: importance ratios are truncated at ``c`` (bounded variance of the gradient)."""
    exploration: float = 0.1
    """``ε``: the behaviour policy mixes in a uniform choice with this weight."""
    entropy_bonus: float = 0.01
    """``β``: weight of the policy's entropy in the actor loss."""
    initial_logits: tuple[float, ...] | None = None
    """Bias of the actor's output layer at start (one per action), i.e. the policy's prior
    before it has learnt anything; None: zeros (a near-uniform start)."""
    logit_prior: tuple[tuple[float, ...], ...] | None = None
    """A fixed (never learnt) linear term added to the actor's logits, ``(state_dim,
    n_actions)``: logits ``= actor(s) + s W``. A state feature that marks one kind of decision
    then shifts that kind's prior alone (e.g. a flag feature and its row of offsets). None:
    no such term."""


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, outputs),
    )  # fmt: skip


class Decisions(NamedTuple):
    """What :meth:`DiscreteActorCritic.act` chose, every field ``(B,)``."""

    actions: np.ndarray
    """int64 action indices."""
    behaviour_probability: np.ndarray
    """float32 ``b(a | s)``: the probability the sampling gave the chosen action."""


def importance_ratio(
    policy_probability: torch.Tensor, behaviour_probability: torch.Tensor, clip: float
) -> torch.Tensor:
    """``ρ = min(π(a|s) / b(a|s), c)``, ``(B,)``: the truncated importance weight of a decision
    taken by the behaviour policy ``b`` and re-weighted for the current policy ``π``."""
    return (policy_probability / behaviour_probability.clamp(min=1e-8)).clamp(max=clip)


class DiscreteActorCritic(nn.Module):
    """Actor ``π``, critic ``Q`` and target critic, with their optimizers.

    Args:
        state_dim: length of a state.
        n_actions: number of discrete actions.
        config: hyper-parameters.

    Example:
        >>> agent = DiscreteActorCritic(4, 3)
        >>> decisions = agent.act(torch.rand(5, 4), np.random.default_rng(0))
        >>> decisions.actions.shape, agent.probabilities(torch.rand(5, 4)).shape
        ((5,), torch.Size([5, 3]))
    """

    logit_prior: torch.Tensor
    """``(state_dim, n_actions)`` buffer, present only when the config gives a prior."""

    def __init__(self, state_dim: int, n_actions: int, config: ActorCriticConfig | None = None):
        super().__init__()
        self.config = config or ActorCriticConfig()
        cfg = self.config
        self.n_actions = n_actions
        self.actor = _mlp(state_dim, cfg.actor_hidden, n_actions)
        self.critic = _mlp(state_dim, cfg.critic_hidden, n_actions)
        if cfg.initial_logits is not None:
            if len(cfg.initial_logits) != n_actions:
                raise ValueError(f"initial_logits needs {n_actions} values")
            last = self.actor[-1]
            assert isinstance(last, nn.Linear)
            with torch.no_grad():
                last.weight.mul_(0.1)
                last.bias.copy_(torch.tensor(cfg.initial_logits))
        if cfg.logit_prior is not None:
            prior = torch.tensor(cfg.logit_prior, dtype=torch.float32)
            if prior.shape != (state_dim, n_actions):
                raise ValueError(
                    f"logit_prior must be (state_dim, n_actions) = ({state_dim}, {n_actions}), "
                    f"got {tuple(prior.shape)}"
                )
            self.register_buffer("logit_prior", prior)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)

    # ------------------------------------------------------------------ acting
    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """The actor's logits ``(B, n_actions)``, with the fixed prior term when there is one."""
        out: torch.Tensor = self.actor(states)
        if self.config.logit_prior is not None:
            out = out + states @ self.logit_prior
        return out

    @torch.no_grad()
    def probabilities(self, states: torch.Tensor) -> torch.Tensor:
        """``π(· | s)``, ``(B, n_actions)``."""
        return torch.softmax(self.logits(states), dim=1)

    @torch.no_grad()
    def q_values(self, states: torch.Tensor) -> torch.Tensor:
        """``Q(s, ·)``, ``(B, n_actions)``."""
        return self.critic(states)

    @torch.no_grad()
    def act(self, states: torch.Tensor, rng: np.random.Generator) -> Decisions:
        """Sample one action per state from the behaviour policy ``(1 − ε) π + ε / n``."""
        eps = self.config.exploration
        behaviour = (1.0 - eps) * self.probabilities(states).double().numpy() + eps / self.n_actions
        cumulative = np.cumsum(behaviour, axis=1)
        draw = rng.random(len(behaviour))[:, None] * cumulative[:, -1:]
        actions = np.minimum((cumulative <= draw).sum(axis=1), self.n_actions - 1)
        chosen = behaviour[np.arange(len(actions)), actions].astype(np.float32)
        return Decisions(actions.astype(np.int64), chosen)

    # ------------------------------------------------------------------ learning
    def update_critic(self, batch: Transitions) -> float:
        """One TD step on ``batch`` (``actions`` ``(B, 1)`` holding indices); returns the loss."""
        cfg = self.config
        with torch.no_grad():
            next_policy = torch.softmax(self.logits(batch.next_states), dim=1)
            next_value = (next_policy * self.critic_target(batch.next_states)).sum(dim=1)
            target = batch.rewards + cfg.gamma * (1.0 - batch.dones) * next_value
        actions = batch.actions.reshape(-1).long()
        q = self.critic(batch.states).gather(1, actions[:, None]).squeeze(1)
        loss = F.mse_loss(q, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        with torch.no_grad():
            for p, p_target in zip(
                self.critic.parameters(), self.critic_target.parameters(), strict=True
            ):
                p_target.mul_(1.0 - cfg.tau).add_(p, alpha=cfg.tau)
        return float(loss.detach())

    def update_actor(self, batch: Transitions, behaviour_probability: torch.Tensor) -> float:
        """One importance-weighted policy-gradient step (module docstring); returns the loss."""
        cfg = self.config
        actions = batch.actions.reshape(-1).long()
        log_policy = torch.log_softmax(self.logits(batch.states), dim=1)
        policy = log_policy.exp()
        chosen_log = log_policy.gather(1, actions[:, None]).squeeze(1)
        with torch.no_grad():
            q = self.critic(batch.states)
            advantage = q.gather(1, actions[:, None]).squeeze(1) - (policy * q).sum(dim=1)
            rho = importance_ratio(chosen_log.exp(), behaviour_probability, cfg.importance_clip)
        entropy = -(policy * log_policy).sum(dim=1)
        loss = -(rho * advantage * chosen_log).mean() - cfg.entropy_bonus * entropy.mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_optimizer.step()
        return float(loss.detach())

    # ------------------------------------------------------------------ persistence
    def network_bytes(self) -> int:
        """Bytes of the networks and of both optimizers' state."""
        total = sum(t.numel() * t.element_size() for t in self.state_dict().values())
        for optimizer in (self.actor_optimizer, self.critic_optimizer):
            for state in optimizer.state.values():
                for value in state.values():
                    if isinstance(value, torch.Tensor):
                        total += value.numel() * value.element_size()
        return total

    def full_state(self) -> dict[str, Any]:
        """Networks and optimizers (for resuming)."""
        return {
            "networks": self.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
        }

    def load_full_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["networks"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])


class BehaviourReplayBuffer(ReplayBuffer):
    """A :class:`~leanrec.rl.replay.ReplayBuffer` that also keeps, per transition, the
    probability ``b(a | s)`` the behaviour policy gave the stored action (for importance
    sampling). :meth:`sample_with_behaviour` returns both."""

    def __init__(self, capacity: int, state_dim: int) -> None:
        super().__init__(capacity, state_dim, action_dim=1)
        self.behaviour = np.ones(capacity, dtype=np.float32)

    def add_with_behaviour(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_states: np.ndarray,
        behaviour: np.ndarray,
        dones: np.ndarray | float = 0.0,
    ) -> None:
        """Append ``n`` transitions with their ``b(a|s)`` (``dones`` 0 by default: a stream
        never ends; 1 where the decision's episode ends)."""
        n = len(states)
        if n == 0:
            return
        start = self.position
        self.add(states, actions, rewards, next_states, dones)
        # the slots add() wrote: the last min(n, capacity) positions, wrapping
        kept = min(n, self.capacity)
        index = (start + (n - kept) + np.arange(kept)) % self.capacity
        self.behaviour[index] = np.asarray(behaviour, dtype=np.float32)[n - kept :]

    def sample_with_behaviour(
        self, batch_size: int, rng: np.random.Generator
    ) -> tuple[Transitions, torch.Tensor]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = rng.integers(0, self.size, batch_size)
        batch = Transitions(
            torch.from_numpy(self.states[index]),
            torch.from_numpy(self.actions[index]),
            torch.from_numpy(self.rewards[index]),
            torch.from_numpy(self.next_states[index]),
            torch.from_numpy(self.dones[index]),
        )
        return batch, torch.from_numpy(self.behaviour[index])

    def nbytes(self) -> int:
        """Bytes of the allocated arrays (at capacity)."""
        arrays = (self.states, self.actions, self.rewards, self.next_states, self.dones)
        return sum(a.nbytes for a in arrays) + self.behaviour.nbytes

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["behaviour"] = torch.from_numpy(self.behaviour[: self.size].copy())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.behaviour[: self.size] = state["behaviour"].numpy()


__all__ = [
    "ActorCriticConfig",
    "BehaviourReplayBuffer",
    "Decisions",
    "DiscreteActorCritic",
    "importance_ratio",
]
