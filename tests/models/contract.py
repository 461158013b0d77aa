"""Contracts every model of a family passes: save -> :func:`leanrec.models.load_model` -> the
same scores, output shapes, and parameter counts that add up.

A new model subclasses its family's mixin and says how to build it:

    class TestMyRanker(RankingModelContract):
        def make_model(self, train):
            return build_model("my_ranker", train, {"embedding_dim": 8}, seed=0)

Ranking models (MF, NeuMF, NGCF, LightGCN) also round-trip through the packed ``.safetensors``
of ``leanrec compress``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.data.behavior import BehaviorBatch
from leanrec.data.interactions import Interactions
from leanrec.models import Recommender, load_model
from leanrec.models.compress import save_compressed
from leanrec.models.ctr.base import CTRModel
from leanrec.models.seq import NextItemModel
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

    def save(self, model: NextItemModel, path: Path) -> Path:
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
