"""Contract tests every CTR model passes, plus DeepFM's FM term and DIN's attention."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.data.behavior import BehaviorBatch, BehaviorSamples
from leanrec.embeddings import MaskedEmbedding
from leanrec.models.ctr import (
    CTR_MODELS,
    DIN,
    CTRModel,
    DeepFM,
    build_ctr_model,
    load_ctr_model,
)
from tests.models.ctr.synthetic import feature_map

MODEL_NAMES = ["dnn", "wide_deep", "deepfm", "xdeepfm", "din"]
SMALL = {"embedding_dim": 8, "mlp_dims": (16, 8), "init_std": 0.1}
EXTRA = {"xdeepfm": {"cin_layers": (8, 6)}, "din": {"attention_dims": (12, 6)}}


def small_model(name: str, seed: int = 0, **options: object) -> CTRModel:
    """Model ``name`` at a small width for the synthetic feature map."""
    return build_ctr_model(
        name, feature_map(), seed=seed, **{**SMALL, **EXTRA.get(name, {}), **options}
    )


@pytest.fixture
def batch(ctr_samples: BehaviorSamples) -> BehaviorBatch:
    return ctr_samples.batch(np.arange(64))


def test_registry_knows_every_model_and_rejects_unknown_names() -> None:
    assert set(MODEL_NAMES) <= set(CTR_MODELS)
    with pytest.raises(ValueError, match="unknown CTR model"):
        small_model("fibinet")
    with pytest.raises(ValueError, match="unknown option"):
        small_model("dnn", cin_layers=(4,))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_shape_and_finite(name: str, batch: BehaviorBatch) -> None:
    model = small_model(name)
    logits = model(batch)
    assert logits.shape == (len(batch),)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    probs = model.predict_proba(batch)
    assert ((probs > 0) & (probs < 1)).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradient_reaches_every_embedding_table(name: str, batch: BehaviorBatch) -> None:
    model = small_model(name)
    logits, l2 = model.forward_with_l2(batch)
    (logits.sum() + 0.0 * l2).backward()
    tables = {**model.embedding_tables()}
    tables.update({f"{k}/first_order": v for k, v in model.embedder.first_order_tables().items()})
    assert set(model.embedding_tables()) == {"user_id", "item_id", "gender", "age", "genres"}
    for table_name, table in tables.items():
        grads = [p.grad for p in table.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), table_name
    # padded history positions and the unused row 0 receive no gradient
    for table in model.embedding_tables().values():
        assert table.weight.grad is not None and (table.weight.grad[0] == 0).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_state_dict_round_trip_gives_identical_logits(
    name: str, batch: BehaviorBatch, tmp_path: Path
) -> None:
    model = small_model(name, seed=0).eval()
    expected = model(batch)
    other = small_model(name, seed=1).eval()
    assert not torch.equal(other(batch), expected)
    torch.save(model.state_dict(), tmp_path / "state.pt")
    other.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert torch.equal(other(batch), expected)
    loaded = load_ctr_model(model.save(tmp_path / "model.pt")).eval()
    assert type(loaded) is type(model) and loaded.config == model.config
    assert torch.equal(loaded(batch), expected)


def _scramble_padding(batch: BehaviorBatch, seed: int) -> BehaviorBatch:
    """The same batch with random IDs (items and tags) at every padded history position."""
    gen = torch.Generator().manual_seed(seed)
    padded = ~batch.history_mask
    items = batch.history_items.clone()
    items[padded] = torch.randint(1, 40, (int(padded.sum()),), generator=gen)
    tags = batch.history_tags.clone()
    tags[padded] = torch.randint(1, 6, (int(padded.sum()), tags.shape[2]), generator=gen)
    return BehaviorBatch(
        batch.sparse, batch.target_tags, items, tags, batch.history_length, batch.labels
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_padded_history_positions_are_ignored(name: str, batch: BehaviorBatch) -> None:
    model = small_model(name).eval()
    before = model(batch)
    assert torch.equal(model(_scramble_padding(batch, seed=3)), before)
    # row 0 (padding) of the shared item and tag tables is never read for the history
    with torch.no_grad():
        model.embedding_tables()["item_id"].weight[0].normal_()
        model.embedding_tables()["genres"].weight[0].normal_()
    assert torch.equal(model(batch), before)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_real_history_items_change_the_logit(name: str, batch: BehaviorBatch) -> None:
    model = small_model(name).eval()
    before = model(batch)
    changed = batch.history_items.clone()
    real = batch.history_mask
    changed[real] = changed[real] % 49 + 1
    after = model(
        BehaviorBatch(
            batch.sparse,
            batch.target_tags,
            changed,
            batch.history_tags,
            batch.history_length,
            batch.labels,
        )
    )
    has_history = batch.history_length > 0
    assert (after[has_history] != before[has_history]).all()
    assert torch.equal(after[~has_history], before[~has_history])


def test_din_attends_over_real_positions_only_also_in_training(batch: BehaviorBatch) -> None:
    model = small_model("din", activation="dice")
    assert isinstance(model, DIN)
    inputs = model.embedder(batch)
    weights = model.attention_weights(inputs)
    assert weights.shape == batch.history_items.shape
    assert (weights[~inputs.history_mask] == 0).all()
    assert (weights[inputs.history_mask] != 0).all()
    # in training mode Dice uses batch statistics: they are taken over real positions only
    model.train()
    torch.manual_seed(0)
    before = model(batch)
    torch.manual_seed(0)
    assert torch.equal(model(_scramble_padding(batch, seed=4)), before)


def test_din_softmax_weights_sum_to_one_over_real_positions(batch: BehaviorBatch) -> None:
    model = small_model("din", attention_softmax=True).eval()
    weights = model.attention_weights(model.embedder(batch))
    sums = weights.sum(1)
    has_history = batch.history_length > 0
    torch.testing.assert_close(sums[has_history], torch.ones(int(has_history.sum())))
    assert (sums[~has_history] == 0).all()
    assert torch.isfinite(model(batch)).all()


def test_deepfm_second_order_part_is_the_pairwise_sum_over_fields_and_history(
    batch: BehaviorBatch,
) -> None:
    model = small_model("deepfm").eval()
    assert isinstance(model, DeepFM)
    inputs = model.embedder(batch)
    stacked = inputs.fields_with_history()  # categorical + target tags + pooled history
    assert stacked.shape[1] == 6
    brute = torch.zeros(len(batch))
    for i, j in itertools.combinations(range(stacked.shape[1]), 2):
        brute += (stacked[:, i] * stacked[:, j]).sum(-1)
    rest = model.bias + model.linear_logit(inputs) + model.deep(stacked.flatten(1))
    torch.testing.assert_close(model(batch) - rest, brute, rtol=1e-4, atol=1e-5)


def test_replace_table_swaps_in_another_table_kind(batch: BehaviorBatch) -> None:
    model = small_model("din").eval()
    old = model.embedding_tables()["item_id"]
    masked = MaskedEmbedding(old.num_embeddings, old.embedding_dim)
    with torch.no_grad():
        masked.weight.copy_(old.weight)  # type: ignore[union-attr]
    before = model(batch)
    model.replace_table("item_id", masked)
    assert model.embedding_tables()["item_id"] is masked
    torch.testing.assert_close(model(batch), before)
    with pytest.raises(ValueError, match="must be"):
        model.replace_table("genres", MaskedEmbedding(3, 8))


def test_parameter_counts_split_tables_first_order_and_dense() -> None:
    model = small_model("deepfm")
    counts = model.parameter_counts()
    vocab = 61 + 51 + 3 + 5 + 7
    assert counts["embedding"] == vocab * 8 == model.embedding_parameters()
    assert counts["first_order"] == vocab
    assert counts["dense"] + counts["embedding"] + counts["first_order"] == sum(
        p.numel() for p in model.parameters()
    )
    assert small_model("dnn").parameter_counts()["first_order"] == 0
