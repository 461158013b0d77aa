"""Small learnable behaviour data for the CTR model and trainer tests.

The click probability depends on a categorical interaction (gender x target genre), on the
target item, and on the history (the share of history items of the target's genre), so a model
has to read fields, the target and the history to approach the Bayes AUC (about 0.85).
"""

from __future__ import annotations

import numpy as np

from leanrec.data.behavior import BehaviorSamples, FeatureMap, FieldSpec

N_USERS, N_ITEMS, N_GENRES = 60, 50, 6
MAX_HISTORY, MAX_TAGS = 10, 2


def feature_map() -> FeatureMap:
    """user_id, item_id, gender, age (categorical), genres (multi-hot), history (sequence)."""
    return FeatureMap(
        fields=(
            FieldSpec("user_id", "categorical", N_USERS + 1),
            FieldSpec("item_id", "categorical", N_ITEMS + 1),
            FieldSpec("gender", "categorical", 3),
            FieldSpec("age", "categorical", 5),
            FieldSpec("genres", "multi_hot", N_GENRES + 1),
            FieldSpec("history", "sequence", N_ITEMS + 1, shares_vocabulary_with="item_id"),
        ),
        max_history=MAX_HISTORY,
        max_tags=MAX_TAGS,
    )


def make_samples(
    n: int, seed: int = 0, world_seed: int = 123
) -> tuple[BehaviorSamples, np.ndarray]:
    """``n`` samples and their true click probabilities ``(n,)``.

    ``world_seed`` fixes users, items and the click model (share it between train and
    validation sets); ``seed`` draws the samples.
    """
    world = np.random.default_rng(world_seed)
    primary = world.integers(1, N_GENRES + 1, N_ITEMS + 1)
    second = np.where(
        world.random(N_ITEMS + 1) < 0.5, world.integers(1, N_GENRES + 1, N_ITEMS + 1), 0
    )
    second = np.where(second == primary, 0, second)
    item_tags = np.stack([primary, second], axis=1).astype(np.int64)
    item_tags[0] = 0
    item_quality = world.normal(0.0, 1.0, N_ITEMS + 1)
    user_pref = world.integers(1, N_GENRES + 1, N_USERS + 1)
    user_gender = world.integers(1, 3, N_USERS + 1)
    user_age = world.integers(1, 5, N_USERS + 1)
    items_by_genre = [np.flatnonzero(primary[1:] == g) + 1 for g in range(N_GENRES + 1)]

    rng = np.random.default_rng(seed)
    users = rng.integers(1, N_USERS + 1, n)
    targets = rng.integers(1, N_ITEMS + 1, n)
    lengths = rng.integers(0, MAX_HISTORY + 1, n)
    history = np.zeros((n, MAX_HISTORY), dtype=np.int64)
    share = np.zeros(n)
    for row in range(n):
        length = lengths[row]
        if length == 0:
            continue
        liked = items_by_genre[user_pref[users[row]]]
        from_pref = rng.random(length) < 0.7
        picked = np.where(
            from_pref & (len(liked) > 0),
            rng.choice(liked, length) if len(liked) else 0,
            rng.integers(1, N_ITEMS + 1, length),
        )
        history[row, MAX_HISTORY - length :] = picked
        share[row] = np.mean(primary[picked] == primary[targets[row]])
    odd_genre = primary[targets] % 2 == 1
    gender = user_gender[users]
    score = (
        4.0 * share
        + 1.0 * item_quality[targets]
        + 1.5 * np.where(gender == 1, 1.0, -1.0) * np.where(odd_genre, 1.0, -1.0)
        - 1.0
    )
    probability = 1.0 / (1.0 + np.exp(-score))
    labels = (rng.random(n) < probability).astype(np.float32)
    sparse = np.stack([users, targets, gender, user_age[users]], axis=1).astype(np.int64)
    samples = BehaviorSamples(
        sparse=sparse,
        history_items=history,
        history_length=lengths.astype(np.int64),
        labels=labels,
        item_tags=item_tags,
        feature_map=feature_map(),
        name="synthetic-ctr",
    )
    return samples, probability
