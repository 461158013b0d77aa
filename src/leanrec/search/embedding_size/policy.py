"""CIESS: continuous embedding size search with TD3 and random-walk exploration.

Algorithm 1 of Qu et al. (SIGIR 2023), top to bottom in :meth:`CIESSSearch.run`:

    for episode in 1..M:
        s_n <- (popularity_n, 1, 1)                   # every entity starts at d_max, q = 1
        for i in 1..T:
            d^_n <- μ(s_n) + ε                          # Eq. 11, separate actors for users/items
            Z_n  <- random walk from d^_n               # Eq. 12-13
            d_n  <- argmax_{d in Z_n} Q(s_n, d)         # Eq. 14
            q_n  <- environment.step(d)                 # masks, bounded training, Eq. 7-9
            r_n  <- q_n - λ_e (d_n / d_max)^2           # Eq. 10 (λ_e = λ unless scheduled)
            store (s_n, d_n, r_n, s'_n); update critics and actors with TD3
    keep every iteration's sizes with its mean q for selective retraining (Eq. 15-16)

The search checkpoints after every completed iteration; ``run(resume=True)`` continues from the
last one and reaches the same result as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from leanrec.rl.exploration import Noise, make_noise, random_walk
from leanrec.rl.replay import ReplayBuffer
from leanrec.rl.td3 import TD3Agent
from leanrec.runner.progress import progress
from leanrec.search.embedding_size.budget import sparsity
from leanrec.search.embedding_size.config import CIESSConfig
from leanrec.search.embedding_size.environment import SizeSearchEnvironment
from leanrec.seeding import torch_seeded
from leanrec.train.checkpoint import save_atomic, start_run

ROLES = ("user", "item")
STATE_DIM = 3


def normalized_popularity(counts: np.ndarray) -> np.ndarray:
    """``(f_n - f_min) / (f_max - f_min)`` (first component of Eq. 6); zeros if all equal."""
    counts = np.asarray(counts, dtype=np.float64)
    spread = counts.max() - counts.min()
    return (counts - counts.min()) / spread if spread > 0 else np.zeros_like(counts)


def reward_lambda_at(config: CIESSConfig, episode: int) -> float:
    """``λ`` of the reward (Eq. 10) in ``episode`` (1-based).

    Constant :attr:`~CIESSConfig.reward_lambda` (the paper), or, with
    :attr:`~CIESSConfig.reward_lambda_final`, geometric from ``λ_1 = reward_lambda`` to
    ``λ_M = reward_lambda_final``: ``λ_e = λ_1 (λ_M / λ_1)^((e - 1) / (M - 1))``.
    """
    start, final = config.reward_lambda, config.reward_lambda_final
    if final is None or config.episodes <= 1:
        return float(start)
    fraction = (min(max(episode, 1), config.episodes) - 1) / (config.episodes - 1)
    return float(start * (final / start) ** fraction)


def check_reward_lambdas(config: CIESSConfig) -> None:
    """A clear error for a ``λ`` the reward cannot use."""
    start, final = config.reward_lambda, config.reward_lambda_final
    for name, value in (("reward_lambda", start), ("reward_lambda_final", final)):
        if name == "reward_lambda_final" and value is None:
            continue
        if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if final is None:
        return
    if start <= 0:
        raise ValueError(
            "a lambda schedule (reward_lambda_final) grows geometrically from reward_lambda, "
            f"which must then be > 0, got {start!r}"
        )
    if final <= 0:
        raise ValueError(f"reward_lambda_final must be > 0, got {final!r}")


def make_states(popularity: np.ndarray, sizes: np.ndarray, quality: np.ndarray, max_dim: int):
    """Eq. 6: ``(normalized popularity, (d_n - 1) / (d_max - 1), q_n)``, float32 ``(N, 3)``."""
    size_part = (np.asarray(sizes, dtype=np.float64) - 1.0) / max(1, max_dim - 1)
    return np.stack([popularity, size_part, quality], axis=1).astype(np.float32)


RESUME_MAY_DIFFER = frozenset(
    {
        "pretrain",
        "retrain",
        "retrain_from_warm_start",
        "target_sparsities",
        "rescale_to_budget",
        "budget_projection",
        "top_masks",
        "screen_masks",
        "num_threads",
        "progress",
    }
)
"""Settings that do not change the search's path (see :meth:`CIESSSearch._check_same_search`)."""


def _comparable(value: Any) -> Any:
    """Tuples and lists compare equal (a checkpoint may hold either)."""
    if isinstance(value, list | tuple):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


class SizeTransitions(NamedTuple):
    """One iteration's ``(s_n, d_n, r_n, s'_n)`` of every entity of one role (``N`` users or
    items), what a policy learns from (Algorithm 1, "store")."""

    states: np.ndarray
    """``s_n``, float32 ``(N, 3)`` (Eq. 6)."""
    sizes: np.ndarray
    """``d_n``, int64 ``(N,)``: the sizes chosen in ``states``."""
    rewards: np.ndarray
    """``r_n``, float ``(N,)`` (Eq. 10)."""
    next_states: np.ndarray
    """``s'_n``, float32 ``(N, 3)``: the states the sizes led to."""
    done: bool
    """The iteration was the episode's last."""


class SizePolicy(Protocol):
    """What :class:`CIESSSearch` needs from a policy (CIESS's TD3, or a baseline's)."""

    def reset_episode(self) -> None: ...

    def choose(
        self, role: str, states: np.ndarray, rng: np.random.Generator, explore: bool = True
    ) -> np.ndarray: ...

    def remember(self, role: str, transitions: SizeTransitions) -> None: ...

    def learn(self, rng: np.random.Generator) -> dict[str, float]: ...

    def set_reward_lambda(self, reward_lambda: float) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


class CIESSPolicy:
    """The search function ``G_Φ``: a TD3 agent per role, exploration, replay buffers.

    Args:
        config: search configuration (``max_dim``, noise, random walk, TD3).
    """

    def __init__(self, config: CIESSConfig) -> None:
        self.config = config
        # the networks' initial weights follow the search seed, not the process's torch state
        with torch_seeded(config.seed):
            self.agents = {
                role: TD3Agent(STATE_DIM, 1, 1.0, float(config.max_dim), config.td3)
                for role in ROLES
            }
        self.noises: dict[str, Noise] = {
            role: make_noise(config.noise, config.noise_sigma) for role in ROLES
        }
        self.buffers = {role: ReplayBuffer(config.replay_capacity, STATE_DIM, 1) for role in ROLES}

    def reset_episode(self) -> None:
        for noise in self.noises.values():
            noise.reset()

    def choose(
        self, role: str, states: np.ndarray, rng: np.random.Generator, explore: bool = True
    ) -> np.ndarray:
        """Sizes for one role: actor + noise (Eq. 11), then the critic's best of the walk (Eq. 14).

        Args:
            states: ``(N, 3)`` float32.

        Returns:
            int64 ``(N,)`` sizes in ``[1, d_max]``.
        """
        cfg = self.config
        agent = self.agents[role]
        state_tensor = torch.from_numpy(states)
        raw = agent.act(state_tensor)[:, 0].numpy().astype(np.float64)
        if explore:
            raw = raw + self.noises[role].sample(len(raw), rng)
        start = np.clip(np.rint(raw), 1, cfg.max_dim).astype(np.int64)
        if not (explore and cfg.random_walk):
            return start
        walk = random_walk(start, 1, cfg.max_dim, cfg.walk_threshold, cfg.walk_length, rng)
        n, width = walk.shape
        repeated = state_tensor.repeat_interleave(width, dim=0)
        actions = torch.from_numpy(walk.reshape(-1, 1).astype(np.float32))
        values = agent.q_value(repeated, actions).reshape(n, width)
        best = values.argmax(dim=1).numpy()
        return walk[np.arange(n), best]

    def remember(self, role: str, transitions: SizeTransitions) -> None:
        """Keep the role's transitions in its replay buffer (sizes and rewards as float32)."""
        states, sizes, rewards, next_states, done = transitions
        self.buffers[role].add(
            states, sizes.astype(np.float32), rewards.astype(np.float32), next_states, float(done)
        )

    def set_reward_lambda(self, reward_lambda: float) -> None:
        """Relabel every stored reward with a new ``λ``: ``r = q' - λ (d / d_max)^2`` (Eq. 10),
        ``q'`` being the quality component of the stored next state and ``d`` the stored size."""
        for buffer in self.buffers.values():
            n = len(buffer)
            quality = buffer.next_states[:n, 2].astype(np.float64)
            size = buffer.actions[:n, 0].astype(np.float64) / self.config.max_dim
            buffer.rewards[:n] = (quality - reward_lambda * size**2).astype(np.float32)

    def learn(self, rng: np.random.Generator) -> dict[str, float]:
        """``updates_per_iteration`` TD3 steps per agent; mean losses."""
        out: dict[str, float] = {}
        for role in ROLES:
            losses: dict[str, list[float]] = {}
            for _ in range(self.config.updates_per_iteration):
                batch = self.buffers[role].sample(self.config.rl_batch_size, rng)
                for key, value in self.agents[role].update(batch).items():
                    losses.setdefault(key, []).append(value)
            out.update({f"{role}_{k}": float(np.mean(v)) for k, v in losses.items()})
        return out

    def state(self) -> dict[str, Any]:
        return {
            "agents": {role: a.full_state() for role, a in self.agents.items()},
            "buffers": {role: b.state_dict() for role, b in self.buffers.items()},
            "noises": {role: n.state_dict() for role, n in self.noises.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for role in ROLES:
            self.agents[role].load_full_state(state["agents"][role])
            self.buffers[role].load_state_dict(state["buffers"][role])
            self.noises[role].load_state_dict(state["noises"][role])


@dataclass
class SizeCandidate:
    """One iteration's sizes and how they did (an element of ``M_c`` in Eq. 15)."""

    episode: int
    iteration: int
    user_sizes: np.ndarray
    item_sizes: np.ndarray
    mean_quality: float
    """``q̄``: mean of ``q_n`` over all users and items (Eq. 16)."""
    sparsity: float

    def all_sizes(self) -> np.ndarray:
        return np.concatenate([self.user_sizes, self.item_sizes])


@dataclass
class SearchResult:
    """Everything the search produced."""

    history: list[dict[str, float]]
    candidates: list[SizeCandidate]
    seconds: float
    policy: SizePolicy | None = field(default=None, repr=False)


IterationHook = Callable[[dict[str, float]], None]


class CIESSSearch:
    """Runs Algorithm 1 against a :class:`SizeSearchEnvironment`.

    Args:
        environment: sets sizes, trains, measures.
        user_popularity: ``(|U|,)`` training interaction counts.
        item_popularity: ``(|I|,)`` training interaction counts.
        config: search configuration.
        checkpoint_path: resumable state written after every iteration (None: no checkpoints).
        policy: the decision-maker (default: :class:`CIESSPolicy`; the ESAPN-style baseline
            runs through the same loop).
    """

    def __init__(
        self,
        environment: SizeSearchEnvironment,
        user_popularity: np.ndarray,
        item_popularity: np.ndarray,
        config: CIESSConfig,
        checkpoint_path: str | Path | None = None,
        policy: SizePolicy | None = None,
    ) -> None:
        self.environment = environment
        self.config = config
        self.popularity = {
            "user": normalized_popularity(user_popularity),
            "item": normalized_popularity(item_popularity),
        }
        check_reward_lambdas(config)
        self.policy: SizePolicy = policy if policy is not None else CIESSPolicy(config)
        self.rng = np.random.default_rng(config.seed)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.history: list[dict[str, float]] = []
        self.candidates: list[SizeCandidate] = []
        self.states: dict[str, np.ndarray] = {}
        self.next_step = 0  # global index of the next iteration to run
        self.seconds = 0.0

    # ------------------------------------------------------------------ the loop
    def initial_states(self) -> dict[str, np.ndarray]:
        """Line 4: every entity at ``d_max`` with ``q = 1``."""
        d = self.config.max_dim
        return {
            role: make_states(pop, np.full(len(pop), d), np.ones(len(pop)), d)
            for role, pop in self.popularity.items()
        }

    def run(self, resume: bool = False, on_iteration: IterationHook | None = None) -> SearchResult:
        cfg = self.config
        state = start_run(cfg.num_threads, cfg.seed, self.checkpoint_path, resume)
        if state is not None:
            self._restore(state)
        if self.environment.reference is None:
            self.environment.set_reference()
        total = cfg.episodes * cfg.iterations
        steps = range(self.next_step, total)
        for step in progress(steps, desc="CIESS search", enabled=cfg.progress, total=len(steps)):
            began = time.perf_counter()
            episode, iteration = divmod(step, cfg.iterations)
            if iteration == 0:
                self.states = self.initial_states()
                self.policy.reset_episode()
                if cfg.reward_lambda_final is not None:
                    self.policy.set_reward_lambda(reward_lambda_at(cfg, episode + 1))
            record = self._iterate(episode + 1, iteration + 1)
            record["seconds"] = time.perf_counter() - began
            self.seconds += record["seconds"]
            self.history.append(record)
            self.next_step = step + 1
            if self.checkpoint_path is not None:
                save_atomic(self._state(), self.checkpoint_path)
            if on_iteration is not None:
                on_iteration(record)
        return SearchResult(self.history, self.candidates, self.seconds, self.policy)

    def _iterate(self, episode: int, iteration: int) -> dict[str, float]:
        cfg = self.config
        reward_lambda = reward_lambda_at(cfg, episode)
        sizes = {role: self.policy.choose(role, self.states[role], self.rng) for role in ROLES}
        outcome = self.environment.step(sizes["user"], sizes["item"])
        quality = {"user": outcome["q_users"], "item": outcome["q_items"]}
        done = iteration == cfg.iterations
        record: dict[str, float] = {
            "episode": episode,
            "iteration": iteration,
            "inner_loss": outcome["loss"],
            "reward_lambda": reward_lambda,
        }
        for role in ROLES:
            reward = quality[role] - reward_lambda * (sizes[role] / cfg.max_dim) ** 2
            next_states = make_states(
                self.popularity[role], sizes[role], quality[role], cfg.max_dim
            )
            self.policy.remember(
                role, SizeTransitions(self.states[role], sizes[role], reward, next_states, done)
            )
            self.states[role] = next_states
            record[f"{role}_reward"] = float(reward.mean())
            record[f"{role}_mean_size"] = float(sizes[role].mean())
            record[f"{role}_mean_quality"] = float(quality[role].mean())
        all_sizes = np.concatenate([sizes["user"], sizes["item"]])
        mean_quality = float(np.concatenate([quality["user"], quality["item"]]).mean())
        record["mean_reward"] = float(
            np.mean(
                np.concatenate(
                    [quality[r] - reward_lambda * (sizes[r] / cfg.max_dim) ** 2 for r in ROLES]
                )
            )
        )
        record["mean_size"] = float(all_sizes.mean())
        record["mean_quality"] = mean_quality
        record["sparsity"] = sparsity(all_sizes, cfg.max_dim)
        self.candidates.append(
            SizeCandidate(
                episode,
                iteration,
                sizes["user"].astype(np.int16),
                sizes["item"].astype(np.int16),
                mean_quality,
                record["sparsity"],
            )
        )
        record.update(self.policy.learn(self.rng))
        return record

    # ------------------------------------------------------------------ resume
    def _state(self) -> dict[str, Any]:
        return {
            "next_step": self.next_step,
            "config": asdict(self.config),
            "policy": self.policy.state(),
            "states": {role: torch.from_numpy(s) for role, s in self.states.items()},
            "rng": self.rng.bit_generator.state,
            "environment_rng": self.environment.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "seconds": self.seconds,
            "candidates": [
                {
                    "episode": c.episode,
                    "iteration": c.iteration,
                    "user_sizes": torch.from_numpy(c.user_sizes),
                    "item_sizes": torch.from_numpy(c.item_sizes),
                    "mean_quality": c.mean_quality,
                    "sparsity": c.sparsity,
                }
                for c in self.candidates
            ],
        }

    def _check_same_search(self, saved: dict[str, Any]) -> None:
        """A checkpoint resumes only the search it came from: every setting that changes the
        search's path must match (retraining, budgets, threads and progress may differ). A key
        the saved config lacks (written before the setting existed) counts as its default."""
        current = asdict(self.config)
        defaults = asdict(CIESSConfig())
        before = {key: saved.get(key, defaults[key]) for key in current}
        differing = sorted(
            key
            for key, value in current.items()
            if key not in RESUME_MAY_DIFFER and _comparable(before[key]) != _comparable(value)
        )
        if differing:
            shown = ", ".join(f"{key}: {before[key]!r} -> {current[key]!r}" for key in differing)
            raise ValueError(
                f"{self.checkpoint_path} was written by a search with other settings ({shown}); "
                "resume with the same settings or start in a new directory"
            )

    def _restore(self, state: dict[str, Any]) -> None:
        if "config" in state:
            self._check_same_search(state["config"])
        self.next_step = int(state["next_step"])
        self.policy.load_state(state["policy"])
        self.states = {role: s.numpy().copy() for role, s in state["states"].items()}
        self.rng.bit_generator.state = state["rng"]
        self.environment.rng.bit_generator.state = state["environment_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.history = list(state["history"])
        self.seconds = float(state["seconds"])
        self.candidates = [
            SizeCandidate(
                int(c["episode"]),
                int(c["iteration"]),
                c["user_sizes"].numpy().copy(),
                c["item_sizes"].numpy().copy(),
                float(c["mean_quality"]),
                float(c["sparsity"]),
            )
            for c in state["candidates"]
        ]
