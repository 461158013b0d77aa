"""AMEIR models, the three-step search, the NAS baselines and the experiment table."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest
import torch

from leanrec.data.behavior import BehaviorSplit
from leanrec.models.ctr import load_ctr_model
from leanrec.models.ctr.ameir.architecture import Architecture, BlockChoice
from leanrec.models.ctr.ameir.model import AMEIRConfig, AMEIRModel
from leanrec.runner import Executor, init_ray, shutdown_ray
from leanrec.search.architecture import policy as search_policy
from leanrec.search.architecture.baselines import (
    JointOneShotModel,
    embedded_field_names,
    random_search_from_scratch,
    sample_architecture,
    sample_interactions,
    single_stage_one_shot,
)
from leanrec.search.architecture.config import ArchitectureExperiment, ArchitectureSearchConfig
from leanrec.search.architecture.experiment import run_experiment
from leanrec.search.architecture.model import MLPChoice, MLPStepModel, derive_ameir_model
from leanrec.search.architecture.policy import search_architecture
from leanrec.train.pointwise import evaluate_ctr
from tests.models.ctr.synthetic import make_samples


@pytest.fixture(scope="module")
def split() -> BehaviorSplit:
    train, _ = make_samples(1500, seed=1)
    valid, _ = make_samples(400, seed=2)
    test, _ = make_samples(400, seed=3)
    return BehaviorSplit(train, valid, test, train.feature_map, name="synthetic")


def tiny_config(**changes: object) -> ArchitectureSearchConfig:
    base = ArchitectureSearchConfig(
        embedding_dim=4,
        behavior_blocks=2,
        predefined_mlp=(16, 8),
        interactions=2,
        evolution_cycles=2,
        keep_per_cycle=3,
        sampled_children=6,
        top_children=2,
        validation_subset=200,
        supernet_epochs=1.0,
        batch_size=256,
        retrain_epochs=2,
        retrain_patience=1,
        learning_rate=0.03,
        num_threads=1,
        progress=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _step3(split: BehaviorSplit, seed: int = 0) -> MLPStepModel:
    torch.manual_seed(seed)
    model = MLPStepModel(
        split.feature_map,
        AMEIRConfig(embedding_dim=4, behavior_blocks=2, mlp_layers=2),
        blocks=(BlockChoice("layernorm", "conv3", "relu"), BlockChoice("none", "bigru", "gelu")),
        interactions=(("age", "gender"), ("gender", "item_id", "user_id")),
    )
    return model


def test_derived_model_matches_step3_child_and_counts_its_parameters(split) -> None:
    model = _step3(split)
    rng = np.random.default_rng(0)
    batch = split.valid.batch(np.arange(64))
    for _ in range(4):
        choice = model.sample(rng)
        model.eval()
        model.active = choice
        expected = model(batch)
        derived = derive_ameir_model(model, choice).eval()
        assert torch.allclose(derived(batch), expected, atol=1e-5)
        total = sum(p.numel() for p in derived.parameters())
        assert model.child_parameters(choice) == total


def test_parameter_budget_bounds_every_sampled_child_and_rejects_the_impossible(split) -> None:
    model = _step3(split)
    rng = np.random.default_rng(1)
    smallest = min(model.child_parameters(model.sample(rng)) for _ in range(50))
    model.max_parameters = smallest + 200
    for _ in range(30):
        assert model.child_parameters(model.sample(rng)) <= model.max_parameters
    model.max_parameters = model.embedding_parameters()  # less than any child
    with pytest.raises(ValueError, match="max_parameters"):
        model.sample(rng, attempts=50)


def test_largest_child_is_the_biggest_within_the_budget(split) -> None:
    model = _step3(split)
    n = model.input_dim
    assert model.largest_widths() == (n, n)  # no budget: the full max-size matrices
    rng = np.random.default_rng(2)
    sizes = sorted({model.child_parameters(model.sample(rng)) for _ in range(200)})
    model.max_parameters = sizes[len(sizes) // 2]
    widths = model.largest_widths()
    relu = ("relu", "relu")
    largest = model.child_parameters(MLPChoice(widths, relu))
    assert largest <= model.max_parameters
    assert widths[0] >= widths[1]
    # no child of the grid within the budget is bigger (every pair of width ratios, by hand)
    ratios = [round(0.1 * k, 1) for k in range(1, 11)]
    for a in ratios:
        for b in ratios:
            if b > a:
                continue
            child = MLPChoice((max(1, round(a * n)), max(1, round(b * n))), relu)
            size = model.child_parameters(child)
            assert size > model.max_parameters or size <= largest
    drawn = model.sample_largest(rng)
    assert drawn.widths == widths and len(drawn.activations) == 2
    model.max_parameters = model.embedding_parameters()
    with pytest.raises(ValueError, match="no MLP child fits"):
        model.largest_widths()


def test_architecture_json_rebuilds_a_model_that_saves_and_loads(split, tmp_path) -> None:
    architecture = Architecture(
        blocks=(BlockChoice("layernorm", "self_attention2", "swish"),),
        interactions=(("age", "item_id"),),
        mlp_widths=(0.5, 0.2),
        mlp_activations=("dice", "relu"),
    )
    path = architecture.save(tmp_path / "arch.json")
    loaded = Architecture.load(path)
    assert loaded == architecture
    torch.manual_seed(0)
    model = AMEIRModel.from_architecture(split.feature_map, loaded, embedding_dim=4).eval()
    batch = split.test.batch(np.arange(32))
    model.save(tmp_path / "model.pt")
    again = load_ctr_model(tmp_path / "model.pt").eval()
    assert torch.equal(again(batch), model(batch))
    with pytest.raises(ValueError, match="non-increasing"):
        Architecture(mlp_widths=(0.2, 0.5), mlp_activations=("relu", "relu"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"blocks": [{"layer": "lstm"}]}))
    with pytest.raises(ValueError, match=r"bad\.json.*lstm"):
        Architecture.load(bad)


def test_joint_one_shot_children_derive_exactly(split) -> None:
    torch.manual_seed(0)
    model = JointOneShotModel(
        split.feature_map, AMEIRConfig(embedding_dim=4, behavior_blocks=2), n_interactions=2
    ).eval()
    rng = np.random.default_rng(3)
    batch = split.valid.batch(np.arange(32))
    for _ in range(3):
        choice = model.sample(rng)
        model.active = choice
        expected = model(batch)
        derived = model.derive(choice).eval()
        assert torch.allclose(derived(batch), expected, atol=1e-5)
        model._use_child(choice)
        assert model.child_parameters(choice.mlp) == sum(p.numel() for p in derived.parameters())


def test_random_search_children_take_the_fm_shortcut_setting(split) -> None:
    names = embedded_field_names(split.feature_map)
    for on in (True, False):
        child = sample_architecture(np.random.default_rng(0), names, tiny_config(fm_shortcut=on))
        assert child.fm_shortcut is on


def test_sampled_interactions_are_distinct_canonical_and_bounded() -> None:
    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d", "e"]
    for _ in range(20):
        found = sample_interactions(rng, names, 4, 3)
        assert len(set(found)) == 4
        for interaction in found:
            assert 2 <= len(interaction) <= 3 and tuple(sorted(interaction)) == interaction


def test_search_runs_three_steps_writes_json_and_resumes(split, tmp_path, monkeypatch) -> None:
    config = tiny_config(retrain_epochs=5, retrain_patience=5, readout=("mean", "last"))
    result = search_architecture(split, config, tmp_path / "run")
    arch = result.architecture
    assert len(arch.blocks) == 2 and len(arch.interactions) == 2
    assert arch.readout == ("mean", "last")  # the configured readout reaches the final model
    assert result.model.behavior.readout_layer.parts == ("mean", "last")
    assert len(arch.mlp_widths) == config.mlp_layers
    for name in ("step1.json", "step2.json", "step3.json", "architecture.json", "model.pt"):
        assert (tmp_path / "run" / name).is_file()
    assert Architecture.load(tmp_path / "run" / "architecture.json") == arch
    step2 = json.loads((tmp_path / "run" / "step2.json").read_text())
    kept = {tuple(i) for cycle in step2["cycles"] for i in cycle["kept"]}
    assert {tuple(i) for i in step2["chosen"]} <= kept  # chosen among the kept ones
    assert step2["final_auc"] == sorted(step2["final_auc"], reverse=True)
    assert result.valid["auc"] == pytest.approx(evaluate_ctr(result.model, split.valid)["auc"])
    assert result.valid["auc"] > 0.55  # the retrained model learned something

    # a resumed search reads steps 1-3 from disk instead of searching again
    def fail(*args, **kwargs):
        raise AssertionError("finished step was run again")

    assert (tmp_path / "run" / "step3_state.pt").is_file()
    monkeypatch.setattr(search_policy, "step1_blocks", fail)
    monkeypatch.setattr(search_policy, "step2_interactions", fail)
    monkeypatch.setattr(search_policy, "step3_mlp", fail)
    torch.manual_seed(12345)  # the resumed search restores torch's generator after Step 3
    again = search_architecture(split, config, tmp_path / "run")
    # the resumed search still reports the cost of the steps it read from disk
    finished = [
        json.loads((tmp_path / "run" / f"{n}.json").read_text()) for n in ("step1", "step2")
    ]
    assert all(r["wall_seconds"] > 0 for r in finished)
    assert again.search_seconds > sum(r["wall_seconds"] for r in finished)
    assert again.architecture.blocks == arch.blocks
    assert again.architecture.interactions == arch.interactions
    # Step 3's weights and generator state read back: the same MLP and the same retrained model
    assert again.architecture == arch
    assert again.valid["auc"] == result.valid["auc"]
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], tensor), name


def test_experiment_table_keeps_searched_models_within_the_best_baseline(split, tmp_path) -> None:
    exp = ArchitectureExperiment(
        out_dir=str(tmp_path / "exp"),
        baselines=("dnn", "deepfm"),
        methods=("ameir", "one_shot", "random"),
        seeds=(0,),
        baseline_epochs=2,
        config=tiny_config(embedding_dim=16),
    )
    summary = run_experiment(exp, log=lambda m: None, split=split).summary
    methods = summary["methods"]
    assert set(methods) == {"dnn", "deepfm", "ameir", "one_shot", "random"}
    budget = summary["parameter_budget"]
    assert budget == methods[summary["best_baseline"]]["parameters"]["mean"]
    for name in ("ameir", "one_shot", "random"):
        assert methods[name]["parameters"]["mean"] <= budget
    table = (tmp_path / "exp" / "table.md").read_text()
    assert "| ameir |" in table and (tmp_path / "exp" / "auc.png").is_file()
    rows = json.loads((tmp_path / "exp" / "rows.json").read_text())
    assert len(rows) == 5
    # rerunning finds every row done and trains nothing
    again = run_experiment(exp, log=lambda m: None, split=split).summary
    assert again["methods"]["ameir"] == methods["ameir"]


def test_without_baselines_a_search_keeps_the_configs_cap(split, tmp_path) -> None:
    """No baseline sets a budget: ``max_parameters`` as given (one below the uncapped search's
    size) still bounds the searched model."""

    def searched(out: str, cap: int | None) -> int:
        exp = ArchitectureExperiment(
            out_dir=str(tmp_path / out),
            baselines=(),
            methods=("one_shot",),
            seeds=(0,),
            config=tiny_config(embedding_dim=16, max_parameters=cap),
        )
        summary = run_experiment(exp, log=lambda m: None, split=split).summary
        return int(summary["methods"]["one_shot"]["parameters"]["mean"])

    uncapped = searched("free", None)
    assert searched("capped", uncapped - 1) <= uncapped - 1


@pytest.mark.parametrize("favoured", ["dnn", "deepfm"])
def test_parameter_cap_comes_from_every_seed_in_the_rows(split, tmp_path, favoured) -> None:
    """A one-seed run next to other seeds' baseline rows picks the best baseline on the mean
    over all of them (seed 7's made-up rows decide it whichever way seed 1 alone would go)."""
    other = "deepfm" if favoured == "dnn" else "dnn"
    out = tmp_path / "exp"
    out.mkdir()
    made_up = [
        {"method": favoured, "seed": 7, "valid_auc": 1.0, "parameters": 10**9},
        {"method": other, "seed": 7, "valid_auc": 0.0, "parameters": 10**9},
    ]
    (out / "rows.json").write_text(json.dumps(made_up))
    exp = ArchitectureExperiment(
        out_dir=str(out),
        baselines=("dnn", "deepfm"),
        methods=("one_shot",),
        seeds=(1,),
        baseline_epochs=1,
        config=tiny_config(embedding_dim=16),
    )
    summary = run_experiment(exp, log=lambda m: None, split=split).summary
    assert summary["best_baseline"] == favoured
    # the cap is the favoured baseline's real size (seed 1), not seed 7's made-up one
    assert summary["parameter_budget"] == summary["methods"][favoured]["parameters"]["mean"]


def _saved_architecture_and_data(tmp_path, monkeypatch):
    """A small saved CTR architecture (its JSON path), with a tiny ml-1m-partial beside it."""
    from tests.data.test_behavior import write_ml1m

    write_ml1m(tmp_path / "data" / "movielens-1m-partial", ratings_name="ratings.first487650.dat")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return Architecture(
        blocks=(BlockChoice("none", "avg_pool3", "relu"),),
        interactions=(("age", "gender"),),
        mlp_widths=(0.5,),
        mlp_activations=("relu",),
    ).save(tmp_path / "arch.json")


def test_cli_trains_a_saved_architecture(tmp_path, monkeypatch, capsys) -> None:
    from leanrec.cli import main

    arch = _saved_architecture_and_data(tmp_path, monkeypatch)
    run_dir = tmp_path / "run"
    code = main(
        [
            "train",
            "--architecture",
            str(arch),
            "--dataset",
            "ml-1m-ctr",
            "--data-dir",
            str(tmp_path / "data"),
            "--run-dir",
            str(run_dir),
            "--max_epochs",
            "1",
            "--embedding_dim",
            "4",
        ]
    )
    assert code == 0
    assert "test AUC" in capsys.readouterr().out
    model = load_ctr_model(run_dir / "model.pt")
    assert isinstance(model, AMEIRModel) and model.architecture == Architecture.load(arch)
    assert json.loads((run_dir / "metrics.json").read_text())["best_epoch"] == 1
    # a bad option is named
    assert (
        main(
            [
                "train",
                "--architecture",
                str(arch),
                "--data-dir",
                str(tmp_path / "data"),
                "--no_such_option",
                "1",
            ]
        )
        == 2
    )
    assert "no_such_option" in capsys.readouterr().err


def test_a_killed_architecture_training_resumes_to_the_uninterrupted_weights(
    tmp_path, monkeypatch, capsys
) -> None:
    import leanrec.train.loop as loop
    from leanrec.cli import main

    arch = _saved_architecture_and_data(tmp_path, monkeypatch)

    def command(run_dir, *extra):
        return ["train", "--architecture", str(arch), "--dataset", "ml-1m-ctr", "--data-dir",
                str(tmp_path / "data"), "--run-dir", str(run_dir), "--max_epochs", "2",
                "--embedding_dim", "4", *extra]  # fmt: skip

    assert main(command(tmp_path / "whole")) == 0
    real_save = loop.save_atomic

    def save_then_die(*args, **kwargs):  # killed right after epoch 1's checkpoint
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        main(command(tmp_path / "killed"))
    monkeypatch.setattr(loop, "save_atomic", real_save)
    assert (tmp_path / "killed" / "train_state.pt").exists()
    # another seed is another run: refused, naming it
    assert main([*command(tmp_path / "killed", "--resume"), "--seed", "7"]) == 2
    assert "seed 2024 -> 7" in capsys.readouterr().err
    assert main(command(tmp_path / "killed", "--resume")) == 0
    whole = load_ctr_model(tmp_path / "whole" / "model.pt").state_dict()
    resumed = load_ctr_model(tmp_path / "killed" / "model.pt").state_dict()
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert not (tmp_path / "killed" / "train_state.pt").exists()


def test_step3_inherits_embeddings_and_blocks_from_step1(split) -> None:
    config = tiny_config()
    rng = np.random.default_rng(0)
    subset = search_policy.validation_subset(split.valid, 200, 0)
    trained: list = []
    blocks, _ = search_policy.step1_blocks(split, subset, config, rng, trained)
    state = {k: v.clone() for k, v in trained[0].state_dict().items()}
    step3 = MLPStepModel(
        split.feature_map,
        AMEIRConfig(embedding_dim=4, behavior_blocks=2, mlp_layers=2),
        blocks=blocks,
        interactions=(),
    )
    own = step3.state_dict()
    copied = {k for k in state if k.startswith(("embedder.", "behavior.")) and k in own}
    assert copied and any(k.startswith("behavior.") for k in copied)
    model, _, _ = search_policy.step3_mlp(
        split, subset, blocks, (), dataclasses.replace(config, supernet_epochs=0.01), rng, state
    )
    # after a tiny amount of Step 3 training the inherited tensors are still close to Step 1's,
    # while a fresh initialisation (init std 1e-4 embeddings) would be far away
    key = next(k for k in copied if k.startswith("embedder.tables.item_id"))
    assert state[key].abs().max() > 0.1  # Step 1 moved far from the 1e-4 initialisation
    assert torch.allclose(model.state_dict()[key], state[key], atol=0.05)


def test_cosine_one_shot_schedule_runs_once_over_each_step(split, monkeypatch) -> None:
    """Step 2's cycles and a fractional pass continue one cosine decay instead of restarting."""
    windows: list[tuple[str, tuple[float, float]]] = []
    real_trainer = search_policy._trainer

    def recording_trainer(
        config, epochs, seed_offset, schedule="constant", window=(0.0, 1.0), on_epoch=None
    ):
        windows.append((schedule, window))
        return real_trainer(config, epochs, seed_offset, schedule, window, on_epoch)

    monkeypatch.setattr(search_policy, "_trainer", recording_trainer)
    config = tiny_config(behavior_blocks=0, supernet_epochs=1.5, one_shot_schedule="cosine")
    search_architecture(split, config)
    one_shot = [w for s, w in windows if s == "cosine"]
    # Step 1: 1 whole pass + half a pass; Step 2: two cycles of 0.75 (fractions only);
    # Step 3: 1 + 0.5 again. The retraining runs at a constant step size.
    expected = [(0, 2 / 3), (2 / 3, 1), (0, 0.5), (0.5, 1), (0, 2 / 3), (2 / 3, 1)]
    assert np.allclose(np.array(one_shot, dtype=float), np.array(expected))
    assert windows[-1][0] == "constant"
    with pytest.raises(ValueError, match="one_shot_schedule"):
        tiny_config(one_shot_schedule="linear")


def _scale_embeddings(model: torch.nn.Module, std: float = 0.5) -> None:
    """Redraw the (small-initialised) embeddings so that the FM term is far above atol."""
    with torch.no_grad():
        for parameter in model.embedder.parameters():
            parameter.normal_(0.0, std)


def _pairwise_sum(vectors: list[torch.Tensor]) -> torch.Tensor:
    """``Σ_{i<j} <v_i, v_j>`` by the double loop, ``(B,)``."""
    total = torch.zeros(vectors[0].shape[0])
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            total = total + (vectors[i] * vectors[j]).sum(dim=1)
    return total


def test_fm_shortcut_adds_the_pairwise_term_over_fields_interactions_and_history(
    split, tmp_path
) -> None:
    architecture = Architecture(
        interactions=(("age", "gender"), ("gender", "item_id", "user_id")),
        mlp_widths=(0.5, 0.2),
        mlp_activations=("relu", "swish"),
        readout=("mean",),
    )
    torch.manual_seed(0)
    plain = AMEIRModel.from_architecture(split.feature_map, architecture, embedding_dim=4).eval()
    _scale_embeddings(plain)
    with_fm = AMEIRModel.from_architecture(
        split.feature_map, dataclasses.replace(architecture, fm_shortcut=True), embedding_dim=4
    ).eval()
    with_fm.load_state_dict(plain.state_dict())  # no parameter of its own
    assert sum(p.numel() for p in with_fm.parameters()) == sum(
        p.numel() for p in plain.parameters()
    )
    batch = split.valid.batch(np.arange(48))
    inputs = plain.embedder(batch)
    names = plain.embedder.field_names
    fields = [inputs.fields[:, k] for k in range(inputs.fields.shape[1])]
    products = [
        torch.stack([inputs.fields[:, names.index(f)] for f in interaction]).prod(dim=0)
        for interaction in architecture.interactions
    ]
    mask = inputs.history_mask.to(inputs.history.dtype)
    history = (inputs.history * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    fm = _pairwise_sum(fields + products + [history])
    assert fm.abs().mean() > 0.1
    with torch.no_grad():
        assert torch.allclose(with_fm(batch), plain(batch) + fm, atol=1e-4)
    # the JSON carries the switch; a file written before it existed reads as off
    assert Architecture.from_dict(with_fm.architecture.to_dict()).fm_shortcut is True
    old = {k: v for k, v in architecture.to_dict().items() if k != "fm_shortcut"}
    assert Architecture.from_dict(old).fm_shortcut is False
    # a saved checkpoint serves the same scores, FM term included
    again = load_ctr_model(with_fm.save(tmp_path / "fm.pt")).eval()
    with torch.no_grad():
        assert torch.equal(again(batch), with_fm(batch))


def test_fm_shortcut_is_inherited_by_derived_models_of_every_one_shot_model(split) -> None:
    batch = split.valid.batch(np.arange(32))
    rng = np.random.default_rng(5)
    torch.manual_seed(0)
    config = AMEIRConfig(embedding_dim=4, behavior_blocks=2, mlp_layers=2, fm_shortcut=True)
    step3 = MLPStepModel(
        split.feature_map,
        config,
        blocks=(
            BlockChoice("layernorm", "conv3", "relu"),
            BlockChoice("none", "avg_pool3", "gelu"),
        ),
        interactions=(("age", "gender"),),
    ).eval()
    joint = JointOneShotModel(split.feature_map, config, n_interactions=2).eval()
    _scale_embeddings(step3)
    _scale_embeddings(joint)
    for model in (step3, joint):
        for _ in range(2):
            choice = model.sample(rng)
            model.active = choice
            expected = model(batch)
            derived = (
                model.derive(choice)
                if isinstance(model, JointOneShotModel)
                else derive_ameir_model(model, choice)
            ).eval()
            assert derived.architecture.fm_shortcut
            assert torch.allclose(derived(batch), expected, atol=1e-4)
    # the switch changes the one-shot models' output (it is not silently dropped)
    off = MLPStepModel(
        split.feature_map,
        dataclasses.replace(config, fm_shortcut=False),
        blocks=step3.blocks,
        interactions=step3.interactions,
    ).eval()
    off.load_state_dict(step3.state_dict())
    off.active = step3.active
    assert (off(batch) - step3(batch)).abs().mean() > 0.1


def test_carry_embeddings_passes_them_step_to_step_and_survives_a_resume(
    split, monkeypatch, tmp_path
) -> None:
    """Each one-shot model starts from the previous step's final field embeddings (also when
    Step 3 runs again from a folder); without the switch Step 2 starts from scratch."""
    key = "embedder.tables.item_id.weight"
    starts: list[tuple[str, torch.Tensor]] = []
    ends: list[tuple[str, torch.Tensor]] = []
    real = search_policy.train_one_shot

    def recording(model, *args, **kwargs):
        starts.append((model.name, model.state_dict()[key].clone()))
        seconds = real(model, *args, **kwargs)
        ends.append((model.name, model.state_dict()[key].clone()))
        return seconds

    monkeypatch.setattr(search_policy, "train_one_shot", recording)
    # the last pass's embeddings: the best-pass checkpoint is tested on its own below
    config = tiny_config(carry_embeddings=True, fm_shortcut=True, keep_best_one_shot=False)
    found = search_architecture(split, config, tmp_path / "run")
    assert found.architecture.fm_shortcut  # the backbone option reaches the derived model
    names = [name for name, _ in starts]
    assert names == ["ameir_step1", "ameir_step2", "ameir_step2", "ameir_step3"]
    assert torch.equal(starts[1][1], ends[0][1])  # Step 2 <- Step 1
    assert torch.equal(starts[2][1], ends[1][1])  # cycle 2 <- cycle 1
    assert torch.equal(starts[3][1], ends[2][1])  # Step 3 <- Step 2
    assert not torch.equal(starts[3][1], ends[0][1])
    # a rerun with Step 3's weights gone (killed while saving them, or an older leanrec's
    # folder) skips Steps 1-2 and starts Step 3 again from the saved Step 2 weights
    step2_end = ends[2][1]
    starts.clear()
    ends.clear()
    search_architecture(split, config, tmp_path / "run")
    assert starts == []  # every step read back
    (tmp_path / "run" / "step3_state.pt").unlink()
    search_architecture(split, config, tmp_path / "run")
    assert [name for name, _ in starts] == ["ameir_step3"]
    assert torch.equal(starts[0][1], step2_end)
    # switched off: Step 2 starts from its own initialisation
    starts.clear()
    ends.clear()
    search_architecture(split, tiny_config(carry_embeddings=False, keep_best_one_shot=False))
    assert not torch.allclose(starts[1][1], ends[0][1], atol=1e-3)


# ----------------------------------------------------------------- keep_best_one_shot
def test_one_shot_checkpoint_keeps_and_restores_the_best_probed_state(split) -> None:
    """The state of the best probe is copied (only under ``prefixes`` when given) and loaded
    back; an earlier or a later, worse pass does not count."""
    subset = search_policy.validation_subset(split.valid, 200, 0)
    children = [MLPChoice((8, 4), ("relu", "relu")), MLPChoice((4, 4), ("swish", "identity"))]
    key = "embedder.tables.item_id.weight"
    for prefixes in (None, ("embedder.",)):
        model = _step3(split)
        model.active = children[0]
        checkpoint = search_policy.OneShotCheckpoint(children, subset, prefixes)
        untrained = checkpoint.observe(model)
        search_policy.train_epochs(
            model, split.train, 3.0, tiny_config(), np.random.default_rng(0), 0
        )
        trained = checkpoint.observe(model)
        good = {k: v.clone() for k, v in model.state_dict().items()}
        assert model.active == children[0]  # the probe leaves the active child alone
        expected = np.mean(
            [evaluate_ctr(_with_active(model, c), subset, 8192)["auc"] for c in children]
        )
        assert trained == pytest.approx(expected) and trained > untrained + 0.05
        with torch.no_grad():  # a worse pass: every weight drowned in noise
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 3.0)
        worse = checkpoint.observe(model)
        assert worse < trained
        assert checkpoint.probes == [untrained, trained, worse] and checkpoint.best_pass == 2
        checkpoint.restore(model)
        state = model.state_dict()
        assert torch.equal(state[key], good[key])
        restored_other = torch.equal(state["output_weight"], good["output_weight"])
        assert restored_other == (prefixes is None)  # only the prefixes when given
        assert checkpoint.record()["kept_pass"] == 2
    with pytest.raises(ValueError, match="at least one child"):
        search_policy.OneShotCheckpoint([], subset)


def _with_active(model, child):
    model.active = child
    return model


def test_keep_best_one_shot_scores_step3_and_the_joint_model_with_their_best_pass(split) -> None:
    """With the switch, the children are ranked with the best-probed weights: probing the
    returned one-shot model again gives the best probe of its training, and every pass was
    probed."""
    config = tiny_config(keep_best_one_shot=True, supernet_epochs=3.0, probe_children=2)
    subset = search_policy.validation_subset(split.valid, config.validation_subset, 0)
    rng = np.random.default_rng(0)
    model, _, record = search_policy.step3_mlp(split, subset, (), (), config, rng)
    assert len(record["probe_auc"]) == 3
    assert record["kept_pass"] == int(np.argmax(record["probe_auc"])) + 1
    children = search_policy.draw_probe_children(model, config, 3)
    again = np.mean(search_policy.score_children(model, children, subset, 8192))
    assert again == pytest.approx(max(record["probe_auc"]))
    # switched off: no probes, the last pass is kept
    _, _, plain = search_policy.step3_mlp(
        split, subset, (), (), dataclasses.replace(config, keep_best_one_shot=False), rng
    )
    assert "probe_auc" not in plain
    # the single-stage baseline probes its 3x budget the same way
    found = single_stage_one_shot(split, dataclasses.replace(config, supernet_epochs=1.0))
    assert len(found.steps["joint"]["probe_auc"]) == 3
    assert (
        found.steps["joint"]["kept_pass"] == int(np.argmax(found.steps["joint"]["probe_auc"])) + 1
    )
    with pytest.raises(ValueError, match="probe_children"):
        tiny_config(probe_children=0)


def test_keep_best_one_shot_carries_step2_embeddings_of_its_best_pass(
    split, monkeypatch, tmp_path
) -> None:
    """Step 2 passes on the field embeddings of its best-probed pass, not its last one; here
    the probe is rigged so that the first pass is the best."""
    key = "embedder.tables.item_id.weight"
    snapshots: list[torch.Tensor] = []
    real_observe = search_policy.OneShotCheckpoint.observe
    probes = iter([0.9, 0.5, 0.4, 0.3, 0.2, 0.1])

    def rigged(self, model):
        if model.name == "ameir_step2":
            snapshots.append(model.state_dict()[key].clone())
            self.probes.append(next(probes))  # falls pass after pass
            if len(self.probes) == 1 or self.probes[-1] > max(self.probes[:-1]):
                self.best_pass = len(self.probes)
                self.state = {
                    k: v.clone()
                    for k, v in model.state_dict().items()
                    if k.startswith(self.prefixes)
                }
            return self.probes[-1]
        return real_observe(self, model)

    monkeypatch.setattr(search_policy.OneShotCheckpoint, "observe", rigged)
    config = tiny_config(keep_best_one_shot=True, carry_embeddings=True, supernet_epochs=2.0)
    search_architecture(split, config, tmp_path / "run")
    step2 = json.loads((tmp_path / "run" / "step2.json").read_text())
    assert step2["kept_pass"] == 1 and len(snapshots) == 2
    carried = torch.load(tmp_path / "run" / "step2_state.pt", weights_only=True)
    assert torch.equal(carried[key], snapshots[0])
    assert not torch.allclose(carried[key], snapshots[-1])


# ----------------------------------------------------------------- random search budget
def test_one_shot_samples_counts_what_the_three_steps_train() -> None:
    n = 389_856
    paper_run = tiny_config(
        supernet_epochs=6.0, interactions=5, evolution_cycles=3, keep_per_cycle=20
    )
    assert search_policy.one_shot_samples(paper_run, n) == 18 * n
    # 0.5 passes per step; Step 2's three cycles each train a random sixth of the samples
    half = tiny_config(supernet_epochs=0.5, interactions=2, evolution_cycles=3)
    assert search_policy.one_shot_samples(half, 1500) == 750 + 750 + 3 * 250
    # no interactions to search: Step 2 trains nothing
    assert (
        search_policy.one_shot_samples(tiny_config(supernet_epochs=1.0, interactions=0), 1500)
        == 3000
    )


def test_random_search_with_a_sample_budget_trains_as_many_children_wherever_it_runs(
    split,
) -> None:
    """The sample budget buys ceil(budget / samples per child) children, whatever the machine's
    load; two runs pick the same architecture. Exactly one budget must be given."""
    config = tiny_config(embedding_dim=8)
    per_child = int(0.25 * len(split.train))  # 375
    first = random_search_from_scratch(split, config, budget_samples=2 * per_child + 1)
    assert first.steps["random"]["children"] == 3
    assert first.steps["random"]["training_samples"] == 3 * per_child
    again = random_search_from_scratch(split, config, budget_samples=2 * per_child + 1)
    assert again.architecture == first.architecture
    assert again.valid["auc"] == first.valid["auc"]
    with pytest.raises(ValueError, match="exactly one budget"):
        random_search_from_scratch(split, config)
    with pytest.raises(ValueError, match="exactly one budget"):
        random_search_from_scratch(split, config, 10.0, budget_samples=100)


def test_experiment_random_search_on_a_sample_budget_needs_no_ameir_row(split, tmp_path) -> None:
    config = tiny_config(embedding_dim=8, supernet_epochs=0.25, interactions=0)
    exp = ArchitectureExperiment(
        out_dir=str(tmp_path / "exp"),
        baselines=(),
        methods=("random",),
        seeds=(0,),
        random_budget="samples",
        config=config,
    )
    summary = run_experiment(exp, log=lambda m: None, split=split).summary
    assert "random" in summary["methods"]
    assert json.loads((tmp_path / "exp" / "config.json").read_text())["random_budget"] == "samples"
    with pytest.raises(ValueError, match="needs AMEIR's search time"):
        run_experiment(
            dataclasses.replace(exp, out_dir=str(tmp_path / "b"), random_budget="seconds"),
            log=lambda m: None,
            split=split,
        )
    with pytest.raises(ValueError, match="random_budget"):
        dataclasses.replace(exp, random_budget="flops")


# ----------------------------------------------------------------- executors
class _PicklingExecutor(Executor):
    """Runs jobs in this process, but ships ``fn`` and every job through pickle as Ray would."""

    def map(self, fn, jobs):
        shipped = pickle.loads(pickle.dumps(fn))
        return [shipped(pickle.loads(pickle.dumps(job))) for job in jobs]


def test_child_scores_through_an_executor_equal_the_in_process_ones(split) -> None:
    model = _step3(split)
    model.sampler = lambda: model.sample(np.random.default_rng(0))  # not picklable
    _scale_embeddings(model)
    subset = search_policy.validation_subset(split.valid, 200, 0)
    children = [MLPChoice((8, 4), ("relu", "dice")), MLPChoice((16,), ("swish",))]
    here = search_policy.score_children(model, children, subset, 64)
    shipped = search_policy.score_children(model, children, subset, 64, _PicklingExecutor())
    assert shipped == here and here[0] != here[1]
    assert model.sampler is not None  # the copy for the jobs left the model alone
    with pytest.raises(ValueError, match="executor"):
        tiny_config(executor="threads")


@pytest.mark.ray
def test_pick_best_on_ray_picks_what_the_serial_search_picks(split, monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    temp_dir = init_ray(num_cpus=1, log_to_driver=False)  # a local cluster on 127.0.0.1
    try:
        model = _step3(split)
        _scale_embeddings(model)
        subset = search_policy.validation_subset(split.valid, 200, 0)
        rng = np.random.default_rng(0)
        children = [model.sample(rng) for _ in range(4)]
        serial = search_policy.pick_best(model, children, subset, split.valid, tiny_config())
        on_ray = search_policy.pick_best(
            model, children, subset, split.valid, tiny_config(executor="ray")
        )
        assert on_ray == serial
    finally:
        shutdown_ray(temp_dir)


def _random_search_one_by_one(split, config, n_children, epochs_per_child=0.25):
    """Reference: random search as a plain loop, each child trained right after its draw."""
    rng = np.random.default_rng(config.seed)
    subset = search_policy.validation_subset(split.valid, config.validation_subset, config.seed)
    names = embedded_field_names(split.feature_map)
    scores = []
    while len(scores) < n_children:
        architecture = sample_architecture(rng, names, config)
        torch.manual_seed(config.seed * 1000 + 60 + len(scores))
        model = AMEIRModel.from_architecture(split.feature_map, architecture, config.embedding_dim)
        if sum(p.numel() for p in model.parameters()) > config.max_parameters:
            continue
        search_policy.train_epochs(
            model, split.train, epochs_per_child, config, rng, 60 + len(scores)
        )
        scores.append(evaluate_ctr(model, subset)["auc"])
    return scores


def test_random_search_children_through_an_executor_train_as_one_by_one(split, monkeypatch) -> None:
    """Drawn up front and trained as executor jobs (pickled), the children score exactly as
    when each is trained right after its draw, rejected draws included."""
    import leanrec.search.architecture.baselines as baselines_module

    config = tiny_config(embedding_dim=8, max_parameters=5_000)
    per_child = int(0.25 * len(split.train))
    expected = _random_search_one_by_one(split, config, 3)
    counted: list[int] = []
    real_parameters = baselines_module._parameters

    def counting(model):
        counted.append(real_parameters(model))
        return counted[-1]

    monkeypatch.setattr(baselines_module, "_parameters", counting)
    found = random_search_from_scratch(split, config, budget_samples=3 * per_child)
    assert found.steps["random"]["subset_auc"] == expected
    assert any(n > config.max_parameters for n in counted)  # some draws were rejected
    jobs_seen: list[int] = []

    class Recording(_PicklingExecutor):
        def map(self, fn, jobs):
            jobs_seen.append(len(jobs))
            return super().map(fn, jobs)

    monkeypatch.setattr(baselines_module, "search_executor", lambda config: Recording())
    shipped = random_search_from_scratch(split, config, budget_samples=3 * per_child)
    assert jobs_seen == [3]
    assert shipped.steps["random"]["subset_auc"] == expected


def test_api_runs_the_table_and_saves_architectures_and_models(tmp_path, monkeypatch) -> None:
    from leanrec.api.architecture import search_architecture
    from tests.data.test_behavior import write_ml1m

    write_ml1m(tmp_path / "data" / "movielens-1m-partial", ratings_name="ratings.first487650.dat")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    exp = ArchitectureExperiment(
        data_dir=str(tmp_path / "data"),
        out_dir=str(tmp_path / "run"),
        baselines=("dnn",),
        methods=("ameir",),
        seeds=(0,),
        baseline_epochs=1,
        config=tiny_config(embedding_dim=8, retrain_epochs=1),
    )
    result = search_architecture(exp, log=lambda m: None)
    assert [r["method"] for r in result.rows] == ["dnn", "ameir"]
    assert sorted(result.artifacts) == ["architecture_seed0", "model_seed0"]
    ameir = result.rows[1]
    assert ameir["parameters"] <= result.summary["parameter_budget"]
    saved = result.save(tmp_path / "copy")
    architecture = Architecture.load(saved / "architecture_seed0.json")
    assert architecture == Architecture.from_dict(ameir["architecture"])
    model = load_ctr_model(saved / "ameir_seed0" / "model.pt")
    assert isinstance(model, AMEIRModel) and model.architecture == architecture
    assert sum(p.numel() for p in model.parameters()) == ameir["parameters"]
    with pytest.raises(ValueError, match=r"methods must name search methods only, not \[.dnn.\]"):
        search_architecture(dataclasses.replace(exp, methods=("dnn",)), log=lambda m: None)
