"""The shared embedding of a BehaviorBatch: fields, history, mask, target, first order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.data.behavior import BehaviorSamples, FeatureMap
from leanrec.models.ctr import BehaviorEmbedder, build_ctr_model, history_mask


def test_one_table_per_vocabulary(ctr_samples: BehaviorSamples) -> None:
    embedder = BehaviorEmbedder(ctr_samples.feature_map, 4, first_order=True)
    assert set(embedder.embedding_tables()) == {"user_id", "item_id", "gender", "age", "genres"}
    assert set(embedder.first_order_tables()) == set(embedder.embedding_tables())
    assert all(t.embedding_dim == 1 for t in embedder.first_order_tables().values())
    assert embedder.field_names == ["user_id", "item_id", "gender", "age", "target_genres"]


def test_shapes_and_hand_built_vectors(ctr_samples: BehaviorSamples) -> None:
    torch.manual_seed(0)
    d = 4
    embedder = BehaviorEmbedder(ctr_samples.feature_map, d, init_std=0.5, first_order=True)
    lengths = ctr_samples.history_length
    # a few rows, with an empty and a full history among them
    rows = np.concatenate(
        [np.arange(6), np.flatnonzero(lengths == 0)[:1], np.flatnonzero(lengths == 10)[:1]]
    )
    batch = ctr_samples.batch(rows)
    out = embedder(batch)
    b, n = batch.history_items.shape
    assert out.fields.shape == (b, 5, d)
    assert out.history.shape == (b, n, d)
    assert out.target.shape == (b, d)
    assert out.first_order is not None and out.first_order.shape == (b, 6)

    items = embedder.tables["item_id"].weight
    genres = embedder.tables["genres"].weight
    users = embedder.tables["user_id"].weight

    def pooled_tags(tags: torch.Tensor) -> torch.Tensor:
        real = tags[tags > 0]
        return genres[real].mean(0) if len(real) else torch.zeros(d)

    for i in range(b):
        torch.testing.assert_close(out.fields[i, 0], users[batch.sparse[i, 0]])
        torch.testing.assert_close(out.fields[i, 4], pooled_tags(batch.target_tags[i]))
        target = items[batch.sparse[i, 1]] + pooled_tags(batch.target_tags[i])
        torch.testing.assert_close(out.target[i], target)
        length = int(batch.history_length[i])
        for pos in range(n):
            expected = torch.zeros(d)
            if pos >= n - length:
                h = batch.history_items[i, pos]
                expected = items[h] + pooled_tags(batch.history_tags[i, pos])
            torch.testing.assert_close(out.history[i, pos], expected)
    assert out.history_mask.sum(1).tolist() == batch.history_length.tolist()
    # mean pooling over real positions; an empty history pools to 0
    pooled = out.pooled_history("mean")
    empty = batch.history_length == 0
    assert empty.any() and (pooled[empty] == 0).all()
    full = int(torch.nonzero(batch.history_length == n)[0])
    torch.testing.assert_close(pooled[full], out.history[full].mean(0))
    assert out.fields_with_history().shape == (b, 6, d)


def test_history_mask_follows_length_not_ids(ctr_samples: BehaviorSamples) -> None:
    batch = ctr_samples.batch(np.arange(30))
    mask = history_mask(batch)
    assert torch.equal(mask, batch.history_mask)
    stray = batch.history_items.clone()
    stray[~mask] = 7  # a non-zero ID in the padding is still padding
    batch.history_items = stray
    assert torch.equal(history_mask(batch), mask)


def test_l2_sums_every_looked_up_vector_only_when_asked(ctr_samples: BehaviorSamples) -> None:
    embedder = BehaviorEmbedder(ctr_samples.feature_map, 4, init_std=0.1)
    batch = ctr_samples.batch(np.arange(16))
    assert embedder(batch).l2.item() == 0.0
    l2 = embedder(batch, with_l2=True).l2.detach().item()
    w = {name: t.weight.detach() for name, t in embedder.tables.items()}
    mask = batch.history_mask
    target_tags = batch.target_tags[batch.target_tags > 0]
    history_tags = batch.history_tags[mask]
    history_tags = history_tags[history_tags > 0]
    squared = (
        sum(
            w[name][batch.sparse[:, c]].pow(2).sum()
            for c, name in enumerate(["user_id", "item_id", "gender", "age"])
        )
        + w["item_id"][batch.history_items[mask]].pow(2).sum()
        + w["genres"][target_tags].pow(2).sum()
        + w["genres"][history_tags].pow(2).sum()
    )
    assert l2 == pytest.approx(float(squared) / 2 / 16, rel=1e-5)


def test_feature_map_without_tag_field(ctr_samples: BehaviorSamples) -> None:
    fm = ctr_samples.feature_map
    no_tags = FeatureMap(
        fields=tuple(f for f in fm.fields if f.name != "genres"),
        max_history=fm.max_history,
        max_tags=fm.max_tags,
        tag_field=None,
    )
    batch = ctr_samples.batch(np.arange(20))
    embedder = BehaviorEmbedder(no_tags, 4, init_std=0.1, first_order=True)
    assert set(embedder.embedding_tables()) == {"user_id", "item_id", "gender", "age"}
    out = embedder(batch)
    assert out.fields.shape == (20, 4, 4) and out.first_order is not None
    torch.testing.assert_close(out.target, embedder.tables["item_id"].weight[batch.sparse[:, 1]])
    for name in ("dnn", "wide_deep", "deepfm", "xdeepfm", "din"):
        model = build_ctr_model(name, no_tags, seed=0, embedding_dim=4, mlp_dims=(8,))
        assert model(batch).shape == (20,)
