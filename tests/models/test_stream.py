"""StreamModel: plug-and-play stream tables under CTR models and NeuMF, bytes, all-unique rows."""

from __future__ import annotations

import pytest
import torch

from leanrec.data.behavior import BehaviorBatch, FeatureMap, FieldSpec
from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.full import FullEmbedding
from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.models.ctr import CTRConfig, DeepFM
from leanrec.models.ctr.dnn import DNN
from leanrec.models.ncf import NeuMF, NeuMFConfig
from leanrec.models.stream import (
    AllUniqueFactory,
    StreamModel,
    build_stream_model,
    stream_feature_map,
)

N_USERS, N_ITEMS = 7, 9


def _copying_factory(model_tables: dict[str, EmbeddingTable]) -> AllUniqueFactory:
    """A factory whose all-unique tables hold every ID with the old table's exact vectors."""

    class Copying(AllUniqueFactory):
        def __call__(self, name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
            table = GrowingEmbedding(num_embeddings, embedding_dim, min_capacity=4)
            old = model_tables[name]
            table.allocate(torch.arange(num_embeddings), init=old.all().detach())
            return table

    return Copying()


def _ids(seed: int = 0, n: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "user": torch.randint(0, N_USERS, (n,), generator=g),
        "item": torch.randint(0, N_ITEMS, (n,), generator=g),
    }


@pytest.mark.parametrize("model_class", [DeepFM, DNN])
def test_ctr_outputs_unchanged_when_stream_tables_hold_the_same_vectors(
    model_class: type[DeepFM], one_torch_thread: None
) -> None:
    feature_map = FeatureMap(
        fields=(
            FieldSpec("user", "categorical", N_USERS),
            FieldSpec("item", "categorical", N_ITEMS),
        ),
        max_history=0,
        max_tags=0,
        target_field="item",
        tag_field=None,
    )
    torch.manual_seed(3)
    model = model_class(feature_map, CTRConfig(embedding_dim=8, mlp_dims=(16,), init_std=0.3))
    ids = _ids()
    sparse = torch.stack([ids["user"], ids["item"]], dim=1)
    empty = sparse.new_zeros(len(sparse), 0)
    batch = BehaviorBatch(
        sparse,
        empty,
        empty,
        sparse.new_zeros(len(sparse), 0, 0),
        sparse.new_zeros(len(sparse)),
        torch.zeros(len(sparse)),
    )
    with torch.no_grad():
        expected = model(batch)
    old = dict(model.embedding_tables())
    old.update({f"{n}.first_order": t for n, t in model.embedder.first_order_tables().items()})
    stream_model = StreamModel(model, _copying_factory(old))
    assert all(isinstance(t, GrowingEmbedding) for t in stream_model.id_tables().values())
    assert len(stream_model.id_tables()) == (4 if model_class is DeepFM else 2)
    with torch.no_grad():
        got = stream_model(ids)
    assert torch.equal(got, expected)
    assert expected.abs().max() > 1e-3  # the tables matter to the output


def test_neumf_outputs_unchanged_when_stream_tables_hold_the_same_vectors() -> None:
    torch.manual_seed(1)
    model = NeuMF(N_USERS, N_ITEMS, NeuMFConfig(embedding_dim=4, mlp_layers=[8]))
    ids = _ids(1)
    with torch.no_grad():
        expected = model._score(ids["user"], ids["item"])
    stream_model = StreamModel(model, _copying_factory(dict(model.embedding_tables())))
    assert stream_model.fields == {
        "gmf_user": "user",
        "gmf_item": "item",
        "mlp_user": "user",
        "mlp_item": "item",
    }
    with torch.no_grad():
        assert torch.equal(stream_model(ids), expected)


def test_rejects_a_table_without_stream_methods() -> None:
    model = DeepFM(stream_feature_map(["user", "item"]), CTRConfig(embedding_dim=4))
    with pytest.raises(TypeError, match="not a stream table"):
        StreamModel(model, lambda name, n, d: FullEmbedding(n, d))


def test_all_unique_rows_on_observe_only() -> None:
    table = AllUniqueFactory(min_capacity=2)("user", 0, 2)
    assert isinstance(table, GrowingEmbedding)
    table.extend_ids(6)
    assert table.used_rows == 0
    table.observe(torch.tensor([0, 1, 0, 2]))  # codes in first-appearance order, as on a stream
    assert table.rows(torch.arange(6)).tolist() == [0, 1, 2, -1, -1, -1]
    table.observe(torch.tensor([1, 3]))
    assert table.rows(torch.tensor([3])).tolist() == [3]
    assert table.used_rows == 4


def test_bytes_are_the_tables_nbytes_and_the_rest_is_dense() -> None:
    stream_model = build_stream_model("deepfm", embedding_dim=16, seed=0, mlp_dims=(8,))
    stream_model.extend_ids({"user": 3, "item": 2})
    stream_model.observe({"user": torch.tensor([0, 1, 2]), "item": torch.tensor([1, 1, 0])})
    tables = stream_model.id_tables()
    assert stream_model.embedding_bytes() == sum(t.nbytes() for t in tables.values())
    # by hand, user table: d = 16, capacity 16 (min), ID map of 3: 4*16*16 + 4*16 + 8*3 + 8*16
    assert tables["user"].nbytes() == 1024 + 64 + 24 + 128
    # first-order user table (d = 1): 4*16 + 4 + 8*3 + 8*16
    assert tables["user.first_order"].nbytes() == 64 + 4 + 24 + 128
    # dense: DeepFM bias 1 + MLP (3 fields * 16 -> 8 -> 1): 1 + (48*8 + 8) + (8 + 1) floats
    assert stream_model.dense_bytes() == 4 * (1 + 48 * 8 + 8 + 8 + 1)
    table_params = {id(p) for p in stream_model.table_parameters()}
    assert table_params.isdisjoint(id(p) for p in stream_model.dense_parameters())


def test_build_neumf_on_a_stream_predicts_for_unseen_ids() -> None:
    stream_model = build_stream_model("neumf", embedding_dim=4, seed=0, mlp_layers=[8])
    stream_model.extend_ids({"user": 2, "item": 2})
    logits = stream_model({"user": torch.tensor([0, 1]), "item": torch.tensor([1, 0])})
    assert logits.shape == (2,)
    assert stream_model.embedding_bytes() > 0
    assert all(t.used_rows == 0 for t in stream_model.id_tables().values())  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["deepfm", "dnn", "wide_deep"])
def test_logits_of_looked_up_vectors_equal_the_forward_bit_for_bit(name: str) -> None:
    stream_model = build_stream_model(name, embedding_dim=8, seed=0, mlp_dims=(16,), init_std=0.3)
    stream_model.extend_ids({"user": N_USERS, "item": N_ITEMS})
    ids = _ids(2)
    stream_model.observe({"user": ids["user"][:20], "item": ids["item"][:20]})  # some fallback
    vectors = {
        table_name: table.lookup(ids[stream_model.fields[table_name]])
        for table_name, table in stream_model.id_tables().items()
    }
    assert stream_model.reads_vectors
    with torch.no_grad():
        assert torch.equal(stream_model.logits_of_vectors(vectors), stream_model(ids))


def test_neumf_does_not_read_vectors() -> None:
    stream_model = build_stream_model("neumf", embedding_dim=4, seed=0, mlp_layers=[8])
    assert not stream_model.reads_vectors
    with pytest.raises(TypeError, match="does not take looked-up vectors"):
        stream_model.logits_of_vectors({})
