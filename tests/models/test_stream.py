"""StreamModel: plug-and-play stream tables under CTR models and NeuMF, bytes, all-unique rows."""

from __future__ import annotations

import pytest
import torch

from leanrec.data.behavior import BehaviorBatch, FeatureMap, FieldSpec
from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.columns import ColumnView
from leanrec.embeddings.full import FullEmbedding
from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.models.ctr import CTRConfig, DeepFM
from leanrec.models.ctr.dnn import DNN
from leanrec.models.ncf import NeuMF, NeuMFConfig
from leanrec.models.stream import (
    AllUniqueFactory,
    SlotColumns,
    StreamModel,
    build_stream_model,
    stream_feature_map,
)

N_USERS, N_ITEMS = 7, 9


def _copying_factory(field_tables: dict[str, list[EmbeddingTable]]) -> AllUniqueFactory:
    """A factory whose all-unique field tables hold every ID with the old tables' exact vectors,
    side by side in the slots' column order."""

    class Copying(AllUniqueFactory):
        def __call__(self, name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
            table = GrowingEmbedding(num_embeddings, embedding_dim, min_capacity=4)
            old = torch.cat([t.all().detach() for t in field_tables[name]], dim=1)
            table.allocate(torch.arange(num_embeddings), init=old)
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
    first_order = model.embedder.first_order_tables()
    old = {
        n: [t, *([first_order[n]] if n in first_order else [])]
        for n, t in model.embedding_tables().items()
    }
    stream_model = StreamModel(model, _copying_factory(old))
    tables = stream_model.id_tables()
    assert all(isinstance(t, GrowingEmbedding) for t in tables.values())
    # one table per field, as wide as the field's slots together
    width = 8 + (1 if model_class is DeepFM else 0)
    assert {n: t.embedding_dim for n, t in tables.items()} == {"user": width, "item": width}
    expected_columns = {"user": SlotColumns("user", 0, 8), "item": SlotColumns("item", 0, 8)}
    if model_class is DeepFM:
        expected_columns["user.first_order"] = SlotColumns("user", 8, 9)
        expected_columns["item.first_order"] = SlotColumns("item", 8, 9)
    assert stream_model.columns == expected_columns
    with torch.no_grad():
        got = stream_model(ids)
        through_views = stream_model.model(batch)  # the model's own forward reads the views
    assert torch.equal(got, expected) and torch.equal(through_views, expected)
    assert expected.abs().max() > 1e-3  # the tables matter to the output


def test_neumf_outputs_unchanged_when_stream_tables_hold_the_same_vectors() -> None:
    torch.manual_seed(1)
    model = NeuMF(N_USERS, N_ITEMS, NeuMFConfig(embedding_dim=4, mlp_layers=[8]))
    ids = _ids(1)
    with torch.no_grad():
        expected = model.score_pairs(ids["user"], ids["item"])
    old = model.embedding_tables()
    stream_model = StreamModel(
        model,
        _copying_factory(
            {"user": [old["gmf_user"], old["mlp_user"]], "item": [old["gmf_item"], old["mlp_item"]]}
        ),
    )
    assert stream_model.fields == {"user": "user", "item": "item"}
    assert stream_model.columns == {
        "gmf_user": SlotColumns("user", 0, 4),
        "gmf_item": SlotColumns("item", 0, 4),
        "mlp_user": SlotColumns("user", 4, 8),
        "mlp_item": SlotColumns("item", 4, 8),
    }
    with torch.no_grad():
        assert torch.equal(stream_model(ids), expected)


def test_neumf_reads_each_field_table_once_per_forward() -> None:
    stream_model = build_stream_model("neumf", embedding_dim=4, seed=0, mlp_layers=[8])
    stream_model.extend_ids({"user": N_USERS, "item": N_ITEMS})
    calls = {"user": 0, "item": 0}
    for field, table in stream_model.id_tables().items():
        lookup = table.lookup

        def counted(ids: torch.Tensor, field: str = field, lookup=lookup) -> torch.Tensor:  # type: ignore[no-untyped-def]
            calls[field] += 1
            return lookup(ids)

        table.lookup = counted  # type: ignore[method-assign]
    ids = _ids(4)
    with torch.no_grad():
        shared = stream_model(ids)
        assert calls == {"user": 1, "item": 1}  # GMF and MLP columns from one lookup
        alone = stream_model.model.score_pairs(ids["user"], ids["item"])  # outside: per slot
    assert calls == {"user": 3, "item": 3}
    assert torch.equal(shared, alone)


def test_each_field_table_is_held_once_and_the_views_hold_nothing() -> None:
    stream_model = build_stream_model("deepfm", embedding_dim=4, seed=0, mlp_dims=(8,))
    stream_model.extend_ids({"user": 3, "item": 2})
    stream_model.observe({"user": torch.tensor([0, 2]), "item": torch.tensor([1, 1])})
    views = [m for m in stream_model.model.modules() if isinstance(m, ColumnView)]
    assert len(views) == 4  # user, item, and their first-order weights
    assert all(list(v.parameters()) == [] and list(v.buffers()) == [] for v in views)
    assert all(v.nbytes() == 0 and v.num_parameters() == 0 for v in views)
    state = stream_model.state_dict()
    table_keys = [k for k in state if k.startswith("field_tables.")]
    assert sorted(table_keys) == sorted(
        f"field_tables.{f}.{n}"
        for f in ("user", "item")
        for n in ("weight", "fallback", "row_of_id", "id_of_row", "_extra_state")
    )
    # nothing of the tables appears a second time under the model
    assert not any(k.startswith("model.") and ("row_of_id" in k or "fallback" in k) for k in state)
    assert len({id(p) for p in stream_model.parameters()}) == len(list(stream_model.parameters()))
    item_weights = dict(stream_model.model.embedder.first_order_tables())["item"]
    assert item_weights.num_embeddings == 2
    torch.testing.assert_close(
        item_weights.lookup(torch.tensor([1, 0])),
        stream_model.id_tables()["item"].lookup(torch.tensor([1, 0]))[:, 4:],
    )


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
    assert set(tables) == {"user", "item"}
    # by hand, user table: width d + 1 = 17 (the d-wide vector and the first-order weight),
    # capacity 16 (min), int32 ID map of 3 and row map of 16: 4*17*16 + 4*17 + 4*3 + 4*16
    assert tables["user"].nbytes() == 1088 + 68 + 12 + 64
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
