"""The pooled history as a field of Stage 2 and the SE shortcut (``history_field``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leanrec.data.behavior import BehaviorSplit
from leanrec.models.ctr import load_ctr_model
from leanrec.search.architecture.baselines import JointOneShotModel, embedded_field_names
from leanrec.search.architecture.model import (
    AMEIRConfig,
    AMEIRModel,
    InteractionStepModel,
    MLPStepModel,
    interaction_fields,
)
from leanrec.search.architecture.space import HISTORY_FIELD, Architecture
from tests.models.ctr.synthetic import make_samples


@pytest.fixture(scope="module")
def split() -> BehaviorSplit:
    train, _ = make_samples(600, seed=1)
    valid, _ = make_samples(200, seed=2)
    return BehaviorSplit(train, valid, valid, train.feature_map, name="synthetic")


HISTORY_ITEM = tuple(sorted((HISTORY_FIELD, "item_id")))


def test_history_field_is_the_mean_of_the_real_history_positions(split) -> None:
    torch.manual_seed(0)
    arch = Architecture(interactions=(HISTORY_ITEM,), history_field=True)
    model = AMEIRModel.from_architecture(split.feature_map, arch, embedding_dim=4)
    assert model.field_names == [*embedded_field_names(split.feature_map), HISTORY_FIELD]
    batch = split.valid.batch(np.arange(16))
    inputs = model.embedder(batch)
    fields = interaction_fields(model, inputs, True)
    assert fields.shape == (16, len(model.field_names), 4)
    for row in range(16):  # by hand: the mean over the row's real positions (0 when empty)
        real = inputs.history[row][inputs.history_mask[row]]
        expected = real.mean(0) if len(real) else torch.zeros(4)
        assert torch.allclose(fields[row, -1], expected, atol=1e-6)
    # the data fields come first, unchanged
    assert torch.equal(fields[:, :-1], inputs.fields)


def test_history_interaction_needs_the_history_field_and_old_json_loads_without_it(
    tmp_path,
) -> None:
    with pytest.raises(ValueError, match="history_field=True"):
        Architecture(interactions=(HISTORY_ITEM,))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"interactions": [["age", "item_id"]]}))
    assert Architecture.load(old).history_field is False
    new = Architecture(interactions=(HISTORY_ITEM,), history_field=True)
    assert Architecture.load(new.save(tmp_path / "new.json")) == new


def test_derived_model_with_the_history_field_matches_step3_and_round_trips(
    split, tmp_path
) -> None:
    torch.manual_seed(0)
    step3 = MLPStepModel(
        split.feature_map,
        AMEIRConfig(embedding_dim=4, behavior_blocks=0, mlp_layers=2, history_field=True),
        interactions=(HISTORY_ITEM, ("age", "gender")),
    ).eval()
    choice = step3.sample(np.random.default_rng(0))
    step3.active = choice
    batch = split.valid.batch(np.arange(32))
    derived = AMEIRModel.from_step3(step3, choice).eval()
    assert derived.architecture.history_field
    assert torch.allclose(derived(batch), step3(batch), atol=1e-5)
    assert step3.child_parameters(choice) == sum(p.numel() for p in derived.parameters())
    derived.save(tmp_path / "model.pt")
    assert torch.equal(load_ctr_model(tmp_path / "model.pt").eval()(batch), derived(batch))


def test_history_field_adds_a_field_and_its_interaction_to_the_mlp_input(split) -> None:
    torch.manual_seed(0)
    arch = Architecture(
        interactions=(HISTORY_ITEM,),
        mlp_widths=(0.5,),
        mlp_activations=("relu",),
        history_field=True,
        readout=("mean",),
    )
    with_field = AMEIRModel.from_architecture(split.feature_map, arch, embedding_dim=4)
    without = AMEIRModel.from_architecture(
        split.feature_map,
        Architecture(mlp_widths=(0.5,), mlp_activations=("relu",), readout=("mean",)),
        embedding_dim=4,
    )
    # one more field and one interaction of width d reach the MLP and the SE shortcut
    assert with_field.input_dim == without.input_dim + 2 * 4


def test_step2_and_the_joint_baseline_offer_the_history_field(split) -> None:
    config = AMEIRConfig(embedding_dim=4, mlp_dims=(8, 4), history_field=True)
    step2 = InteractionStepModel(split.feature_map, config)
    assert step2.field_names[-1] == HISTORY_FIELD
    step2.set_candidates([HISTORY_ITEM])
    step2.active = HISTORY_ITEM
    assert step2(split.valid.batch(np.arange(8))).shape == (8,)
    joint = JointOneShotModel(split.feature_map, config, n_interactions=2)
    rng = np.random.default_rng(0)
    seen = {name for _ in range(30) for i in joint.sample(rng).interactions for name in i}
    assert HISTORY_FIELD in seen
