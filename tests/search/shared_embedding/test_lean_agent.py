"""The compact agent state (``history="ema"``), idle decisions and the byte term of the reward:
bytes and rewards by hand, idle decisions that free rows, the fixed logit prior."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.embeddings import HierarchicalSharedEmbedding
from leanrec.rl import ActorCriticConfig, DiscreteActorCritic
from leanrec.search.shared_embedding import AutoAssignConfig, IdentityAgent, run_experiment
from leanrec.search.shared_embedding.policy import NO_DECISION, held_after
from tests.search.shared_embedding.test_contract import tiny_experiment, tiny_stream

ASCEND_ALWAYS = (-20.0, -20.0, 20.0)


def lean(**changes: object) -> AutoAssignConfig:
    options: dict[str, object] = {
        "levels": 1, "history": "ema", "reward": "paper", "reward_window": 3,
        "initial_logits": ASCEND_ALWAYS, "exploration": 1e-6, "batch_size": 999,
    }  # fmt: skip
    options.update(changes)
    return AutoAssignConfig(**options)  # type: ignore[arg-type]


def test_compact_state_is_9_bytes_per_id_in_blocks_of_256() -> None:
    agent = IdentityAgent(("user", "item"), lean())
    agent.extend({"user": 10, "item": 300})
    # per ID: ema float16 (2) + last seen int16 (2) + log-count uint8 (1) + position int8 (1)
    # + action int8 (1) + b(a|s) float16 (2) = 9; users 10 -> 256 slots, items 300 -> 512
    assert agent.nbytes() == 9 * (256 + 512)
    agent.extend({"user": 257, "item": 300})
    assert agent.nbytes() == 9 * (512 + 512)
    # the paper's layout at T = 3: 2T + 13 = 19 bytes per ID, doubling
    paper = IdentityAgent(("user",), AutoAssignConfig(reward_window=3))
    paper.extend({"user": 10})
    assert paper.nbytes() == 19 * 10


def test_reward_with_the_byte_term_by_hand() -> None:
    # T = 3: EMA weight 2 / (T + 1) = 0.5; λ = 0.1 per chunk a row is held.
    # chunk 0: loss 0.5 -> EMA 0.5, the ID ascends from level 1 (k = 1): it holds a row.
    # chunk 4: loss 0.3. Reward = (EMA before 0.5 - 0.3) - 0.1 * 1 * (4 - 0) = 0.2 - 0.4 = -0.2;
    # EMA -> 0.5 + 0.5 * (0.3 - 0.5) = 0.4.
    agent = IdentityAgent(("user",), lean(byte_penalty=0.1))
    agent.extend({"user": 1})
    ids = torch.tensor([0])
    seen = agent.observe("user", ids, torch.tensor([0.5]), torch.tensor([1]), torch.tensor([1]), 0)
    assert agent.decide(seen).tolist() == [2]
    agent.observe("user", ids, torch.tensor([0.3]), torch.tensor([2]), torch.tensor([2]), 4)
    np.testing.assert_allclose(agent.replay.rewards[:1], [-0.2], atol=1e-3)
    assert float(agent.records["user"].arrays["ema"][0]) == pytest.approx(0.4, abs=1e-3)
    assert int(agent.records["user"].arrays["last_seen"][0]) == 4
    # the stored state at the decision: idle time 0, not an idle decision; the next state's
    # EMA column holds 0.4
    flag = agent._idle_flag_column
    assert agent.replay.states[0, flag] == 0.0 and agent.replay.states[0, flag - 1] == 0.0
    assert agent.replay.next_states[0, flag - 3] == pytest.approx(0.4, abs=1e-3)
    # a decision that leaves the ID shared pays nothing for bytes
    assert held_after(torch.tensor([1, 1, 2]), torch.tensor([1, 2, 0]), 1).tolist() == [
        False, True, False,
    ]  # fmt: skip


def test_idle_rounds_close_decisions_with_the_byte_term_and_decide_for_idle_ids() -> None:
    # sweep_every 5, idle_after 5, λ = 0.01. IDs 0, 1, 2 seen at chunk 0 (all ascend: held).
    # ID 2 seen again at chunk 3. Round at chunk 5: IDs 0, 1 idle 5 >= 5 decide; ID 2 (idle 2)
    # does not. Their appearance decisions close: R = -0.01 * 1 * 5 = -0.05.
    # The prior for idle decisions: logits (-20, -20, 20) + (40, 20, -40) = (20, 0, -20):
    # descend. Round at chunk 10: their idle decisions (descend: no row) close with
    # R = -0.01 * 0 * 5 = 0; ID 2's appearance decision (held, chunk 3) closes with
    # R = -0.01 * 1 * 7 = -0.07; all three decide again.
    config = lean(byte_penalty=0.01, idle_after=5, sweep_every=5, idle_logits=(40.0, 20.0, -40.0))
    agent = IdentityAgent(("item",), config)
    agent.extend({"item": 3})
    counts = lambda ids: torch.ones_like(ids)  # noqa: E731
    unique = lambda ids: torch.full_like(ids, 2)  # noqa: E731
    three = torch.arange(3)
    seen = agent.observe("item", three, torch.full((3,), 0.6), torch.ones(3), torch.ones(3), 0)
    agent.decide(seen)
    assert agent.idle_round("item", 3, 3, counts, unique) is None  # not a round
    seen = agent.observe("item", torch.tensor([2]), torch.tensor([0.6]), torch.tensor([2]),
                         torch.tensor([2]), 3)  # fmt: skip
    agent.decide(seen)
    idle = agent.idle_round("item", 5, 3, counts, unique)
    assert idle is not None and idle.idle and idle.ids.tolist() == [0, 1]
    np.testing.assert_allclose(agent.replay.rewards[1:3], [-0.05, -0.05], atol=1e-6)
    assert agent.decide(idle).tolist() == [0, 0]  # descend: frees their rows
    assert agent.records["item"].arrays["action"][:2].tolist() == [3, 3]  # idle flag + 0
    idle = agent.idle_round("item", 10, 3, counts, lambda ids: torch.ones_like(ids))
    assert idle is not None and idle.ids.tolist() == [0, 1, 2]
    np.testing.assert_allclose(agent.replay.rewards[3:6], [0.0, 0.0, -0.07], atol=1e-6)
    # the rebuilt state of the idle decision: flag 1, idle time 5 -> log(6) / 5
    flag = agent._idle_flag_column
    np.testing.assert_allclose(agent.replay.states[3, [flag - 1, flag]], [np.log(6) / 5, 1.0],
                               atol=1e-6)  # fmt: skip
    assert agent.records["item"].arrays["action"][:3].tolist() == [NO_DECISION] * 3  # closed
    agent.decide(idle)
    assert agent.records["item"].arrays["action"][:3].tolist() == [3, 3, 3]


def test_an_idle_descent_frees_the_row_even_when_appearances_keep_rows() -> None:
    # descend_from_unique=False keeps rows of IDs in the chunk, not of idle ones
    table = HierarchicalSharedEmbedding(4, 2, levels=1, min_capacity=1)
    table.observe(torch.tensor([0, 1, 2, 3]))
    table.move(torch.arange(4), torch.full((4,), 2))  # all unique
    config = lean(descend_from_unique=False, idle_after=2, sweep_every=2,
                  initial_logits=(20.0, -20.0, -20.0))  # fmt: skip
    agent = IdentityAgent(("item",), config)
    agent.extend({"item": 4})
    seen = agent.observe("item", torch.arange(4), torch.full((4,), 0.5), torch.ones(4),
                         table.positions(torch.arange(4)), 0)  # fmt: skip
    assert agent.decide(seen).tolist() == [1, 1, 1, 1]  # drawn descend, kept as unchanged
    idle = agent.idle_round("item", 2, 4, table.counts, table.positions)
    assert idle is not None
    table.move(idle.ids, agent.decide(idle))
    assert table.num_unique == 0 and table.positions(torch.arange(4)).tolist() == [1, 1, 1, 1]


def test_without_appearance_decisions_only_idle_ids_decide_and_a_return_ends_the_episode() -> None:
    # T = 3 (EMA weight 0.5), λ = 0.01, rounds every 5 chunks for IDs idle >= 5.
    # chunk 0: ID 0 (loss 0.8) ascends by rule, no decision opens.
    # round at chunk 5: ID 0 (unique, idle 5) decides; the prior descends (frees the row).
    # chunk 7: ID 0 is back with loss 1.0: terminal transition,
    #   R = (0.8 - 1.0) - 0.01 * 0 * (7 - 5) = -0.2, done = 1.
    config = lean(appearance_decisions=False, byte_penalty=0.01, idle_after=5, sweep_every=5,
                  idle_logits=(40.0, 20.0, -40.0))  # fmt: skip
    agent = IdentityAgent(("user",), config)
    agent.extend({"user": 1})
    ids = torch.tensor([0])
    seen = agent.observe("user", ids, torch.tensor([0.8]), torch.tensor([1]), torch.tensor([1]), 0)
    assert agent.decide(seen).tolist() == [2]
    assert agent.records["user"].arrays["action"][0] == NO_DECISION and len(agent.replay) == 0
    idle = agent.idle_round("user", 5, 1, lambda i: torch.ones_like(i), lambda i: i + 2)
    assert idle is not None and agent.decide(idle).tolist() == [0]
    assert len(agent.replay) == 0  # nothing was open to close
    agent.observe("user", ids, torch.tensor([1.0]), torch.tensor([2]), torch.tensor([1]), 7)
    assert len(agent.replay) == 1
    np.testing.assert_allclose(agent.replay.rewards[:1], [-0.2], atol=1e-3)
    assert agent.replay.dones[0] == 1.0


def test_logit_prior_shifts_only_the_flagged_states() -> None:
    prior = ((0.0, 0.0, 0.0), (2.0, 0.0, -1.0))  # column 1 is the flag
    net = DiscreteActorCritic(2, 3, ActorCriticConfig(logit_prior=prior))
    states = torch.tensor([[0.3, 0.0], [0.3, 1.0]])
    plain, flagged = net.probabilities(states)[:, :].log()
    base = net.actor(states[:1]).detach()[0]
    np.testing.assert_allclose((plain - plain[1]).numpy(), (base - base[1]).numpy(), atol=1e-5)
    # flagged: logits shift by (2, 0, -1) on top of the (slightly different) actor output
    shifted = net.actor(states[1:]).detach()[0] + torch.tensor([2.0, 0.0, -1.0])
    np.testing.assert_allclose((flagged - flagged[1]).numpy(), (shifted - shifted[1]).numpy(),
                               atol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="logit_prior"):
        DiscreteActorCritic(3, 3, ActorCriticConfig(logit_prior=prior))


def test_idle_rounds_free_rows_in_a_run(tmp_path: Path, one_torch_thread: None) -> None:
    # the same agent with and without idle decisions on the tiny stream (12 chunks): idle
    # rounds every 2 chunks for IDs unseen 2 chunks, prior for them: descend
    stream = tiny_stream()
    unique = {}
    for name, idle_after in (("kept", 0), ("freed", 2)):
        config = lean(idle_after=idle_after, sweep_every=2, idle_logits=(40.0, 20.0, -40.0),
                      batch_size=64, replay_size=2000)  # fmt: skip
        experiment = tiny_experiment(tmp_path / name, 0, methods=("autoassign",), agent=config,
                                     levels_grid=(1,))  # fmt: skip
        row = run_experiment(experiment, log=lambda _: None, stream=stream).rows[0]
        unique[name] = sum(row["positions"][f][-1] for f in ("user", "item"))
    assert unique["freed"] < unique["kept"]


def test_idle_offers_to_holders_come_once_idle_and_again_when_the_idle_time_doubles() -> None:
    # k = 1, T = 3 (EMA weight 0.5), λ = 0.01, idle_after 2, a round every chunk. The idle
    # prior keeps rows: logits (-20, -20, 20) + (20, 40, -40) = (0, 20, -20) -> unchanged.
    config = lean(appearance_decisions=False, byte_penalty=0.01, idle_after=2, sweep_every=1,
                  idle_offers="holders", idle_logits=(20.0, 40.0, -40.0))  # fmt: skip
    agent = IdentityAgent(("item",), config)
    agent.extend({"item": 3})
    ones = lambda ids: torch.ones_like(ids)  # noqa: E731
    holders = lambda ids: torch.where(ids == 2, 1, 2)  # noqa: E731  (ID 2 is shared)
    records = agent.nbytes()
    # chunk 0: IDs 0, 1, 2 seen (queued for the round at chunk 0 + 2); chunk 1: ID 1 again
    agent.observe("item", torch.arange(3), torch.full((3,), 0.6), torch.ones(3), holders(
        torch.arange(3)), 0)  # fmt: skip
    assert agent.nbytes() == records + 3 * 4  # the queue: three int32 IDs
    assert agent.idle_round("item", 0, 3, ones, holders) is None
    agent.observe("item", torch.tensor([1]), torch.tensor([0.6]), torch.tensor([2]),
                  torch.tensor([2]), 1)  # fmt: skip
    assert agent.idle_round("item", 1, 3, ones, holders) is None  # nothing due
    # chunk 2: ID 0 (idle 2, holds a row) is offered; ID 1 was seen at 1; ID 2 holds no row
    idle = agent.idle_round("item", 2, 3, ones, holders)
    assert idle is not None and idle.ids.tolist() == [0]
    assert agent.decide(idle).tolist() == [1]  # keeps its row
    agent.requeue("item", idle.ids, 2)  # idle 2 -> offered again at idle 4, chunk 4
    idle = agent.idle_round("item", 3, 3, ones, holders)
    assert idle is not None and idle.ids.tolist() == [1]  # ID 1: idle 2 at chunk 3
    assert agent.idle_round("item", 3 + 0, 3, ones, holders) is None  # popped
    assert len(agent.replay) == 0
    idle = agent.idle_round("item", 4, 3, ones, holders)
    assert idle is not None and idle.ids.tolist() == [0]
    # its decision of chunk 2 closes: R = -0.01 * 1 * (4 - 2); the rebuilt state saw idle 2
    np.testing.assert_allclose(agent.replay.rewards[:1], [-0.02], atol=1e-6)
    flag = agent._idle_flag_column
    np.testing.assert_allclose(agent.replay.states[0, [flag - 1, flag]], [np.log(3) / 5, 1.0],
                               atol=1e-6)  # fmt: skip
    agent.decide(idle)
    agent.requeue("item", idle.ids, 4)  # next offer at idle 8, chunk 8
    # ID 0 comes back at chunk 7 with loss 0.5: the decision of chunk 4 (the last offer before
    # 7) closes, terminal: R = (0.6 - 0.5) - 0.01 * 1 * (7 - 4) = 0.07
    agent.observe("item", torch.tensor([0]), torch.tensor([0.5]), torch.tensor([2]),
                  torch.tensor([2]), 7)  # fmt: skip
    np.testing.assert_allclose(agent.replay.rewards[1:2], [0.07], atol=1e-3)
    assert agent.replay.dones[1] == 1.0
    # the stale entry for chunk 8 is dropped there (ID 0 was seen at 7), not offered
    assert agent.idle_round("item", 8, 3, ones, holders) is None


def test_the_leanrec_preset_parks_idle_rows_in_a_run(one_torch_thread: None) -> None:
    # the leanrec preset on the tiny stream (12 chunks of 200 events, k = 1): IDs that hold
    # a row and miss a chunk decide; descents park their rows (int8); a parked ID holds no
    # float row; a saved table serves the parked rows as they are
    from leanrec.embeddings import table_from_spec
    from leanrec.search.shared_embedding.baselines import METHODS
    from leanrec.search.shared_embedding.experiment import _build
    from leanrec.train.stream import run_stream

    stream = tiny_stream()
    experiment = tiny_experiment(Path("unused"), 0, agent=AutoAssignConfig(batch_size=64,
                                 replay_size=2000))  # fmt: skip
    method = METHODS.resolve(["autoassign_leanrec"])[0]
    trainer = _build(experiment, {"user": 150, "item": 100}, method, 1.0, 0, "bce")
    tables = trainer.model.id_tables()
    table = tables["item"]
    assert isinstance(table, HierarchicalSharedEmbedding) and table.park
    run_stream(stream, stream.plan(size=200, warmup_fraction=0.2), trainer)
    parked = sum(t.num_parked for t in tables.values())  # type: ignore[attr-defined]
    assert parked > 0
    ids = torch.arange(table.num_embeddings)
    assert bool(table.is_parked(ids).any()) and not bool(
        (table.is_parked(ids) & (table.positions(ids) == 2)).any()
    )  # a parked ID holds no float row
    copy = table_from_spec(table.spec(), table.num_embeddings, table.embedding_dim)
    copy.load_state_dict(table.state_dict())
    assert torch.equal(copy.lookup(ids), table.lookup(ids)) and copy.nbytes() == table.nbytes()


def test_the_leanrec_preset_fits_level_1_on_the_chunks_first_sightings() -> None:
    # shared_learning_rate = 0.003 (Adam): in the first chunk every ID is new and reads level 1,
    # so level 1 takes one Adam step on those events before the moves. Adam's first step is
    # lr · m̂ / (sqrt(v̂) + eps) = lr · g / (|g| + eps): 0.003 on every column the gradient
    # reaches. Then every ID ascends (its own row) and the base model learns the chunk through
    # the rows only: level 1 moves by exactly that one step.
    from leanrec.search.shared_embedding.baselines import METHODS
    from leanrec.search.shared_embedding.experiment import _build
    from leanrec.train.stream import run_stream

    stream = tiny_stream()
    experiment = tiny_experiment(Path("unused"), 0, agent=AutoAssignConfig(batch_size=64,
                                 replay_size=2000))  # fmt: skip
    method = METHODS.resolve(["autoassign_leanrec"])[0]
    trainer = _build(experiment, {"user": 150, "item": 100}, method, 1.0, 0, "bce")
    tables = trainer.model.id_tables()
    before = {name: t.shared.detach().clone() for name, t in tables.items()}  # type: ignore[union-attr]
    after: dict[str, torch.Tensor] = {}

    def first_chunk(chunk: object, record: object) -> None:
        if not after:
            after.update({n: t.shared.detach().clone() for n, t in tables.items()})  # type: ignore[union-attr]

    run_stream(stream[0:400], stream[0:400].plan(size=200, warmup_fraction=0.5), trainer,
               on_chunk_end=first_chunk)  # fmt: skip
    for name in tables:
        step = (after[name] - before[name]).abs()
        torch.testing.assert_close(step, torch.full_like(step, 0.003), rtol=1e-3, atol=0)
    # the paper preset has no such step: its level vectors are trained as rows are
    paper = _build(experiment, {"user": 150, "item": 100}, METHODS.resolve(["autoassign"])[0],
                   1.0, 0, "bce")  # fmt: skip
    assert getattr(paper.assigner, "shared_optimizer", None) is None
