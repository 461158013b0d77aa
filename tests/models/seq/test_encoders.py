"""GRU4Rec and SASRec against the encoder contract, plus their own details."""

from __future__ import annotations

import pytest
import torch

from leanrec.embeddings import FullTableFactory
from leanrec.models.seq import (
    GRU4Rec,
    GRU4RecConfig,
    NextItemModel,
    SASRec,
    SASRecConfig,
    SequenceEncoder,
    build_next_item_model,
)
from leanrec.models.seq.gru4rec import shift_to_left, shift_to_right
from tests.models.seq.contract import SequenceEncoderContract


class TestGRU4Rec(SequenceEncoderContract):
    def make_encoder(self, embedding_dim: int) -> SequenceEncoder:
        return GRU4Rec(GRU4RecConfig(embedding_dim=embedding_dim, hidden_dim=24, num_layers=2))


class TestSASRec(SequenceEncoderContract):
    def make_encoder(self, embedding_dim: int) -> SequenceEncoder:
        return SASRec(SASRecConfig(embedding_dim=embedding_dim, max_length=20, num_heads=2))


class TestSASRecAtMaxLength(SequenceEncoderContract):
    """Positional table exactly as long as the window (the padded-longer check is skipped)."""

    def make_encoder(self, embedding_dim: int) -> SequenceEncoder:
        return SASRec(SASRecConfig(embedding_dim=embedding_dim, max_length=10))


def test_shift_left_then_right_restores_real_positions() -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(2, 6) + 1
    lengths = torch.tensor([2, 6])
    left = shift_to_left(x, lengths)
    assert left[0, :2].tolist() == [5.0, 6.0]
    back = shift_to_right(left, lengths)
    assert back[0].tolist() == [0, 0, 0, 0, 5.0, 6.0]
    assert torch.equal(back[1], x[1])


def test_sasrec_rejects_windows_longer_than_its_positions() -> None:
    model = NextItemModel(10, SASRec(SASRecConfig(embedding_dim=8, max_length=4)))
    with pytest.raises(ValueError, match="max_length"):
        model(torch.ones(2, 5, dtype=torch.int64))


def test_sasrec_defaults_follow_the_paper_setting() -> None:
    config = SASRecConfig()
    assert (config.num_blocks, config.num_heads, config.embedding_dim) == (2, 1, 64)
    assert (config.dropout, config.max_length) == (0.5, 50)


def test_build_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = build_next_item_model("sasrec", 30, {"embedding_dim": 8, "max_length": 5}, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    b = build_next_item_model("sasrec", 30, SASRecConfig(embedding_dim=8, max_length=5), seed=4)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    c = build_next_item_model("gru4rec", 30, None, seed=5)
    assert c.embedding_dim == 64 and c.item_table.num_embeddings == 31


def test_build_rejects_unknown_names_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown sequence model"):
        build_next_item_model("bert4rec", 10)
    with pytest.raises(ValueError, match="unknown SASRecConfig"):
        build_next_item_model("sasrec", 10, {"hidden": 3})


def test_table_factory_is_used_and_width_checked() -> None:
    model = NextItemModel(
        12, GRU4Rec(GRU4RecConfig(embedding_dim=4)), table_factory=FullTableFactory(None)
    )
    assert model.num_parameters()["embedding"] == 13 * 4
    assert set(model.embedding_tables()) == {"item_table"}


def test_projection_when_gru_state_differs_from_embedding_width() -> None:
    encoder = GRU4Rec(GRU4RecConfig(embedding_dim=6, hidden_dim=10)).eval()
    out = encoder(torch.tensor([[0, 1, 2]]), torch.randn(1, 3, 6))
    assert out.shape == (1, 3, 6)
    assert torch.equal(out[0, 0], torch.zeros(6))  # padding output is zero
