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

:func:`make_synthetic` scores every (user, item) pair, so its cost is ``O(users x items)``.
:func:`make_synthetic_power_law` draws each interaction directly (a topic from the user's mixture,
then an item of that topic by popularity), so its time and memory grow linearly with the number
of interactions: it makes the large datasets of the scaling benchmarks.
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


def make_synthetic_power_law(
    n_interactions: int,
    interactions_per_user: float = 50.0,
    items_per_user: float = 0.5,
    n_topics: int = 16,
    topic_concentration: float = 0.1,
    popularity_exponent: float = 1.0,
    popularity_share: float = 0.2,
    seed: int = 0,
    name: str = "synthetic-power-law",
) -> Interactions:
    """A synthetic dataset whose generation is linear in ``n_interactions`` (time and memory).

    Users ``U = n_interactions / interactions_per_user`` and items
    ``I = U * items_per_user`` grow with the size (the defaults give 10k x 5k users x items at
    0.5M interactions, 400k x 200k at 20M). Generative story:

    1. Items: a Zipf popularity ``r ** -popularity_exponent`` over shuffled ranks ``r``, and one
       topic each (uniform over ``n_topics``, ``K``).
    2. Users: a topic mixture ``θ_u ~ Dirichlet(topic_concentration)`` (small: a few topics per
       user) and a log-normal activity, at least 5 interactions.
    3. Each interaction draws, with probability ``popularity_share``, an item by global
       popularity; else a topic ``z ~ θ_u`` and an item of topic ``z`` by popularity. The
       preference matrix ``P(i | u) = (1 - s) Θ Φ^T + s · pop`` has rank ``K + 1``: the planted
       low-rank structure a factorisation model learns, under a power-law head.
    4. Repeated (user, item) draws are redrawn for the user until every pair is distinct (after
       a few rounds uniformly over items, so a heavy user of a small topic cannot stall it).

    Every draw is an inverse-CDF lookup (``searchsorted``) in arrays of size ``U K`` or ``I``,
    so the cost is ``O(n log n)`` with no ``(U, I)`` array; the log factor is the final sort.

    Args:
        n_interactions: number of distinct (user, item) interactions returned.
        interactions_per_user: mean activity; sets ``U``.
        items_per_user: items per user; sets ``I``.
        n_topics: ``K``, rank of the planted preference.
        topic_concentration: Dirichlet parameter of the users' topic mixtures.
        popularity_exponent: Zipf exponent of item popularity.
        popularity_share: ``s``, share of draws by global popularity alone.
        seed: the same seed gives the same dataset.
        name: dataset name.

    Returns:
        :class:`Interactions` grouped by user (users ascending), timestamps strictly increasing
        within each user, identity vocabularies of sizes ``U`` and ``I``, no ratings.
    """
    if n_interactions < 1 or interactions_per_user < 5 or items_per_user <= 0 or n_topics < 1:
        raise ValueError(
            "need n_interactions >= 1, interactions_per_user >= 5, items_per_user > 0 and "
            f"n_topics >= 1; got {n_interactions}, {interactions_per_user}, {items_per_user}, "
            f"{n_topics}"
        )
    if not 0.0 <= popularity_share <= 1.0:
        raise ValueError(f"popularity_share must be in [0, 1], got {popularity_share}")
    rng = np.random.default_rng(seed)
    n_users = max(1, round(n_interactions / interactions_per_user))
    n_items = max(n_topics, round(n_users * items_per_user))

    # items: popularity and topic; items listed topic by topic for the per-topic draws
    popularity = (rng.permutation(n_items) + 1.0) ** -popularity_exponent  # (I,)
    item_topic = rng.integers(0, n_topics, size=n_items)  # (I,)
    by_topic = np.argsort(item_topic, kind="stable")  # (I,) items grouped by topic
    topic_sizes = np.bincount(item_topic, minlength=n_topics)
    topic_cdf = _block_cdf(popularity[by_topic], topic_sizes)  # (I,), block t in (t, t + 1]
    global_cdf = np.cumsum(popularity) / popularity.sum()  # (I,)
    # a topic without items falls back to global popularity
    empty_topics = topic_sizes == 0

    # users: topic mixtures (block u of user_cdf in (u, u + 1]) and activity
    mixtures = rng.dirichlet(np.full(n_topics, topic_concentration), size=n_users)  # (U, K)
    user_cdf = _block_cdf(mixtures.reshape(-1), np.full(n_users, n_topics))  # (U K,)
    capacity = max(5, n_items // 2)
    counts = _power_law_activity(rng, n_users, n_interactions, capacity)  # (U,)

    def draw(users: np.ndarray) -> np.ndarray:
        """One item per entry of ``users`` (int64), by the story above."""
        topic = np.searchsorted(user_cdf, users + rng.random(len(users))) - users * n_topics
        topic = np.minimum(topic, n_topics - 1)
        in_topic = np.searchsorted(topic_cdf, topic + rng.random(len(users)))
        items = by_topic[np.minimum(in_topic, n_items - 1)]
        by_popularity = (rng.random(len(users)) < popularity_share) | empty_topics[topic]
        n_global = int(by_popularity.sum())
        global_draw = np.searchsorted(global_cdf, rng.random(n_global))
        items[by_popularity] = np.minimum(global_draw, n_items - 1)
        return items.astype(np.int64)

    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    keys = _sorted_distinct(users * n_items + draw(users))
    for round_ in range(1, 64):  # each round redraws only the repeated pairs
        missing = counts - np.bincount(keys // n_items, minlength=n_users)
        if not missing.any():
            break
        extra_users = np.repeat(np.arange(n_users, dtype=np.int64), missing)
        # a heavy user's few topics can run short of unseen items: after the first
        # rounds the remaining repeats are redrawn uniformly (they are a tiny share)
        extra_items = (
            draw(extra_users)
            if round_ < _STORY_ROUNDS
            else rng.integers(0, n_items, size=len(extra_users))
        )
        keys = _sorted_distinct(np.concatenate([keys, extra_users * n_items + extra_items]))
    users, items = np.divmod(keys, n_items)
    counts = np.bincount(users, minlength=n_users)
    within_user = np.lexsort((rng.random(len(keys)), users))  # visit order: random per user
    return Interactions(
        users=users,
        items=items[within_user],
        user_vocab=IdVocabulary.identity(n_users, name="user"),
        item_vocab=IdVocabulary.identity(n_items, name="item"),
        timestamps=_visit_times(rng, counts),
        name=name,
    )


def _sorted_distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of ``keys``, ascending (a sort; numpy's hashed ``unique`` is several
    times slower on tens of millions of int64 keys)."""
    keys = np.sort(keys)
    keep = np.empty(len(keys), dtype=bool)
    keep[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


_STORY_ROUNDS = 4
"""Rounds of redrawing repeated pairs by the generative story before drawing them uniformly."""


def _block_cdf(weights: np.ndarray, block_sizes: np.ndarray) -> np.ndarray:
    """Cumulative distributions of consecutive blocks, offset so block ``b`` spans
    ``(b, b + 1]``: ``searchsorted(cdf, b + r)`` with ``r ~ U[0, 1)`` draws from block ``b``.

    Args:
        weights: non-negative ``(sum(block_sizes),)``, block after block.
        block_sizes: ``(n_blocks,)``; an empty block has no entries.
    """
    block = np.repeat(np.arange(len(block_sizes)), block_sizes)
    totals = np.bincount(block, weights=weights, minlength=len(block_sizes))
    cumulative = np.cumsum(weights)
    before = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
    return block + (cumulative - before[block]) / totals[block]


def _power_law_activity(
    rng: np.random.Generator, n_users: int, n_interactions: int, capacity: int
) -> np.ndarray:
    """Interactions per user ``(U,)`` summing to ``n_interactions``: log-normal weights
    (sigma 1), at least ``min(5, n / U)`` each, at most ``capacity``."""
    floor = min(5, n_interactions // n_users)
    counts = np.full(n_users, floor, dtype=np.int64)
    weights = rng.lognormal(0.0, 1.0, size=n_users)
    remaining = n_interactions - int(counts.sum())
    while remaining > 0:
        room = capacity - counts
        probs = np.where(room > 0, weights, 0.0)
        extra = np.minimum(rng.multinomial(remaining, probs / probs.sum()), room)
        counts += extra
        remaining -= int(extra.sum())
    return counts


__all__ = ["make_synthetic", "make_synthetic_power_law"]
