"""Full-ranking evaluation: rank *all* items for every user, then score the top k.

:class:`FullRankingEvaluator` is built once per (targets, exclusions) pair and then evaluates any
number of models. Everything that depends only on the data is precomputed in the constructor:

* the sorted int64 keys ``user * n_items + item`` of the targets (membership by
  :func:`torch.searchsorted`; no dense user x item label matrix is ever built);
* the excluded (row, item) pairs of the evaluated users, grouped by row with a pointer array, so
  masking a batch is one slice and one vectorised ``index_put_``.

Per batch of users the evaluator calls ``score_fn(users)``, sets the excluded items to ``-inf``,
takes ``torch.topk`` with ``max(ks)`` and looks the ``(user, item)`` pairs of the top-k lists up
in the target keys. The resulting ``(U, max(ks))`` hit matrix goes to
:func:`leanrec.evaluate.ranking.ranking_metrics`.

Conventions:

* **Targets minus excluded.** A target that is also excluded (e.g. a test item the user also has
  in train) is removed from the targets, as in RecBole: it can never be ranked, so it neither
  counts as a hit nor enters ``n_targets`` (the recall denominator and the IDCG).
* **Users without targets are skipped** (after the subtraction above) and counted in
  :attr:`RankingResult.n_users_skipped`. Means are over the evaluated users only.
* **Ties** in scores are broken in whatever order :func:`torch.topk` returns.
* If a user has fewer non-excluded items than ``max(ks)``, the tail of the list is filled with
  ``-inf`` (excluded) items, which never count as hits.

Example (``split`` a :class:`~leanrec.data.interactions.Split`, ``U``/``V`` embeddings)::

    evaluator = FullRankingEvaluator(split.test, exclude=[split.train, split.valid])
    result = evaluator.evaluate(lambda users: U[users] @ V.T)
    print(result["ndcg@10"])
    print(result.table())
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from leanrec.data.interactions import Interactions
from leanrec.errors import NaNScoresError
from leanrec.evaluate.ranking import METRICS, ranking_metrics

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""``score_fn(users: LongTensor (B,)) -> FloatTensor (B, n_items)``: scores of all items."""

__all__ = ["FullRankingEvaluator", "RankingResult", "ScoreFn"]


def _unique_keys(sets: Sequence[Interactions]) -> np.ndarray:
    """Sorted unique ``user * n_items + item`` keys of the union of ``sets``, shape ``(m,)``.

    Same as :meth:`Interactions.sorted_keys` (for one set), but by sort + adjacent difference:
    NumPy 2.x's hash-based ``np.unique`` is ~10x slower on 10^6 int64 keys.
    """
    if not sets:
        return np.empty(0, dtype=np.int64)
    keys = np.concatenate([d.users * np.int64(d.n_items) + d.items for d in sets])
    keys.sort()
    if len(keys) > 1:
        keep = np.empty(len(keys), dtype=bool)
        keep[0] = True
        np.not_equal(keys[1:], keys[:-1], out=keep[1:])
        keys = keys[keep]
    return keys


def _split_key(name: str) -> tuple[str, int | None]:
    metric, sep, k = name.partition("@")
    return (metric, int(k)) if sep and k.isdigit() else (name, None)


@dataclass
class RankingResult(Mapping[str, float]):
    """Per-user and mean ranking metrics of one evaluation.

    A read-only mapping of the mean metrics: ``result["ndcg@10"]``, ``len(result)``,
    ``for name in result``, ``result.items()``, ``dict(result)``; ``result[name] = x`` is refused
    (``TypeError``).

    Attributes:
        users: evaluated user indices, shape ``(U,)``, int64, ascending.
        per_user: ``{"recall@10": array (U,), ...}``, float64, aligned with ``users``.
        mean: ``{"recall@10": float, ...}``: means of ``per_user`` over the evaluated users.
        n_users_skipped: users of the vocabulary that were not evaluated (no target left).
        seconds: wall-clock time of the whole evaluation, including ``score_fn``.
        score_seconds: the part of ``seconds`` spent inside ``score_fn``.
    """

    users: np.ndarray
    per_user: dict[str, np.ndarray]
    mean: dict[str, float]
    n_users_skipped: int
    seconds: float
    score_seconds: float = field(default=0.0)

    @property
    def n_users(self) -> int:
        """Number of evaluated users ``U``."""
        return len(self.users)

    def __getitem__(self, name: str) -> float:
        """Mean of metric ``name`` (e.g. ``"ndcg@10"``) over the evaluated users."""
        try:
            return self.mean[name]
        except KeyError:
            raise KeyError(f"no metric {name!r}; available: {sorted(self.mean)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.mean

    def __iter__(self) -> Iterator[str]:
        """Metric names in :attr:`mean`'s order."""
        return iter(self.mean)

    def __len__(self) -> int:
        """Number of mean metrics."""
        return len(self.mean)

    def keys(self) -> list[str]:  # type: ignore[override]
        """Metric names, e.g. ``["recall@10", "recall@20", ...]``."""
        return list(self.mean)

    def to_dict(self) -> dict[str, float | int]:
        """Flat JSON-friendly dict: every mean metric plus ``n_users``, ``n_users_skipped``,
        ``seconds`` and ``score_seconds``."""
        out: dict[str, float | int] = {k: float(v) for k, v in self.mean.items()}
        out["n_users"] = self.n_users
        out["n_users_skipped"] = int(self.n_users_skipped)
        out["seconds"] = float(self.seconds)
        out["score_seconds"] = float(self.score_seconds)
        return out

    def per_user_full(self, name: str, n_users: int, fill: float = math.nan) -> np.ndarray:
        """Metric ``name`` as a vector indexed by user, shape ``(n_users,)`` float64; users that
        were not evaluated get ``fill``."""
        out = np.full(n_users, fill, dtype=np.float64)
        out[self.users] = self.per_user[name]
        return out

    def table(self, digits: int = 4) -> str:
        """Printable table of the means: one row per metric, one column per cut-off ``k``."""
        rows: dict[str, dict[int | None, float]] = {}
        ks: list[int | None] = []
        for name, value in self.mean.items():
            metric, k = _split_key(name)
            rows.setdefault(metric, {})[k] = value
            if k not in ks:
                ks.append(k)
        ks.sort(key=lambda k: -1 if k is None else k)
        headers = ["" if k is None else f"@{k}" for k in ks]
        width = max([digits + 3, *(len(h) for h in headers)])
        name_w = max([6, *(len(m) for m in rows)])
        lines = ["metric".ljust(name_w) + "".join(" " + h.rjust(width) for h in headers)]
        for metric, vals in rows.items():
            cells = [(f"{vals[k]:.{digits}f}" if k in vals else "-").rjust(width) for k in ks]
            lines.append(metric.ljust(name_w) + "".join(" " + c for c in cells))
        lines.append(
            f"({self.n_users} users, {self.n_users_skipped} skipped, {self.seconds:.3f} s)"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in list(self.mean.items())[:4])
        return (
            f"RankingResult(users={self.n_users}, {shown}{', ...' if len(self.mean) > 4 else ''})"
        )


SCORE_BLOCK_BYTES = 8 << 20
"""Default memory for one batch of scores: bounds ``batch_size x n_items x 4`` bytes (at least
:data:`MIN_SCORE_BATCH` users). A block that stays in cache between the score product, the
masking and the top-k is faster than one block of every user: on ML-1M (3,628 items, one
thread) ~580-user blocks evaluate ~15% faster than a single 6,037-user block."""
MIN_SCORE_BATCH = 64
"""Fewest users per default batch (catalogues above ~33k items)."""


class FullRankingEvaluator:
    """Full-ranking top-k evaluation of all users with at least one target.

    Args:
        targets: the interactions to retrieve (validation or test set).
        exclude: interactions whose items are removed from every user's ranking (the training
            set; at test time also the validation set). Same ``n_users``/``n_items`` as
            ``targets``. A single :class:`Interactions` is accepted too.
        ks: cut-offs; the evaluator ranks ``max(ks)`` items per user.
        metrics: subset of :data:`~leanrec.evaluate.ranking.METRICS`.
        batch_size: users per ``score_fn`` call (``None``: as many as fit an 8 MiB float32
            score block, at least 64: ~578 ML-1M users, 64 Gowalla users).
        device: where masking, top-k and lookups run; ``score_fn`` receives user indices on
            this device and its output is moved here if needed.

    Raises:
        ValueError: on mismatched sizes, bad ``ks``/``metrics``, or if no user has a target.
    """

    def __init__(
        self,
        targets: Interactions,
        exclude: Sequence[Interactions] | Interactions = (),
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = METRICS,
        batch_size: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if batch_size is None:
            batch_size = max(MIN_SCORE_BATCH, SCORE_BLOCK_BYTES // (4 * max(1, targets.n_items)))
        if isinstance(exclude, Interactions):
            exclude = (exclude,)
        ks_list = [int(k) for k in ks]
        if not ks_list or any(k < 1 or k != kk for k, kk in zip(ks_list, ks)):
            raise ValueError(f"ks must be a non-empty sequence of positive integers, got {ks!r}")
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise ValueError(f"unknown ranking metric(s) {unknown}; choose from {list(METRICS)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.ks: tuple[int, ...] = tuple(sorted(set(ks_list)))
        self.metrics: tuple[str, ...] = tuple(dict.fromkeys(metrics))
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.n_users = targets.n_users
        self.n_items = targets.n_items
        for ex in exclude:
            if ex.n_users != self.n_users or ex.n_items != self.n_items:
                raise ValueError(
                    f"exclude set {ex.name!r} has {ex.n_users} users x {ex.n_items} items, "
                    f"targets {targets.name!r} has {self.n_users} x {self.n_items}"
                )

        n_items = np.int64(self.n_items)
        target_keys = _unique_keys([targets])
        excl_keys = _unique_keys(exclude)
        if len(excl_keys):
            target_keys = np.setdiff1d(target_keys, excl_keys, assume_unique=True)
        n_targets_all = np.bincount(target_keys // n_items, minlength=self.n_users)
        users = np.flatnonzero(n_targets_all > 0).astype(np.int64)
        if len(users) == 0:
            raise ValueError(
                f"no user has a target in {targets.name!r} (after removing excluded items)"
            )
        self._users_np = users
        self.n_users_skipped = self.n_users - len(users)

        # Excluded (row, item) pairs of the evaluated users; rows index into ``users`` and are
        # non-decreasing because the keys are sorted by user.
        excl_users = excl_keys // n_items
        keep = n_targets_all[excl_users] > 0
        row_of_user = np.full(self.n_users, -1, dtype=np.int64)
        row_of_user[users] = np.arange(len(users), dtype=np.int64)
        excl_rows = row_of_user[excl_users[keep]]
        excl_items = excl_keys[keep] % n_items
        excl_ptr = np.searchsorted(excl_rows, np.arange(len(users) + 1, dtype=np.int64))

        dev = self.device
        self._users = torch.as_tensor(users, device=dev)
        self._n_targets = torch.as_tensor(n_targets_all[users].astype(np.int64), device=dev)
        self._target_keys = torch.as_tensor(target_keys.astype(np.int64), device=dev)
        self._excl_rows = torch.as_tensor(excl_rows, device=dev)
        self._excl_items = torch.as_tensor(excl_items.astype(np.int64), device=dev)
        self._excl_ptr: list[int] = excl_ptr.tolist()

    # ------------------------------------------------------------------ properties
    @property
    def users(self) -> np.ndarray:
        """Evaluated user indices (those with at least one target), shape ``(U,)``, ascending."""
        return self._users_np.copy()

    @property
    def n_targets(self) -> np.ndarray:
        """Number of targets of each evaluated user, shape ``(U,)``, aligned with :attr:`users`."""
        return self._n_targets.cpu().numpy().copy()

    def __repr__(self) -> str:
        return (
            f"FullRankingEvaluator(users={len(self._users_np)}, skipped={self.n_users_skipped}, "
            f"items={self.n_items}, targets={len(self._target_keys)}, ks={self.ks})"
        )

    # ------------------------------------------------------------------ core
    def _masked_topk(
        self, score_fn: ScoreFn, k: int, inplace: bool, timer: list[float]
    ) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
        """Yield ``(start, end, top_values (B, k'), top_items (B, k'))`` per batch of evaluated
        users, ``k' = min(k, n_items)``, with excluded items set to ``-inf`` before the top-k."""
        U = len(self._users_np)
        k_eff = min(k, self.n_items)
        for start in range(0, U, self.batch_size):
            end = min(start + self.batch_size, U)
            users_b = self._users[start:end]
            t0 = time.perf_counter()
            scores = score_fn(users_b)
            timer[0] += time.perf_counter() - t0
            if not isinstance(scores, torch.Tensor):
                raise TypeError(f"score_fn must return a torch.Tensor, got {type(scores).__name__}")
            if scores.shape != (end - start, self.n_items):
                raise ValueError(
                    f"score_fn returned shape {tuple(scores.shape)}, expected "
                    f"({end - start}, {self.n_items}) = (batch users, n_items)"
                )
            if not scores.is_floating_point():
                raise TypeError(f"score_fn must return floating-point scores, got {scores.dtype}")
            scores = scores.detach()
            if scores.device != self.device:
                scores = scores.to(self.device)
            elif not inplace:
                scores = scores.clone()
            p0, p1 = self._excl_ptr[start], self._excl_ptr[end]
            if p1 > p0:
                rows = self._excl_rows[p0:p1] - start
                scores.index_put_(
                    (rows, self._excl_items[p0:p1]),
                    torch.tensor(-math.inf, dtype=scores.dtype, device=scores.device),
                )
            values, items = torch.topk(scores, k_eff, dim=1, largest=True, sorted=True)
            # topk ranks NaN above every number, so a NaN score of any non-excluded item shows
            # up in ``values``: checking the (B, k) values is as good as the full matrix.
            if torch.isnan(values).any():
                raise NaNScoresError("score_fn returned NaN scores")
            yield start, end, values, items

    def evaluate(self, score_fn: ScoreFn, inplace: bool = False) -> RankingResult:
        """Rank all items for every evaluated user and compute the metrics.

        Args:
            score_fn: ``score_fn(users: LongTensor (B,)) -> FloatTensor (B, n_items)``; called
                under :func:`torch.no_grad` once per batch, with users in ascending order.
                Any floating dtype (float32, float16, ...) is used as is, never upcast.
            inplace: mask the returned scores in place instead of on a copy. Saves one copy
                per batch; only safe when ``score_fn`` returns a fresh tensor (not a view of
                or a cached tensor that is reused later).

        Returns:
            A :class:`RankingResult` with ``len(ks) * len(metrics)`` metrics.

        Raises:
            ValueError / TypeError: if ``score_fn`` returns a wrong shape, a non-float dtype,
                or a NaN score for a non-excluded item.
        """
        t_start = time.perf_counter()
        K = max(self.ks)
        U = len(self._users_np)
        hits = torch.zeros((U, K), dtype=torch.bool, device=self.device)
        timer = [0.0]
        with torch.no_grad():
            for start, end, _, items in self._masked_topk(score_fn, K, inplace, timer):
                query = self._users[start:end].unsqueeze(1) * self.n_items + items
                pos = torch.searchsorted(self._target_keys, query)
                pos.clamp_(max=len(self._target_keys) - 1)
                hits[start:end, : items.shape[1]] = self._target_keys[pos] == query
            per_user_t = ranking_metrics(hits, self._n_targets, self.ks, self.metrics)
        per_user = {name: v.cpu().numpy() for name, v in per_user_t.items()}
        mean = {name: float(v.mean()) for name, v in per_user.items()}
        return RankingResult(
            users=self._users_np.copy(),
            per_user=per_user,
            mean=mean,
            n_users_skipped=self.n_users_skipped,
            seconds=time.perf_counter() - t_start,
            score_seconds=timer[0],
        )

    def evaluate_scores(self, scores: torch.Tensor) -> RankingResult:
        """Evaluate a precomputed score matrix of shape ``(n_users, n_items)`` (not modified)."""
        if scores.shape != (self.n_users, self.n_items):
            raise ValueError(
                f"scores must have shape ({self.n_users}, {self.n_items}), "
                f"got {tuple(scores.shape)}"
            )
        # Advanced indexing copies the rows, so masking in place is safe.
        return self.evaluate(lambda users: scores[users.to(scores.device)], inplace=True)

    def top_k(
        self, score_fn: ScoreFn, k: int | None = None, inplace: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The masked top-k recommendation lists of the evaluated users.

        Args:
            score_fn: as in :meth:`evaluate`.
            k: list length, default ``max(ks)``.
            inplace: as in :meth:`evaluate`.

        Returns:
            ``(users (U,), items (U, k))``, int64. Positions whose score is ``-inf`` (an excluded
            item, when fewer than ``k`` items are left, or a ``-inf`` model score) and positions
            beyond ``n_items`` hold ``-1``.
        """
        k = max(self.ks) if k is None else int(k)
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        out = np.full((len(self._users_np), k), -1, dtype=np.int64)
        timer = [0.0]
        with torch.no_grad():
            for start, end, values, items in self._masked_topk(score_fn, k, inplace, timer):
                items = torch.where(torch.isneginf(values), torch.full_like(items, -1), items)
                out[start:end, : items.shape[1]] = items.cpu().numpy()
        return self._users_np.copy(), out
