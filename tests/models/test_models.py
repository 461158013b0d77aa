"""Contract tests every base recommender passes, plus hand-computed checks of LightGCN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from leanrec.data.interactions import Interactions
from leanrec.embeddings import FullEmbedding
from leanrec.models import MODELS, Recommender, build_model
from leanrec.models.graph import normalized_adjacency
from leanrec.models.registry import load_ranking_model
from leanrec.models.requests import NO_ITEM

MODEL_NAMES = ["mf", "neumf", "ngcf", "lightgcn"]


@pytest.fixture(scope="module")
def small_data() -> Interactions:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 40, 400)
    items = rng.integers(0, 25, 400)
    return Interactions.from_raw(users, items, name="small")


@pytest.fixture(params=MODEL_NAMES)
def model(request: pytest.FixtureRequest, small_data: Interactions) -> Recommender:
    options = {"embedding_dim": 8}
    return build_model(request.param, small_data, options, seed=0)


def test_registry_has_the_four_models() -> None:
    assert {"mf", "neumf", "ngcf", "lightgcn"} <= set(MODELS)


def test_score_all_shape(model: Recommender, small_data: Interactions) -> None:
    model.eval()
    scores = model.score_all(torch.arange(5))
    assert scores.shape == (5, small_data.n_items)
    assert torch.isfinite(scores).all()


def test_pairwise_scores_match_score_all(model: Recommender) -> None:
    model.eval()
    users = torch.tensor([0, 3, 7])
    items = torch.tensor([1, 4, 9])
    negatives = torch.tensor([2, 2, 11])
    out = model.pairwise(users, items, negatives)
    full = model.score_all(users)
    assert torch.allclose(out.positive_scores, full[torch.arange(3), items], atol=1e-5)
    assert torch.allclose(out.negative_scores, full[torch.arange(3), negatives], atol=1e-5)
    assert out.l2.item() > 0


def test_pairwise_accepts_several_negatives(model: Recommender) -> None:
    model.eval()
    users = torch.tensor([0, 1])
    negatives = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = model.pairwise(users, torch.tensor([0, 0]), negatives)
    full = model.score_all(users)
    assert out.negative_scores.shape == (2, 3)
    assert torch.allclose(out.negative_scores, full.gather(1, negatives), atol=1e-5)


def test_gradients_reach_every_table(model: Recommender) -> None:
    model.train()
    out = model.pairwise(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5]))
    (out.positive_scores - out.negative_scores).sum().backward()
    for name, table in model.embedding_tables().items():
        grads = [p.grad for p in table.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def test_recommend_excludes_seen_items(model: Recommender, small_data: Interactions) -> None:
    csr = small_data.to_csr()
    users = np.arange(10)
    items, scores = model.recommend(users, k=5)
    assert items.shape == (10, 5)
    for row, user in enumerate(users):
        seen = set(csr.indices[csr.indptr[user] : csr.indptr[user + 1]].tolist())
        assert not seen & set(items[row].tolist())
        assert torch.all(scores[row, :-1] >= scores[row, 1:])


def test_recommend_rejects_unknown_user(model: Recommender) -> None:
    with pytest.raises(IndexError, match="user index 10000 out of range"):
        model.recommend([3, 10_000], k=3)


@pytest.mark.parametrize(
    ("users", "k", "error"),
    [([1.7], 3, "user indices must be integer indices, got 1.7"),
     ([True], 3, "user indices must be integer indices, got True"),
     (["1"], 3, "got '1'"),
     ([1], 2.5, "k must be an integer, got 2.5"),
     ([1], True, "k must be an integer, got True")],
)  # fmt: skip
def test_recommend_refuses_what_is_not_an_integer(
    model: Recommender, users: list[object], k: object, error: str
) -> None:
    # as_tensor(int64) would read 1.7 as user 1 and True as 1
    with pytest.raises(TypeError, match=error):
        model.recommend(users, k=k)  # type: ignore[arg-type]
    for bad_k in (0, -1, model.n_items + 1):
        with pytest.raises(ValueError, match=r"k must be in \[1, "):
            model.recommend([1], k=bad_k)
    items, scores = model.recommend([], k=3)
    assert items.shape == scores.shape == (0, 3)


def test_a_list_past_the_unseen_items_ends_in_no_item(model: Recommender) -> None:
    users = np.arange(3)
    seen = (model.seen_indptr[1:4] - model.seen_indptr[:3]).tolist()
    items, scores = model.recommend(users, k=model.n_items)
    for row, n_seen in enumerate(seen):
        unseen = model.n_items - n_seen
        assert torch.isfinite(scores[row, :unseen]).all() and (items[row, :unseen] >= 0).all()
        assert (scores[row, unseen:] == -torch.inf).all()
        assert (items[row, unseen:] == NO_ITEM).all()


def test_save_load_round_trip(model: Recommender, tmp_path: Path) -> None:
    path = model.save(tmp_path / "model.pt")
    state = torch.load(path, weights_only=True)  # plain tensors and values only
    assert state["model"] == model.name
    loaded = load_ranking_model(path)
    model.eval()
    loaded.eval()
    users = torch.arange(12)
    assert torch.allclose(loaded.score_all(users), model.score_all(users), atol=1e-6)
    assert torch.equal(loaded.recommend(users, 4)[0], model.recommend(users, 4)[0])


def test_replace_table_changes_scores(model: Recommender) -> None:
    name, table = next(iter(model.embedding_tables().items()))
    model.eval()
    before = model.score_all(torch.arange(3)).clone()
    model.replace_table(name, FullEmbedding.from_tensor(torch.zeros_like(table.all())))
    after = model.score_all(torch.arange(3))
    assert not torch.allclose(before, after)
    with pytest.raises(ValueError, match="must be"):
        model.replace_table(name, FullEmbedding(3, 2))


def test_neumf_sizes_all_four_tables(small_data: Interactions) -> None:
    model = build_model("neumf", small_data, {"embedding_dim": 4})
    assert set(model.embedding_tables()) == {"gmf_user", "gmf_item", "mlp_user", "mlp_item"}
    assert model.embedding_parameters() == 2 * 4 * (small_data.n_users + small_data.n_items)


def test_normalized_adjacency_by_hand() -> None:
    # users 0,1; items 0,1; edges u0-i0, u0-i1, u1-i0
    data = Interactions.from_raw([0, 0, 1], [0, 1, 0])
    adj = normalized_adjacency(data).toarray()
    # degrees: u0=2, u1=1, i0=2, i1=1 -> entry (u,i) = 1/sqrt(d_u d_i)
    expected = np.zeros((4, 4), dtype=np.float32)
    for u, i, value in [(0, 0, 1 / 2), (0, 1, 1 / np.sqrt(2)), (1, 0, 1 / np.sqrt(2))]:
        expected[u, 2 + i] = expected[2 + i, u] = value
    assert np.allclose(adj, expected)


def test_lightgcn_propagation_matches_dense_formula(small_data: Interactions) -> None:
    model = build_model("lightgcn", small_data, {"embedding_dim": 4, "n_layers": 2}, seed=1)
    adj = normalized_adjacency(small_data).toarray()
    e0 = torch.cat([model.user_embedding.all(), model.item_embedding.all()]).detach().numpy()
    expected = (e0 + adj @ e0 + adj @ adj @ e0) / 3
    users, items = model.final_embeddings()
    got = torch.cat([users, items]).detach().numpy()
    assert np.allclose(got, expected, atol=1e-5)


def test_lightgcn_gradient_matches_autograd_through_dense(small_data: Interactions) -> None:
    """The custom symmetric backward equals torch's gradient through a dense matmul."""
    model = build_model("lightgcn", small_data, {"embedding_dim": 4, "n_layers": 3}, seed=2)
    users, items = model.final_embeddings()
    (users.sum() * 2 + items.pow(2).sum()).backward()
    grad = model.user_embedding.weight.grad.clone()

    adj = torch.from_numpy(normalized_adjacency(small_data).toarray())
    e0 = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    e0.requires_grad_(True)
    layer, total = e0, e0
    for _ in range(3):
        layer = adj @ layer
        total = total + layer
    final = total / 4
    (final[: small_data.n_users].sum() * 2 + final[small_data.n_users :].pow(2).sum()).backward()
    assert torch.allclose(grad, e0.grad[: small_data.n_users], atol=1e-5)


@pytest.mark.parametrize("packed", [False, True])
def test_lightgcn_propagates_only_the_kept_columns_and_gives_the_same_bits(
    small_data: Interactions, packed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows keeping at most 5 of 16 columns: the graph sees 5-wide layers, and the final
    embeddings, the loss and every gradient equal those of propagating all 16 to float rounding
    (bit for bit on an AVX2 machine; on AVX-512 the sparse product's kernels for 5 and 16
    columns round apart by up to 1e-8)."""
    from leanrec.models.compress import compress, set_entity_sizes, use_masked_tables
    from leanrec.models.graph import SparseGraph
    from leanrec.models.lightgcn import LightGCN

    model = build_model("lightgcn", small_data, {"embedding_dim": 16, "n_layers": 3}, seed=4)
    use_masked_tables(model)
    rng = np.random.default_rng(0)
    set_entity_sizes(model, rng.integers(0, 6, model.n_users), rng.integers(1, 6, model.n_items))
    if packed:
        model = compress(model)
    widths: list[int] = []
    matmul = SparseGraph.matmul
    monkeypatch.setattr(
        SparseGraph, "matmul", lambda g, x: widths.append(x.shape[1]) or matmul(g, x)
    )

    def step(kept: bool) -> list[torch.Tensor]:
        monkeypatch.setattr(LightGCN, "propagate_kept_columns", kept)
        model.zero_grad()
        users, items = model.final_embeddings()
        out = model.pairwise(torch.arange(6), torch.arange(6), torch.arange(6, 12))
        loss = (out.positive_scores - out.negative_scores).sigmoid().sum() + out.l2
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        return [users.detach(), items.detach(), loss.detach(), *grads]

    kept, every = step(True), step(False)
    assert set(widths[: len(widths) // 2]) == {5} and set(widths[len(widths) // 2 :]) == {16}
    assert kept[0].shape == (model.n_users, 16)  # padded back to d
    assert len(kept) == len(every) > 3
    assert all(torch.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(kept, every, strict=True))


def test_lightgcn_with_full_tables_propagates_every_column(small_data: Interactions) -> None:
    model = build_model("lightgcn", small_data, {"embedding_dim": 8, "n_layers": 1}, seed=1)
    assert [t.kept_width() for t in model.id_tables()] == [8, 8]


def test_graph_is_rebuilt_on_load(tmp_path: Path, small_data: Interactions) -> None:
    model = build_model("lightgcn", small_data, {"embedding_dim": 4})
    loaded = load_ranking_model(model.save(tmp_path / "m.pt"))
    assert loaded.graph is not None
    diff = loaded.graph.matrix - model.graph.matrix
    assert abs(sp.csr_matrix(diff)).sum() < 1e-6


def test_propagation_kernels_agree_in_both_directions_and_survive_deepcopy() -> None:
    import copy

    from leanrec.models.graph import SparseGraph

    rng = np.random.default_rng(0)
    train = Interactions.from_raw(rng.integers(0, 20, 200), rng.integers(0, 30, 200))
    matrix = normalized_adjacency(train)
    dense = torch.from_numpy(matrix.toarray())
    n = matrix.shape[0]
    outputs = {}
    for kernel in ("torch", "scipy"):
        graph = SparseGraph(matrix)
        graph.kernel = kernel
        x = torch.randn(n, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
        y = graph.matmul(x)
        (y * torch.arange(4.0)).sum().backward()
        assert x.grad is not None
        outputs[kernel] = (y.detach(), x.grad.clone())
        # Â is symmetric: the gradient of sum(w ⊙ Âx) is Â w
        expected_grad = dense @ torch.arange(4.0).expand(n, 4)
        torch.testing.assert_close(x.grad, expected_grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(y.detach(), dense @ x.detach(), rtol=1e-5, atol=1e-6)
        clone = copy.deepcopy(graph)  # torch CSR caches are dropped, not copied
        torch.testing.assert_close(clone.matmul(x.detach()), y.detach())
    torch.testing.assert_close(outputs["torch"][0], outputs["scipy"][0])
    graph = SparseGraph(matrix)
    graph.kernel = "cuda-magic"
    with pytest.raises(ValueError, match="kernel"):
        graph.matmul(torch.zeros(n, 2))
