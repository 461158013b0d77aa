"""REINFORCE (Williams, 1992) with a mean-return baseline, for a categorical action.

Many independent decision-makers (one per user or item) act in lock-step episodes: each step
records their states, actions and rewards; :meth:`ReinforceAgent.finish_episode` turns rewards
into discounted returns ``G_t = sum_k γ^k r_{t+k}``, subtracts the per-step mean as a baseline,
and takes one gradient step on ``-mean((G_t - b_t) log π(a_t | s_t))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class CategoricalPolicy(nn.Module):
    """``π(a | s)``: ``(B, state_dim) -> (B, n_actions)`` logits."""

    def __init__(self, state_dim: int, n_actions: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_actions)
        )

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.net(states)


class ReinforceAgent:
    """A categorical policy trained by REINFORCE over lock-step episodes.

    Args:
        state_dim: length of a state.
        n_actions: number of discrete actions.
        learning_rate: Adam step size.
        gamma: discount ``γ``.
        hidden: hidden width of the policy.
    """

    def __init__(
        self,
        state_dim: int,
        n_actions: int,
        learning_rate: float = 1e-3,
        gamma: float = 0.9,
        hidden: int = 64,
    ) -> None:
        self.policy = CategoricalPolicy(state_dim, n_actions, hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=learning_rate)
        self.gamma = gamma
        self.episode: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    @torch.no_grad()
    def act(self, states: np.ndarray, rng: np.random.Generator, explore: bool = True) -> np.ndarray:
        """Sampled (or, without ``explore``, most likely) actions, int64 ``(B,)``."""
        probs = torch.softmax(self.policy(torch.from_numpy(states)), dim=1).numpy()
        if not explore:
            return probs.argmax(axis=1).astype(np.int64)
        cumulative = np.cumsum(probs, axis=1)
        draw = rng.random(len(states))[:, None] * cumulative[:, -1:]
        return np.minimum((cumulative <= draw).sum(axis=1), probs.shape[1] - 1).astype(np.int64)

    def record(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.episode.append((states.copy(), actions.copy(), rewards.astype(np.float32)))

    def finish_episode(self) -> dict[str, float]:
        """One policy-gradient step on the recorded episode, then forget it."""
        if not self.episode:
            return {}
        returns: list[np.ndarray] = []
        running = np.zeros_like(self.episode[-1][2])
        for _, _, rewards in reversed(self.episode):
            running = rewards + self.gamma * running
            returns.append(running)
        returns.reverse()
        loss_terms = []
        for (states, actions, _), ret in zip(self.episode, returns, strict=True):
            advantage = torch.from_numpy(ret - ret.mean())
            scale = advantage.std() + 1e-8
            log_probs = torch.log_softmax(self.policy(torch.from_numpy(states)), dim=1)
            chosen = log_probs[torch.arange(len(actions)), torch.from_numpy(actions)]
            loss_terms.append(-(advantage / scale * chosen).mean())
        loss = torch.stack(loss_terms).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.episode = []
        return {"policy_loss": float(loss.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "episode": [
                (torch.from_numpy(s), torch.from_numpy(a), torch.from_numpy(r))
                for s, a, r in self.episode
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.episode = [(s.numpy(), a.numpy(), r.numpy()) for s, a, r in state["episode"]]
