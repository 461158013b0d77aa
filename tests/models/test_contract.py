"""Every ranking model passes :class:`tests.models.contract.RankingModelContract`."""

from __future__ import annotations

from leanrec.data.interactions import Interactions
from leanrec.models import Recommender, build_model
from tests.models.contract import RankingModelContract


def _small(name: str, train: Interactions) -> Recommender:
    return build_model(name, train, {"embedding_dim": 8}, seed=0)


class TestMF(RankingModelContract):
    def make_model(self, train: Interactions) -> Recommender:
        return _small("mf", train)


class TestNeuMF(RankingModelContract):
    def make_model(self, train: Interactions) -> Recommender:
        return _small("neumf", train)


class TestNGCF(RankingModelContract):
    def make_model(self, train: Interactions) -> Recommender:
        return _small("ngcf", train)


class TestLightGCN(RankingModelContract):
    def make_model(self, train: Interactions) -> Recommender:
        return _small("lightgcn", train)
