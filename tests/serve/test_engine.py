"""The ranking engine in-process: chunked products equal one product, and a user who has seen
nearly every item gets a shorter list rather than seen items."""

from __future__ import annotations

import pytest

from leanrec.models import load_model
from leanrec.serve import engine as engine_module
from leanrec.serve.engine import RankingEngine, TopKRequest, build_engine
from tests.serve.conftest import Models


def _engine(models: Models) -> RankingEngine:
    engine = build_engine(load_model(models.dense), models.dense)
    assert isinstance(engine, RankingEngine)
    return engine


def test_chunked_products_answer_as_one(models: Models, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(models)
    requests = [TopKRequest(f"u{i}", i % engine.n_users, 1 + i % 7, i % 2 == 0) for i in range(50)]
    whole = engine.recommend(requests)
    monkeypatch.setattr(engine_module, "SCORE_CHUNK", 3)
    chunked = engine.recommend(requests)
    assert [a.items for a in chunked] == [a.items for a in whole]
    assert [a.user for a in chunked] == [f"u{i}" for i in range(50)]
    assert [len(a.items) for a in whole] == [1 + i % 7 for i in range(50)]


def test_a_list_stops_before_the_seen_items(models: Models) -> None:
    engine = _engine(models)
    seen = int(engine.seen_indptr[1] - engine.seen_indptr[0])
    assert seen > 0
    (answer,) = engine.recommend([TopKRequest("first", 0, engine.n_items, True)])
    assert len(answer.items) == engine.n_items - seen  # no -inf scores in the answer
    assert all(score > float("-inf") for score in answer.scores)
