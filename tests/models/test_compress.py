"""Per-entity sizes on every model, export to packed storage, and the safetensors round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.embeddings import MaskedEmbedding, RaggedEmbedding
from leanrec.models import Recommender, build_model
from leanrec.models.compress import (
    compress,
    entity_sparsity,
    load_compressed,
    save_compressed,
    set_entity_sizes,
    use_masked_tables,
)
from leanrec.models.registry import load_ranking_model


@pytest.fixture(scope="module")
def small_data() -> Interactions:
    rng = np.random.default_rng(0)
    return Interactions.from_raw(rng.integers(0, 40, 400), rng.integers(0, 25, 400), name="s")


def sized_model(name: str, data: Interactions) -> tuple[Recommender, np.ndarray, np.ndarray]:
    model = build_model(name, data, {"embedding_dim": 16}, seed=0)
    use_masked_tables(model)
    rng = np.random.default_rng(1)
    user_sizes = rng.integers(1, 17, data.n_users)
    item_sizes = rng.integers(1, 17, data.n_items)
    set_entity_sizes(model, user_sizes, item_sizes)
    return model, user_sizes, item_sizes


@pytest.mark.parametrize("name", ["mf", "neumf", "ngcf", "lightgcn"])
def test_sizes_apply_to_every_table_of_the_role(name: str, small_data: Interactions) -> None:
    model, user_sizes, item_sizes = sized_model(name, small_data)
    tables = model.embedding_tables()
    roles = model.table_roles()
    assert set(roles.values()) == {"user", "item"}
    for table_name, table in tables.items():
        assert isinstance(table, MaskedEmbedding)
        expected = user_sizes if roles[table_name] == "user" else item_sizes
        assert table.sizes.tolist() == expected.tolist()
    n_tables_per_role = len(tables) // 2
    kept = n_tables_per_role * (user_sizes.sum() + item_sizes.sum())
    full = n_tables_per_role * (small_data.n_users + small_data.n_items) * 16
    assert entity_sparsity(model) == pytest.approx(1 - kept / full)


@pytest.mark.parametrize("name", ["mf", "neumf", "ngcf", "lightgcn"])
def test_compressed_model_scores_identically(name: str, small_data: Interactions) -> None:
    model, _, _ = sized_model(name, small_data)
    model.eval()
    packed = compress(model)
    assert all(isinstance(t, RaggedEmbedding) for t in packed.embedding_tables().values())
    users = torch.arange(small_data.n_users)
    assert torch.allclose(packed.score_all(users), model.score_all(users), atol=1e-6)
    top_model = model.recommend(users, 5)[0]
    top_packed = packed.recommend(users, 5)[0]
    assert torch.equal(top_model, top_packed)
    assert packed.embedding_bytes() < model.embedding_bytes()
    assert packed.embedding_parameters() == model.embedding_parameters()


def test_safetensors_round_trip(tmp_path: Path, small_data: Interactions) -> None:
    model, _, _ = sized_model("lightgcn", small_data)
    model.eval()
    user_ids = small_data.user_vocab.raw_ids
    item_ids = small_data.item_vocab.raw_ids
    path = save_compressed(model, tmp_path / "m.safetensors", user_ids, item_ids)
    loaded, users_back, items_back = load_compressed(path)
    assert users_back is not None and items_back is not None
    assert users_back.tolist() == user_ids.tolist() and items_back.tolist() == item_ids.tolist()
    users = torch.arange(small_data.n_users)
    assert torch.equal(loaded.recommend(users, 5)[0], model.recommend(users, 5)[0])
    # file holds the packed values, not the dense table
    dense_bytes = sum(t.weight.numel() * 4 for t in model.embedding_tables().values())
    packed_bytes = loaded.embedding_bytes()
    assert packed_bytes < dense_bytes
    assert path.stat().st_size < dense_bytes + 20_000
    # the seen-item lists are stored as int32 and stay int32 in the served model (half the
    # bytes); the lists above excluded the same items
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        assert handle.get_tensor("state.seen_indices").dtype == torch.int32
        assert handle.get_tensor("state.seen_indptr").dtype == torch.int32
    assert loaded.seen_indices.dtype == torch.int32 and loaded.seen_indptr.dtype == torch.int32
    assert torch.equal(loaded.seen_indices.long(), model.seen_indices)
    assert torch.equal(loaded.seen_indptr.long(), model.seen_indptr)


def test_load_compressed_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_compressed(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="not a safetensors"):
        load_compressed(bad)


def test_masked_model_checkpoint_round_trip(tmp_path: Path, small_data: Interactions) -> None:
    model, _, _ = sized_model("neumf", small_data)
    model.eval()
    path = model.save(tmp_path / "m.pt")
    loaded = load_ranking_model(path)
    assert all(isinstance(t, MaskedEmbedding) for t in loaded.embedding_tables().values())
    users = torch.arange(small_data.n_users)
    assert torch.equal(loaded.score_all(users), model.score_all(users))


def test_compressed_file_gets_the_usual_permissions(tmp_path, small_data: Interactions) -> None:
    import os
    import stat

    model, _, _ = sized_model("mf", small_data)
    path = save_compressed(model, tmp_path / "m.safetensors")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
