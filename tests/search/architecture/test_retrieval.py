"""AMEIR Step 1 for next-item retrieval: one-shot training, child scoring, derivation, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leanrec.data.sequential import NextItemSplit
from leanrec.models.ctr.ameir.architecture import BlockChoice
from leanrec.search.architecture.blocks import SupernetSequenceEncoder
from leanrec.search.architecture.retrieval import (
    RetrievalSearchConfig,
    build_retrieval_supernet,
    derive_retrieval_model,
    eval_subset,
    search_retrieval,
)
from leanrec.train.sequential import evaluate_next_item
from tests.train.test_sequential import _cycle_data


def _cycle_split(n_users: int = 300, n_items: int = 80, seed: int = 0) -> NextItemSplit:
    """Every user walks one fixed cycle over the items: the next item is determined."""
    data = _cycle_data(n_users=n_users, n_items=n_items, seed=seed)
    return NextItemSplit.from_interactions(data, max_length=8, n_negatives=30, seed=0)


@pytest.fixture(scope="module")
def split() -> NextItemSplit:
    return _cycle_split()


def _config(**overrides: object) -> RetrievalSearchConfig:
    base: dict[str, object] = {
        "embedding_dim": 16,
        "n_blocks": 2,
        "input_dropout": 0.0,
        "supernet_epochs": 6,
        "sampled_children": 12,
        "top_children": 3,
        "validation_subset": 100,
        "learning_rate": 1e-2,
        "batch_size": 64,
        "retrain_epochs": 8,
        "retrain_patience": 3,
        "eval_every": 2,
        "num_threads": 1,
    }
    base.update(overrides)
    return RetrievalSearchConfig(**base)  # type: ignore[arg-type]


def test_derived_model_scores_exactly_like_the_one_shot_child(split: NextItemSplit) -> None:
    one_shot = build_retrieval_supernet(split.n_items, _config()).eval()
    child = (
        BlockChoice("layernorm", "conv3", "relu"),
        BlockChoice("none", "self_attention2", "gelu"),
    )
    derived = derive_retrieval_model(one_shot, child).eval()
    a = evaluate_next_item(one_shot, split.valid, "sampled", (5,))
    b = evaluate_next_item(derived, split.valid, "sampled", (5,))
    np.testing.assert_array_equal(a.per_user["rank"], b.per_user["rank"])
    # only the chosen operations are kept: far fewer parameters than the one-shot model
    assert derived.num_parameters()["encoder"] < one_shot.num_parameters()["encoder"] / 3
    assert derived.num_parameters()["embedding"] == one_shot.num_parameters()["embedding"]


def test_eval_subset_keeps_rows_aligned(split: NextItemSplit) -> None:
    subset = eval_subset(split.valid, 50, seed=3)
    assert len(subset) == 50
    rows = np.searchsorted(split.valid.users, subset.users)
    np.testing.assert_array_equal(split.valid.targets[rows], subset.targets)
    np.testing.assert_array_equal(split.valid.inputs[rows], subset.inputs)
    for i, row in enumerate(rows):
        full = split.valid.history_items[
            split.valid.history_indptr[row] : split.valid.history_indptr[row + 1]
        ]
        part = subset.history_items[subset.history_indptr[i] : subset.history_indptr[i + 1]]
        np.testing.assert_array_equal(full, part)
    assert eval_subset(split.valid, 10**6, seed=0) is split.valid


def test_search_learns_the_cycle_and_resumes_to_the_same_model(
    split: NextItemSplit, tmp_path
) -> None:
    config = _config()
    result = search_retrieval(split, config, tmp_path / "run")
    assert result.valid["hit@5"] > 0.5  # a random ranking of 31 candidates gives 5 / 31
    children = json.loads((tmp_path / "run" / "children.json").read_text())["children"]
    assert 1 <= len(children) <= config.sampled_children
    finalists = [c for c in children if "valid_ndcg@5" in c]
    assert len(finalists) == min(config.top_children, len(children))
    # the finalists are the best children of the subset, and the chosen one the best finalist
    cut = min(c["subset_ndcg@5"] for c in finalists)
    assert all(c["subset_ndcg@5"] <= cut for c in children if "valid_ndcg@5" not in c)
    best = max(finalists, key=lambda c: c["valid_ndcg@5"])
    assert [BlockChoice(**b) for b in best["blocks"]] == list(result.choices)
    # a second call finds everything on disk and returns the same model
    again = search_retrieval(split, config, tmp_path / "run")
    assert again.choices == result.choices
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key


def test_one_shot_training_killed_midway_resumes_to_the_same_children_scores(
    split: NextItemSplit, tmp_path
) -> None:
    config = _config(retrain_epochs=2)
    search_retrieval(split, _config(supernet_epochs=3, retrain_epochs=2), tmp_path / "a")
    # simulate a kill after the one-shot training: drop everything after its checkpoint
    for name in ("children.json", "retrained.pt", "retrain.pt"):
        (tmp_path / "a" / name).unlink(missing_ok=True)
    resumed = search_retrieval(split, config, tmp_path / "a")
    straight = search_retrieval(split, config, tmp_path / "b")
    assert resumed.choices == straight.choices
    a = json.loads((tmp_path / "a" / "children.json").read_text())["children"]
    b = json.loads((tmp_path / "b" / "children.json").read_text())["children"]
    assert [c["subset_ndcg@5"] for c in a] == pytest.approx([c["subset_ndcg@5"] for c in b])


def test_input_dropout_must_be_below_one() -> None:
    from leanrec.search.architecture.blocks import BehaviorSupernet

    with pytest.raises(ValueError, match="input_dropout"):
        SupernetSequenceEncoder(
            BehaviorSupernet(8, 1, has_target=False, causal=True), None, input_dropout=1.0
        )


def test_retrieval_experiment_writes_the_table_and_resumes(tmp_path) -> None:
    from leanrec.search.architecture.config import RetrievalExperiment
    from leanrec.search.architecture.experiment import run_experiment

    data_split = _cycle_split(n_users=200)
    calls: list[int] = []

    def splits(seed: int) -> tuple[NextItemSplit, NextItemSplit]:
        calls.append(seed)
        return data_split, data_split

    exp = RetrievalExperiment(
        out_dir=str(tmp_path / "exp"),
        seeds=(0,),
        baseline_epochs=2,
        max_length=8,
        config=_config(supernet_epochs=2, retrain_epochs=2, sampled_children=4, top_children=2),
    )
    summary = run_experiment(exp, log=lambda message: None, splits=splits).summary
    assert set(summary["methods"]) == {"gru4rec", "sasrec", "ameir"}
    rows = json.loads((tmp_path / "exp" / "rows.json").read_text())
    for row in rows:
        assert 0.0 <= row["test_ndcg@5"] <= row["test_hit@5"] <= 1.0
        assert row["parameters"] > row["encoder_parameters"] > 0
    ameir = next(r for r in rows if r["method"] == "ameir")
    saved = json.loads((tmp_path / "exp" / "architecture_seed0.json").read_text())
    assert saved == ameir["architecture"] and len(saved["blocks"]) == 2
    table = (tmp_path / "exp" / "table.md").read_text()
    assert table.count("\n") == 2 + 3
    assert (tmp_path / "exp" / "ndcg.png").stat().st_size > 0
    # everything is on disk: a second run trains nothing and loads no data
    again = run_experiment(exp, log=lambda message: None, splits=splits).summary
    assert calls == [0]
    assert again["methods"]["ameir"]["test_ndcg@5"] == summary["methods"]["ameir"]["test_ndcg@5"]


def test_saved_architecture_rebuilds_the_searched_model(split: NextItemSplit) -> None:
    from leanrec.models.seq.searched import build_searched_model
    from leanrec.search.architecture.retrieval import RetrievalSearchResult

    config = _config(input_dropout=0.2)
    one_shot = build_retrieval_supernet(split.n_items, config, split.max_length).eval()
    child = (BlockChoice("none", "bigru", "swish"), BlockChoice("layernorm", "conv1", "relu"))
    derived = derive_retrieval_model(one_shot, child).eval()
    result = RetrievalSearchResult(child, derived, {}, 0.0, 0.0, 1)
    saved = json.loads(json.dumps(result.architecture_json(config)))
    assert saved["positions"] is True and saved["final_norm"] is True
    rebuilt = build_searched_model(split.n_items, saved, split.max_length, seed=5).eval()
    rebuilt.load_state_dict(derived.state_dict())  # strict: the same modules and shapes
    ids = torch.from_numpy(split.valid.inputs[:16])
    assert torch.equal(rebuilt(ids), derived(ids))
    assert rebuilt.encoder.input_dropout.p == 0.2  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="next-item"):
        build_searched_model(split.n_items, {"blocks": []})
