"""Peak memory of the evaluator's masks and of the negative sampler is linear in users + items +
interactions: no dense user x item matrix anywhere.

The data has 400k users x 200k items (a dense boolean mask would take 80 GB) but only 1M
interactions; building the masks, evaluating the users with a target and sampling a negative
for every interaction must each stay under a budget a few times the size of the int64 keys.
``tracemalloc`` sees numpy's allocations, where the masks and keys are built (torch's own
allocations are not traced; the torch tensors here are views of those arrays or ``(B, I)``
score blocks)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import torch

from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.evaluate import FullRankingEvaluator
from leanrec.train.sampling import NegativeSampler

N_USERS, N_ITEMS, N_INTERACTIONS = 400_000, 200_000, 1_000_000
BUDGET_BYTES = 200 << 20  # 1M int64 keys are 8 MB; users + items arrays ~5 MB


def _random_interactions(n: int, seed: int, n_users: int = N_USERS) -> Interactions:
    rng = np.random.default_rng(seed)
    return Interactions(
        users=rng.integers(0, n_users, n),
        items=rng.integers(0, N_ITEMS, n),
        user_vocab=IdVocabulary.identity(N_USERS, "user"),
        item_vocab=IdVocabulary.identity(N_ITEMS, "item"),
    )


def _peak_bytes(work: object) -> int:
    tracemalloc.start()
    try:
        work()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_evaluator_masks_are_linear_in_the_interactions() -> None:
    train = _random_interactions(N_INTERACTIONS, seed=0)
    # targets of 100 users only, so scoring them is cheap; the masks still cover every user
    targets = _random_interactions(300, seed=1, n_users=100)
    made: list[FullRankingEvaluator] = []
    peak = _peak_bytes(lambda: made.append(FullRankingEvaluator(targets, exclude=[train])))
    assert peak < BUDGET_BYTES
    evaluator = made[0]
    assert len(evaluator.users) <= 100

    def score(users: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(users), N_ITEMS)

    result = evaluator.evaluate(score, inplace=True)
    assert result.n_users == len(evaluator.users)


def test_negative_sampler_is_linear_in_the_interactions() -> None:
    train = _random_interactions(N_INTERACTIONS, seed=0)
    rng = np.random.default_rng(0)
    drawn: list[np.ndarray] = []

    def sample_an_epoch() -> None:
        sampler = NegativeSampler(train, rng)
        drawn.append(sampler.sample(train.users))

    assert _peak_bytes(sample_an_epoch) < BUDGET_BYTES
    negatives = drawn[0]
    assert negatives.shape == (N_INTERACTIONS,)
    assert not NegativeSampler(train, rng).is_positive(train.users, negatives).any()
