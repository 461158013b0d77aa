"""A fixed-capacity replay buffer of ``(s, a, r, s', done)`` transitions, stored as arrays."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


class Transitions(NamedTuple):
    """A batch of transitions; every field has leading dimension ``B``."""

    states: torch.Tensor
    """``(B, state_dim)``"""
    actions: torch.Tensor
    """``(B, action_dim)``"""
    rewards: torch.Tensor
    """``(B,)``"""
    next_states: torch.Tensor
    """``(B, state_dim)``"""
    dones: torch.Tensor
    """``(B,)``, 1.0 where the episode ended after this transition."""


class ReplayBuffer:
    """Circular buffer; adding past ``capacity`` overwrites the oldest transitions.

    Transitions arrive in batches (one per user or item per search iteration), so :meth:`add`
    takes arrays. Sampling is uniform, with replacement, from the given generator.

    Args:
        capacity: maximum number of transitions kept.
        state_dim: length of a state vector.
        action_dim: length of an action vector.
    """

    def __init__(self, capacity: int, state_dim: int, action_dim: int = 1) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.states = np.zeros((capacity, state_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_states = np.zeros((capacity, state_dim), dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_states: np.ndarray,
        dones: np.ndarray | float,
    ) -> None:
        """Append ``n`` transitions (arrays with leading dimension ``n``)."""
        n = len(states)
        dones_array = np.broadcast_to(np.asarray(dones, dtype=np.float32), (n,))
        actions = np.asarray(actions, dtype=np.float32).reshape(n, -1)
        for start in range(0, n, self.capacity):
            chunk = slice(start, min(n, start + self.capacity))
            m = chunk.stop - chunk.start
            index = (self.position + np.arange(m)) % self.capacity
            self.states[index] = states[chunk]
            self.actions[index] = actions[chunk]
            self.rewards[index] = rewards[chunk]
            self.next_states[index] = next_states[chunk]
            self.dones[index] = dones_array[chunk]
            self.position = int((self.position + m) % self.capacity)
            self.size = min(self.capacity, self.size + m)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Transitions:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = rng.integers(0, self.size, batch_size)
        return Transitions(
            torch.from_numpy(self.states[index]),
            torch.from_numpy(self.actions[index]),
            torch.from_numpy(self.rewards[index]),
            torch.from_numpy(self.next_states[index]),
            torch.from_numpy(self.dones[index]),
        )

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {
            "states": torch.from_numpy(self.states[:n].copy()),
            "actions": torch.from_numpy(self.actions[:n].copy()),
            "rewards": torch.from_numpy(self.rewards[:n].copy()),
            "next_states": torch.from_numpy(self.next_states[:n].copy()),
            "dones": torch.from_numpy(self.dones[:n].copy()),
            "position": self.position,
            "size": self.size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = int(state["size"])
        self.states[:n] = state["states"].numpy()
        self.actions[:n] = state["actions"].numpy()
        self.rewards[:n] = state["rewards"].numpy()
        self.next_states[:n] = state["next_states"].numpy()
        self.dones[:n] = state["dones"].numpy()
        self.position = int(state["position"])
        self.size = n
