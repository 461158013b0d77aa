"""Next-item retrieval data: leave-one-out sequences and the BERT4Rec candidate sets.

Protocol (SASRec, BERT4Rec; AMEIR's "next-item retrieval" setting):

* **Leave-one-out in time order** (:func:`leanrec.data.splits.leave_one_out`): for every user
  with at least 3 interactions the last item is the *test target*, the second last the
  *validation target* and all earlier items form the *training sequence*. Users with fewer
  than 3 interactions keep everything for training and are not evaluated.
* **Item IDs are shifted by one**: item index ``i`` of the dataset's vocabulary is ID ``i + 1``
  here, and ``0`` is padding. A model's item table therefore has ``n_items + 1`` rows.
* **Right-aligned, 0-padded windows** of length ``N`` (``max_length``, 50 by default): a row holds
  the user's *last* ``N`` items (most recent in the last column) and zeros on the left.
* **Inputs**: validation input = the last ``N`` items of the training sequence; test input =
  the last ``N`` items of the training sequence *followed by the validation item*.
* **Training pairs**: :attr:`NextItemSplit.train_items` holds the last ``N + 1`` items of each
  training sequence; ``train_items[:, :-1]`` are the inputs and ``train_items[:, 1:]`` the
  next-item targets at every position (a position counts when its input is not padding).

Evaluation candidates (BERT4Rec protocol, Sun et al. 2019, Sec. 4.1): every evaluated user gets
``n_negatives`` (100) items it has *never* interacted with (in any part of the data, so the
target is never among them), drawn **without replacement** uniformly (the default, the S3Rec
variant, as every experiment and ``leanrec train`` draw them), or with probability
proportional to item popularity with ``negative_sampling="popularity"`` (interaction counts
over the whole dataset, as BERT4Rec's evaluation counts them over the users' full
histories). The target is ranked against these negatives. Validation and test draw their own
negatives (two independent draws from one generator seeded with ``seed``), so the sets
are fixed and reproducible by the seed.

Sampling is vectorised: every row draws a block of candidates *with* replacement by inverse
CDF, then candidates the user has interacted with and repeats within the row are dropped and
the first ``n_negatives`` survivors are kept. Drawing with replacement and discarding repeats is
exactly weighted sampling without replacement (each survivor is drawn proportionally to its
weight among the items not yet chosen). Rows with too few survivors draw a further block that
continues their stream (so the result is exactly the first survivors of an unbounded stream);
the loop runs over rounds, never over users.

Example:
    >>> from leanrec.data.registry import load_dataset
    >>> split = NextItemSplit.from_interactions(load_dataset("beauty"), max_length=50, seed=0)
    >>> split.test.inputs.shape, split.test.negatives.shape      # doctest: +SKIP
    ((40226, 50), (40226, 100))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions, Split
from leanrec.data.splits import leave_one_out
from leanrec.options import check_value

NegativeSampling = Literal["popularity", "uniform"]

PADDING_ID = 0
"""Item ID used for padding in every sequence array (real items are ``1..n_items``)."""

__all__ = [
    "PADDING_ID",
    "NegativeSampling",
    "NextItemEvalSet",
    "NextItemSplit",
    "csr_rows",
    "right_aligned_sequences",
    "sample_candidate_negatives",
]


# ------------------------------------------------------------------------------ helpers
def right_aligned_sequences(
    users: np.ndarray, item_ids: np.ndarray, order_key: np.ndarray, n_rows: int, length: int
) -> np.ndarray:
    """The last ``length`` items of every user in ``order_key`` order, right-aligned, 0-padded.

    Args:
        users: row (user) index per interaction, shape ``(n,)``, in ``[0, n_rows)``.
        item_ids: item ID per interaction (already shifted, so ``0`` is free for padding),
            shape ``(n,)``.
        order_key: time order within a user, shape ``(n,)``; ties keep the input order.
        n_rows: number of rows of the output.
        length: window length ``N``.

    Returns:
        int64 array of shape ``(n_rows, length)``; ``out[u, -1]`` is the most recent item of
        row ``u``, rows without interactions are all zeros.

    Example:
        >>> right_aligned_sequences(np.array([0, 0, 1]), np.array([5, 6, 7]),
        ...                         np.array([1, 0, 0]), 2, 3).tolist()
        [[0, 6, 5], [0, 0, 7]]
    """
    out = np.zeros((n_rows, length), dtype=np.int64)
    if len(users) == 0:
        return out
    order = np.lexsort((order_key, users))
    sorted_users = users[order]
    counts = np.bincount(sorted_users, minlength=n_rows)
    ends = np.cumsum(counts)
    # position counted from the user's most recent interaction: 0 = latest
    back = ends[sorted_users] - 1 - np.arange(len(order))
    keep = back < length
    out[sorted_users[keep], length - 1 - back[keep]] = item_ids[order[keep]]
    return out


def csr_rows(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``rows`` of a CSR structure, in that order, without a per-row loop.

    Args:
        indptr: row pointer, shape ``(R + 1,)``.
        indices: values of all rows, shape ``(nnz,)``.
        rows: rows to take, shape ``(U,)``.

    Returns:
        ``(new_indptr (U + 1,), values)``.
    """
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    new_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_ptr[1:])
    gather = np.repeat(starts - new_ptr[:-1], counts) + np.arange(new_ptr[-1], dtype=np.int64)
    return new_ptr, indices[gather]


def sample_candidate_negatives(
    users: np.ndarray,
    user_item_keys: np.ndarray,
    n_items: int,
    n_negatives: int,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
    max_rounds: int = 30,
) -> np.ndarray:
    """Distinct negatives per user, excluding the user's items, weighted by ``weights``.

    Args:
        users: user index per row, shape ``(U,)``.
        user_item_keys: sorted unique ``user * n_items + item`` keys of every interaction that
            must never be a negative (item *indices*, not shifted IDs).
        n_items: number of items ``I``; negatives are item indices in ``[0, I)``.
        n_negatives: negatives per row.
        rng: the generator (the only source of randomness).
        weights: non-negative sampling weight per item, shape ``(I,)`` (``None``: uniform).
            Items of weight 0 are never drawn.
        max_rounds: redraw rounds before giving up.

    Returns:
        int64 item indices of shape ``(U, n_negatives)``, distinct within each row, in draw order.

    Raises:
        DataError: a user has fewer than ``n_negatives`` drawable items left, or sampling did not
            finish in ``max_rounds`` rounds.
    """
    U = len(users)
    out = np.zeros((U, n_negatives), dtype=np.int64)
    if U == 0 or n_negatives == 0:
        return out
    weights = _sampling_weights(weights, n_items)
    _check_enough_drawable(users, user_item_keys, n_items, n_negatives, weights > 0)
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]

    pending = np.arange(U)
    stream = np.zeros((U, 0), dtype=np.int64)  # each pending row's draws so far, in order
    block = n_negatives + n_negatives // 4 + 16
    for _ in range(max_rounds):
        new = np.searchsorted(cdf, rng.random((len(pending), block)), side="right")
        stream = np.concatenate([stream, np.minimum(new, n_items - 1)], axis=1)
        ok = _new_negatives(stream, users[pending], user_item_keys, n_items)
        take = ok & (np.cumsum(ok, axis=1) <= n_negatives)
        done = take.sum(axis=1) == n_negatives
        # complete rows hold exactly n_negatives selected entries each, in draw order
        out[pending[done]] = stream[done][take[done]].reshape(-1, n_negatives)
        pending, stream = pending[~done], stream[~done]
        if len(pending) == 0:
            return out
        block = min(2 * block, 8192)
    raise DataError(
        f"negative sampling did not finish after {max_rounds} rounds for {len(pending)} users "
        f"(users with very few items left to draw)"
    )


def _sampling_weights(weights: np.ndarray | None, n_items: int) -> np.ndarray:
    """``weights`` as float64 ``(I,)`` (all ones for None), checked non-negative with a
    positive sum."""
    if weights is None:
        weights = np.ones(n_items, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_items,) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"weights must be non-negative with shape ({n_items},) and a positive sum")
    return weights


def _check_enough_drawable(
    users: np.ndarray,
    user_item_keys: np.ndarray,
    n_items: int,
    n_negatives: int,
    drawable: np.ndarray,
) -> None:
    """Raise :class:`DataError` if a user has fewer than ``n_negatives`` drawable items
    (``drawable (I,)`` bool: weight > 0) it has not interacted with."""
    key_users = user_item_keys // n_items
    key_drawable = drawable[user_item_keys % n_items]
    seen_drawable = np.bincount(key_users[key_drawable], minlength=int(users.max()) + 1)
    available = int(drawable.sum()) - seen_drawable[users]
    if (available < n_negatives).any():
        bad = int(users[np.argmax(available < n_negatives)])
        raise DataError(
            f"user index {bad} has only {int(available.min())} drawable items it never "
            f"interacted with, fewer than n_negatives={n_negatives} (lower the n_negatives "
            "option, or rank against every item)"
        )


def _new_negatives(
    stream: np.ndarray, row_users: np.ndarray, user_item_keys: np.ndarray, n_items: int
) -> np.ndarray:
    """Bool ``(R, S)``: which draws of ``stream (R, S)`` are items the row's user (``row_users
    (R,)``) never interacted with, at their first occurrence in the row."""
    keys = row_users[:, None] * np.int64(n_items) + stream
    if len(user_item_keys):
        pos = np.minimum(np.searchsorted(user_item_keys, keys), len(user_item_keys) - 1)
        ok = user_item_keys[pos] != keys
    else:
        ok = np.ones(keys.shape, dtype=bool)
    # first occurrence of each item within the row: stable sort, compare with the previous
    sort_idx = np.argsort(stream, axis=1, kind="stable")
    sorted_draws = np.take_along_axis(stream, sort_idx, axis=1)
    repeat_sorted = np.zeros_like(ok)
    repeat_sorted[:, 1:] = sorted_draws[:, 1:] == sorted_draws[:, :-1]
    repeat = np.zeros_like(ok)
    np.put_along_axis(repeat, sort_idx, repeat_sorted, axis=1)
    return ok & ~repeat


# ------------------------------------------------------------------------------ containers
@dataclass(frozen=True)
class NextItemEvalSet:
    """One evaluation part (validation or test) of a :class:`NextItemSplit`.

    All arrays are aligned by row; item values are shifted IDs (``0`` = padding).

    Attributes:
        users: user index (in the dataset's vocabulary) per row, shape ``(U,)``, ascending.
        inputs: right-aligned, 0-padded input sequences, shape ``(U, N)`` int64.
        targets: the item to retrieve per row, shape ``(U,)`` int64 in ``[1, n_items]``.
        negatives: the sampled candidates (BERT4Rec protocol), shape ``(U, n_negatives)``,
            never the target nor any item of the user.
        history_indptr: CSR row pointer, shape ``(U + 1,)``, of :attr:`history_items`.
        history_items: every item the user interacted with *before* the target (the whole
            prefix, not only the last ``N``), sorted within a row; full ranking excludes them.
    """

    users: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    negatives: np.ndarray
    history_indptr: np.ndarray
    history_items: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    @property
    def max_length(self) -> int:
        """Window length ``N``."""
        return int(self.inputs.shape[1])

    def candidates(self) -> np.ndarray:
        """``[target, negatives...]`` per row, shape ``(U, 1 + n_negatives)``."""
        return np.concatenate([self.targets[:, None], self.negatives], axis=1)


@dataclass(frozen=True)
class NextItemSplit:
    """Leave-one-out next-item data of one dataset (see the module docstring).

    Attributes:
        n_items: number of real items ``I``; IDs are ``1..I`` and ``0`` is padding.
        max_length: window length ``N``.
        train_users: user index per training row, shape ``(R,)``: every user whose training
            sequence has at least 2 items (at least one (input, next item) pair).
        train_items: last ``N + 1`` items of each training sequence, right-aligned,
            shape ``(R, N + 1)``; inputs ``[:, :-1]``, targets ``[:, 1:]``.
        train_keys: sorted unique ``user * (I + 1) + item_id`` keys of the training sequences
            (what a training negative must avoid), shape ``(nnz,)``.
        valid: validation part (target = second last item).
        test: test part (target = last item; the input ends with the validation item).
        split: the underlying :class:`~leanrec.data.interactions.Split` (unshifted indices),
            for non-sequential baselines on the very same split.
        n_negatives: sampled candidates per evaluated user.
        negative_sampling: ``"popularity"`` or ``"uniform"``.
        seed: seed of the candidate draws.
    """

    n_items: int
    max_length: int
    train_users: np.ndarray
    train_items: np.ndarray
    train_keys: np.ndarray
    valid: NextItemEvalSet
    test: NextItemEvalSet
    split: Split
    n_negatives: int
    negative_sampling: NegativeSampling
    seed: int

    @property
    def vocab_size(self) -> int:
        """Rows of an item table over these IDs: ``n_items + 1`` (row 0 is padding)."""
        return self.n_items + 1

    @classmethod
    def from_interactions(
        cls,
        data: Interactions,
        max_length: int = 50,
        n_negatives: int = 100,
        negative_sampling: NegativeSampling = "uniform",
        seed: int = 0,
    ) -> NextItemSplit:
        """Build the split, the windows and the evaluation candidates.

        Args:
            data: interactions with timestamps (sequence loaders store positions there).
            max_length: window length ``N``.
            n_negatives: sampled negatives per evaluated user (BERT4Rec: 100).
            negative_sampling: ``"uniform"`` (the default) or ``"popularity"`` (BERT4Rec).
            seed: seeds the candidate draws (validation first, then test).

        Raises:
            DataError: no timestamps, no user with 3 interactions, or a user with fewer than
                ``n_negatives`` items it never interacted with.
        """
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        check_value("negative_sampling", negative_sampling, NegativeSampling)
        split = leave_one_out(data, order="time", allow_empty_train_users=True)
        train, valid, test = split.train, split.valid, split.test
        if len(test) == 0:
            raise DataError(f"no user of {data.name!r} has the 3 interactions leave-one-out needs")
        assert train.timestamps is not None and valid.timestamps is not None
        n_users, n_items = data.n_users, data.n_items
        N = max_length

        # ---- training windows: last N + 1 items of each training sequence
        train_windows = right_aligned_sequences(
            train.users, train.items + 1, train.timestamps, n_users, N + 1
        )
        train_users = np.flatnonzero(np.bincount(train.users, minlength=n_users) >= 2)
        train_keys = np.unique(train.users * np.int64(n_items + 1) + train.items + 1)

        # ---- evaluation parts: one target per user (leave_one_out guarantees it)
        users = np.sort(test.users)
        if not np.array_equal(np.sort(valid.users), users):  # pragma: no cover - LOO invariant
            raise DataError("leave-one-out gave different validation and test users")
        valid_inputs = train_windows[users, 1:]
        train_valid = train.concat(valid)
        assert train_valid.timestamps is not None
        test_inputs = right_aligned_sequences(
            train_valid.users, train_valid.items + 1, train_valid.timestamps, n_users, N
        )[users]

        # ---- BERT4Rec candidates: popularity over the whole dataset, user's items excluded
        rng = np.random.default_rng(seed)
        weights = data.item_popularity() if negative_sampling == "popularity" else None
        all_keys = data.sorted_keys()
        valid_neg = sample_candidate_negatives(users, all_keys, n_items, n_negatives, rng, weights)
        test_neg = sample_candidate_negatives(users, all_keys, n_items, n_negatives, rng, weights)

        return cls(
            n_items=n_items,
            max_length=N,
            train_users=train_users,
            train_items=train_windows[train_users],
            train_keys=train_keys,
            valid=_eval_set(users, valid_inputs, valid, train, valid_neg),
            test=_eval_set(users, test_inputs, test, train_valid, test_neg),
            split=split,
            n_negatives=n_negatives,
            negative_sampling=negative_sampling,
            seed=seed,
        )

    def describe(self) -> dict[str, int | str]:
        """Sizes for logs: users evaluated, training rows and positions, items, ``N``."""
        return {
            "items": self.n_items,
            "max_length": self.max_length,
            "train_rows": len(self.train_users),
            "train_positions": int((self.train_items[:, :-1] != PADDING_ID).sum()),
            "eval_users": len(self.test),
            "n_negatives": self.n_negatives,
            "negative_sampling": self.negative_sampling,
        }


def _eval_set(
    users: np.ndarray,
    inputs: np.ndarray,
    held_out: Interactions,
    prefix: Interactions,
    negatives: np.ndarray,
) -> NextItemEvalSet:
    """The evaluation part of ``users (U,)`` (ascending) whose targets are their items in
    ``held_out`` (one each) and whose full-ranking exclusions are their items in ``prefix``
    (everything before the target); ``inputs (U, N)`` are shifted IDs, ``negatives
    (U, n_negatives)`` item indices."""
    targets = np.zeros(held_out.n_users, dtype=np.int64)
    targets[held_out.users] = held_out.items + 1
    history_indptr, history_items = csr_rows(*prefix.user_items(), users)
    return NextItemEvalSet(
        users=users,
        inputs=inputs,
        targets=targets[users],
        negatives=negatives + 1,
        history_indptr=history_indptr,
        history_items=history_items + 1,
    )
