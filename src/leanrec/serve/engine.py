"""What a server computes, without any HTTP: top-k and scores on raw IDs, per model family.

An engine is built once at start-up from a :class:`~leanrec.models.loading.LoadedModel` and
answers every request from what it precomputed then:

* :class:`RankingEngine` (MF, NeuMF, NGCF, LightGCN, dense or packed): a dot-product model's final
  embeddings ``E_u (U, d)`` and ``E_i (I, d)`` are computed once (LightGCN propagates once, not
  per request) and the model itself is dropped; a batch of ``B`` users costs one ``(B, d) x
  (d, I)`` product, a mask of their training items and one ``topk``. Other models (NeuMF) keep
  their module and score with ``score_all``, and so does a packed MF, which scores from its
  packed values rather than hold padded vectors. The training items each user has seen are kept as
  CSR (``indptr (U + 1,)``, ``indices (nnz,)``) for ``exclude_seen`` and for the popularity of
  the cold-start answer.
* :class:`StreamEngine` (shared-embedding stream models): scores raw-ID events with
  :meth:`~leanrec.models.stream_io.LoadedStreamModel.predict`; an ID the model never saw is
  answered from its table's shared vector and flagged cold. Top-k scores every known item.
* :class:`CTREngine` (CTR models, AMEIR's included): click probabilities of events given as
  their input fields (indices, as the model's feature map numbers them).
* :class:`NextItemEngine` (SASRec, GRU4Rec, AMEIR's searched next-item models): the top-k next
  items after a history of raw item IDs.

Every method here is synchronous and runs on the server's one compute thread (see
:mod:`leanrec.serve.app`), so engines need no locks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from leanrec.data.behavior import FeatureMap
from leanrec.data.errors import DataError
from leanrec.models.base import DotProductRecommender, Recommender
from leanrec.models.loading import LoadedModel
from leanrec.models.mf import MF
from leanrec.models.seq import NextItemModel

__all__ = [
    "CTREngine",
    "Engine",
    "NextItemEngine",
    "NextRequest",
    "Ranked",
    "RankingEngine",
    "RequestError",
    "StreamEngine",
    "TopKRequest",
    "build_engine",
]

ColdStart = Literal["none", "popular"]
SCORE_CHUNK = 512
"""Most users scored in one product: a ``POST /recommend`` of 10,000 users is scored in chunks,
so the ``(B, I)`` score matrix stays small (512 x 3,706 float32 on ML-1M: 7.6 MB)."""


class RequestError(Exception):
    """A request the engine cannot answer: ``status`` 404 (unknown ID) or 422 (bad value), with
    the ``field`` it is about (``"k"``, ``"user"``, ``"events[3].item"``)."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TopKRequest:
    """One user's top-k request, after the user's raw ID was mapped.

    Attributes:
        user: the user's raw ID, as it goes back in the answer.
        index: the user's row in the model, or -1 for a user the model does not know.
        k: list length.
        exclude_seen: leave out the user's training items.
    """

    user: Any
    index: int
    k: int
    exclude_seen: bool


@dataclass(frozen=True)
class Ranked:
    """One top-k answer: raw item IDs and their scores, best first.

    Attributes:
        items: raw item IDs, best first; fewer than ``k`` when the user has seen all but those.
        cold: the user was unknown to the model.
        answered_by: ``"model"``, or ``"popular"`` (a cold user answered with the items seen most
            often in training; their ``scores`` are those counts).
    """

    user: Any
    items: list[Any]
    scores: list[float]
    cold: bool = False
    answered_by: str = "model"

    def as_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "items": self.items,
            "scores": self.scores,
            "cold": self.cold,
            "answered_by": self.answered_by,
        }


def _id_parser(raw_ids: np.ndarray | Sequence[Any] | None) -> type:
    """``int`` when the raw IDs are integers (MovieLens) or absent (indices), else ``str``."""
    if raw_ids is None:
        return int
    array = np.asarray(raw_ids)
    if array.dtype.kind in "iu" or (len(array) and isinstance(array.flat[0], (int, np.integer))):
        return int
    return str


def parse_id(value: Any, kind: type, field: str) -> Any:
    """``value`` as the model's raw ID type (``"42"`` -> 42 for integer IDs).

    Raises:
        RequestError: 422 naming ``field`` when an integer ID does not read as one.
    """
    if kind is int:
        if isinstance(value, (bool, float)):
            raise RequestError(422, field, f"{field} must be an integer ID, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise RequestError(
                422, field, f"{field} must be an integer ID, got {value!r}"
            ) from None
    return str(value)


def _file_metrics(path: Path) -> dict[str, Any] | None:
    """Training metrics of the run the file came from: ``metrics.json`` beside it (``leanrec
    train`` writes one into its run directory), or None."""
    metrics = path.parent / "metrics.json"
    if not metrics.is_file():
        return None
    try:
        loaded = json.loads(metrics.read_text())
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


class Engine:
    """What every engine offers; a method a family cannot answer raises a 422."""

    family: str = ""
    n_items: int = 0

    def describe(self) -> dict[str, Any]:
        """Kind, sizes, bytes and training metrics, for ``GET /model``."""
        raise NotImplementedError

    def user_key(self, value: Any, field: str = "user") -> Any:
        """``value`` parsed as a user's raw ID."""
        raise RequestError(422, field, f"a {self.family} model ranks no users")

    def lookup(self, user: Any) -> int:
        """The model's row of raw user ``user``, or -1 when it does not know the user."""
        raise RequestError(422, "user", f"a {self.family} model ranks no users")

    def recommend(self, requests: Sequence[TopKRequest]) -> list[Ranked]:
        """Top-k of several users at once (one product for all of them, where it can)."""
        raise RequestError(422, "user", f"a {self.family} model ranks no users")

    def score(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Scores of events given as JSON objects of the model's input fields."""
        raise NotImplementedError

    def next_items(self, requests: Sequence[NextRequest]) -> list[dict[str, Any]]:
        """The top-k next items after each history (next-item models)."""
        route = "POST /score" if self.family == "ctr" else "GET or POST /recommend"
        raise RequestError(
            422, "history", f"a {self.family} model continues no histories ({route})"
        )


@dataclass(frozen=True)
class NextRequest:
    """One history to continue: raw item IDs, oldest first.

    Attributes:
        history: the items (raw IDs as the request gave them).
        k: list length.
        exclude_seen: leave out the history's items.
        field: where the history is in the request, for errors (``"history"``).
    """

    history: Sequence[Any]
    k: int
    exclude_seen: bool = True
    field: str = "history"


# ------------------------------------------------------------------------------------ ranking
class RankingEngine(Engine):
    """Top-k and pair scores of a ranking model, from embeddings computed once.

    Args:
        model: the loaded ranking model (dense or packed tables).
        user_ids: raw user IDs in index order (``None``: raw IDs are the indices).
        item_ids: raw item IDs in index order (``None``: raw IDs are the indices).
        path: the model file (its bytes and the run's ``metrics.json`` go to :meth:`describe`).
        cold_start: ``"popular"`` answers an unknown user with the most popular training items
            (flagged); ``"none"`` makes it a 404.
        padded_vectors: a packed MF too gets its final embeddings computed once, padded to
            ``d_max`` (faster lone requests, a dense model's memory); off: it scores from its
            packed tables.
    """

    family = "ranking"

    def __init__(
        self,
        model: Recommender,
        user_ids: np.ndarray | None,
        item_ids: np.ndarray | None,
        path: Path,
        cold_start: ColdStart = "none",
        padded_vectors: bool = False,
    ) -> None:
        model.eval()
        self.kind = model.name
        self.n_users, self.n_items = model.n_users, model.n_items
        self.cold_start = cold_start
        self.path = path
        tables = model.embedding_tables()
        self.table_bytes = int(sum(_table_bytes(t) for t in tables.values()))
        self.embedding_dims = {name: int(t.embedding_dim) for name, t in tables.items()}
        self.table_kinds = {name: type(t).__name__ for name, t in tables.items()}
        self.seen_indptr = model.seen_indptr  # read only: shared with the model
        self.seen_indices = model.seen_indices
        popularity = torch.bincount(self.seen_indices, minlength=self.n_items)
        self.popular_items = torch.argsort(popularity, descending=True, stable=True)
        self.popularity = popularity[self.popular_items].double()
        self.user_vectors: torch.Tensor | None = None
        self.item_vectors: torch.Tensor | None = None
        self.model: Recommender | None = None
        packed = isinstance(model, DotProductRecommender) and model.scores_from_packed_tables()
        if isinstance(model, DotProductRecommender) and (padded_vectors or not packed):
            with torch.no_grad():
                users, items = model.final_embeddings()
            self.user_vectors, self.item_vectors = users.detach(), items.detach()
        else:  # scores need the model's own layers (NeuMF's MLP) or its packed tables
            self.model = model
        self.user_parse = _id_parser(user_ids)
        self.user_index: dict[Any, int] = (
            {raw: i for i, raw in enumerate(np.asarray(user_ids).tolist())}
            if user_ids is not None
            else {}
        )
        self.has_user_ids = user_ids is not None
        self.item_parse = _id_parser(item_ids)
        self.item_raw: list[Any] = (
            np.asarray(item_ids).tolist() if item_ids is not None else list(range(self.n_items))
        )
        self.item_index = {raw: i for i, raw in enumerate(self.item_raw)}

    # ---------------------------------------------------------------- ids
    def user_key(self, value: Any, field: str = "user") -> Any:
        return parse_id(value, self.user_parse, field)

    def lookup(self, user: Any) -> int:
        if self.has_user_ids:
            return self.user_index.get(user, -1)
        return user if isinstance(user, int) and 0 <= user < self.n_users else -1

    # ---------------------------------------------------------------- top-k
    def _scores(self, users: torch.Tensor) -> torch.Tensor:
        """``(B, I)`` float32 scores of ``users`` (B,), computed as ``Recommender.recommend``
        computes them, so served lists equal ``leanrec recommend``'s."""
        if self.user_vectors is not None and self.item_vectors is not None:
            return (self.user_vectors[users] @ self.item_vectors.T).float()
        assert self.model is not None
        with torch.no_grad():
            return self.model.score_all(users).float()

    def _mask_seen(self, scores: torch.Tensor, rows: torch.Tensor, users: torch.Tensor) -> None:
        """Set the training items of ``users`` (R,) to -inf in rows ``rows`` (R,) of ``scores``."""
        starts = self.seen_indptr[users]
        counts = self.seen_indptr[users + 1] - starts
        row_of = torch.repeat_interleave(rows, counts)
        offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        cols = self.seen_indices[torch.repeat_interleave(starts, counts) + offsets]
        scores[row_of, cols] = -torch.inf

    def recommend(self, requests: Sequence[TopKRequest]) -> list[Ranked]:
        for request in requests:
            if not 1 <= request.k <= self.n_items:
                raise RequestError(422, "k", f"k must be in [1, {self.n_items}], got {request.k}")
        answers: list[Ranked | None] = [None] * len(requests)
        known = [i for i, r in enumerate(requests) if r.index >= 0]
        for i, request in enumerate(requests):
            if request.index < 0:
                answers[i] = self._cold(request)
        for start in range(0, len(known), SCORE_CHUNK):
            self._top_k(requests, known[start : start + SCORE_CHUNK], answers)
        return [a for a in answers if a is not None]

    def _top_k(
        self, requests: Sequence[TopKRequest], known: list[int], answers: list[Ranked | None]
    ) -> None:
        """Fill ``answers[i]`` for the known users' requests ``i`` in ``known``: one product,
        one mask, one ``topk`` for all of them."""
        users = torch.tensor([requests[i].index for i in known], dtype=torch.int64)
        with torch.no_grad():
            scores = self._scores(users)
            excluded = [j for j, i in enumerate(known) if requests[i].exclude_seen]
            if excluded:
                rows = torch.tensor(excluded, dtype=torch.int64)
                self._mask_seen(scores, rows, users[rows])
            top = torch.topk(scores, max(requests[i].k for i in known), dim=1)
        items, values = top.indices.tolist(), top.values.tolist()
        item_raw = self.item_raw
        for j, i in enumerate(known):
            k = requests[i].k
            if values[j][k - 1] == -math.inf:  # fewer unseen items than k: the list is shorter
                k = values[j].index(-math.inf)
            answers[i] = Ranked(
                requests[i].user, [item_raw[x] for x in items[j][:k]], values[j][:k]
            )

    def _cold(self, request: TopKRequest) -> Ranked:
        if self.cold_start != "popular":
            raise RequestError(
                404,
                "user",
                f"unknown user {request.user!r} (serve with --cold-start popular to answer "
                "unknown users with the most popular items)",
            )
        top = self.popular_items[: request.k].tolist()
        counts = self.popularity[: request.k].tolist()
        return Ranked(request.user, [self.item_raw[x] for x in top], counts, True, "popular")

    # ---------------------------------------------------------------- pairs
    def score(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        users, items = [], []
        for n, event in enumerate(events):
            for name in ("user", "item"):
                if name not in event:
                    raise RequestError(422, f"events[{n}].{name}", f"events[{n}] has no {name}")
            user = self.user_key(event["user"], f"events[{n}].user")
            item = parse_id(event["item"], self.item_parse, f"events[{n}].item")
            index = self.lookup(user)
            if index < 0:
                raise RequestError(404, f"events[{n}].user", f"unknown user {user!r}")
            if item not in self.item_index:
                raise RequestError(404, f"events[{n}].item", f"unknown item {item!r}")
            users.append(index)
            items.append(self.item_index[item])
        user_t = torch.tensor(users, dtype=torch.int64)
        item_t = torch.tensor(items, dtype=torch.int64)
        with torch.no_grad():
            if self.user_vectors is not None and self.item_vectors is not None:
                values = (self.user_vectors[user_t] * self.item_vectors[item_t]).sum(-1)
            elif isinstance(self.model, MF):  # a packed MF: two lookups, no row of scores
                values = self.model.score_pairs(user_t, item_t)
            else:
                values = self._scores(user_t)[torch.arange(len(users)), item_t]
        return {"scores": values.float().tolist(), "what": "score"}

    # ---------------------------------------------------------------- description
    def served_bytes(self) -> int:
        """Bytes of what is held for serving: precomputed embeddings (or the kept model's
        parameters and buffers), the seen-items CSR (once) and the popularity ranking."""
        held = [self.popular_items, self.popularity]
        if self.user_vectors is not None and self.item_vectors is not None:
            held += [self.seen_indptr, self.seen_indices, self.user_vectors, self.item_vectors]
            return int(sum(t.numel() * t.element_size() for t in held))
        assert self.model is not None  # its buffers hold the seen items the engine shares
        return int(sum(t.numel() * t.element_size() for t in held)) + _module_bytes(self.model)

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "kind": self.kind,
            "path": str(self.path),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "embedding_dims": self.embedding_dims,
            "tables": self.table_kinds,
            "file_bytes": self.path.stat().st_size,
            "table_bytes": self.table_bytes,
            "served_bytes": self.served_bytes(),
            "precomputed_embeddings": self.user_vectors is not None,
            "cold_start": self.cold_start,
            "metrics": _file_metrics(self.path),
        }


def _index_list(value: Any, field: str) -> list[Any]:
    """``value`` as a list of indices (a JSON array); anything else is a 422 naming ``field``."""
    if not isinstance(value, (list, tuple)):
        raise RequestError(422, field, f"{field} must be a list of indices, got {value!r}")
    return list(value)


def _module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers."""
    tensors = [*module.parameters(), *module.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def _table_bytes(table: Any) -> int:
    """Bytes a table holds: a packed table's own count, else its parameters' and buffers'."""
    if hasattr(table, "embedding_bytes"):
        return int(table.embedding_bytes())
    return _module_bytes(table)


# ------------------------------------------------------------------------------------ stream
class StreamEngine(Engine):
    """Scores and top-k of a stream model on raw IDs; unseen IDs are answered cold.

    Top-k scores the user against every item the model was saved with (``I`` events through
    the model); a stream model keeps no record of what a user has seen, so ``exclude_seen``
    cannot apply and answers say so.
    """

    family = "stream"

    def __init__(self, loaded: LoadedModel, path: Path) -> None:
        assert loaded.stream is not None
        self.served = loaded.stream
        self.path = path
        self.fields = tuple(self.served.model.stream_fields)
        self.parsers = {f: _id_parser(ids) for f, ids in self.served.raw_ids.items()}
        self.ranks = set(self.fields) == {"user", "item"}
        self.item_raw = list(self.served.raw_ids.get("item", []))
        self.n_items = len(self.item_raw)
        self.what = "probability" if self.served.objective == "bce" else "rating"

    def user_key(self, value: Any, field: str = "user") -> Any:
        if not self.ranks:
            raise RequestError(
                422, "user", f"this stream model's fields are {list(self.fields)}: score events"
            )
        return parse_id(value, self.parsers["user"], field)

    def lookup(self, user: Any) -> int:
        return 0  # every user is answered: an unseen one from the shared vector

    def recommend(self, requests: Sequence[TopKRequest]) -> list[Ranked]:
        answers = []
        for request in requests:
            if not 1 <= request.k <= self.n_items:
                raise RequestError(422, "k", f"k must be in [1, {self.n_items}], got {request.k}")
            cold = not bool(self.served.is_known("user", [request.user])[0])
            scores = self.served.predict(
                {"user": [request.user] * self.n_items, "item": self.item_raw}
            )
            order = np.argsort(-scores, kind="stable")[: request.k]
            answers.append(
                Ranked(
                    request.user,
                    [self.item_raw[i] for i in order.tolist()],
                    scores[order].tolist(),
                    cold,
                    "model",
                )
            )
        return answers

    def score(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        columns: dict[str, list[Any]] = {f: [] for f in self.fields}
        for n, event in enumerate(events):
            for name in self.fields:
                if name not in event:
                    raise RequestError(422, f"events[{n}].{name}", f"events[{n}] has no {name}")
                columns[name].append(
                    parse_id(event[name], self.parsers[name], f"events[{n}].{name}")
                )
        known = {f: self.served.is_known(f, ids) for f, ids in columns.items()}
        values = self.served.predict(columns)
        cold = [[f for f in self.fields if not known[f][i]] for i in range(len(events))]
        return {"scores": values.tolist(), "what": self.what, "cold": cold}

    def describe(self) -> dict[str, Any]:
        model = self.served.model
        return {
            "family": self.family,
            "kind": type(model.model).__name__ if hasattr(model, "model") else type(model).__name__,
            "path": str(self.path),
            "fields": list(self.fields),
            "ids": dict(self.served.known_sizes),
            "objective": self.served.objective,
            "file_bytes": self.path.stat().st_size,
            "parameter_bytes": _module_bytes(model),
            "metrics": _file_metrics(self.path),
        }


# ------------------------------------------------------------------------------------ next item
class NextItemEngine(Engine):
    """The next items after a history, for a next-item model (SASRec, GRU4Rec, a searched one).

    A request is a history of raw item IDs, oldest first; the model reads its most recent items
    as it was trained to (:meth:`~leanrec.models.seq.NextItemModel.window_length`), scores every
    item and leaves out the history's own items unless asked not to. Histories of one call are
    scored in one batch. An item the model does not know is a 404 naming its position.
    """

    family = "sequential"

    def __init__(self, model: NextItemModel, item_ids: np.ndarray | None, path: Path) -> None:
        model.eval()
        self.model = model
        self.path = path
        self.n_items = model.n_items
        self.item_parse = _id_parser(item_ids)
        self.has_item_ids = item_ids is not None  # else requests give item IDs 1..I
        self.item_raw: list[Any] = (
            np.asarray(item_ids).tolist()
            if item_ids is not None
            else list(range(1, self.n_items + 1))
        )
        self.item_index = {raw: i + 1 for i, raw in enumerate(self.item_raw)}  # raw -> ID 1..I

    def _history(self, request: NextRequest) -> list[int]:
        if not request.history:
            raise RequestError(422, request.field, "a history needs at least one item")
        ids = []
        for n, value in enumerate(request.history):
            field = f"{request.field}.{n}"
            raw = parse_id(value, self.item_parse, field)
            if raw not in self.item_index:
                raise RequestError(404, field, f"unknown item {raw!r}")
            ids.append(self.item_index[raw])
        return ids

    def next_items(self, requests: Sequence[NextRequest]) -> list[dict[str, Any]]:
        for request in requests:
            if not 1 <= request.k <= self.n_items:
                raise RequestError(422, "k", f"k must be in [1, {self.n_items}], got {request.k}")
        histories = [self._history(r) for r in requests]
        answers: list[dict[str, Any]] = []
        for start in range(0, len(requests), SCORE_CHUNK):
            chunk = range(start, min(start + SCORE_CHUNK, len(requests)))
            items, values = self.model.recommend(
                [histories[i] for i in chunk],
                max(requests[i].k for i in chunk),
                [requests[i].exclude_seen for i in chunk],
            )
            for row, i in enumerate(chunk):
                pairs = zip(items[row].tolist(), values[row].tolist())
                kept = [(item, value) for item, value in pairs if value != -math.inf]
                kept = kept[: requests[i].k]
                answers.append(
                    {
                        "items": [self.item_raw[item - 1] for item, _ in kept],
                        "scores": [value for _, value in kept],
                    }
                )
        return answers

    def user_key(self, value: Any, field: str = "user") -> Any:
        raise RequestError(
            422, field, "a next-item model ranks no users: POST /next with a history of items"
        )

    def score(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        raise RequestError(
            422, "events", "a next-item model scores the items after a history: POST /next"
        )

    def describe(self) -> dict[str, Any]:
        table = self.model.item_table
        return {
            "family": self.family,
            "kind": type(self.model.encoder).__name__,
            "path": str(self.path),
            "n_items": self.n_items,
            "max_length": self.model.window_length(),
            "embedding_dim": int(self.model.embedding_dim),
            "table_bytes": _table_bytes(table),
            "file_bytes": self.path.stat().st_size,
            "served_bytes": _module_bytes(self.model),
            "raw_item_ids": self.has_item_ids,
            "metrics": _file_metrics(self.path),
        }


# ------------------------------------------------------------------------------------ CTR
class CTREngine(Engine):
    """Click probabilities of a CTR model for events given as their input fields.

    An event is a JSON object with one integer index per categorical field of the model's
    feature map (e.g. ``user_id``, ``item_id``, ``gender``), optionally ``history`` (item
    indices, oldest first) and the tag field's indices (``genres``) of the target item.
    """

    family = "ctr"

    def __init__(self, loaded: LoadedModel, path: Path) -> None:
        from leanrec.models.ctr.base import CTRModel

        if not isinstance(loaded.model, CTRModel):
            raise DataError("a ctr model file without a CTR model", path)
        self.model: CTRModel = loaded.model.eval()
        self.path = path
        self.feature_map: FeatureMap = self.model.feature_map
        self.categorical = [f.name for f in self.feature_map.categorical]
        self.sizes = {f.name: f.vocab_size for f in self.feature_map.fields}

    def _indices(self, value: Any, field: str, size: int) -> int:
        index = parse_id(value, int, field)
        if not 0 <= index < size:
            raise RequestError(422, field, f"{field} must be an index in [0, {size}), got {index}")
        return index

    def score(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        from leanrec.data.behavior import BehaviorBatch

        fm = self.feature_map
        batch = len(events)
        sparse = torch.zeros(batch, len(self.categorical), dtype=torch.int64)
        tags = torch.zeros(batch, max(fm.max_tags, 1), dtype=torch.int64)
        history = torch.zeros(batch, max(fm.max_history, 1), dtype=torch.int64)
        lengths = torch.zeros(batch, dtype=torch.int64)
        item_size = self.sizes.get(fm.target_field, 0)
        for n, event in enumerate(events):
            for column, name in enumerate(self.categorical):
                if name not in event:
                    raise RequestError(422, f"events[{n}].{name}", f"events[{n}] has no {name}")
                sparse[n, column] = self._indices(
                    event[name], f"events[{n}].{name}", self.sizes[name]
                )
            if fm.tag_field is not None and fm.tag_field in event:
                given = _index_list(event[fm.tag_field], f"events[{n}].{fm.tag_field}")
                given = given[: fm.max_tags]
                size = self.sizes[fm.tag_field]
                for j, tag in enumerate(given):
                    tags[n, j] = self._indices(tag, f"events[{n}].{fm.tag_field}", size)
            past = _index_list(event.get("history", []), f"events[{n}].history")
            past = past[-fm.max_history :] if fm.max_history else []
            for j, item in enumerate(past):
                history[n, fm.max_history - len(past) + j] = self._indices(
                    item, f"events[{n}].history", item_size
                )
            lengths[n] = len(past)
        inputs = BehaviorBatch(
            sparse,
            tags[:, : fm.max_tags],
            history[:, : fm.max_history],
            torch.zeros(batch, fm.max_history, fm.max_tags, dtype=torch.int64),
            lengths,
            torch.zeros(batch),
        )
        with torch.no_grad():
            values = self.model.predict_proba(inputs)
        return {"scores": values.double().tolist(), "what": "probability"}

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "kind": type(self.model).__name__,
            "path": str(self.path),
            "fields": self.sizes,
            "file_bytes": self.path.stat().st_size,
            "parameter_bytes": _module_bytes(self.model),
            "metrics": _file_metrics(self.path),
        }


def build_engine(
    loaded: LoadedModel,
    path: str | Path,
    cold_start: ColdStart = "none",
    padded_vectors: bool = False,
) -> Engine:
    """The engine of a loaded model's family (``padded_vectors``: a packed MF is served from
    rows padded to ``d_max`` instead of its packed tables).

    Raises:
        DataError: a family the server does not serve, named with the file.
    """
    path = Path(path)
    if loaded.family == "ranking" and isinstance(loaded.model, Recommender):
        user_ids = None if loaded.user_vocab is None else loaded.user_vocab.raw_ids
        item_ids = None if loaded.item_vocab is None else loaded.item_vocab.raw_ids
        return RankingEngine(loaded.model, user_ids, item_ids, path, cold_start, padded_vectors)
    if loaded.family == "stream":
        return StreamEngine(loaded, path)
    if loaded.family == "sequential" and isinstance(loaded.model, NextItemModel):
        item_ids = None if loaded.item_vocab is None else loaded.item_vocab.raw_ids
        return NextItemEngine(loaded.model, item_ids, path)
    if loaded.family == "ctr":
        return CTREngine(loaded, path)
    raise DataError(
        f"a {loaded.family} model: leanrec serve answers ranking, stream and CTR models", path
    )
