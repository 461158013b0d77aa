"""The Identity Agent of AutoAssign+ (arXiv 2308.06965): who gets a shared vector, who a row.

Per ID field (user, item, ...) the IDs sit in a hierarchy of ``k`` shared vectors in front of
the unique rows (:class:`~leanrec.embeddings.HierarchicalSharedEmbedding`: position ``1..k`` a
level, ``k + 1`` a unique row). Once per chunk, for every ID of the chunk, the agent

1. measures the outcome of the ID's previous decision. ``L`` is the ID's loss on this chunk
   under the current assignment, measured *before* the base model learns the chunk (its
   prequential loss; the mean over its events in the chunk); the reward is

       R = 1/T Σ_{t=1..T} L_t − L                    (paper: R_u = 1/T Σ L^u_t − L)

   over the ID's last ``T`` recorded losses (fewer at the start): positive when the loss fell.
   With ``reward="advantage"`` (leanrec's variant), ``R`` minus its mean over the chunk's
   closing decisions of the field taken at the same position (:func:`advantage`).
   The transition ``(s, a, R, s')`` with the decision's behaviour probability ``b(a | s)`` goes
   to the replay buffer; ``L`` joins the ID's loss history;
2. updates the critic ``Q(s, a)`` by TD on replayed transitions, then the actor by policy
   gradient with importance sampling (a replayed decision was taken by an older policy: ratio
   ``π_new(a | s) / π_old(a | s)``, truncated): :class:`~leanrec.rl.DiscreteActorCritic`;
3. decides again: ``a ~ (1 − ε) π(· | s) + ε / 3`` over descend (0) / unchanged (1) /
   ascend (2), applied by the caller with ``move``. The base model then learns the chunk with
   the new assignment (the third update of the chunk).

State of an ID (:meth:`IdentityAgent.states`), ``state_dim = 1 + (k + 1) + 3 + F``::

    [ log(1 + frequency so far) / 5,
      one-hot of the position (1..k+1),
      mean of the last T losses (0 when none), 1 if there are any, current loss L,
      one-hot of the field ]

Per-ID state the agent holds (counted into the embedding bytes, since it is kept per ID for
the ID representations: :meth:`IdentityAgent.nbytes`): the loss history (``T`` float16 values,
a uint8 ring head and fill count) and the open decision awaiting its reward (frequency int32,
loss mean float16, has-history bool, position int8, action int8, behaviour probability
float16): ``2T + 13``
bytes per ID. The networks, their optimizers and the replay buffer are bounded and reported
beside (:meth:`IdentityAgent.agent_bytes`).

With ``history="ema"`` (leanrec's compact variant, :class:`LeanRecords`) the per-ID state is
9 bytes: a float16 loss EMA (weight ``2/(T+1)``), the chunk the ID was last seen in (int16),
and the open decision (uint8 log-count, int8 position, int8 action, float16 ``b(a | s)``). The
state is ``[log(1+count)/5, position one-hot, EMA, has-EMA, log(1+chunks idle)/5,
idle-decision flag, field one-hot]``. With ``idle_after > 0``, every ``sweep_every`` chunks the
IDs unseen for ``idle_after`` chunks decide too (:meth:`IdentityAgent.idle_round`): descending
from the unique position frees a row an ID no longer uses. Rewards then carry a byte term::

    R = (EMA before − L) − λ · held · chunks     closed at the ID's next appearance
    R =                  − λ · held · chunks     closed at the next idle decision

``held``: the ID holds a unique row after the decision; ``chunks``: since the decision.

Everything is vectorised over the IDs of a chunk; there is no per-ID Python loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from leanrec.embeddings import ASCEND, DESCEND, UNCHANGED
from leanrec.rl.actor_critic import ActorCriticConfig, BehaviourReplayBuffer, DiscreteActorCritic
from leanrec.search.shared_embedding.config import AutoAssignConfig

N_ACTIONS = 3
"""Descend (0), unchanged (1), ascend (2): the hierarchy's action indices."""
NO_DECISION = -1
"""Open-decision action of an ID that has not decided yet."""


def reward(history_mean: torch.Tensor, current_loss: torch.Tensor) -> torch.Tensor:
    """``R = 1/T Σ L_t − L``: ``(B,)`` mean of the last ``T`` losses minus the current loss."""
    return history_mean - current_loss


def held_after(positions: torch.Tensor, actions: torch.Tensor, levels: int) -> torch.Tensor:
    """Whether the ID holds a unique row after ``actions`` from ``positions`` (position 0
    moves from level 1), bool ``(m,)``: the byte term of the reward charges these."""
    target = (positions.to(torch.int64).clamp(min=1) + actions.to(torch.int64) - 1).clamp(
        1, levels + 1
    )
    return target == levels + 1


def advantage(rewards: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Rewards minus their group's mean, ``(B,), (B,) -> (B,)``: the drift every decision of a
    group shares (each ID's loss falls as the base model learns) cancels; differences between
    actions taken in one group stay. Example: rewards ``[0.3, 0.1, 0.5]`` in groups
    ``[1, 1, 2]`` give ``[0.1, -0.1, 0.0]``."""
    _, inverse = torch.unique(groups, return_inverse=True)
    n = int(inverse.max()) + 1 if len(inverse) else 0
    total = torch.zeros(n, dtype=rewards.dtype).index_add_(0, inverse, rewards)
    size = torch.bincount(inverse, minlength=n).to(rewards.dtype)
    return rewards - (total / size)[inverse]


def _grown(old: torch.Tensor, capacity: int, fill: float = 0) -> torch.Tensor:
    new = torch.full((capacity, *old.shape[1:]), fill, dtype=old.dtype)
    new[: len(old)] = old
    return new


class LossHistory:
    """The last ``T`` losses of every ID of one field: a ring of float16 per ID.

    Attributes:
        losses: ``(id_capacity, T)`` float16.
        head: ``(id_capacity,)`` uint8, the slot the next loss goes to.
        filled: ``(id_capacity,)`` uint8, losses recorded (at most ``T``).
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.losses = torch.zeros(0, window, dtype=torch.float16)
        self.head = torch.zeros(0, dtype=torch.uint8)
        self.filled = torch.zeros(0, dtype=torch.uint8)

    def extend(self, capacity: int) -> None:
        """Hold IDs ``0..capacity-1`` (the arrays double, so this is O(1) amortised)."""
        if capacity <= len(self.head):
            return
        size = max(capacity, 2 * len(self.head))
        self.losses = _grown(self.losses, size)
        self.head = _grown(self.head, size)
        self.filled = _grown(self.filled, size)

    def mean(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(1/T Σ L_t, recorded)`` per ID, ``(B,)`` float32 and int64; mean 0 when none."""
        filled = self.filled[ids].to(torch.int64)
        mask = torch.arange(self.window)[None, :] < filled[:, None]
        total = (self.losses[ids].float() * mask).sum(dim=1)
        return total / filled.clamp(min=1), filled

    def latest(self, ids: torch.Tensor) -> torch.Tensor:
        """The most recently recorded loss per ID, ``(B,)`` float32 (0 when none)."""
        slot = (self.head[ids].to(torch.int64) - 1) % self.window
        return self.losses[ids, slot].float() * (self.filled[ids] > 0)

    def push(self, ids: torch.Tensor, losses: torch.Tensor) -> None:
        """Record one loss per (distinct) ID, overwriting its oldest when ``T`` are held."""
        slot = self.head[ids].to(torch.int64)
        self.losses[ids, slot] = losses.to(torch.float16)
        self.head[ids] = ((slot + 1) % self.window).to(torch.uint8)
        self.filled[ids] = (
            (self.filled[ids].to(torch.int64) + 1).clamp(max=self.window).to(torch.uint8)
        )

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.losses, self.head, self.filled))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"losses": self.losses, "head": self.head, "filled": self.filled}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.losses, self.head, self.filled = state["losses"], state["head"], state["filled"]


class PerIdArrays:
    """Per ID of one field, one typed array ``(id_capacity,)`` per entry of :attr:`FIELDS`
    (name, dtype, fill of IDs not yet written), all grown together as IDs arrive."""

    FIELDS: tuple[tuple[str, torch.dtype, float], ...] = ()

    def __init__(self) -> None:
        self.arrays = {n: torch.full((0,), fill, dtype=t) for n, t, fill in self.FIELDS}

    def extend(self, capacity: int) -> None:
        """Hold IDs ``0..capacity-1`` (new IDs at their fill), growing to :meth:`grown_size`."""
        current = len(self.arrays[self.FIELDS[0][0]])
        if capacity <= current:
            return
        size = self.grown_size(capacity, current)
        for name, _, fill in self.FIELDS:
            self.arrays[name] = _grown(self.arrays[name], size, fill)

    def grown_size(self, capacity: int, current: int) -> int:
        """The capacity to grow to when ``capacity`` IDs do not fit in ``current``: doubling."""
        return max(capacity, 2 * current)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.arrays.values())


class OpenDecisions(PerIdArrays):
    """Per ID of one field, the last decision still waiting for its reward: what the state
    was (frequency, loss mean, position; the loss it saw is the history's latest entry), the
    action and its behaviour probability. ``action == NO_DECISION`` where none is open."""

    FIELDS = (
        ("count", torch.int32, 0),
        ("mean", torch.float16, 0),
        ("has_history", torch.bool, 0),
        ("position", torch.int8, 0),
        ("action", torch.int8, NO_DECISION),
        ("behaviour", torch.float16, 1),
    )


CHUNK_WRAP = 2**15
"""Chunk indices are kept modulo this (int16): an ID idle this many chunks reads as just seen
again (it has been offered an idle decision every ``sweep_every`` chunks long before)."""
RECORD_BLOCK = 256
"""The compact per-ID records grow in blocks of this many IDs."""
COUNT_SCALE = 16.0
"""Frequencies are kept as ``round(16 · log(1 + count))`` in a uint8 (counts up to e^16)."""


def quantised_log_count(counts: torch.Tensor) -> torch.Tensor:
    """``log(1 + count)`` as the uint8 the compact records keep, read back as float32 ``(m,)``
    (resolution 1/16: the state feature ``log(1 + count)/5`` moves by at most 1/160)."""
    q = torch.round(torch.log1p(counts.float()) * COUNT_SCALE).clamp(0, 255)
    return q / COUNT_SCALE


class LeanRecords(PerIdArrays):
    """Per ID of one field, the ``history="ema"`` agent state: 9 bytes per ID.

    Attributes (each ``(id_capacity,)``):
        ema: float16 exponential mean of the ID's chunk losses (NaN: never seen).
        last_seen: int16, the chunk the ID last appeared in, modulo :data:`CHUNK_WRAP`.
        log_count: uint8, ``round(16 · log(1 + count))`` at the open decision.
        position: int8, the position at the open decision.
        action: int8, the open decision's action (0..2 taken on appearance, 3..5 an idle
            decision's action + 3; :data:`NO_DECISION` when none is open).
        behaviour: float16 ``b(a | s)`` of the open decision.

    The state at the open decision is rebuilt from these: its loss mean is the current
    ``ema`` (updated only on appearances, which close the decision), its idle time is 0 for a
    decision on appearance and ``(idle decision's chunk) − last_seen`` for an idle decision,
    whose chunk is the last idle round before now (rounds fall every ``sweep_every`` chunks).
    """

    FIELDS = (
        ("ema", torch.float16, float("nan")),
        ("last_seen", torch.int16, 0),
        ("log_count", torch.uint8, 0),
        ("position", torch.int8, 0),
        ("action", torch.int8, NO_DECISION),
        ("behaviour", torch.float16, 1),
    )

    def grown_size(self, capacity: int, current: int) -> int:
        """The next multiple of :data:`RECORD_BLOCK` at least an eighth above ``current`` (not
        doubling: these bytes are per ID, and holding up to twice the IDs costs more than a
        copy now and then; the eighth keeps the copies O(1) amortised per ID when a chunk
        brings more new IDs than a block holds)."""
        return -(-max(capacity, current + current // 8) // RECORD_BLOCK) * RECORD_BLOCK

    def idle(self, ids: torch.Tensor, now: int) -> torch.Tensor:
        """Chunks since each ID was last seen, int64 ``(m,)`` (modulo :data:`CHUNK_WRAP`)."""
        last = self.arrays["last_seen"][ids].to(torch.int64)
        return (now - last) % CHUNK_WRAP


class FieldSnapshot(NamedTuple):
    """The IDs of one field in one chunk, as the agent saw them (every tensor ``(m,)``)."""

    field: str
    ids: torch.Tensor
    counts: torch.Tensor
    positions: torch.Tensor
    history_mean: torch.Tensor
    has_history: torch.Tensor
    loss: torch.Tensor
    states: torch.Tensor
    """``(m, state_dim)``."""
    idle: bool = False
    """An idle decision round (IDs not in the chunk), not the chunk's IDs."""


class IdentityAgent:
    """The actor (Identity Agent) and critic of AutoAssign+ with their replay and per-ID state.

    Args:
        fields: the ID fields the agent assigns (one shared actor and critic; the state holds
            the field's one-hot).
        config: hyper-parameters (``levels`` = ``k``).

    Example (one field, two IDs seen in a chunk, loss 0.7 and 0.4):
        >>> agent = IdentityAgent(("user",), AutoAssignConfig(levels=2))
        >>> agent.extend({"user": 2})
        >>> seen = agent.observe("user", torch.tensor([0, 1]), torch.tensor([0.7, 0.4]),
        ...                      counts=torch.tensor([3, 1]), positions=torch.tensor([1, 1]))
        >>> agent.decide(seen).shape
        torch.Size([2])
    """

    def __init__(self, fields: tuple[str, ...], config: AutoAssignConfig) -> None:
        self.fields = tuple(fields)
        self.config = config
        self.levels = config.levels
        self.lean = config.history == "ema"
        extra = 4 if self.lean else 3
        self.state_dim = 1 + (config.levels + 1) + extra + len(self.fields)
        prior = None
        if self.lean:
            rows = [[0.0] * N_ACTIONS for _ in range(self.state_dim)]
            rows[self._idle_flag_column] = [float(v) for v in config.idle_logits]
            prior = tuple(tuple(r) for r in rows)
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.networks = DiscreteActorCritic(
                self.state_dim,
                N_ACTIONS,
                ActorCriticConfig(
                    actor_hidden=config.actor_hidden,
                    critic_hidden=config.critic_hidden,
                    actor_lr=config.actor_learning_rate,
                    critic_lr=config.critic_learning_rate,
                    gamma=config.discount,
                    tau=config.target_rate,
                    importance_clip=config.importance_clip,
                    exploration=config.exploration,
                    entropy_bonus=config.entropy_bonus,
                    initial_logits=config.initial_logits,
                    logit_prior=prior,
                ),
            )
        self.replay = BehaviourReplayBuffer(config.replay_size, self.state_dim)
        self.rng = np.random.default_rng(config.seed)
        self.history: dict[str, LossHistory] = {}
        self.open: dict[str, OpenDecisions] = {}
        self.records: dict[str, LeanRecords] = {}
        for f in self.fields:
            if self.lean:
                self.records[f] = LeanRecords()
            else:
                self.history[f] = LossHistory(config.reward_window)
                self.open[f] = OpenDecisions()
        self.ema_weight = 2.0 / (config.reward_window + 1)
        self.pending: dict[str, dict[int, torch.Tensor]] = {f: {} for f in self.fields}
        """``idle_offers="holders"``: per field, the IDs (int32) queued for the idle round of
        each chunk index; an entry is checked when its round comes (the ID may have appeared
        again, or lost its row, since it was queued)."""
        self.now = 0
        """The chunk of the last :meth:`observe` (``history="ema"``: idle times count from it)."""
        self.last_losses: dict[str, float] = {}

    @property
    def _idle_flag_column(self) -> int:
        """Column of the idle-decision flag in a ``history="ema"`` state."""
        return 1 + (self.levels + 1) + 3

    # ------------------------------------------------------------------ per-ID state
    def extend(self, sizes: dict[str, int]) -> None:
        """Hold per-ID state for IDs ``0..sizes[field]-1`` of every field."""
        for f in self.fields:
            if self.lean:
                self.records[f].extend(int(sizes[f]))
            else:
                self.history[f].extend(int(sizes[f]))
                self.open[f].extend(int(sizes[f]))

    def nbytes(self) -> int:
        """Per-ID state (loss histories and open decisions): part of the embedding bytes."""
        if self.lean:
            queued = sum(
                t.numel() * t.element_size() for q in self.pending.values() for t in q.values()
            )
            return queued + sum(self.records[f].nbytes() for f in self.fields)
        return sum(self.history[f].nbytes() + self.open[f].nbytes() for f in self.fields)

    def agent_bytes(self) -> int:
        """Networks, optimizers and replay buffer: reported beside the embedding bytes."""
        return self.networks.network_bytes() + self.replay.nbytes()

    # ------------------------------------------------------------------ states
    def states(
        self,
        field: str,
        counts: torch.Tensor,
        positions: torch.Tensor,
        history_mean: torch.Tensor,
        has_history: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        """The agent's state per ID (module docstring), ``(m,) x 6 -> (m, state_dim)``.
        With ``history="ema"`` the sixth input is the idle time in chunks (:meth:`lean_states`
        with the flag of a decision on appearance)."""
        if self.lean:
            return self.lean_states(
                field, torch.log1p(counts.float()), positions, history_mean, has_history, loss,
                idle_round=torch.zeros(len(counts), dtype=torch.bool),
            )  # fmt: skip
        m = len(counts)
        return torch.cat(
            [
                torch.log1p(counts.float())[:, None] / 5.0,
                self._position_one_hot(positions),
                history_mean.float()[:, None],
                has_history.float()[:, None],
                loss.float()[:, None],
                self._field_one_hot(field, m),
            ],
            dim=1,
        )

    def lean_states(
        self,
        field: str,
        log_count: torch.Tensor,
        positions: torch.Tensor,
        ema: torch.Tensor,
        has_history: torch.Tensor,
        idle: torch.Tensor,
        idle_round: torch.Tensor,
    ) -> torch.Tensor:
        """``history="ema"`` state per ID, ``(m,) x 7 -> (m, state_dim)``::

        [ log(1 + count)/5, one-hot position (1..k+1), loss EMA (0 if none), has-EMA,
          log(1 + chunks since last seen)/5, idle-decision flag, one-hot field ]
        """
        m = len(log_count)
        return torch.cat(
            [
                log_count.float()[:, None] / 5.0,
                self._position_one_hot(positions),
                torch.nan_to_num(ema.float(), nan=0.0)[:, None],
                has_history.float()[:, None],
                torch.log1p(idle.float())[:, None] / 5.0,
                idle_round.float()[:, None],
                self._field_one_hot(field, m),
            ],
            dim=1,
        )

    def _position_one_hot(self, positions: torch.Tensor) -> torch.Tensor:
        m = len(positions)
        one_hot = torch.zeros(m, self.levels + 1)
        one_hot[torch.arange(m), positions.to(torch.int64).clamp(1, self.levels + 1) - 1] = 1.0
        return one_hot

    def _field_one_hot(self, field: str, m: int) -> torch.Tensor:
        which = torch.zeros(m, len(self.fields))
        which[:, self.fields.index(field)] = 1.0
        return which

    # ------------------------------------------------------------------ one chunk
    def observe(
        self,
        field: str,
        ids: torch.Tensor,
        loss: torch.Tensor,
        counts: torch.Tensor,
        positions: torch.Tensor,
        now: int = 0,
    ) -> FieldSnapshot:
        """Close the open decisions of ``ids`` with their reward, record ``loss``.

        Args:
            ids: the chunk's distinct IDs of ``field``, int64 ``(m,)``.
            loss: each ID's mean loss over its events of the chunk, before learning it ``(m,)``.
            counts: events of each ID so far, this chunk included ``(m,)``.
            positions: each ID's position now (before this chunk's decision) ``(m,)``.
            now: the chunk's index (``history="ema"``: idle times and the byte term).

        Returns:
            The snapshot :meth:`decide` acts on.
        """
        if self.lean:
            return self._observe_lean(field, ids, loss, counts, positions, now)
        history, open_ = self.history[field], self.open[field].arrays
        mean, recorded = history.mean(ids)
        has_history = recorded > 0
        states = self.states(field, counts, positions, mean, has_history, loss)
        closing = open_["action"][ids] != NO_DECISION
        if bool(closing.any()):
            done = ids[closing]
            before = self.states(
                field,
                open_["count"][done].to(torch.int64),
                open_["position"][done].to(torch.int64),
                open_["mean"][done].float(),
                open_["has_history"][done],
                history.latest(done),
            )
            rewards = reward(mean[closing], loss[closing])
            if self.config.reward == "advantage":
                rewards = advantage(rewards, open_["position"][done].to(torch.int64).clamp(min=1))
            self.replay.add_with_behaviour(
                before.numpy(),
                open_["action"][done].to(torch.int64).numpy(),
                rewards.numpy(),
                states[closing].numpy(),
                open_["behaviour"][done].float().numpy(),
            )
        history.push(ids, loss)
        return FieldSnapshot(field, ids, counts, positions, mean, has_history, loss, states)

    def _last_round(self, now: int) -> int:
        """The chunk of the last idle round strictly before ``now``."""
        every = self.config.sweep_every
        return ((now - 1) // every) * every

    def _close_lean(
        self,
        field: str,
        done: torch.Tensor,
        loss_term: torch.Tensor | None,
        next_states: torch.Tensor,
        now: int,
    ) -> None:
        """Close the open decisions of ``done`` (``(c,)``, all open) at chunk ``now``:
        ``R = loss term − λ · held · chunks since the decision``, into the replay."""
        rec = self.records[field].arrays
        action = rec["action"][done].to(torch.int64)
        from_round = action >= N_ACTIONS
        action = action % N_ACTIONS
        position = rec["position"][done].to(torch.int64)
        idle_now = self.records[field].idle(done, now)
        every = self.config.sweep_every
        if self._offers_holders:
            since_offer = now - self._offer_round_before(idle_now, now)
        else:
            since_offer = torch.full_like(
                idle_now, now - self._last_round(now) if loss_term is not None else every
            )
        held_for = torch.where(from_round, since_offer, idle_now)
        idle_then = torch.where(from_round, idle_now - held_for, torch.zeros_like(idle_now))
        ema = rec["ema"][done].float()
        before = self.lean_states(
            field, rec["log_count"][done].float() / COUNT_SCALE, position, ema,
            ~torch.isnan(ema), idle_then, from_round,
        )  # fmt: skip
        rewards = torch.zeros(len(done))
        if loss_term is not None:
            rewards = loss_term
            if self.config.reward == "advantage":
                rewards = advantage(rewards, position.clamp(min=1))
        held = held_after(position, action, self.levels).float()
        rewards = rewards - self.config.byte_penalty * held * held_for.float()
        # without appearance decisions, an idle decision's episode ends when the ID is back
        ends = 1.0 if loss_term is not None and not self.config.appearance_decisions else 0.0
        self.replay.add_with_behaviour(
            before.numpy(), action.numpy(), rewards.float().numpy(), next_states.numpy(),
            rec["behaviour"][done].float().numpy(), ends,
        )  # fmt: skip
        rec["action"][done] = NO_DECISION

    def _observe_lean(
        self,
        field: str,
        ids: torch.Tensor,
        loss: torch.Tensor,
        counts: torch.Tensor,
        positions: torch.Tensor,
        now: int,
    ) -> FieldSnapshot:
        self.now = now
        records = self.records[field]
        rec = records.arrays
        ema_before = rec["ema"][ids].float()
        has = ~torch.isnan(ema_before)
        ema = torch.where(has, ema_before + self.ema_weight * (loss - ema_before), loss)
        log_count = quantised_log_count(counts)
        states = self.lean_states(
            field, log_count, positions, ema, torch.ones(len(ids), dtype=torch.bool),
            torch.zeros(len(ids)), torch.zeros(len(ids), dtype=torch.bool),
        )  # fmt: skip
        closing = rec["action"][ids] != NO_DECISION
        if bool(closing.any()):
            loss_term = reward(ema_before[closing], loss[closing])
            self._close_lean(field, ids[closing], loss_term, states[closing], now)
        rec["ema"][ids] = ema.to(torch.float16)
        rec["last_seen"][ids] = now % CHUNK_WRAP
        if self._offers_holders:
            self._queue(field, ids, self._round_at(now + self.config.idle_after))
        return FieldSnapshot(field, ids, counts, positions, ema, has, loss, states)

    # ------------------------------------------------------------------ idle offers to holders
    @property
    def _offers_holders(self) -> bool:
        return self.lean and self.config.idle_after > 0 and self.config.idle_offers == "holders"

    def _round_at(self, chunk: int | torch.Tensor) -> Any:
        """The first idle round at or after ``chunk`` (rounds fall every ``sweep_every``)."""
        every = self.config.sweep_every
        return -(-chunk // every) * every

    def _queue(self, field: str, ids: torch.Tensor, rounds: int | torch.Tensor) -> None:
        """Queue ``ids`` (``(m,)``) for the idle round(s) ``rounds`` (one, or one per ID)."""
        if len(ids) == 0:
            return
        pending = self.pending[field]
        at = torch.as_tensor(rounds, dtype=torch.int64).expand(len(ids))
        for round_ in torch.unique(at).tolist():
            new = ids[at == round_].to(torch.int32)
            old = pending.get(round_)
            pending[round_] = new if old is None else torch.unique(torch.cat([old, new]))

    def _offer_round_before(self, idle: torch.Tensor, now: int) -> torch.Tensor:
        """The chunk of the last idle offer strictly before ``now`` to IDs idle ``idle`` chunks
        (``(m,)`` int64; ``idle_offers="holders"``): offers fall at the first round at or after
        idle time ``a_0 = idle_after``, then at idle time ``2 a``, ``a`` the idle time of the
        previous offer."""
        last_seen = now - idle
        offer = self._round_at(last_seen + self.config.idle_after)
        while True:
            later = self._round_at(last_seen + 2 * (offer - last_seen))
            step = later < now
            if not bool(step.any()):
                return offer
            offer = torch.where(step, later, offer)

    def requeue(self, field: str, ids: torch.Tensor, now: int) -> None:
        """``idle_offers="holders"``: IDs (``(m,)``) offered an idle decision at round ``now``
        that still hold their row are offered again when their idle time has doubled."""
        if not self._offers_holders or len(ids) == 0:
            return
        idle = self.records[field].idle(ids, now)
        self._queue(field, ids, self._round_at(now + idle))

    def idle_round(
        self,
        field: str,
        now: int,
        known: int,
        counts: Any,
        positions: Any,
    ) -> FieldSnapshot | None:
        """The IDs of ``field`` idle for at least ``idle_after`` chunks, when ``now`` is an
        idle round (every ``sweep_every`` chunks; None otherwise): their open decisions close
        (``R = −λ · held · chunks``: nothing was predicted for them), and the snapshot
        :meth:`decide` acts on is returned.

        Args:
            now: the chunk's index.
            known: IDs ``0..known-1`` exist.
            counts, positions: ``(m,) -> (m,)`` readers of the table's counts and positions.
        """
        cfg = self.config
        if not self.lean or not cfg.idle_after or now % cfg.sweep_every:
            return None
        records = self.records[field]
        rec = records.arrays
        if self._offers_holders:
            due = [r for r in self.pending[field] if r <= now]
            if not due:
                return None
            ids = torch.unique(torch.cat([self.pending[field].pop(r) for r in due]))
            ids = ids.to(torch.int64)
            idle = records.idle(ids, now)
            ids = ids[idle >= cfg.idle_after]  # not seen again since it was queued
            ids = ids[positions(ids) == self.levels + 1]  # holds a row
            idle = records.idle(ids, now)
        else:
            every = torch.arange(known)
            seen = ~torch.isnan(rec["ema"][:known])
            idle_all = records.idle(every, now)
            ids = every[seen & (idle_all >= cfg.idle_after)]
            idle = idle_all[ids]
        if len(ids) == 0:
            return None
        count, position = counts(ids), positions(ids)
        ema = rec["ema"][ids].float()
        flag = torch.ones(len(ids), dtype=torch.bool)
        states = self.lean_states(
            field, quantised_log_count(count), position, ema, flag, idle, flag
        )
        closing = rec["action"][ids] != NO_DECISION
        if bool(closing.any()):
            self._close_lean(field, ids[closing], None, states[closing], now)
        return FieldSnapshot(
            field, ids, count, position, ema, torch.ones(len(ids), dtype=torch.bool),
            torch.zeros(len(ids)), states, idle=True,
        )  # fmt: skip

    def update(self) -> dict[str, float]:
        """``updates_per_chunk`` critic steps, then as many actor steps, on replayed batches."""
        cfg = self.config
        if len(self.replay) < min(cfg.batch_size, cfg.replay_size):
            return {}
        critic = [
            self.networks.update_critic(
                self.replay.sample_with_behaviour(cfg.batch_size, self.rng)[0]
            )
            for _ in range(cfg.updates_per_chunk)
        ]
        actor = []
        for _ in range(cfg.updates_per_chunk):
            batch, behaviour = self.replay.sample_with_behaviour(cfg.batch_size, self.rng)
            actor.append(self.networks.update_actor(batch, behaviour))
        self.last_losses = {"critic": float(np.mean(critic)), "actor": float(np.mean(actor))}
        return self.last_losses

    def decide(self, seen: FieldSnapshot) -> torch.Tensor:
        """Sample an action per ID of the snapshot and open its decision; int64 ``(m,)``.
        Without appearance decisions, the chunk's IDs ascend and open none."""
        if not seen.idle and not self.config.appearance_decisions:
            return torch.full((len(seen.ids),), ASCEND, dtype=torch.int64)
        decisions = self.networks.act(seen.states, self.rng)
        actions, behaviour = decisions.actions, decisions.behaviour_probability
        if not self.config.descend_from_unique and not seen.idle:
            # at the unique position "descend" and "unchanged" are one outcome, of behaviour
            # probability b(descend) + b(unchanged), whichever of the two was drawn (an idle
            # decision may still free the row: the ID is not in use)
            kept = (seen.positions.numpy() == self.levels + 1) & (actions <= UNCHANGED)
            if kept.any():
                eps = self.config.exploration
                b = (1 - eps) * self.networks.probabilities(seen.states[kept]).double().numpy()
                b += eps / N_ACTIONS
                actions, behaviour = actions.copy(), behaviour.copy()
                actions[kept] = UNCHANGED
                behaviour[kept] = (b[:, DESCEND] + b[:, UNCHANGED]).astype(behaviour.dtype)
        ids = seen.ids
        chosen = torch.from_numpy(actions)
        if self.lean:
            rec = self.records[seen.field].arrays
            rec["log_count"][ids] = (
                torch.round(torch.log1p(seen.counts.float()) * COUNT_SCALE)
                .clamp(0, 255)
                .to(torch.uint8)
            )
            rec["position"][ids] = seen.positions.to(torch.int8)
            rec["action"][ids] = (chosen + (N_ACTIONS if seen.idle else 0)).to(torch.int8)
            rec["behaviour"][ids] = torch.from_numpy(behaviour).to(torch.float16)
            return chosen
        open_ = self.open[seen.field].arrays
        open_["count"][ids] = seen.counts.clamp(max=2**31 - 1).to(torch.int32)
        open_["mean"][ids] = seen.history_mean.to(torch.float16)
        open_["has_history"][ids] = seen.has_history
        open_["position"][ids] = seen.positions.to(torch.int8)
        open_["action"][ids] = chosen.to(torch.int8)
        open_["behaviour"][ids] = torch.from_numpy(behaviour).to(torch.float16)
        return chosen

    def unique_value(self, field: str, ids: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Value of holding a unique row, ``Q(s, unchanged) − Q(s, descend)`` with the ID at
        the unique position, ``(m,)``: under a byte cap the lowest go first."""
        positions = torch.full_like(ids, self.levels + 1)
        if self.lean:
            records = self.records[field]
            ema = records.arrays["ema"][ids].float()
            idle = records.idle(ids, self.now)
            states = self.lean_states(
                field, quantised_log_count(counts), positions, ema, ~torch.isnan(ema), idle,
                idle > 0,
            )  # fmt: skip
        else:
            history = self.history[field]
            mean, recorded = history.mean(ids)
            states = self.states(field, counts, positions, mean, recorded > 0, history.latest(ids))
        q = self.networks.q_values(states)
        return q[:, 1] - q[:, 0]

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "networks": self.networks.full_state(),
            "replay": self.replay.state_dict(),
            "rng": self.rng.bit_generator.state,
        }
        if self.lean:
            state["records"] = {f: dict(self.records[f].arrays) for f in self.fields}
            state["now"] = self.now
            state["pending"] = {f: dict(self.pending[f]) for f in self.fields}
        else:
            state["history"] = {f: self.history[f].state_dict() for f in self.fields}
            state["open"] = {f: dict(self.open[f].arrays) for f in self.fields}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.networks.load_full_state(state["networks"])
        self.replay.load_state_dict(state["replay"])
        self.rng.bit_generator.state = state["rng"]
        for f in self.fields:
            if self.lean:
                self.records[f].arrays = dict(state["records"][f])
            else:
                self.history[f].load_state_dict(state["history"][f])
                self.open[f].arrays = dict(state["open"][f])
        self.now = int(state.get("now", 0))
        pending = state.get("pending", {})
        self.pending = {f: {int(r): t for r, t in pending.get(f, {}).items()} for f in self.fields}


__all__ = [
    "N_ACTIONS",
    "FieldSnapshot",
    "IdentityAgent",
    "LeanRecords",
    "LossHistory",
    "OpenDecisions",
    "PerIdArrays",
    "advantage",
    "held_after",
    "quantised_log_count",
    "reward",
]
