"""Contracts every model of a family passes: save -> :func:`leanrec.models.load_model` -> the
same scores, output shapes, and parameter counts that add up.

A new model subclasses its family's mixin and says how to build it:

    class TestMyRanker(RankingModelContract):
        def make_model(self, train):
            return build_model("my_ranker", train, {"embedding_dim": 8}, seed=0)

Ranking models (MF, NeuMF, NGCF, LightGCN) also round-trip through the packed ``.safetensors``
of ``leanrec compress``. Stream models (a pointwise model on stream tables) round-trip with their
raw IDs and serve an ID they have never seen.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from leanrec.data.behavior import BehaviorBatch
from leanrec.data.interactions import Interactions
from leanrec.embeddings import GrowingEmbedding, HierarchicalSharedEmbedding
from leanrec.embeddings.base import EmbeddingTable
from leanrec.models import Recommender, load_model
from leanrec.models.compress import save_compressed
from leanrec.models.ctr.base import CTRModel
from leanrec.models.requests import NO_ITEM
from leanrec.models.seq import NextItemModel
from leanrec.models.stream import StreamModel, StreamTableFactory, build_stream_model
from leanrec.models.stream_io import save_stream_model
from tests.models.ctr.synthetic import make_samples

N_USERS, N_ITEMS = 40, 25


def _total_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------ ranking
class RankingModelContract:
    """Mixin for :class:`~leanrec.models.base.Recommender` s."""

    def make_model(self, train: Interactions) -> Recommender:
        raise NotImplementedError

    @pytest.fixture
    def train(self) -> Interactions:
        rng = np.random.default_rng(0)
        users = np.concatenate([np.arange(N_USERS), rng.integers(0, N_USERS, 360)])
        items = np.concatenate([np.arange(N_USERS) % N_ITEMS, rng.integers(0, N_ITEMS, 360)])
        return Interactions.from_raw(users, items, name="contract")

    @pytest.fixture
    def model(self, train: Interactions) -> Recommender:
        return self.make_model(train).eval()

    def test_output_shapes(self, model: Recommender, train: Interactions) -> None:
        assert model.score_all(torch.arange(5)).shape == (5, train.n_items)
        out = model.pairwise(
            torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])
        )
        assert out.positive_scores.shape == out.negative_scores.shape == (3,)

    def test_round_trip_through_load_model(self, model: Recommender, tmp_path: Path) -> None:
        loaded = load_model(model.save(tmp_path / "model.pt"))
        assert loaded.family == "ranking" and type(loaded.model) is type(model)
        assert loaded.user_vocab is None and loaded.item_vocab is None  # the bare model has none
        users = torch.arange(N_USERS)
        assert torch.equal(loaded.model.eval().score_all(users), model.score_all(users))

    def test_round_trip_through_the_packed_file(
        self, model: Recommender, train: Interactions, tmp_path: Path
    ) -> None:
        path = save_compressed(
            model,
            tmp_path / "model.safetensors",
            train.user_vocab.raw_ids,
            train.item_vocab.raw_ids,
        )
        loaded = load_model(path)
        assert loaded.family == "ranking" and type(loaded.model) is type(model)
        assert loaded.item_vocab is not None and len(loaded.item_vocab) == train.n_items
        users = torch.arange(N_USERS)
        torch.testing.assert_close(loaded.model.score_all(users), model.score_all(users))

    def test_parameter_counts_add_up(self, model: Recommender) -> None:
        tables = model.embedding_tables().values()
        assert model.embedding_parameters() == sum(t.num_parameters() for t in tables) > 0
        assert model.embedding_bytes() == sum(t.nbytes() for t in tables)
        assert model.embedding_bytes() >= 4 * model.embedding_parameters()
        assert model.embedding_parameters() <= _total_parameters(model)


# ---------------------------------------------------------------------------------------- CTR
class CTRModelContract:
    """Mixin for :class:`~leanrec.models.ctr.base.CTRModel` s (on the synthetic feature map of
    ``tests/models/ctr/synthetic.py``)."""

    def make_model(self) -> CTRModel:
        raise NotImplementedError

    @pytest.fixture
    def model(self) -> CTRModel:
        return self.make_model().eval()

    @pytest.fixture
    def batch(self) -> BehaviorBatch:
        samples, _ = make_samples(64, seed=3)
        return samples.batch(np.arange(64))

    def test_output_shapes(self, model: CTRModel, batch: BehaviorBatch) -> None:
        logits = model(batch)
        assert logits.shape == (len(batch),) and logits.dtype == torch.float32
        probabilities = model.predict_proba(batch)
        assert bool(((probabilities > 0) & (probabilities < 1)).all())

    def test_round_trip_through_load_model(
        self, model: CTRModel, batch: BehaviorBatch, tmp_path: Path
    ) -> None:
        loaded = load_model(model.save(tmp_path / "model.pt"))
        assert loaded.family == "ctr" and type(loaded.model) is type(model)
        assert torch.equal(loaded.model.eval()(batch), model(batch))

    def test_parameter_counts_add_up(self, model: CTRModel) -> None:
        counts = model.parameter_counts()
        assert sum(counts.values()) == _total_parameters(model)
        assert counts["embedding"] == sum(
            t.num_parameters() for t in model.embedding_tables().values()
        )
        assert model.embedding_bytes() >= 4 * counts["embedding"] > 0


# --------------------------------------------------------------------------------- sequential
class NextItemModelContract:
    """Mixin for :class:`~leanrec.models.seq.NextItemModel` s; ``save`` writes the family's
    file for ``model``."""

    n_items = 30

    def make_model(self, n_items: int) -> NextItemModel:
        raise NotImplementedError

    def save(self, model: NextItemModel, path: Path, item_ids: Any = None) -> Path:
        raise NotImplementedError

    @pytest.fixture
    def model(self) -> NextItemModel:
        return self.make_model(self.n_items).eval()

    @pytest.fixture
    def ids(self) -> torch.Tensor:
        return torch.tensor([[0, 0, 3, 7, 1], [4, 2, 9, 9, 5], [0, 0, 0, 0, 30]])

    def test_output_shapes(self, model: NextItemModel, ids: torch.Tensor) -> None:
        assert model(ids).shape == (3, 5, model.embedding_dim)
        scores = model.score_all(ids)
        assert scores.shape == (3, self.n_items + 1)
        assert bool(torch.isinf(scores[:, 0]).all()) and bool(torch.isfinite(scores[:, 1:]).all())

    def test_round_trip_through_load_model(
        self, model: NextItemModel, ids: torch.Tensor, tmp_path: Path
    ) -> None:
        loaded = load_model(self.save(model, tmp_path / "model.pt"))
        assert loaded.family == "sequential" and isinstance(loaded.model, NextItemModel)
        assert type(loaded.model.encoder) is type(model.encoder)
        assert torch.equal(loaded.model.eval().score_all(ids), model.score_all(ids))

    def test_parameter_counts_add_up(self, model: NextItemModel) -> None:
        counts = model.num_parameters()
        assert counts["embedding"] == model.item_table.num_parameters() > 0
        assert counts["embedding"] + counts["encoder"] == _total_parameters(model)

    def test_next_items_after_histories(self, model: NextItemModel) -> None:
        histories = [[3, 7, 1, 3], [30]]
        window = model.windows(histories)
        assert window.tolist() == [[3, 7, 1, 3], [0, 0, 0, 30]]  # right-aligned, 0 = padding
        expected = model.score_all(window)
        expected[0, [3, 7, 1]] = -math.inf  # the history's own items are left out
        expected[1, 30] = -math.inf
        items, scores = model.recommend(histories, k=5)
        assert torch.equal(items, expected.topk(5).indices)
        assert torch.equal(scores, expected.topk(5).values)
        assert not {0, 1, 3, 7} & set(items[0].tolist()) and 30 not in items[1].tolist()
        kept, _ = model.recommend(histories, k=5, exclude_seen=False)
        assert torch.equal(kept, model.score_all(window).topk(5).indices)

    def test_a_history_longer_than_the_window_keeps_its_latest_items(
        self, model: NextItemModel
    ) -> None:
        history = list(range(1, 21))
        limit = model.encoder.max_length
        assert model.windows([history]).tolist() == [history[-limit:] if limit else history]

    def test_bad_histories_are_refused_by_position(self, model: NextItemModel) -> None:
        with pytest.raises(ValueError, match="history 1 is empty"):
            model.windows([[1], []])
        with pytest.raises(ValueError, match=r"history 0, position 1: item ID 31 is outside 1\.\."):
            model.windows([[2, 31]])
        with pytest.raises(ValueError, match="k must be in \\[1, 30\\]"):
            model.recommend([[2]], k=31)
        with pytest.raises(TypeError, match="history 0 is 1, not a list of item IDs"):
            model.recommend([1, 2, 3])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="history 0's item IDs must be integer indices"):
            model.recommend([[1.7]])  # type: ignore[list-item]
        assert model.recommend([], k=4)[0].shape == (0, 4)
        # fewer items left than k: the tail is no item at -inf
        items, scores = model.recommend([list(range(1, 29))], k=5)
        assert (scores[0, 2:] == -math.inf).all() and items[0, 2:].tolist() == [NO_ITEM] * 3
        assert set(items[0, :2].tolist()) == {29, 30}
        # an item before the window is checked too (it is left out of the list)
        with pytest.raises(ValueError, match="history 0, position 0: item ID 0 is outside"):
            model.recommend([[0] + [1] * 60])

    def test_the_training_window_is_kept_in_the_file(
        self, model: NextItemModel, tmp_path: Path
    ) -> None:
        model.history_length = 3
        history = list(range(1, 11))
        assert model.windows([history]).tolist() == [[8, 9, 10]]
        loaded = load_model(self.save(model, tmp_path / "model.pt")).model
        assert isinstance(loaded, NextItemModel) and loaded.history_length == 3
        assert loaded.windows([history]).tolist() == [[8, 9, 10]]

    def test_the_file_keeps_the_raw_item_ids(self, model: NextItemModel, tmp_path: Path) -> None:
        raw = [f"item-{n}" for n in range(1, self.n_items + 1)]
        loaded = load_model(self.save(model, tmp_path / "model.pt", raw))
        assert loaded.item_vocab is not None and loaded.item_vocab.raw_ids.tolist() == raw
        with pytest.raises(ValueError, match="holds 2 raw IDs, the model has 30 items"):
            self.save(model, tmp_path / "short.pt", raw[:2])


# ------------------------------------------------------------------------------------- stream
STREAM_USERS, STREAM_ITEMS, STREAM_DIM = 7, 9, 8


def stream_raw_ids() -> dict[str, list[Any]]:
    """Raw IDs of the stream fields in index order: strings for users, numpy ints for items
    (the file holds them as plain Python values)."""
    return {
        "user": [f"u{i}" for i in range(STREAM_USERS)],
        "item": list(np.arange(100, 100 + STREAM_ITEMS)),
    }


def cold_vector(table: EmbeddingTable) -> torch.Tensor:
    """The shared vector ``(1, d)`` a table gives an ID it holds nothing for."""
    if isinstance(table, HierarchicalSharedEmbedding):
        return table.shared[:1]  # level 1
    if isinstance(table, GrowingEmbedding):
        return table.fallback
    raise TypeError(f"no cold vector known for {type(table).__name__}")


class StreamModelContract:
    """Mixin for :class:`~leanrec.models.stream.StreamModel` s: a subclass names the base model
    (``model_name``, ``options``) and may choose the stream tables and move IDs after the
    stream. The fixture feeds two chunks of events (every ID but the last user and item is
    observed) and shifts every parameter, so rows, shared vectors and dense weights differ."""

    model_name: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}

    def make_tables(self) -> StreamTableFactory | None:
        """The stream tables (``None``: all-unique)."""
        return None

    def assign(self, model: StreamModel) -> None:
        """Change the tables' assignment after the stream (default: as the tables left it)."""

    def build_model(self) -> StreamModel:
        """The model after its stream (what the ``model`` fixture gives), in eval mode."""
        model = build_stream_model(
            self.model_name,
            ("user", "item"),
            embedding_dim=STREAM_DIM,
            table_factory=self.make_tables(),
            **self.options,
        )
        model.extend_ids({"user": STREAM_USERS, "item": STREAM_ITEMS})
        generator = torch.Generator().manual_seed(5)
        for _ in range(2):
            model.observe(
                {
                    "user": torch.randint(0, STREAM_USERS - 1, (12,), generator=generator),
                    "item": torch.randint(0, STREAM_ITEMS - 1, (12,), generator=generator),
                }
            )
        self.assign(model)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
        return model.eval()

    @pytest.fixture
    def model(self) -> StreamModel:
        return self.build_model()

    @pytest.fixture
    def ids(self) -> dict[str, torch.Tensor]:
        return {
            "user": torch.tensor([0, 1, 2, 3, 4, 5, 6, 6]),
            "item": torch.tensor([8, 7, 6, 5, 4, 3, 2, 0]),
        }

    def save(self, model: StreamModel, path: Path) -> Path:
        return save_stream_model(
            model,
            path,
            name=self.model_name,
            embedding_dim=STREAM_DIM,
            options=self.options,
            objective="bce",
            rating_offset=None,
            raw_ids=stream_raw_ids(),
        )

    def test_output_shapes(self, model: StreamModel, ids: dict[str, torch.Tensor]) -> None:
        logits = model(ids)
        assert logits.shape == (8,) and logits.dtype == torch.float32
        assert bool(torch.isfinite(logits).all())

    def test_round_trip_through_load_model(
        self, model: StreamModel, ids: dict[str, torch.Tensor], tmp_path: Path
    ) -> None:
        loaded = load_model(self.save(model, tmp_path / "model.pt"))
        assert loaded.family == "stream" and isinstance(loaded.model, StreamModel)
        assert type(loaded.model.model) is type(model.model)
        assert loaded.user_vocab is None and loaded.stream is not None
        assert loaded.stream.model is loaded.model
        kinds = {name: type(t) for name, t in model.id_tables().items()}
        assert {name: type(t) for name, t in loaded.model.id_tables().items()} == kinds
        assert torch.equal(loaded.model.eval()(ids), model(ids))
        assert loaded.stream.raw_ids == {
            "user": [f"u{i}" for i in range(STREAM_USERS)],
            "item": list(range(100, 100 + STREAM_ITEMS)),
        }
        assert all(type(raw) is int for raw in loaded.stream.raw_ids["item"])
        assert loaded.stream.vocabularies["user"]["u3"] == 3
        assert loaded.stream.vocabularies["item"][108] == 8

    def test_an_unseen_id_reads_the_shared_vector_and_is_flagged_cold(
        self, model: StreamModel, tmp_path: Path
    ) -> None:
        loaded = load_model(self.save(model, tmp_path / "model.pt"))
        assert loaded.stream is not None
        served = loaded.stream
        probability = served.predict({"user": ["u-new", "u2"], "item": [100, 100]})
        assert probability.shape == (2,) and bool(((probability > 0) & (probability < 1)).all())
        # scored at the cold index, never added: new IDs do not grow a served model
        new = served.known_sizes["user"]
        assert new == STREAM_USERS and "u-new" not in served.vocabularies["user"]
        assert len(served.raw_ids["user"]) == STREAM_USERS
        again = served.predict({"user": ["u-other", "u-new"], "item": [100, 100]})
        assert again.tolist() == [probability[0]] * 2
        assert len(served.raw_ids["user"]) == STREAM_USERS
        assert served.is_known("user", ["u-new", "u2", "u-other"]).tolist() == [
            False,
            True,
            False,
        ]
        # an ID matches in any type: item "108", 108.0 and np.int64(108) are item 108
        item_108 = served.predict({"user": ["u2"], "item": [108]}).tolist()
        for same in ("108", " 108", 108.0, np.int64(108)):
            assert served.predict({"user": ["u2"], "item": [same]}).tolist() == item_108
        assert served.is_known("item", ["108", "x", 107.0]).tolist() == [True, False, True]
        for bad in (None, float("nan"), 1.5, True):  # no ID at all: refused by place
            with pytest.raises(ValueError, match=r"item\[1\]: .* is not an ID"):
                served.predict({"user": ["u2", "u2"], "item": [100, bad]})
        with pytest.raises(ValueError, match="one ID per event"):
            served.predict({"user": ["u2", "u3"], "item": [100]})
        with pytest.raises(ValueError, match="one sequence of IDs per field"):
            served.predict({"user": ["u2"]})
        for name, table in served.model.id_tables().items():
            if served.model.fields[name] == "user":
                assert table.num_embeddings == STREAM_USERS + 1
                torch.testing.assert_close(
                    table.lookup(torch.tensor([new])), cold_vector(table), rtol=0, atol=0
                )

    def test_byte_counts_add_up(self, model: StreamModel) -> None:
        tables = model.id_tables().values()
        assert model.embedding_bytes() == sum(t.nbytes() for t in tables) > 0
        assert model.embedding_bytes() >= 4 * sum(t.num_parameters() for t in tables)
        split = len(model.table_parameters()) + len(model.dense_parameters())
        assert split == len(list(model.parameters()))
        assert model.dense_bytes() > 0
