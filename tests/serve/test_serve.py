"""``leanrec serve`` as a user meets it: a real server process on a free port of 127.0.0.1,
called with a real HTTP client (``http.client``), for every route and every error; served top-k
equal ``leanrec recommend``'s for the same model, dense and packed."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from leanrec.cli import main
from leanrec.models import load_model
from tests.serve.conftest import (
    ITEM_OFFSET,
    N_ITEMS,
    USER_OFFSET,
    Models,
    Servers,
)

pytestmark = pytest.mark.timeout(300)


def _cli_recommend(path: Path, users: list[Any], k: int, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    code = main(["recommend", "--model", str(path), "--users", *map(str, users), "--k", str(k),
                 "--compact"])  # fmt: skip
    assert code == 0
    return json.loads(capsys.readouterr().out)


def _train_items(models: Models) -> dict[int, set[int]]:
    """Raw user ID -> raw IDs of its training items."""
    train = models.train
    users = train.user_vocab.to_raw(train.users).tolist()
    items = train.item_vocab.to_raw(train.items).tolist()
    seen: dict[int, set[int]] = {}
    for user, item in zip(users, items):
        seen.setdefault(user, set()).add(item)
    return seen


def _field(detail: Any) -> list[Any]:
    """The ``loc`` of a 422's first error (FastAPI's shape)."""
    return list(detail["detail"][0]["loc"])


# ------------------------------------------------------------------------------- routes
def test_health_docs_and_openapi(servers: Servers) -> None:
    assert servers.dense.get("/healthz") == (200, {"status": "ok", "family": "ranking"})
    status, page = servers.dense.get("/docs")
    assert status == 200 and "swagger" in page.lower()
    status, schema = servers.dense.get("/openapi.json")
    assert status == 200
    assert {"/recommend/{user}", "/recommend", "/score", "/healthz", "/model"} <= set(
        schema["paths"]
    )


def test_model_route_gives_kind_sizes_bytes_and_training_metrics(
    servers: Servers, models: Models
) -> None:
    status, dense = servers.dense.get("/model")
    assert status == 200
    assert (dense["family"], dense["kind"]) == ("ranking", "lightgcn")
    assert (dense["n_users"], dense["n_items"]) == (models.train.n_users, models.train.n_items)
    assert dense["file_bytes"] == models.dense.stat().st_size
    assert dense["metrics"] == {"test_recall@20": 0.5}  # metrics.json beside model.pt
    assert dense["precomputed_embeddings"] and dense["cold_start"] == "popular"
    # 16-wide float32 user and item tables
    assert dense["table_bytes"] == (dense["n_users"] + dense["n_items"]) * 16 * 4
    _, packed = servers.packed.get("/model")
    assert set(packed["tables"].values()) == {"RaggedEmbedding"}
    assert packed["table_bytes"] < dense["table_bytes"]
    # a packed graph model serves from the same dense propagated cache; only the seen items
    # (int64 in model.pt, int32 read back from the compressed file) take half the bytes
    seen = load_model(models.dense).model.seen_indices.numel()
    halved = 4 * (models.train.n_users + 1 + seen)
    assert packed["served_bytes"] == dense["served_bytes"] - halved
    assert packed["metrics"] is None


@pytest.mark.parametrize("which", ["dense", "packed"])
def test_served_top_k_equal_leanrec_recommend(
    which: str, servers: Servers, models: Models, capsys: pytest.CaptureFixture[str]
) -> None:
    path, server = getattr(models, which), getattr(servers, which)
    users = models.train.user_vocab.raw_ids.tolist()
    expected = _cli_recommend(path, users, 5, capsys)
    status, batch = server.post("/recommend", {"users": users, "k": 5})
    assert status == 200
    for user, cli, batched in zip(users, expected, batch["results"]):
        status, one = server.get(f"/recommend/{user}?k=5")
        assert status == 200
        for answer in (one, batched):
            assert answer["user"] == user and not answer["cold"]
            assert answer["answered_by"] == "model"
            assert answer["items"] == cli["items"]
            np.testing.assert_allclose(answer["scores"], cli["scores"], atol=1e-5)


def test_fast_path_answers_as_the_fastapi_route(servers: Servers, models: Models) -> None:
    """Plain parameters are answered in front of FastAPI; any other spelling goes through the
    route (``True`` is no spelling the fast path reads): the answers are the same."""
    for user in models.train.user_vocab.raw_ids.tolist()[:5]:
        for seen in ("true", "false"):
            _, fast = servers.dense.get(f"/recommend/{user}?k=4&exclude_seen={seen}")
            _, route = servers.dense.get(f"/recommend/{user}?exclude_seen={seen.title()}&k=4")
            assert fast == route


def test_exclude_seen_leaves_out_training_items(servers: Servers, models: Models) -> None:
    seen = _train_items(models)
    n_items = models.train.n_items
    for user in list(seen)[:10]:
        _, unseen_only = servers.dense.get(f"/recommend/{user}?k={n_items}")
        _, everything = servers.dense.get(f"/recommend/{user}?k={n_items}&exclude_seen=false")
        assert set(everything["items"]) == set(models.train.item_vocab.raw_ids.tolist())
        # every unseen item and no seen one: the list is shorter than k by the seen items
        assert set(unseen_only["items"]) == set(everything["items"]) - seen[user]
        assert len(unseen_only["items"]) == n_items - len(seen[user])


def test_unknown_user_is_404_or_the_popular_items_flagged(servers: Servers, models: Models) -> None:
    status, error = servers.packed.get("/recommend/999999")
    assert status == 404 and error["field"] == "user" and "999999" in error["detail"]
    status, error = servers.packed.post("/recommend", {"users": [USER_OFFSET, 999999]})
    assert status == 404 and "999999" in error["detail"]

    # popularity: how many training users have seen an item (a repeated pair counts once)
    pairs = np.unique(np.stack([models.train.users, models.train.items]), axis=1)
    counts = np.bincount(pairs[1], minlength=models.train.n_items)
    order = np.argsort(-counts, kind="stable")[:4]
    status, cold = servers.dense.get("/recommend/999999?k=4")
    assert status == 200
    assert cold["cold"] and cold["answered_by"] == "popular"
    assert cold["items"] == models.train.item_vocab.to_raw(order).tolist()
    assert cold["scores"] == counts[order].astype(float).tolist()
    status, batch = servers.dense.post("/recommend", {"users": [999999, USER_OFFSET], "k": 4})
    assert status == 200
    assert [r["cold"] for r in batch["results"]] == [True, False]


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("GET", "/recommend/1000?k=0", None, ["query", "k"]),
        ("GET", "/recommend/1000?k=-3", None, ["query", "k"]),
        ("GET", f"/recommend/1000?k={N_ITEMS + 1}", None, ["query", "k"]),
        ("GET", "/recommend/1000?k=ten", None, ["query", "k"]),
        ("GET", "/recommend/abc", None, ["path", "user"]),
        ("GET", "/recommend/1000.5", None, ["path", "user"]),
        ("GET", "/recommend/1000?exclude_seen=perhaps", None, ["query", "exclude_seen"]),
        ("POST", "/recommend", {"users": [1000], "k": 0}, ["body", "k"]),
        ("POST", "/recommend", {"users": [1000, "x"]}, ["body", "users", "1"]),
        ("POST", "/recommend", {"users": []}, ["body", "users"]),
        ("POST", "/score", {"events": [{"user": 1000}]}, ["body", "events[0]", "item"]),
        (
            "POST",
            "/score",
            {"events": [{"user": "u", "item": 5000}]},
            ["body", "events[0]", "user"],
        ),
        ("POST", "/score", {"pairs": []}, ["body", "events"]),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    servers: Servers, method: str, path: str, body: Any, loc: list[str]
) -> None:
    status, error = servers.packed.request(method, path, body)
    assert status == 422, error
    assert _field(error) == loc


def test_score_pairs_of_a_ranking_model(servers: Servers, models: Models) -> None:
    loaded = load_model(models.dense)
    assert loaded.user_vocab is not None and loaded.item_vocab is not None
    users, items = [USER_OFFSET, USER_OFFSET + 5, USER_OFFSET + 5], [ITEM_OFFSET + 2] * 3
    items[2] = ITEM_OFFSET + 9
    status, scored = servers.dense.post(
        "/score", {"events": [{"user": u, "item": i} for u, i in zip(users, items)]}
    )
    assert status == 200 and scored["what"] == "score"
    with torch.no_grad():
        all_scores = loaded.model.eval().score_all(
            torch.as_tensor(loaded.user_vocab.to_index(users))
        )
    expected = all_scores[torch.arange(3), torch.as_tensor(loaded.item_vocab.to_index(items))]
    np.testing.assert_allclose(scored["scores"], expected.numpy(), atol=1e-5)
    status, error = servers.dense.post("/score", {"events": [{"user": USER_OFFSET, "item": 7}]})
    assert status == 404 and error["field"] == "events[0].item"


# ------------------------------------------------------------------------------- stream, CTR
def test_stream_model_answers_unseen_ids_and_flags_them_cold(
    servers: Servers, models: Models
) -> None:
    status, known = servers.stream.get("/recommend/u1?k=3")
    assert status == 200 and not known["cold"] and len(known["items"]) == 3
    status, cold = servers.stream.get("/recommend/never-seen?k=3")
    assert status == 200 and cold["cold"] and cold["answered_by"] == "model"
    events = [{"user": "u1", "item": 101}, {"user": "never-seen", "item": 999}]
    status, scored = servers.stream.post("/score", {"events": events})
    assert status == 200 and scored["what"] == "probability"
    assert scored["cold"] == [[], ["user", "item"]]
    served = load_model(models.stream).stream
    assert served is not None
    expected = served.predict({"user": ["u1", "never-seen"], "item": [101, 999]})
    np.testing.assert_allclose(scored["scores"], expected, atol=1e-6)
    # top-k of a stream model is its scores of every known item, best first
    all_items = list(range(100, 109))
    scores = served.predict({"user": ["u1"] * 9, "item": all_items})
    assert known["items"] == [all_items[i] for i in np.argsort(-scores, kind="stable")[:3]]
    status, error = servers.stream.post("/score", {"events": [{"user": "u1", "item": "x"}]})
    assert status == 422 and _field(error) == ["body", "events[0]", "item"]


def test_ctr_model_scores_its_input_fields(servers: Servers, models: Models) -> None:
    from leanrec.data.behavior import BehaviorBatch

    event = {"user_id": 3, "item_id": 7, "gender": 1, "age": 2, "genres": [2], "history": [4, 5]}
    status, scored = servers.ctr.post("/score", {"events": [event]})
    assert status == 200 and scored["what"] == "probability"
    model = load_model(models.ctr).model.eval()
    history = torch.zeros(1, 10, dtype=torch.int64)
    history[0, -2:] = torch.tensor([4, 5])
    batch = BehaviorBatch(
        torch.tensor([[3, 7, 1, 2]]), torch.tensor([[2, 0]]), history,
        torch.zeros(1, 10, 2, dtype=torch.int64), torch.tensor([2]), torch.zeros(1),
    )  # fmt: skip
    expected = model.predict_proba(batch)  # type: ignore[operator]
    np.testing.assert_allclose(scored["scores"], expected.double().numpy(), atol=1e-6)
    status, error = servers.ctr.post("/score", {"events": [{**event, "gender": 9}]})
    assert status == 422 and _field(error) == ["body", "events[0]", "gender"]
    status, error = servers.ctr.post("/score", {"events": [{"user_id": 3}]})
    assert status == 422 and _field(error) == ["body", "events[0]", "item_id"]
    status, error = servers.ctr.get("/recommend/3")
    assert status == 422 and _field(error) == ["path", "user"]


def test_next_item_model_continues_a_history_as_leanrec_recommend_does(
    servers: Servers, models: Models, capsys: pytest.CaptureFixture[str]
) -> None:
    history = [ITEM_OFFSET + 3, ITEM_OFFSET + 7, ITEM_OFFSET + 3]
    capsys.readouterr()
    code = main(["recommend", "--model", str(models.next_item), "--history",
                 *map(str, history), "--k", "4", "--compact"])  # fmt: skip
    assert code == 0
    (cli,) = json.loads(capsys.readouterr().out)
    status, answer = servers.next_item.post("/next", {"history": history, "k": 4})
    assert status == 200 and answer["items"] == cli["items"]
    np.testing.assert_allclose(answer["scores"], cli["scores"], atol=1e-5)
    assert not set(history) & set(answer["items"]) and len(answer["items"]) == 4
    # every item but the two in the history: the list stops short of k rather than repeat them
    status, everything = servers.next_item.post("/next", {"history": history, "k": N_ITEMS})
    assert status == 200 and len(everything["items"]) == N_ITEMS - 2
    status, kept = servers.next_item.post(
        "/next", {"history": history, "k": N_ITEMS, "exclude_seen": False}
    )
    assert status == 200 and len(kept["items"]) == N_ITEMS
    _, described = servers.next_item.get("/model")
    assert (described["family"], described["kind"]) == ("sequential", "SASRec")
    assert described["raw_item_ids"] and described["max_length"] == 5


def test_next_item_errors_name_the_field(servers: Servers) -> None:
    status, error = servers.next_item.post("/next", {"history": [ITEM_OFFSET + 1, 42]})
    assert status == 404 and error["field"] == "history.1" and "unknown item 42" in error["detail"]
    status, error = servers.next_item.post("/next", {"history": [ITEM_OFFSET + 1], "k": 31})
    assert status == 422 and _field(error) == ["body", "k"]
    status, error = servers.next_item.post("/next", {"history": []})
    assert status == 422 and _field(error) == ["body", "history"]
    status, error = servers.next_item.get("/recommend/3")
    assert status == 422 and _field(error) == ["path", "user"]
    assert "POST /next" in error["detail"][0]["msg"]
    status, error = servers.dense.post("/next", {"history": [ITEM_OFFSET + 1]})
    assert status == 422 and _field(error) == ["body", "history"]
    assert "/recommend" in error["detail"][0]["msg"]
    status, error = servers.ctr.post("/next", {"history": [1]})
    assert status == 422 and "POST /score" in error["detail"][0]["msg"]


# ------------------------------------------------------------------------------- concurrency
def test_concurrent_callers_get_their_own_answers(servers: Servers, models: Models) -> None:
    users = models.train.user_vocab.raw_ids.tolist()
    expected = {u: servers.dense.get(f"/recommend/{u}?k=3")[1]["items"] for u in users}
    _, before = servers.dense.get("/model")
    got: dict[int, Any] = {}

    def call(user: int) -> None:
        got[user] = servers.dense.get(f"/recommend/{user}?k=3")[1]["items"]

    threads = [threading.Thread(target=call, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert got == expected
    _, after = servers.dense.get("/model")
    served = after["serving"]["batched_requests"] - before["serving"]["batched_requests"]
    assert served == len(users)  # every caller went through the batcher
