"""Saved specs: the format models write (a saved model's tables must load back unchanged), the
registry of kinds, and loading a spec written before an option existed."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

import leanrec.embeddings as embeddings
from leanrec.embeddings import (
    ElementMaskedEmbedding,
    EmbeddingTable,
    EvictingEmbedding,
    FullEmbedding,
    GrowingEmbedding,
    HashedEmbedding,
    HierarchicalSharedEmbedding,
    MaskedEmbedding,
    QREmbedding,
    RaggedEmbedding,
    SoftThresholdEmbedding,
    ThresholdEmbedding,
    table_from_spec,
)
from leanrec.embeddings.specs import TABLE_KINDS

# each table with the spec it must write, key order included (JSON written from it keeps it)
SAVED_SPECS: list[tuple[EmbeddingTable, dict[str, Any]]] = [
    (FullEmbedding(5, 2), {"kind": "full"}),
    (MaskedEmbedding(5, 2), {"kind": "masked"}),
    (RaggedEmbedding([2, 0, 1], 2), {"kind": "ragged", "total": 3}),
    (ElementMaskedEmbedding(torch.ones(3, 2), torch.eye(3, 2)), {"kind": "element_masked"}),
    (SoftThresholdEmbedding(torch.ones(3, 2)), {"kind": "soft_threshold"}),
    (
        GrowingEmbedding(5, 2, min_capacity=3, compact_below=0.25, allocate_on_observe=True),
        {
            "kind": "growing",
            "min_capacity": 4,
            "compact_below": 0.25,
            "init_std": 0.01,
            "allocate_on_observe": True,
        },
    ),
    (
        HierarchicalSharedEmbedding(5, 2, levels=2, max_bytes=900, min_capacity=2, init_std=0.1),
        {
            "kind": "hierarchical",
            "levels": 2,
            "max_bytes": 900,
            "min_capacity": 2,
            "compact_below": 0.5,
            "init_std": 0.1,
            "park": False,
        },
    ),
    (
        ThresholdEmbedding(5, 2, threshold=3, init_from_shared=False, compact_below=0.0),
        {
            "kind": "threshold",
            "threshold": 3,
            "init_from_shared": False,
            "min_capacity": 16,
            "compact_below": 0.0,
            "init_std": 0.01,
        },
    ),
    (
        EvictingEmbedding(5, 2, capacity=3, policy="lru", init_std=0.2),
        {
            "kind": "evicting",
            "capacity": 3,
            "policy": "lru",
            "init_from_shared": True,
            "init_std": 0.2,
        },
    ),
    (
        HashedEmbedding(5, 2, num_buckets=4, seed=9),
        {"kind": "hashed", "num_buckets": 4, "seed": 9, "init_std": 0.01},
    ),
    (
        QREmbedding(5, 2, num_remainders=2, num_quotients=3, combine="add"),
        {
            "kind": "qr",
            "num_remainders": 2,
            "num_quotients": 3,
            "combine": "add",
            "init_std": 0.01,
        },
    ),
]


@pytest.mark.parametrize(("table", "expected"), SAVED_SPECS, ids=lambda x: type(x).__name__)
def test_spec_format_and_rebuild(table: EmbeddingTable, expected: dict[str, Any]) -> None:
    spec = table.spec()
    assert list(spec.items()) == list(expected.items())
    rebuilt = table_from_spec(spec, table.num_embeddings, table.embedding_dim)
    assert type(rebuilt) is type(table)
    rebuilt.load_state_dict(table.state_dict())
    assert rebuilt.spec() == spec
    every = torch.arange(table.num_embeddings)
    assert torch.equal(rebuilt.lookup(every), table.lookup(every))


def test_every_table_kind_is_registered() -> None:
    concrete = {
        cls
        for cls in vars(embeddings).values()
        if inspect.isclass(cls) and issubclass(cls, EmbeddingTable) and not inspect.isabstract(cls)
    }
    assert concrete == set(TABLE_KINDS.values())
    assert {type(table) for table, _ in SAVED_SPECS} == concrete
    assert all(TABLE_KINDS[cls.kind] is cls for cls in concrete)


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as error:
        table_from_spec({"kind": "sketch"}, 3, 2)
    assert str(error.value) == (
        "unknown embedding table kind 'sketch' (known: full, masked, ragged, element_masked, "
        "soft_threshold, growing, hierarchical, threshold, evicting, hashed, qr)"
    )
    with pytest.raises(ValueError, match="kind None"):
        table_from_spec({}, 3, 2)


def test_a_spec_saved_before_allocate_on_observe_loads_with_it_off() -> None:
    old_spec = {"kind": "growing", "min_capacity": 2, "compact_below": 0.5, "init_std": 0.01}
    table = table_from_spec(old_spec, 3, 2)
    assert isinstance(table, GrowingEmbedding)
    assert table.allocate_on_observe is False and table.min_capacity == 2


def test_loading_keeps_the_parameter_objects_an_optimiser_holds() -> None:
    # a rebuilt table takes the stored layout in place, so an optimiser built on it stays valid
    source = RaggedEmbedding([2, 0, 3], 4)
    rebuilt = table_from_spec(source.spec(), 3, 4)
    values = rebuilt.values
    rebuilt.load_state_dict(source.state_dict())
    assert rebuilt.values is values and values.shape == (5,)
    assert torch.equal(rebuilt.all(), source.all())
