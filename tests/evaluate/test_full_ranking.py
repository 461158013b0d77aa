"""FullRankingEvaluator against hand-computed cases and a naive per-user Python reference."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.evaluate import METRICS, FullRankingEvaluator, RankingResult

KS = (1, 5, 10, 20)


def make(
    users: Sequence[int] | np.ndarray, items: Sequence[int] | np.ndarray, n_users: int, n_items: int
) -> Interactions:
    return Interactions(
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        user_vocab=IdVocabulary.identity(n_users, "user"),
        item_vocab=IdVocabulary.identity(n_items, "item"),
    )


def by_user(data: Interactions) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for u, i in zip(data.users.tolist(), data.items.tolist()):
        out.setdefault(u, set()).add(i)
    return out


def reference(
    targets: Interactions,
    exclude: Sequence[Interactions],
    scores: np.ndarray,
    ks: Sequence[int],
) -> dict[int, dict[str, float]]:
    """Naive per-user loops: targets minus excluded, rank the non-excluded items by score."""
    n_items = targets.n_items
    tgt = by_user(targets)
    excl: dict[int, set[int]] = {}
    for ex in exclude:
        for u, items in by_user(ex).items():
            excl.setdefault(u, set()).update(items)
    out: dict[int, dict[str, float]] = {}
    for u in range(targets.n_users):
        seen = excl.get(u, set())
        T = tgt.get(u, set()) - seen
        if not T:
            continue
        candidates = [i for i in range(n_items) if i not in seen]
        ranking = sorted(candidates, key=lambda i: -float(scores[u, i]))
        row: dict[str, float] = {}
        for k in ks:
            top = ranking[:k]
            n_hit = sum(1 for i in top if i in T)
            dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(top) if i in T)
            idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(T), k)))
            first = next((r for r, i in enumerate(top) if i in T), None)
            row[f"recall@{k}"] = n_hit / len(T)
            row[f"precision@{k}"] = n_hit / k
            row[f"hit@{k}"] = 1.0 if n_hit else 0.0
            row[f"ndcg@{k}"] = dcg / idcg
            row[f"mrr@{k}"] = 0.0 if first is None else 1.0 / (first + 1)
        out[u] = row
    return out


def random_split(
    seed: int, n_users: int = 50, n_items: int = 40, n_train: int = 700
) -> tuple[Interactions, Interactions, Interactions]:
    """Random train/valid/test with duplicates and overlaps between the sets."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> Interactions:
        return make(rng.integers(0, n_users, n), rng.integers(0, n_items, n), n_users, n_items)

    train, valid = draw(n_train), draw(n_train // 6)
    # Test: most users, a few users none (to be skipped).
    test_users = rng.choice(n_users, size=n_users - 6, replace=False)
    tu = np.repeat(test_users, rng.integers(1, 6, len(test_users)))
    test = make(tu, rng.integers(0, n_items, len(tu)), n_users, n_items)
    return train, valid, test


def assert_matches_reference(
    result: RankingResult, ref: dict[int, dict[str, float]], ks: Sequence[int]
) -> None:
    assert result.users.tolist() == sorted(ref)
    for m in METRICS:
        for k in ks:
            name = f"{m}@{k}"
            expected = np.array([ref[u][name] for u in result.users.tolist()])
            np.testing.assert_allclose(result.per_user[name], expected, rtol=0, atol=1e-6)
            assert result.mean[name] == pytest.approx(expected.mean(), abs=1e-6)


# ---------------------------------------------------------------------------- hand-computed
def test_hand_computed_small_case() -> None:
    # 3 users x 6 items.
    # user 0: targets {1, 3}, nothing excluded, scores rank items [3, 0, 1, 2, 4, 5]
    #         recall@2 = 1/2, ndcg@2 = 1 / (1 + 1/log2(3)) = 0.6131471927654584, mrr@2 = 1
    # user 1: targets {0, 2, 4, 5} (4 > k = 2); item 0 is in train -> targets {2, 4, 5}
    #         excluded 0; ranking without 0: [5, 1, 2, 3, 4]  (item 0 has the top score)
    #         top-2 = [5, 1] -> hits [1, 0]: recall@2 = 1/3, precision@2 = 1/2,
    #         ndcg@2 = 1 / (1 + 1/log2(3)) = 0.6131471927654584 (IDCG over min(3, 2) = 2), mrr = 1
    # user 2: only target 4 is in train -> no target left -> skipped
    train = make([1, 2], [0, 4], 3, 6)
    test = make([0, 0, 1, 1, 1, 1, 2], [1, 3, 0, 2, 4, 5, 4], 3, 6)
    scores = torch.tensor(
        [
            [0.8, 0.7, 0.1, 0.9, 0.05, 0.0],
            [1.0, 0.8, 0.7, 0.6, 0.5, 0.9],
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        ]
    )
    ev = FullRankingEvaluator(test, exclude=[train], ks=(2,))
    res = ev.evaluate_scores(scores)
    assert res.users.tolist() == [0, 1]
    assert res.n_users_skipped == 1
    ndcg2 = 0.6131471927654584
    np.testing.assert_allclose(res.per_user["recall@2"], [0.5, 1 / 3])
    np.testing.assert_allclose(res.per_user["precision@2"], [0.5, 0.5])
    np.testing.assert_allclose(res.per_user["ndcg@2"], [ndcg2, ndcg2], atol=1e-12)
    np.testing.assert_allclose(res.per_user["mrr@2"], [1.0, 1.0])
    np.testing.assert_allclose(res.per_user["hit@2"], [1.0, 1.0])
    assert res["recall@2"] == pytest.approx((0.5 + 1 / 3) / 2)
    full = res.per_user_full("recall@2", 3)
    assert full[:2].tolist() == pytest.approx([0.5, 1 / 3]) and math.isnan(full[2])
    assert ev.n_targets.tolist() == [2, 3]
    users, top = ev.top_k(lambda u: scores[u], k=3)
    assert users.tolist() == [0, 1]
    assert top.tolist() == [[3, 0, 1], [5, 1, 2]]


# ---------------------------------------------------------------------------- reference
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 7, 1024])
def test_matches_naive_reference(seed: int, batch_size: int) -> None:
    train, valid, test = random_split(seed)
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(test.n_users, test.n_items, generator=g)
    ref = reference(test, [train, valid], scores.numpy(), KS)
    ev = FullRankingEvaluator(test, exclude=[train, valid], ks=KS, batch_size=batch_size)
    result = ev.evaluate(lambda users: scores[users])
    assert_matches_reference(result, ref, KS)
    assert result.n_users_skipped == test.n_users - len(ref)
    # validation-time protocol: exclude train only
    ref_v = reference(valid, [train], scores.numpy(), KS)
    ev_v = FullRankingEvaluator(valid, exclude=train, ks=KS, batch_size=batch_size)
    assert_matches_reference(ev_v.evaluate(lambda users: scores[users], inplace=True), ref_v, KS)


def test_no_exclusion_and_k_larger_than_n_items() -> None:
    train, _, test = random_split(5, n_users=20, n_items=12, n_train=100)
    scores = torch.rand(20, 12, generator=torch.Generator().manual_seed(5))
    ks = (1, 5, 12, 30)
    assert_matches_reference(
        FullRankingEvaluator(test, ks=ks).evaluate_scores(scores),
        reference(test, [], scores.numpy(), ks),
        ks,
    )
    # with exclusions most users have fewer than 30 items left: the tail never hits
    assert_matches_reference(
        FullRankingEvaluator(test, exclude=[train], ks=ks).evaluate_scores(scores),
        reference(test, [train], scores.numpy(), ks),
        ks,
    )


# ---------------------------------------------------------------------------- skipping
def test_users_without_targets_are_skipped() -> None:
    train, valid, test = random_split(3)
    ev = FullRankingEvaluator(test, exclude=[train, valid], ks=(5,))
    tgt = by_user(test)
    seen = by_user(train.concat(valid))
    expected = [u for u in range(test.n_users) if tgt.get(u, set()) - seen.get(u, set())]
    assert ev.users.tolist() == expected
    assert ev.n_users_skipped == test.n_users - len(expected) >= 6
    res = ev.evaluate(lambda u: torch.rand(len(u), test.n_items))
    assert res.users.tolist() == expected
    assert res.n_users_skipped == ev.n_users_skipped
    full = res.per_user_full("ndcg@5", test.n_users, fill=-1.0)
    skipped = sorted(set(range(test.n_users)) - set(expected))
    assert (full[skipped] == -1.0).all()
    assert (full[expected] >= 0).all()


def test_no_target_at_all_raises() -> None:
    train = make([0, 1], [0, 1], 2, 3)
    with pytest.raises(ValueError, match="no user has a target"):
        FullRankingEvaluator(make([0], [0], 2, 3), exclude=[train])
    with pytest.raises(ValueError, match="no user has a target"):
        FullRankingEvaluator(make([], [], 2, 3))


# ---------------------------------------------------------------------------- exclusion
def test_excluded_items_never_in_top_k() -> None:
    train, valid, test = random_split(4)
    excl = by_user(train.concat(valid))
    n_items = test.n_items
    excl_mask = torch.zeros(test.n_users, n_items, dtype=torch.bool)
    for u, items in excl.items():
        excl_mask[u, list(items)] = True
    base = torch.rand(test.n_users, n_items, generator=torch.Generator().manual_seed(4))
    # adversarial model: excluded items get the highest scores
    adversarial = torch.where(excl_mask, base + 100.0, base)

    ev = FullRankingEvaluator(test, exclude=[train, valid], ks=KS)
    users, top = ev.top_k(lambda u: adversarial[u], k=20)
    for u, row in zip(users.tolist(), top.tolist()):
        listed = [i for i in row if i >= 0]
        assert not set(listed) & excl.get(u, set())
        assert len(listed) == min(20, n_items - len(excl.get(u, set())))
        assert len(set(listed)) == len(listed)
    res = ev.evaluate(lambda u: adversarial[u])
    assert_matches_reference(res, reference(test, [train, valid], adversarial.numpy(), KS), KS)


def test_scores_of_score_fn_not_modified_unless_inplace() -> None:
    n_users, n_items = 10, 8
    test = make(np.arange(n_users), np.arange(n_users) % n_items, n_users, n_items)
    train = make(np.arange(n_users), (np.arange(n_users) + 1) % n_items, n_users, n_items)
    cached = torch.rand(n_users, n_items)
    before = cached.clone()
    ev = FullRankingEvaluator(test, exclude=[train], ks=(3,), batch_size=4)
    # returns views of the cached matrix (all users are evaluated, so batches are contiguous)
    ev.evaluate(lambda u: cached[int(u[0]) : int(u[-1]) + 1])
    assert torch.equal(cached, before)
    ev.evaluate_scores(cached)
    assert torch.equal(cached, before)


# ---------------------------------------------------------------------------- misc
def test_low_precision_scores_are_supported() -> None:
    train, valid, test = random_split(6)
    g = torch.Generator().manual_seed(6)
    # a permutation of 0..n_items-1 per user: distinct and exact in float16 and bfloat16
    scores = torch.stack([torch.randperm(test.n_items, generator=g) for _ in range(test.n_users)])
    ev = FullRankingEvaluator(test, exclude=[train, valid], ks=KS)
    ref = ev.evaluate_scores(scores.float())
    for dtype in (torch.float16, torch.bfloat16):
        res = ev.evaluate_scores(scores.to(dtype))
        for name in ref.mean:
            np.testing.assert_array_equal(res.per_user[name], ref.per_user[name])


def test_result_helpers() -> None:
    train, valid, test = random_split(7)
    ev = FullRankingEvaluator(test, exclude=[train, valid], ks=(20, 10), metrics=("ndcg", "recall"))
    res = ev.evaluate(lambda u: torch.rand(len(u), test.n_items))
    assert res.keys() == ["ndcg@10", "ndcg@20", "recall@10", "recall@20"]
    assert res["ndcg@10"] == res.mean["ndcg@10"]
    assert "recall@20" in res and "mrr@10" not in res
    with pytest.raises(KeyError, match="available"):
        res["mrr@10"]
    flat = res.to_dict()
    json.dumps(flat)
    assert flat["n_users"] == res.n_users == len(res.users)
    assert flat["n_users_skipped"] == res.n_users_skipped
    assert set(flat) >= {"ndcg@10", "recall@20", "seconds"}
    table = res.table()
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "@10", "@20"]
    assert lines[1].split()[0] == "ndcg" and lines[2].split()[0] == "recall"
    assert f"{res['recall@20']:.4f}" in lines[2]
    assert res.seconds >= res.score_seconds >= 0.0


def test_bad_arguments_and_bad_scores() -> None:
    train, _, test = random_split(8)
    with pytest.raises(ValueError, match="ks"):
        FullRankingEvaluator(test, ks=())
    with pytest.raises(ValueError, match="ks"):
        FullRankingEvaluator(test, ks=(0, 5))
    with pytest.raises(ValueError, match="unknown"):
        FullRankingEvaluator(test, metrics=("auc",))
    with pytest.raises(ValueError, match="exclude"):
        FullRankingEvaluator(test, exclude=[make([0], [0], 3, 3)])
    ev = FullRankingEvaluator(test, exclude=[train], ks=(5,))
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate(lambda u: torch.rand(len(u), test.n_items + 1))
    with pytest.raises(ValueError, match="NaN"):
        ev.evaluate(lambda u: torch.full((len(u), test.n_items), float("nan")))
    # a single NaN on a non-excluded item is caught; NaN on an excluded item is irrelevant
    u0 = int(ev.users[0])
    seen = by_user(train).get(u0, set())
    free = next(i for i in range(test.n_items) if i not in seen)
    one_nan = torch.rand(test.n_users, test.n_items)
    one_nan[u0, free] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ev.evaluate_scores(one_nan)
    if seen:
        excluded_nan = torch.rand(test.n_users, test.n_items)
        excluded_nan[u0, min(seen)] = float("nan")
        ev.evaluate_scores(excluded_nan)
    with pytest.raises(TypeError, match="floating"):
        ev.evaluate(lambda u: torch.zeros(len(u), test.n_items, dtype=torch.int64))
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate_scores(torch.rand(3, 3))
