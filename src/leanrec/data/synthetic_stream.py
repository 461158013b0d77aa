"""A power-law event stream of any size, for scaling runs: time and memory linear in events.

:func:`~leanrec.data.synthetic.make_synthetic` builds a users x items preference matrix, which is
fine for thousands of IDs and impossible for millions. This generator never holds anything per
ID: every quantity is computed per event, in blocks, from the event's IDs and the seed.

Generative story (per event ``t`` of ``n_events``):

1. Population: with ``growing_population`` the first ``ceil(n * (t + 1) / n_events)`` user
   (item) ranks exist at event ``t``, so new IDs keep arriving all along the stream, as on a
   live platform; otherwise all ``n`` exist from the start.
2. Popularity: a rank ``r`` in ``1..n_t`` is drawn from a power law ``P(r) ~ r ** -exponent``
   by inverting the continuous CDF (``O(1)`` per draw, no table of ``n`` weights); the raw ID is
   ``((r - 1) * a + b) mod n`` with ``a`` coprime to ``n``: a seeded bijection of ``0..n-1``,
   so popular IDs are not the small numbers.
3. Preferences: each ID has ``dim`` latent factors and a bias, uniform with unit variance,
   derived from a hash of ``(seed, field, ID, coordinate)`` (SplitMix64), so they are the same
   every time the ID occurs and cost no memory. ``z = u . v / sqrt(dim) + (b_u + b_i) / 2``.
4. Feedback: ``rating = clip(round(3.5 + z + noise), 1, 5)`` with Gaussian ``noise`` of std
   ``rating_noise``, and ``label = rating >= 4``.
5. Time: event ``t`` happens at ``start_time + floor(t * seconds_per_event)``.

A planted drift (``drift_at``, for the adaptive-architecture experiment): from event
``floor(drift_at * n_events)`` on, each event is, with probability ``drift_share``, an event on a
block of ``drift_items`` new items (raw IDs ``n_items .. n_items + drift_items - 1``, popularity
by the same power law), whose users are the stream's usual users. On those events the
preference is no longer the dot product but a random ReLU network (the *teacher*) of the pair's
factors:

    ``z = drift_strength * (t(u, v) - mu) / sigma + (b_u + b_i) / 2``,
    ``t(u, v) = c . relu(W [u; v])``

with ``W`` of shape ``(drift_width, 2 dim)`` (std ``1 / sqrt(2 dim)``: unit-variance
pre-activations) and ``c`` of shape ``(drift_width,)`` (std ``1 / sqrt(drift_width)``), drawn
from the seed, and ``mu``, ``sigma`` the mean and std of ``t`` over 8,192 factor pairs drawn as
the IDs' are, so the drifted preference has about mean 0 and std ``drift_strength`` whatever the
width (the new items' positive rate stays about that of the old ones). Why it needs capacity:
``t`` is not bilinear in ``u`` and ``v`` (the users x new items preference matrix has full
rank, where the old items' has rank ``dim + 2``), so a factorisation machine's dot product
cannot represent it, and a deep tower fed the two ID vectors has to: with ``drift_width = 256``
teacher units, a tower of 64-32 units cannot hold it exactly, one of 512-256-128 can. Before
the drift nothing changes: the drift's random draws come from their own generators, so the first
``floor(drift_at * n_events)`` events are exactly those of the same call without a drift.

Example:
    >>> stream = make_synthetic_stream(1000, n_users=10**6, n_items=10**6, seed=0)
    >>> len(stream), bool(stream.ids["user"].raw_ids.max() < 10**6)
    (1000, True)
"""

from __future__ import annotations

import math

import numpy as np

from leanrec.data.events import EventStream

_BLOCK = 1 << 18
"""Events per block: bounds the temporary ``(block, dim)`` arrays (~16 MB at dim 8)."""
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of uint64 values (wrapping arithmetic), same shape."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _MASK64


def _hashed_uniform(seed: int, salt: int, ids: np.ndarray, width: int) -> np.ndarray:
    """Per ID, ``width`` values uniform on ``[-sqrt(3), sqrt(3)]`` (unit variance), a pure
    function of ``(seed, salt, id, column)``; ``(n,)`` -> ``(n, width)`` float64."""
    base = _splitmix64(np.array([seed * 1_000_003 + salt], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        keys = ids.astype(np.uint64)[:, None] * np.uint64(width) + np.arange(width, dtype=np.uint64)
        bits = _splitmix64(keys ^ base)
    unit = (bits >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return (unit * 2.0 - 1.0) * math.sqrt(3.0)


def _power_law_rank(uniform: np.ndarray, population: np.ndarray, exponent: float) -> np.ndarray:
    """Ranks in ``1..population`` with ``P(r) ~ r ** -exponent``, by the inverse CDF of the
    continuous power law on ``[1, population + 1)``; all shapes ``(n,)``."""
    top = population.astype(np.float64) + 1.0
    if abs(exponent - 1.0) < 1e-9:
        x = np.exp(uniform * np.log(top))
    else:
        power = 1.0 - exponent
        x = ((top**power - 1.0) * uniform + 1.0) ** (1.0 / power)
    return np.clip(np.floor(x).astype(np.int64), 1, population)


def _coprime_multiplier(rng: np.random.Generator, n: int) -> int:
    if n == 1:
        return 1
    while True:
        a = int(rng.integers(1, n))
        if math.gcd(a, n) == 1:
            return a


_TEACHER_BLOCK = 1 << 14
"""Drifted events per teacher evaluation: bounds the ``(block, drift_width)`` activations."""


def _teacher(seed: int, dim: int, width: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The drift's ReLU network: ``W`` ``(2 dim, width)``, ``c`` ``(width,)``, and the mean and
    std of ``c . relu(W^T [u; v])`` over 8,192 pairs of factors drawn as the IDs' are (uniform,
    unit variance), all from the seed (module docstring)."""
    rng = np.random.default_rng([seed, 2])
    hidden = rng.standard_normal((2 * dim, width)) / math.sqrt(2 * dim)
    output = rng.standard_normal(width) / math.sqrt(width)
    sample = (rng.random((8192, 2 * dim)) * 2.0 - 1.0) * math.sqrt(3.0)
    values = np.maximum(sample @ hidden, 0.0) @ output
    return hidden, output, float(values.mean()), float(values.std())


def _preference(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    drifted: np.ndarray | None = None,
    drift_strength: float = 3.0,
    teacher: tuple[np.ndarray, np.ndarray, float, float] | None = None,
) -> np.ndarray:
    """``z`` per event from the factors ``(n, dim + 1)`` (last column: the bias): the dot
    product, or on ``drifted`` events (bool ``(n,)``) the ``teacher``'s normalised output times
    ``drift_strength``; ``(n,)`` float64."""
    dim = user_factors.shape[1] - 1
    match = np.einsum("nd,nd->n", user_factors[:, :dim], item_factors[:, :dim]) / math.sqrt(dim)
    if drifted is not None and teacher is not None:
        hidden, output, mean, std = teacher
        where = np.flatnonzero(drifted)
        for start in range(0, len(where), _TEACHER_BLOCK):
            rows = where[start : start + _TEACHER_BLOCK]
            pair = np.concatenate([user_factors[rows, :dim], item_factors[rows, :dim]], axis=1)
            values = np.maximum(pair @ hidden, 0.0) @ output
            match[rows] = drift_strength * (values - mean) / std
    return match + 0.5 * (user_factors[:, dim] + item_factors[:, dim])


def planted_preference(
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    dim: int = 8,
    drift_strength: float = 3.0,
    drift_width: int = 256,
    seed: int = 0,
) -> np.ndarray:
    """The noiseless preference ``z`` of :func:`make_synthetic_stream` for raw ``(user, item)``
    pairs (int arrays ``(n,)``): items ``>= n_items`` are the drift's new items (the teacher),
    others the dot product. Rating before noise: ``clip(round(3.5 + z), 1, 5)``; returns
    ``(n,)`` float64."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    return _preference(
        _hashed_uniform(seed, 1, users, dim + 1), _hashed_uniform(seed, 2, items, dim + 1),
        items >= n_items, drift_strength, _teacher(seed, dim, drift_width),
    )  # fmt: skip


def make_synthetic_stream(
    n_events: int,
    n_users: int = 1_000_000,
    n_items: int = 1_000_000,
    user_exponent: float = 1.1,
    item_exponent: float = 1.1,
    dim: int = 8,
    growing_population: bool = True,
    rating_noise: float = 0.5,
    seconds_per_event: float = 1.0,
    start_time: int = 1_600_000_000,
    seed: int = 0,
    name: str = "synthetic-stream",
    drift_at: float | None = None,
    drift_items: int = 200,
    drift_share: float = 0.8,
    drift_strength: float = 3.0,
    drift_width: int = 256,
) -> EventStream:
    """Generate a time-ordered stream of ``n_events`` events over up to ``n_users`` users and
    ``n_items`` items (the story is in the module docstring).

    Args:
        n_events: events to generate.
        n_users / n_items: sizes of the ID spaces (raw IDs are ``0..n-1``; up to 2**31 each).
            Tail IDs may never occur: the distinct IDs of the stream are at most these.
        user_exponent / item_exponent: power-law exponents of popularity (> 0).
        dim: latent factors per ID.
        growing_population: new IDs keep arriving along the stream (see the module).
        rating_noise: std of the Gaussian noise of ratings.
        seconds_per_event: time between consecutive events.
        start_time: Unix time of the first event.
        seed: the same seed gives the same stream.
        name: stream name.
        drift_at: where the planted drift arrives, as a share of the stream in ``[0, 1)``
            (None: no drift; the story is in the module docstring).
        drift_items: new items of the drift (raw IDs ``n_items ..``; ``n_items +
            drift_items <= 2**31``).
        drift_share: share of the events after ``drift_at`` that are on the new items.
        drift_strength: std of the drifted preference (before the biases).
        drift_width: hidden units of the teacher network of the drifted preference.

    Returns:
        An :class:`EventStream` in time order with ratings 1..5 and ``label = rating >= 4``;
        time and memory O(n_events), nothing per ID.
    """
    if n_events <= 0:
        raise ValueError(f"n_events must be positive, got {n_events}")
    for what, n in (("n_users", n_users), ("n_items", n_items)):
        if not 1 <= n <= 2**31:
            raise ValueError(f"{what} must be in [1, 2**31], got {n}")
    if user_exponent <= 0 or item_exponent <= 0 or dim <= 0:
        raise ValueError("exponents and dim must be positive")
    drift_start = n_events
    teacher = None
    if drift_at is not None:
        if not 0.0 <= drift_at < 1.0 or not 0.0 < drift_share <= 1.0:
            raise ValueError(f"need 0 <= drift_at < 1 and 0 < drift_share <= 1, got "
                             f"{drift_at}, {drift_share}")  # fmt: skip
        if not 1 <= drift_items <= 2**31 - n_items:
            raise ValueError(f"drift_items must be in [1, 2**31 - n_items], got {drift_items}")
        if drift_width < 1:
            raise ValueError(f"drift_width must be positive, got {drift_width}")
        drift_start = math.floor(drift_at * n_events)
        teacher = _teacher(seed, dim, drift_width)
    rng = np.random.default_rng(seed)
    drift_rng = np.random.default_rng([seed, 1])  # its own draws: the stream before is unchanged
    permutation = {
        "user": (_coprime_multiplier(rng, n_users), int(rng.integers(0, n_users))),
        "item": (_coprime_multiplier(rng, n_items), int(rng.integers(0, n_items))),
    }
    users = np.empty(n_events, dtype=np.int64)
    items = np.empty(n_events, dtype=np.int64)
    ratings = np.empty(n_events, dtype=np.float32)
    for start in range(0, n_events, _BLOCK):
        stop = min(n_events, start + _BLOCK)
        t = np.arange(start, stop, dtype=np.int64)
        drawn = {}
        for field, n, exponent in (
            ("user", n_users, user_exponent),
            ("item", n_items, item_exponent),
        ):
            if growing_population:
                population = np.maximum(1, -((-n * (t + 1)) // n_events))
            else:
                population = np.full(len(t), n, dtype=np.int64)
            rank = _power_law_rank(rng.random(len(t)), population, exponent)
            a, b = permutation[field]
            drawn[field] = ((rank - 1) * a + b) % n
        drifted = None
        if stop > drift_start:
            drifted = (t >= drift_start) & (drift_rng.random(len(t)) < drift_share)
            rank = _power_law_rank(drift_rng.random(len(t)), np.full(len(t), drift_items),
                                   item_exponent)  # fmt: skip
            drawn["item"] = np.where(drifted, n_items + rank - 1, drawn["item"])
        users[start:stop], items[start:stop] = drawn["user"], drawn["item"]
        user_factors = _hashed_uniform(seed, 1, drawn["user"], dim + 1)
        item_factors = _hashed_uniform(seed, 2, drawn["item"], dim + 1)
        z = _preference(user_factors, item_factors, drifted, drift_strength, teacher)
        noisy = 3.5 + z + rating_noise * rng.standard_normal(len(t))
        ratings[start:stop] = np.clip(np.round(noisy), 1, 5)
    time = start_time + np.floor(np.arange(n_events) * seconds_per_event).astype(np.int64)
    return EventStream.from_arrays(
        time=time,
        user=users,
        item=items,
        label=(ratings >= 4).astype(np.float32),
        rating=ratings,
        name=name,
    )
