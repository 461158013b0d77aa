"""A learnable synthetic interactions dataset, for tests, examples and quick benchmarks.

Generative story (all vectorised, a few users at a time):

1. Item popularity is a Zipf law: the item of popularity rank ``r`` (ranks shuffled over items)
   has weight ``r ** -popularity_exponent``.
2. Users and items get latent factors drawn from ``N(0, 1/sqrt(dim))`` per coordinate, so an
   affinity ``u . v`` has unit variance whatever ``dim``.
3. User activity (interactions per user) is log-normal, at least ``min_per_user``, at most
   ``n_items``, and sums to exactly ``n_interactions``.
4. Each user draws their items without replacement with probability proportional to
   ``exp(u . v / temperature) * popularity`` (Gumbel top-k: the ``k`` largest of
   ``log p + Gumbel noise`` are a draw without replacement), so there are no duplicate pairs.
5. Ratings in 1..5 grow with the standardised affinity (plus noise); timestamps strictly
   increase within each user, visiting the user's items in random order.

Because preferences come from low-rank factors, a matrix-factorisation model recovers them and
clearly beats a popularity ranking; the popularity term still gives a heavy head.
"""

from __future__ import annotations

import numpy as np

from leanrec.data.interactions import IdVocabulary, Interactions

_CHUNK_CELLS = 1 << 22
"""Users per chunk are chosen so ``chunk_users * n_items`` stays under this (~16 MB float32)."""


def _user_activity(
    rng: np.random.Generator, n_users: int, n_items: int, n_interactions: int, min_per_user: int
) -> np.ndarray:
    """Interactions per user, shape ``(n_users,)``, each in ``[min_per_user, n_items]``,
    summing to ``n_interactions``."""
    weights = rng.lognormal(mean=0.0, sigma=0.7, size=n_users)
    counts = np.full(n_users, min_per_user, dtype=np.int64)
    remaining = n_interactions - int(counts.sum())
    while remaining > 0:
        room = n_items - counts
        open_users = room > 0
        probs = np.where(open_users, weights, 0.0)
        extra = rng.multinomial(remaining, probs / probs.sum())
        extra = np.minimum(extra, room)
        counts += extra
        remaining -= int(extra.sum())
    return counts


def make_synthetic(
    n_users: int = 2000,
    n_items: int = 1000,
    n_interactions: int = 60000,
    dim: int = 16,
    popularity_exponent: float = 1.2,
    temperature: float = 0.3,
    min_per_user: int = 5,
    rating_noise: float = 0.5,
    seed: int = 0,
    name: str = "synthetic",
) -> Interactions:
    """Generate a synthetic dataset with low-rank preferences and a power-law item popularity.

    Args:
        n_users: number of users; every user gets at least ``min_per_user`` interactions.
        n_items: number of items (some tail items may get no interaction).
        n_interactions: exact total number of (distinct) user-item interactions.
        dim: dimension of the latent user / item factors.
        popularity_exponent: Zipf exponent of item popularity (0 = uniform popularity).
        temperature: divides the affinity ``u . v`` (std 1) in the sampling logits; lower is
            more personalised and easier to learn.
        min_per_user: minimum interactions per user.
        rating_noise: standard deviation of the noise added before rounding ratings.
        seed: random seed; the same seed gives the same dataset.
        name: dataset name.

    Returns:
        :class:`Interactions` of ``n_interactions`` rows grouped by user (users ascending,
        timestamps strictly increasing within a user), with identity vocabularies of sizes
        ``n_users`` / ``n_items``, float ratings in ``{1, ..., 5}`` and int64 timestamps
        (seconds).
    """
    _check_sizes(n_users, n_items, n_interactions, min_per_user, temperature)
    rng = np.random.default_rng(seed)

    popularity_rank = rng.permutation(n_items) + 1
    log_popularity = -popularity_exponent * np.log(popularity_rank.astype(np.float64))
    scale = dim**-0.25
    user_factors = rng.normal(0.0, scale, size=(n_users, dim))
    item_factors = rng.normal(0.0, scale, size=(n_items, dim))
    counts = _user_activity(rng, n_users, n_items, n_interactions, min_per_user)

    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    items = _sample_items(rng, counts, user_factors / temperature, item_factors, log_popularity)
    affinity = np.einsum("nd,nd->n", user_factors[users], item_factors[items])  # (n,)

    # Visit each user's items in random order, at strictly increasing times.
    within_user = np.lexsort((rng.random(n_interactions), users))
    items, affinity = items[within_user], affinity[within_user]
    timestamps = _visit_times(rng, counts)

    standardised = (affinity - affinity.mean()) / max(float(affinity.std()), 1e-12)
    noisy = 3.0 + 1.2 * standardised + rng.normal(0.0, rating_noise, size=n_interactions)
    ratings = np.clip(np.rint(noisy), 1, 5).astype(np.float32)

    return Interactions(
        users=users,
        items=items,
        user_vocab=IdVocabulary.identity(n_users, name="user"),
        item_vocab=IdVocabulary.identity(n_items, name="item"),
        ratings=ratings,
        timestamps=timestamps,
        name=name,
    )


def _check_sizes(
    n_users: int, n_items: int, n_interactions: int, min_per_user: int, temperature: float
) -> None:
    """``ValueError`` for sizes no dataset can meet (see :func:`make_synthetic`)."""
    if n_users < 1 or n_items < 1:
        raise ValueError(f"n_users and n_items must be >= 1, got {n_users}, {n_items}")
    if not 1 <= min_per_user <= n_items:
        raise ValueError(f"min_per_user must be in [1, n_items={n_items}], got {min_per_user}")
    if not n_users * min_per_user <= n_interactions <= n_users * n_items:
        raise ValueError(
            f"n_interactions must be in [n_users * min_per_user, n_users * n_items] = "
            f"[{n_users * min_per_user}, {n_users * n_items}], got {n_interactions}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def _sample_items(
    rng: np.random.Generator,
    counts: np.ndarray,
    scaled_user_factors: np.ndarray,
    item_factors: np.ndarray,
    log_popularity: np.ndarray,
) -> np.ndarray:
    """``counts[u]`` distinct items per user (users ascending, ``(Σ counts,)`` int64), drawn
    without replacement from ``softmax(u·v / τ + log popularity)`` by the Gumbel top-k trick.

    Args:
        rng: the generator (one Exp(1) block per chunk of users).
        counts: interactions per user ``(U,)``.
        scaled_user_factors: ``u / τ`` ``(U, dim)``.
        item_factors: ``v`` ``(I, dim)``.
        log_popularity: ``(I,)``.
    """
    n_users, n_items = len(counts), len(item_factors)
    items = np.empty(int(counts.sum()), dtype=np.int64)
    # Sampling logits in float32, computed in place: this loop is memory-bound.
    user_f32 = scaled_user_factors.astype(np.float32)  # (n_users, dim)
    item_factors_t = np.ascontiguousarray(item_factors.T, dtype=np.float32)  # (dim, n_items)
    log_popularity_f32 = log_popularity.astype(np.float32)  # (n_items,)
    chunk_users = max(1, _CHUNK_CELLS // n_items)
    row_starts = np.concatenate([[0], np.cumsum(counts)])
    for first in range(0, n_users, chunk_users):
        last = min(n_users, first + chunk_users)
        chunk_counts = counts[first:last]  # (c,)
        perturbed = user_f32[first:last] @ item_factors_t  # (c, n_items)
        perturbed += log_popularity_f32
        # Gumbel noise is -log(Exp(1)).
        noise = rng.standard_exponential(size=perturbed.shape, dtype=np.float32)
        np.maximum(noise, np.float32(1e-30), out=noise)  # log(0) would be -inf
        np.log(noise, out=noise)
        perturbed -= noise
        k_max = int(chunk_counts.max())
        if k_max < n_items:
            top = np.argpartition(perturbed, n_items - k_max, axis=1)[:, n_items - k_max :]
        else:
            top = np.broadcast_to(np.arange(n_items), perturbed.shape)
        # Keep each user's first counts[u] of the top k_max, ordered by perturbed logit.
        top_order = np.argsort(-np.take_along_axis(perturbed, top, axis=1), axis=1)
        top = np.take_along_axis(top, top_order, axis=1)  # (c, k_max)
        chosen = np.arange(top.shape[1])[None, :] < chunk_counts[:, None]  # (c, k_max)
        items[row_starts[first] : row_starts[last]] = top[chosen]
    return items


def _visit_times(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Int64 Unix seconds ``(Σ counts,)``, strictly increasing within each user's rows (users
    ascending): a random start per user, then gaps of 1 minute to 3 days."""
    row_starts = np.concatenate([[0], np.cumsum(counts)])
    gaps = rng.integers(60, 3 * 86_400, size=int(row_starts[-1]))
    elapsed = np.cumsum(gaps)
    elapsed_before_user = np.repeat(elapsed[row_starts[:-1]] - gaps[row_starts[:-1]], counts)
    user_start = rng.integers(1_500_000_000, 1_600_000_000, size=len(counts))
    return np.repeat(user_start, counts) + elapsed - elapsed_before_user


__all__ = ["make_synthetic"]
