"""Training the graph models on part of the graph per step: sampled neighbourhoods
(``propagation="sampled"``) and a per-epoch snapshot corrected through the batch's own edges
(``propagation="snapshot"``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.data.interactions import Interactions
from leanrec.evaluate import FullRankingEvaluator
from leanrec.models import build_model
from leanrec.models.graph import BatchSubgraph, NeighbourSampler, SparseGraph, normalized_adjacency
from leanrec.models.lightgcn import LightGCNConfig
from leanrec.models.ngcf import NGCFConfig
from leanrec.models.registry import load_ranking_model
from leanrec.train.bpr import BPRTrainer, TrainerConfig, evaluate_model


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny sparse products on one thread: many threads only wait on each other here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_data() -> Interactions:
    rng = np.random.default_rng(0)
    return Interactions.from_raw(rng.integers(0, 40, 400), rng.integers(0, 25, 400), name="small")


BATCH = (
    torch.tensor([0, 3, 7, 3]),
    torch.tensor([1, 4, 9, 2]),
    torch.tensor([[2, 5], [2, 11]] * 2),
)


def _loss_and_grads(model: torch.nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    out = model.pairwise(*BATCH)  # type: ignore[operator]
    loss = -torch.nn.functional.logsigmoid(out.positive_scores[:, None] - out.negative_scores)
    loss = loss.mean() + out.l2
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("lightgcn", {"n_layers": 3}),
        ("ngcf", {"layer_sizes": [8, 8], "message_dropout": 0.0}),
    ],
)
def test_fanout_above_every_degree_is_full_propagation(
    name: str, options: dict[str, object], small_data: Interactions
) -> None:
    """With ``F >= max degree`` every neighbour is kept at its own weight: the sampled batch
    loss and every gradient equal full propagation's."""
    base = {"embedding_dim": 8, **options}
    full = build_model(name, small_data, {**base, "propagation": "full"}, seed=3)
    sampled = build_model(name, small_data, {**base, "propagation": "sampled", "fanout": 400})
    sampled.load_state_dict(full.state_dict())
    full.train()
    sampled.train()
    full_loss, full_grads = _loss_and_grads(full)
    sampled_loss, sampled_grads = _loss_and_grads(sampled)
    torch.testing.assert_close(sampled_loss, full_loss, rtol=1e-5, atol=1e-6)
    assert len(full_grads) == len(sampled_grads) > 0
    for a, b in zip(full_grads, sampled_grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_sampled_rows_are_reweighted_hand_computed() -> None:
    """User 0 rated items 0..3 (degree 4), each item has only user 0 (degree 1), so
    ``Â[u0, i] = 1 / sqrt(4 * 1) = 1/2``. With ``F = 2`` user 0 keeps two neighbours, each
    weighted ``1/2 * 4 / 2 = 1``; an item (degree 1 <= F) keeps user 0 at weight ``1/2``."""
    train = Interactions.from_raw(np.zeros(4, dtype=np.int64), np.arange(4))
    sampler = NeighbourSampler(normalized_adjacency(train), fanout=2)
    hops = sampler.sample(torch.tensor([0, 1]), n_hops=1)  # node 1 = item 0
    rows = hops.operators[0].forward_csr.to_dense()
    assert rows.shape == (2, len(hops.nodes[1]))
    assert torch.equal(hops.nodes[1][:2], torch.tensor([0, 1]))
    assert rows[0].sum() == pytest.approx(2.0) and int((rows[0] > 0).sum()) <= 2
    assert set(rows[0][rows[0] > 0].tolist()) <= {1.0, 2.0}  # a neighbour drawn twice sums
    assert rows[1].tolist()[:2] == [0.5, 0.0]
    assert int((sampler._position >= 0).sum()) == 0  # the position array is left clean


def test_small_fanout_is_unbiased(small_data: Interactions) -> None:
    """Sampled LightGCN layers equal full propagation in expectation: the mean of 2000 draws
    with ``F = 2`` is within 5% of the full representation (its spread is ~30% per draw)."""
    torch.manual_seed(0)
    model = build_model(
        "lightgcn",
        small_data,
        {"embedding_dim": 8, "n_layers": 2, "propagation": "sampled", "fanout": 2},
        seed=1,
    )
    seeds = torch.tensor([0, 5, 40, 51])
    with torch.no_grad():
        users, items = model.final_embeddings()
        expected = torch.cat([users, items])[seeds]
        draws = torch.stack(
            [
                model.propagate_sampled(model.neighbour_sampler().sample(seeds, 2))
                for _ in range(2000)
            ]
        )
    spread = (draws - expected).norm() / expected.norm() / 2000**0.5
    assert spread > 0.1 / 2000**0.5  # the draws do vary
    assert (draws.mean(0) - expected).norm() < 0.05 * expected.norm()


def test_evaluation_propagates_in_full(small_data: Interactions) -> None:
    model = build_model("lightgcn", small_data, {"embedding_dim": 8, "propagation": "sampled"})
    model.eval()
    users, items = model.final_embeddings()
    out = model.pairwise(*BATCH)
    expected = (users[BATCH[0]] * items[BATCH[1]]).sum(-1)
    torch.testing.assert_close(out.positive_scores, expected)


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
@pytest.mark.parametrize("propagation", ["full", "snapshot"])
def test_a_full_ranking_evaluation_propagates_once(
    small_data: Interactions, name: str, propagation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring every user in batches of 4 (10 batches) propagates the whole graph once, not
    once per batch, before and after training."""
    model = build_model(name, small_data, {"embedding_dim": 8, "propagation": propagation})
    calls = []
    propagate = model.final_embeddings
    monkeypatch.setattr(model, "final_embeddings", lambda: calls.append(1) or propagate())
    evaluator = FullRankingEvaluator(small_data, ks=[5], batch_size=4)
    first = evaluate_model(model, evaluator)
    assert len(calls) == 1
    assert dict(evaluate_model(model, evaluator)) == dict(first)
    assert len(calls) == 2
    BPRTrainer(model, small_data, None, TrainerConfig(max_epochs=1, batch_size=64)).fit()
    before = len(calls)
    evaluate_model(model, evaluator)
    assert len(calls) == before + 1


def test_propagation_is_saved_and_old_checkpoints_load(
    tmp_path: Path, small_data: Interactions
) -> None:
    options = {"embedding_dim": 4, "propagation": "sampled", "fanout": 7}
    model = build_model("lightgcn", small_data, options)
    loaded = load_ranking_model(model.save(tmp_path / "m.pt"))
    assert (loaded.config.propagation, loaded.config.fanout) == ("sampled", 7)
    # a checkpoint written before the option existed loads with the default
    checkpoint = torch.load(tmp_path / "m.pt", weights_only=True)
    del checkpoint["config"]["propagation"], checkpoint["config"]["fanout"]
    torch.save(checkpoint, tmp_path / "old.pt")
    old = load_ranking_model(tmp_path / "old.pt")
    assert old.config.propagation == LightGCNConfig().propagation == "auto"


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_auto_samples_above_the_edge_threshold(name: str, small_data: Interactions) -> None:
    """``small_data`` has 400 draws of (user, item), so fewer distinct edges: auto propagates
    in full up to the threshold and trains on snapshots above it; evaluation is full either
    way."""
    edges = len(small_data.sorted_keys())
    assert 10 < edges <= 400
    for threshold, expected in [(400, "full"), (edges, "full"), (edges - 1, "snapshot")]:
        options = {"embedding_dim": 4, "sampled_above_edges": threshold}
        model = build_model(name, small_data, options)
        assert model.config.propagation == "auto"
        assert model.training_propagation == expected


@pytest.mark.parametrize("config_class", [LightGCNConfig, NGCFConfig])
def test_config_rejects_unknown_modes(config_class: type) -> None:
    with pytest.raises(ValueError, match="propagation"):
        config_class(propagation="stale")
    with pytest.raises(ValueError, match="fanout"):
        config_class(fanout=0)
    with pytest.raises(ValueError, match="sampled_above_edges"):
        config_class(sampled_above_edges=-1)
    with pytest.raises(ValueError, match="snapshots_per_epoch"):
        config_class(snapshots_per_epoch=0)


def test_sampled_training_learns_and_is_reproducible(small_data: Interactions) -> None:
    def fit() -> list[float]:
        options = {"embedding_dim": 8, "propagation": "sampled", "fanout": 3}
        model = build_model("lightgcn", small_data, options, seed=2)
        config = TrainerConfig(
            max_epochs=6, batch_size=64, learning_rate=0.05, seed=5, num_threads=1
        )
        result = BPRTrainer(model, small_data, None, config).fit()
        return [record["loss"] for record in result.history]

    first, second = fit(), fit()
    assert first == second
    assert first[-1] < first[0] - 0.05  # random data: little to learn, but some


# ---------------------------------------------------------------------------------- snapshot
EVERY_NODE_BATCH = (torch.arange(40), torch.arange(40) % 25, torch.arange(40).flip(0) % 25)
"""A batch holding every user (40) and every item (25) of ``small_data``."""


def _every_node_loss_and_grads(model: torch.nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    out = model.pairwise(*EVERY_NODE_BATCH)  # type: ignore[operator]
    loss = -torch.nn.functional.logsigmoid(out.positive_scores - out.negative_scores).mean()
    loss = loss + out.l2
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("lightgcn", {"n_layers": 3}),
        ("ngcf", {"layer_sizes": [8, 8], "message_dropout": 0.0}),
    ],
)
def test_snapshot_of_a_batch_holding_every_node_is_full_propagation(
    name: str, options: dict[str, object], small_data: Interactions
) -> None:
    """When the batch holds every node and ``F`` is above every degree, the edges among the
    batch are the whole graph, so the snapshot's correction restores ``Â ego`` exactly: after
    the weights moved away from the snapshot, the loss and every gradient equal full
    propagation's."""
    base = {"embedding_dim": 8, **options}
    full = build_model(name, small_data, {**base, "propagation": "full"}, seed=3)
    snapshot = build_model(name, small_data, {**base, "propagation": "snapshot", "fanout": 400})
    snapshot.load_state_dict(full.state_dict())
    full.train()
    snapshot.train()
    snapshot._snapshot = snapshot.take_snapshot()
    with torch.no_grad():
        for parameter in full.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    snapshot.load_state_dict(full.state_dict())  # the snapshot now lags the weights
    full_loss, full_grads = _every_node_loss_and_grads(full)
    snapshot_loss, snapshot_grads = _every_node_loss_and_grads(snapshot)
    torch.testing.assert_close(snapshot_loss, full_loss, rtol=1e-5, atol=1e-6)
    assert len(full_grads) == len(snapshot_grads) > 0
    for a, b in zip(full_grads, snapshot_grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_snapshot_forward_is_full_propagation_until_the_weights_move(
    name: str, small_data: Interactions
) -> None:
    """Right after the snapshot, any batch's final representations are full propagation's,
    whatever the fan-out (the correction is zero); gradients reach the batch's rows only."""
    options = {"embedding_dim": 8, "propagation": "snapshot", "fanout": 2}
    if name == "ngcf":
        options["message_dropout"] = 0.0
    model = build_model(name, small_data, options, seed=4)
    nodes = torch.tensor([0, 3, 7, 40 + 1, 40 + 9])
    with torch.no_grad():
        users, items = model.final_embeddings()
        expected = torch.cat([users, items])[nodes]
    model.train()
    torch.manual_seed(0)
    final = model.propagate_snapshot(nodes)
    torch.testing.assert_close(final, expected, rtol=1e-5, atol=1e-6)
    final.sum().backward()
    user_grad = model.user_embedding.weight.grad
    assert user_grad is not None
    assert torch.count_nonzero(user_grad.abs().sum(1)).item() <= 3  # users 0, 3, 7 only


def test_batch_subgraph_is_symmetric_unbiased_and_bounded_by_the_fanout() -> None:
    """User 0 rated items 0..3 and user 1 rated item 0, so ``deg(u0) = 4``, ``deg(i0) = 2``
    and ``Â[u0, i0] = 1 / sqrt(4 * 2)``, ``Â[u0, i1] = 1 / sqrt(4 * 1) = 1/2``,
    ``Â[u1, i0] = 1 / sqrt(1 * 2)``. Batch: users 0, 1 and items 0, 1 (nodes 0, 1, 2, 3).
    With ``F = 2`` user 0 draws two of its four items, each at ``Â deg / F = 2 Â``: one draw
    has at most 2 edges of user 0 and the (exact) edge of user 1, in both directions; the
    mean over many draws is ``Â`` restricted to the batch."""
    train = Interactions.from_raw(np.array([0, 0, 0, 0, 1]), np.array([0, 1, 2, 3, 0]))
    graph = SparseGraph(normalized_adjacency(train))
    subgraph = BatchSubgraph(graph.torch_csr(torch.device("cpu")), n_users=2, fanout=2)
    nodes = torch.tensor([0, 1, 2, 3])
    torch.manual_seed(0)
    draws = [subgraph.operator(nodes).to_dense() for _ in range(4000)]
    for draw in draws[:50]:
        torch.testing.assert_close(draw, draw.T)
        assert int((draw[0] > 0).sum()) <= 2
        assert draw[1].tolist() == pytest.approx([0.0, 0.0, 0.5**0.5, 0.0])
    expected = torch.zeros(4, 4)
    expected[0, 2] = expected[2, 0] = 1 / 8**0.5
    expected[0, 3] = expected[3, 0] = 0.5
    expected[1, 2] = expected[2, 1] = 0.5**0.5
    torch.testing.assert_close(torch.stack(draws).mean(0), expected, rtol=0.05, atol=0.01)
    assert int((subgraph._position >= 0).sum()) == 0  # the position array is left clean


def test_snapshot_is_retaken_when_training_resumes(small_data: Interactions) -> None:
    """``train()`` (every epoch start, and after an evaluation) drops the snapshot; the next
    step takes it from the current weights."""
    model = build_model("lightgcn", small_data, {"embedding_dim": 4, "propagation": "snapshot"})
    model.train()
    model.pairwise(*BATCH)
    first = model._snapshot
    assert first is not None
    model.pairwise(*BATCH)
    assert model._snapshot is first  # kept within the epoch
    with torch.no_grad():
        model.user_embedding.weight.add_(1.0)
    model.eval()
    model.train()
    assert model._snapshot is None
    model.pairwise(*BATCH)
    assert model._snapshot is not None
    start, stop = model._snapshot.ego[0]
    torch.testing.assert_close(model._snapshot.table[:40, start:stop], model.user_embedding.weight)


def test_snapshots_per_epoch_retakes_the_snapshot_after_its_share_of_the_edges(
    small_data: Interactions,
) -> None:
    """With ``R`` snapshots per epoch a new one is taken at the first step after ``edges / R``
    training rows were scored since the last: ``BATCH`` scores 4 rows, so with ``edges / R``
    between 8 and 12 the fourth step (12 rows scored) takes the second snapshot and the
    seventh the third."""
    edges = len(small_data.sorted_keys())
    per_epoch = edges // 10
    assert 8 < edges / per_epoch <= 12
    options = {"embedding_dim": 4, "propagation": "snapshot", "snapshots_per_epoch": per_epoch}
    model = build_model("lightgcn", small_data, options)
    model.train()
    taken = []
    for _ in range(7):
        model.pairwise(*BATCH)
        taken.append(model._snapshot)
    changes = [step for step in range(1, 7) if taken[step] is not taken[step - 1]]
    assert changes == [3, 6]  # 0-based steps 3 and 6: the fourth and the seventh


def test_snapshot_training_learns_and_is_reproducible(small_data: Interactions) -> None:
    def fit() -> list[float]:
        options = {"embedding_dim": 8, "propagation": "snapshot", "fanout": 3}
        model = build_model("lightgcn", small_data, options, seed=2)
        config = TrainerConfig(
            max_epochs=6, batch_size=64, learning_rate=0.05, seed=5, num_threads=1
        )
        result = BPRTrainer(model, small_data, None, config).fit()
        return [record["loss"] for record in result.history]

    first, second = fit(), fit()
    assert first == second
    assert first[-1] < first[0] - 0.05
