"""CIESS presets: the paper's Eq. 15 admission, fresh search steps, each of leanrec's additions
as a switch of its own, the preset in config.json and on resume, and serving memory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from leanrec.cli import main as leanrec
from leanrec.models.compress import compress, load_compressed, save_compressed
from leanrec.runner.rundir import jsonable
from leanrec.search.embedding_size import (
    LEANREC_ADDITIONS,
    PRESETS,
    EmbeddingSizeExperiment,
    SizeCandidate,
    apply_preset,
    preset_label,
    run_experiment,
)
from leanrec.search.embedding_size import baselines as baselines_module
from leanrec.search.embedding_size.config import FROM_SCRATCH_MIN_EPOCHS, experiment_from_dict
from leanrec.search.embedding_size.deadline import TimeLimitError, check_time_limit, time_limit
from leanrec.search.embedding_size.environment import SizeSearchEnvironment
from leanrec.search.embedding_size.memory import packed_memory, serving_bytes
from leanrec.search.embedding_size.retrain import build_masked_model, select_candidates
from leanrec.train.bpr import TrainerConfig
from tests.search.embedding_size.search_job import tiny_config, tiny_split_and_model


def _candidate(sparsity: float, quality: float) -> SizeCandidate:
    sizes = np.array([1, 2], dtype=np.int16)
    return SizeCandidate(1, 1, sizes, sizes, quality, sparsity)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"search.retrain.validate_initial": ...}``: every leaf field of a config."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            out.update(_flat(getattr(value, f.name), f"{prefix}{f.name}."))
        return out
    return {prefix.rstrip("."): value}


# ------------------------------------------------------------------ Eq. 15 admission
def test_admission_only_never_admits_a_mask_above_the_budget() -> None:
    candidates = [_candidate(s, q) for s, q in [(0.95, 0.2), (0.7, 0.99), (0.85, 0.5), (0.9, 0.4)]]
    admitted = select_candidates(candidates, 0.8, top=3, fill=False)
    # by q̄ among the masks at >= 80% sparsity; the best-quality 70% mask is never admitted
    assert [c.sparsity for c in admitted] == [0.85, 0.9, 0.95]
    assert [c.sparsity for c in select_candidates(candidates, 0.9, top=3, fill=False)] == [
        0.9,
        0.95,
    ]
    assert select_candidates(candidates, 0.96, top=2, fill=False) == []
    # leanrec's fill-in tops the set up with the sparsest masks that miss c
    filled = select_candidates(candidates, 0.96, top=2, fill=True)
    assert [c.sparsity for c in filled] == [0.95, 0.9]


def _tiny_experiment(tmp_path: Path, name: str, **search: Any) -> EmbeddingSizeExperiment:
    trainer = TrainerConfig(
        max_epochs=2, batch_size=2048, learning_rate=0.01, eval_every=1, ks=[5, 20], progress=False
    )
    config = dataclasses.replace(
        tiny_config(), pretrain=trainer, retrain=trainer, fresh_epochs=1, fresh_batch_size=512
    )
    exp = EmbeddingSizeExperiment(
        dataset="synthetic", model="mf", out_dir=str(tmp_path / name), methods=("ciess",),
        search=config,
    )  # fmt: skip
    exp = apply_preset(exp, "paper")
    fields = {"screen_masks": 0, **search}
    return dataclasses.replace(exp, search=dataclasses.replace(exp.search, **fields))


def test_paper_preset_reports_an_unreached_budget_and_never_rescales(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rescaling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the paper preset rescaled a mask")

    monkeypatch.setattr(baselines_module, "fit_candidate", no_rescaling)
    # 0.99 is met by no searched mask of this tiny search (sizes of at least 1 of 16 leave
    # at most 93.75% sparsity)
    exp = _tiny_experiment(tmp_path, "paper", target_sparsities=(0.5, 0.99))
    result = run_experiment(exp, log=lambda message: None)
    rows = {r["target_sparsity"]: r for r in result.rows if r["method"] == "ciess"}
    assert rows[0.99]["reached"] is False
    assert not any(key.startswith("test_") for key in rows[0.99])
    assert rows[0.99]["sparsity"] < 0.99 and rows[0.99]["preset"] == "paper"
    assert "not reached" in (tmp_path / "paper" / "table.md").read_text()
    # the 50% model is a searched mask as searched: its sizes are one candidate's exactly
    state = torch.load(tmp_path / "paper" / "search_state.pt", weights_only=False)
    searched = {
        (tuple(c["user_sizes"].tolist()), tuple(c["item_sizes"].tolist()))
        for c in state["candidates"]
        if c["sparsity"] >= 0.5
    }
    kept = np.load(tmp_path / "paper" / "ciess_c50_sizes.npz")
    assert (tuple(kept["users"].tolist()), tuple(kept["items"].tolist())) in searched
    assert rows[0.5]["sparsity"] >= 0.5
    # the search ran from fresh models against the ordinary reference: no warm start trained
    out = tmp_path / "paper"
    assert (out / "ordinary.pt").exists() and not (out / "warm_start.pt").exists()


def test_fresh_search_steps_start_from_one_initialisation_and_train_whole_epochs() -> None:
    split, model = tiny_split_and_model(16)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    reference = build_masked_model(split, "mf", {}, 16, seed=11).state_dict()
    env = SizeSearchEnvironment(
        model, split, (5, 20), 8, 500, 0.01, 1, 1e-4, init, seed=1,
        reference_state=reference, fresh_epochs=2,
    )  # fmt: skip
    steps = []
    env_rows = env._inner_batches
    env._inner_batches = lambda: (steps.append(len(b)) or b for b in env_rows())  # type: ignore[method-assign]
    sizes_u, sizes_i = np.full(split.train.n_users, 4), np.full(split.train.n_items, 4)
    env.step(sizes_u, sizes_i)
    n = len(split.train)
    # 2 epochs, each every training row once, in ceil(n / 500) batches
    assert sum(steps) == 2 * n and len(steps) == 2 * -(-n // 500)
    # Eq. 7's reference is the given model, not the start
    assert env.reference is not None
    model.load_state_dict(reference)
    env.reference_state = reference
    assert np.allclose(env.set_reference().users, env.reference.users, equal_nan=True)
    # every step starts from the same initialisation, whatever the previous step trained
    first = {k: v.clone() for k, v in env.model.state_dict().items()}
    env.step(sizes_u, sizes_i)
    env.model.load_state_dict(init)
    assert any(not torch.equal(first[k], v) for k, v in env.model.state_dict().items())
    assert all(torch.equal(env.warm_state[k], init[k]) for k in init)


def test_graph_models_of_the_search_propagate_in_full_unless_told() -> None:
    """The search's figures were measured with full propagation: a graph model built for it
    pins ``propagation="full"`` whatever its size ("auto" would switch to snapshots above 1M
    edges); an explicit option is kept, and a model without the option is left alone."""
    split, _ = tiny_split_and_model(16)
    lightgcn = build_masked_model(split, "lightgcn", {"sampled_above_edges": 1}, 16, seed=0)
    assert lightgcn.config.propagation == "full"
    assert lightgcn.training_propagation == "full"
    told = build_masked_model(split, "ngcf", {"propagation": "snapshot"}, 16, seed=0)
    assert told.training_propagation == "snapshot"
    assert not hasattr(build_masked_model(split, "mf", {}, 16, seed=0).config, "propagation")


# ------------------------------------------------------------------ presets and switches
def test_each_switch_changes_exactly_its_own_fields() -> None:
    leanrec_exp = apply_preset(EmbeddingSizeExperiment(), "leanrec")
    base = _flat(leanrec_exp)
    for name, change in LEANREC_ADDITIONS.items():
        without = _flat(apply_preset(EmbeddingSizeExperiment(), "leanrec", without=(name,)))
        differing = {k for k in base if base[k] != without[k]}
        assert differing == set(change), name
        assert all(without[path] == value for path, value in change.items()), name
        assert preset_label(apply_preset(EmbeddingSizeExperiment(), "leanrec", (name,))) == (
            f"leanrec without {name}"
        )
    # every addition off is the paper preset, and the two presets differ in exactly those
    every = apply_preset(EmbeddingSizeExperiment(), "leanrec", tuple(LEANREC_ADDITIONS))
    assert _flat(every) == {**_flat(apply_preset(EmbeddingSizeExperiment(), "paper")),
                            "preset": "leanrec"}  # fmt: skip
    paper = _flat(apply_preset(EmbeddingSizeExperiment(), "paper"))
    changed = {path for change in LEANREC_ADDITIONS.values() for path in change}
    assert {k for k in base if base[k] != paper[k]} == changed | {"preset"}
    # the paper's values where it is specific
    assert paper["search.reward_lambda"] == 0.4 and paper["search.reward_lambda_final"] is None
    assert paper["search.item_quality"] == "users" and paper["search.rescale_to_budget"] is False
    assert paper["search.warm_start"] is False and paper["search.fresh_epochs"] == 5
    assert paper["search.retrain_from_warm_start"] is False
    # a retraining from scratch gets a warm-up before early stopping; from the warm start none
    assert paper["search.retrain.min_epochs"] == FROM_SCRATCH_MIN_EPOCHS == 30
    assert base["search.retrain.min_epochs"] == 0
    for preset in PRESETS:  # dense Adam stays pinned
        flat = _flat(apply_preset(EmbeddingSizeExperiment(), preset))
        assert flat["search.retrain.embedding_optimizer"] == "dense_adam"
        assert flat["search.pretrain.embedding_optimizer"] == "dense_adam"


def test_the_python_api_takes_a_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    import leanrec.api.embedding_size as api

    seen: list[EmbeddingSizeExperiment] = []
    monkeypatch.setattr(api, "run_experiment", lambda exp, log: seen.append(exp))
    api.search_embedding_sizes(EmbeddingSizeExperiment(), preset="paper")
    api.search_embedding_sizes(EmbeddingSizeExperiment(), preset="leanrec", without=("screen",))
    assert [preset_label(e) for e in seen] == ["paper", "leanrec without screen"]
    with pytest.raises(ValueError, match="give preset"):
        api.search_embedding_sizes(EmbeddingSizeExperiment(), without=("screen",))


def test_an_option_set_after_a_preset_shows_in_the_label() -> None:
    paper = apply_preset(EmbeddingSizeExperiment(), "paper")
    assert preset_label(paper) == "paper"
    changed = dataclasses.replace(paper, search=dataclasses.replace(paper.search, screen_masks=300))
    assert preset_label(changed) == "paper with screen"
    # a value neither preset has
    odd = dataclasses.replace(changed, search=dataclasses.replace(changed.search, screen_masks=5))
    assert preset_label(odd) == "custom (screen)"
    with pytest.raises(ValueError, match="unknown preset"):
        apply_preset(paper, "papre")
    with pytest.raises(ValueError, match="unknown additions"):
        apply_preset(paper, "leanrec", without=("warmstart",))


def test_the_preset_round_trips_through_config_json_and_resume(tmp_path: Path) -> None:
    exp = _tiny_experiment(tmp_path, "run", target_sparsities=(0.5,))
    result = run_experiment(exp, log=lambda message: None)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    again = experiment_from_dict(saved)
    assert again == exp and preset_label(again) == "paper" and again.preset == "paper"
    assert jsonable(again) == saved
    assert json.loads((tmp_path / "run" / "results.json").read_text())["preset"] == "paper"
    # a finished search resumes under its own preset, and refuses another one's
    run_experiment(dataclasses.replace(again, search=dataclasses.replace(
        again.search, target_sparsities=(0.6,))), log=lambda message: None)  # fmt: skip
    leanrec_exp = apply_preset(again, "leanrec")
    leanrec_exp = dataclasses.replace(
        leanrec_exp, search=dataclasses.replace(leanrec_exp.search, target_sparsities=(0.7,))
    )
    with pytest.raises(ValueError, match="other settings"):
        run_experiment(leanrec_exp, log=lambda message: None)
    assert {r["preset"] for r in result.rows if r["method"] == "ciess"} == {"paper"}


def test_cli_preset_and_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[EmbeddingSizeExperiment] = []

    def fake_run(experiment: EmbeddingSizeExperiment, **kwargs: Any) -> Any:
        seen.append(experiment)
        return type("Result", (), {"rows": [1]})()

    import leanrec.cli as cli

    monkeypatch.setattr(cli, "_run_table", lambda run, exp: fake_run(exp))
    common = ["experiment", "embedding-size", "--dataset", "synthetic", "--out", str(tmp_path)]
    assert leanrec([*common, "--preset", "paper"]) == 0
    assert leanrec([*common, "--preset", "leanrec", "--without", "screen", "rising_lambda"]) == 0
    assert leanrec([*common, "--preset", "paper", "--top_masks", "3"]) == 0
    assert leanrec([*common, "--preset", "paper", "--pruning-base", "warm_start"]) == 0
    assert leanrec(common) == 0
    labels = [preset_label(e) for e in seen]
    assert labels[:2] == ["paper", "leanrec without rising_lambda, screen"]
    assert seen[2].search.top_masks == 3 and seen[2].search.rescale_to_budget is False
    assert labels[3] == "paper with pruning_base"
    assert seen[4].preset is None and seen[4].search == EmbeddingSizeExperiment().search


# ------------------------------------------------------------------ serving memory
def test_a_served_packed_lightgcn_holds_dense_final_embeddings(tmp_path: Path) -> None:
    from leanrec.models.compress import set_entity_sizes

    split, _ = tiny_split_and_model(16)
    model = build_masked_model(split, "lightgcn", {}, 16, seed=3)
    n_users, n_items = split.train.n_users, split.train.n_items
    set_entity_sizes(model, np.full(n_users, 2), np.full(n_items, 2))
    memory = packed_memory(model, None, None, tmp_path / "m.safetensors")
    # packed tables: 2 floats a row plus an int64 offset per row and table, by hand
    assert memory["stored_bytes"] == compress(model).embedding_bytes()
    assert memory["stored_bytes"] < (n_users + n_items) * 16 * 4 / 2
    assert memory["file_bytes"] == (tmp_path / "m.safetensors").stat().st_size
    # while scoring, the cache of final embeddings is (|U| + |I|, d_max) float32 on top
    cache = (n_users + n_items) * 16 * 4
    assert memory["serving_while_scoring_bytes"] - memory["serving_at_rest_bytes"] >= cache
    # the same model served from the file scores as the masked one (nothing changed)
    served, _, _ = load_compressed(tmp_path / "m.safetensors")
    model.eval()
    users = torch.arange(n_users)
    assert torch.allclose(served.score_all(users), model.score_all(users), atol=1e-6)


def test_a_served_packed_mf_holds_its_packed_tables_and_int32_seen_items(tmp_path: Path) -> None:
    from leanrec.models.compress import set_entity_sizes

    split, _ = tiny_split_and_model(16)
    mf = build_masked_model(split, "mf", {}, 16, seed=3)
    n_users, n_items = split.train.n_users, split.train.n_items
    rng = np.random.default_rng(0)
    user_sizes, item_sizes = rng.integers(0, 17, n_users), rng.integers(0, 17, n_items)
    set_entity_sizes(mf, user_sizes, item_sizes)
    path = save_compressed(mf, tmp_path / "mf.safetensors")
    served, _, _ = load_compressed(path)
    assert served.scores_from_packed_tables()
    # at rest, by hand: the packed values and int32 offsets, the seen items' int32 CSR
    seen = int(split.train.user_items()[0][-1])
    tables = 4 * (int(user_sizes.sum()) + int(item_sizes.sum()) + n_users + 1 + n_items + 1)
    held = serving_bytes(served)
    assert held["at_rest"] == tables + 4 * (n_users + 1 + seen)
    # scoring caches nothing: no (|U| + |I|, d_max) padded rows while it scores
    assert held["while_scoring"] == held["at_rest"]
    mf.eval()
    users = torch.arange(n_users)
    assert torch.allclose(served.score_all(users), mf.score_all(users), atol=1e-6)
    assert torch.equal(served.recommend(users, k=5)[0], mf.recommend(users, k=5)[0])


# ------------------------------------------------------------------ time limit
def test_a_run_stopped_at_every_checkpoint_resumes_to_the_uninterrupted_rows(
    tmp_path: Path,
) -> None:
    """``time_limit(0)`` stops the run at its first checkpoint each time it is started. Run
    again and again, the paper preset's run (ordinary pretraining, search, the ``l = 2``
    retrainings of CIESS, SU's retraining) ends with the rows of an uninterrupted run, and
    every leg made progress: a stop in the second retraining of a budget keeps the first one's
    finished checkpoint (retraining it again would stop in it forever)."""
    exp = _tiny_experiment(tmp_path, "whole", target_sparsities=(0.5,))
    exp = dataclasses.replace(exp, methods=("ciess", "su"))
    whole = run_experiment(exp, log=lambda message: None).rows
    pieces = dataclasses.replace(exp, out_dir=str(tmp_path / "pieces"))
    stops: list[str] = []
    for _ in range(100):
        try:
            with time_limit(0.0):
                rows = run_experiment(pieces, log=lambda message: None).rows
            break
        except TimeLimitError as stop:
            stops.append(str(stop))
    else:
        raise AssertionError(f"no end after {len(stops)} stops; the last: {stops[-1]}")
    search = exp.search
    # 2 pretraining epochs, every search iteration, 2 epochs of each of 2 CIESS masks and SU
    assert len(stops) == 2 + search.episodes * search.iterations + 2 * 2 + 2
    assert sum("search iteration" in s for s in stops) == search.episodes * search.iterations
    assert all("run the same command again" in s for s in stops)
    figures = [{k: v for k, v in r.items() if k.startswith("test_")} for r in rows]
    assert figures == [{k: v for k, v in r.items() if k.startswith("test_")} for r in whole]
    assert [r["method"] for r in rows] == [r["method"] for r in whole]
    assert not any((tmp_path / "pieces" / "retrain").glob("*.pt"))


def test_time_limit_raises_only_once_spent_and_only_inside_its_block() -> None:
    check_time_limit("nothing")  # no limit
    with time_limit(3600.0):
        check_time_limit("an early checkpoint")
    with time_limit(0.0), pytest.raises(TimeLimitError, match="after the checkpoint"):
        check_time_limit("the checkpoint")
    check_time_limit("after the block")
    with pytest.raises(ValueError, match=">= 0"), time_limit(-1.0):
        pass
