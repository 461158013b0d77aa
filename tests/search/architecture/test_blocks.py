"""AMEIR Stage 1: candidate layers, the one-shot behaviour supernet, derivation and the
next-item adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from leanrec.models.ctr.ameir.architecture import ACTIVATIONS, LAYERS, NORMS, BlockChoice
from leanrec.models.ctr.ameir.blocks import (
    BehaviorNetwork,
    BiGRULayer,
    candidate_layers,
    make_activation,
    make_layer,
    make_norm,
)
from leanrec.models.seq import NextItemModel, SequenceEncoder
from leanrec.models.seq.searched import SearchedSequenceEncoder
from leanrec.search.architecture.blocks import (
    BehaviorBlock,
    BehaviorSupernet,
    SupernetSequenceEncoder,
)
from leanrec.search.architecture.space import sample_blocks
from tests.models.seq.contract import SequenceEncoderContract

DIM = 8
LENGTHS = (7, 4, 1, 0)
"""Real items per row of the test batch (T = 7): full, partial, single, empty."""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(seed: int = 0, lengths: tuple[int, ...] = LENGTHS, T: int = 7, dim: int = DIM):
    """``h (B, T, d)`` with nonzero junk at padding, right-aligned ``mask``, ``target (B, d)``."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(len(lengths), T, dim, generator=gen)
    mask = torch.zeros(len(lengths), T, dtype=torch.bool)
    for row, length in enumerate(lengths):
        mask[row, T - length :] = True
    target = torch.randn(len(lengths), dim, generator=gen)
    return h, mask, target


def _perturb_padding(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    noise = 100.0 * torch.randn(h.shape, generator=torch.Generator().manual_seed(9))
    return torch.where(mask.unsqueeze(-1), h, noise)


def _strip(h: torch.Tensor, mask: torch.Tensor, row: int) -> torch.Tensor:
    """The real positions of ``row`` as an unpadded ``(1, length, d)`` sequence."""
    return h[row : row + 1, mask[row]]


# ----------------------------------------------------------------------------------- layers
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", LAYERS)
def test_layer_keeps_shape_zero_padding_and_ignores_padded_values(name: str, causal: bool) -> None:
    torch.manual_seed(0)
    layer = make_layer(name, DIM, causal=causal)
    h, mask, target = _batch()
    out = layer(h, mask, target)
    assert out.shape == h.shape
    assert torch.isfinite(out).all()
    assert (out[~mask] == 0).all()
    torch.testing.assert_close(layer(_perturb_padding(h, mask), mask, target), out, rtol=0, atol=0)
    if name != "zero":
        assert out[mask].abs().sum() > 0


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", [x for x in LAYERS if x != "target_attention"])
def test_layer_outputs_do_not_depend_on_the_amount_of_padding(name: str, causal: bool) -> None:
    torch.manual_seed(0)
    layer = make_layer(name, DIM, causal=causal)
    h, mask, target = _batch()
    out = layer(h, mask, target)
    for row in range(3):  # rows with at least one real item
        alone = layer(_strip(h, mask, row), torch.ones(1, LENGTHS[row], dtype=torch.bool), None)
        torch.testing.assert_close(alone[0], out[row, mask[row]], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", [x for x in LAYERS if x not in ("zero", "target_attention")])
def test_causal_layers_do_not_see_later_positions(name: str) -> None:
    torch.manual_seed(0)
    layer = make_layer(name, DIM, causal=True)
    h, mask, _ = _batch(lengths=(7, 7))
    changed = h.clone()
    changed[:, 4] += 1.0
    before, after = layer(h, mask, None), layer(changed, mask, None)
    torch.testing.assert_close(before[:, :4], after[:, :4], rtol=0, atol=0)
    assert not torch.allclose(before[:, 4], after[:, 4])
    if name not in ("conv1",):  # bidirectional layers do see the future (conv1 has width 1)
        both = make_layer(name, DIM, causal=False)
        assert not torch.allclose(both(h, mask, None)[:, :4], both(changed, mask, None)[:, :4])


def test_bigru_padded_equals_unpadded_and_matches_torch_bidirectional_gru() -> None:
    torch.manual_seed(0)
    layer = BiGRULayer(DIM)
    h, mask, _ = _batch()
    out = layer(h, mask)
    reference = nn.GRU(DIM, DIM, batch_first=True, bidirectional=True)
    state = {}
    for name, value in layer.forward_gru.state_dict().items():
        state[name] = value
    for name, value in layer.backward_gru.state_dict().items():  # type: ignore[union-attr]
        state[name + "_reverse"] = value
    reference.load_state_dict(state)
    for row in range(3):
        alone = _strip(h, mask, row)  # (1, L, d), no padding at all
        expected = reference(alone)[0]  # (1, L, 2d): [forward; backward]
        expected = expected[..., :DIM] + expected[..., DIM:]
        torch.testing.assert_close(out[row, mask[row]], expected[0], atol=1e-6, rtol=1e-5)
        unpadded = layer(alone, torch.ones(1, LENGTHS[row], dtype=torch.bool))
        torch.testing.assert_close(out[row, mask[row]], unpadded[0], atol=1e-6, rtol=1e-5)


def test_bigru_and_readout_skip_holes_in_the_mask() -> None:
    # left-aligned rows and holes (the encoder contract edits single columns) are fine too
    torch.manual_seed(0)
    layer = BiGRULayer(DIM)
    h, _, target = _batch(lengths=(7, 7))
    mask = torch.tensor([[False, True, False, True, True, False, False]] * 2)
    out = layer(h, mask)
    alone = h[:1, mask[0]]
    torch.testing.assert_close(out[0, mask[0]], layer(alone, torch.ones(1, 3, dtype=torch.bool))[0])
    assert (out[~mask] == 0).all()
    readout = BehaviorSupernet(DIM, 0).readout(h, mask, target)
    assert torch.equal(readout[0, DIM : 2 * DIM], h[0, 4])  # the last real position


def test_causal_bigru_is_the_forward_gru() -> None:
    torch.manual_seed(0)
    layer = BiGRULayer(DIM, causal=True)
    assert layer.backward_gru is None
    h, mask, _ = _batch()
    out = layer(h, mask)
    alone = _strip(h, mask, 1)
    torch.testing.assert_close(out[1, mask[1]], layer.forward_gru(alone)[0][0])


def test_pooling_on_a_hand_example() -> None:
    # one channel, row [pad=9, -1, -5, -2]: padding must neither count nor win the maximum
    h = torch.tensor([[9.0, -1.0, -5.0, -2.0]]).unsqueeze(-1)
    mask = torch.tensor([[False, True, True, True]])
    cases = {
        ("avg_pool3", False): [0.0, -3.0, -8.0 / 3.0, -3.5],
        ("max_pool3", False): [0.0, -1.0, -1.0, -2.0],
        ("avg_pool3", True): [0.0, -1.0, -3.0, -8.0 / 3.0],
        ("max_pool3", True): [0.0, -1.0, -1.0, -1.0],
    }
    for (name, causal), expected in cases.items():
        out = make_layer(name, 1, causal=causal)(h, mask, None)[0, :, 0]
        torch.testing.assert_close(out, torch.tensor(expected), msg=f"{name} causal={causal}")


def test_convolutions_have_the_paper_kernels_and_dilations() -> None:
    expected = {
        "conv1": (1, 1, (0, 0)),
        "conv3": (3, 1, (1, 1)),
        "dilated_conv3": (3, 2, (2, 2)),
        "dilated_conv5": (5, 2, (4, 4)),
        "dilated_conv7": (7, 2, (6, 6)),
    }
    for name, (kernel, dilation, padding) in expected.items():
        layer = make_layer(name, DIM)
        assert layer.conv.kernel_size == (kernel,) and layer.conv.dilation == (dilation,)
        assert layer.padding == padding
        assert make_layer(name, DIM, causal=True).padding == (2 * padding[0], 0)


def test_target_attention_gates_each_position_by_the_din_unit() -> None:
    torch.manual_seed(0)
    layer = make_layer("target_attention", DIM)
    h, mask, target = _batch()
    out = layer(h, mask, target)
    row, t = 1, 5
    weight = layer.unit(h[row, t][None], target[row][None])
    torch.testing.assert_close(out[row, t], weight * h[row, t])
    with pytest.raises(ValueError, match="target"):
        layer(h, mask, None)


def test_norms_activations_and_unknown_names() -> None:
    assert isinstance(make_norm("layernorm", DIM), nn.LayerNorm)
    assert isinstance(make_norm("none", DIM), nn.Identity)
    x = torch.linspace(-2, 2, 5)
    expected = {"relu": x.clamp(min=0), "swish": x * torch.sigmoid(x), "identity": x}
    for name, value in expected.items():
        torch.testing.assert_close(make_activation(name)(x), value)
    assert set(ACTIVATIONS) == {"relu", "gelu", "swish", "identity"} and set(NORMS)
    for bad in (lambda: make_layer("conv9", DIM), lambda: make_norm("batch", DIM)):
        with pytest.raises(ValueError, match="unknown"):
            bad()
    with pytest.raises(ValueError, match="divide"):
        make_layer("self_attention4", 6)


# ----------------------------------------------------------------------------------- blocks
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_zero_layer_makes_the_block_the_identity(norm: str, activation: str) -> None:
    block = BehaviorBlock(DIM)
    h, mask, target = _batch()
    h = h * mask.unsqueeze(-1)
    out = block(h, mask, target, BlockChoice(norm, "zero", activation))
    assert torch.equal(out, h)


def test_block_is_eq1_residual_with_the_chosen_ops() -> None:
    torch.manual_seed(0)
    block = BehaviorBlock(DIM)
    with torch.no_grad():
        block.norm.weight.uniform_(0.5, 1.5)
        block.norm.bias.uniform_(-1, 1)  # LayerNorm(0) = bias: must not leak at padding
    h, mask, target = _batch()
    h = h * mask.unsqueeze(-1)
    out = block(h, mask, target, BlockChoice("layernorm", "conv3", "gelu"))
    layer = block.layers["conv3"]
    expected = torch.nn.functional.gelu(layer(block.norm(h), mask, target)) + h
    torch.testing.assert_close(out, expected)
    assert (out[~mask] == 0).all()


def test_block_without_target_has_no_target_attention() -> None:
    block = BehaviorBlock(DIM, has_target=False)
    assert "target_attention" not in block.layers
    assert "target_attention" not in candidate_layers(False)
    h, mask, _ = _batch()
    with pytest.raises(ValueError, match="target"):
        block(h, mask, None, BlockChoice(layer="target_attention"))


# --------------------------------------------------------------------------------- supernet
def _random_choices(seed: int, n_blocks: int = 3, has_target: bool = True):
    return sample_blocks(np.random.default_rng(seed), n_blocks, has_target)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_derive_equals_the_supernet_path_exactly(seed: int, causal: bool) -> None:
    torch.manual_seed(seed)
    supernet = BehaviorSupernet(DIM, 3, has_target=True, causal=causal)
    for param in supernet.parameters():  # move away from the default init (e.g. LN = 1, 0)
        param.data.add_(0.1 * torch.randn_like(param))
    choices = _random_choices(seed)
    h, mask, target = _batch(seed)
    rng_before = torch.get_rng_state()
    child = supernet.derive(choices)
    assert torch.equal(torch.get_rng_state(), rng_before)  # derive() leaves the RNG alone
    assert isinstance(child, BehaviorNetwork) and child.choices == tuple(choices)
    hidden = supernet(h, mask, target, choices)
    assert torch.equal(child(h, mask, target), hidden)
    assert torch.equal(child.readout(hidden, mask, target), supernet.readout(hidden, mask, target))
    assert child.parameter_count() == supernet.parameter_count(choices)
    # the copies are independent: training the child leaves the supernet unchanged
    next(child.parameters()).data.add_(1.0)
    assert torch.equal(supernet(h, mask, target, choices), hidden)


def test_supernet_outputs_ignore_padded_values_for_every_layer() -> None:
    torch.manual_seed(0)
    supernet = BehaviorSupernet(DIM, 2, has_target=True)
    h, mask, target = _batch()
    for name in LAYERS:
        choices = [BlockChoice("layernorm", name, "swish"), BlockChoice("none", name, "gelu")]
        hidden = supernet(h, mask, target, choices)
        readout = supernet.readout(hidden, mask, target)
        assert (hidden[~mask] == 0).all()
        hidden2 = supernet(_perturb_padding(h, mask), mask, target, choices)
        assert torch.equal(hidden2, hidden), name
        assert torch.equal(supernet.readout(_perturb_padding(hidden2, mask), mask, target), readout)
        assert torch.isfinite(readout).all() and (readout[3, :DIM] == 0).all()  # empty row


def test_gradient_reaches_only_the_chosen_operations() -> None:
    torch.manual_seed(0)
    supernet = BehaviorSupernet(DIM, 3, has_target=True)
    choices = [
        BlockChoice("layernorm", "bigru", "relu"),
        BlockChoice("none", "self_attention2", "gelu"),
        BlockChoice("layernorm", "zero", "swish"),
    ]
    h, mask, target = _batch()
    hidden = supernet(h, mask, target, choices)
    supernet.readout(hidden, mask, target).pow(2).sum().backward()
    chosen = {id(p) for m in supernet.chosen_modules(choices) for p in m.parameters()}
    for name, param in supernet.named_parameters():
        if id(param) in chosen:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name
    assert chosen >= {id(p) for p in supernet.blocks[0].norm.parameters()}
    assert chosen.isdisjoint(id(p) for p in supernet.blocks[1].norm.parameters())
    assert chosen.isdisjoint(id(p) for p in supernet.blocks[2].parameters())


def test_readout_is_sum_last_state_and_target_attention() -> None:
    torch.manual_seed(0)
    supernet = BehaviorSupernet(DIM, 2, has_target=True)
    h, mask, target = _batch()
    zero = [BlockChoice(), BlockChoice()]  # identity network: hidden = masked h
    hidden = supernet(h, mask, target, zero)
    readout = supernet.readout(hidden, mask, target)
    assert readout.shape == (4, 3 * DIM) and supernet.readout_dim == 3 * DIM
    real = h * mask.unsqueeze(-1)
    torch.testing.assert_close(readout[:, :DIM], real.sum(1))
    for row, length in enumerate(LENGTHS):
        last = readout[row, DIM : 2 * DIM]
        if length:
            assert torch.equal(last, h[row, -1])  # the most recent real item
        else:
            assert (last == 0).all()
    unit = supernet.readout_layer.unit
    row = 1
    weights = unit(h[row, mask[row]], target[row].expand(LENGTHS[row], DIM))
    torch.testing.assert_close(readout[row, 2 * DIM :], weights @ h[row, mask[row]])
    assert (readout[3] == 0).all()  # empty history


def test_readout_without_target_and_argument_checks() -> None:
    supernet = BehaviorSupernet(DIM, 1, has_target=False)
    h, mask, _ = _batch()
    hidden = supernet(h, mask, None, [BlockChoice(layer="conv3")])
    assert supernet.readout(hidden, mask).shape == (4, 2 * DIM) and supernet.readout_dim == 16
    with pytest.raises(ValueError, match="block choices"):
        supernet(h, mask, None, [])
    with pytest.raises(ValueError, match="mask shape"):
        supernet(h, mask[:, 1:], None, [BlockChoice()])
    with pytest.raises(ValueError, match="target"):
        supernet(h, mask, None, [BlockChoice(layer="target_attention")])
    with pytest.raises(ValueError, match="target"):
        BehaviorSupernet(DIM, 1).readout(hidden, mask, None)


def test_parameter_count_counts_only_the_chosen_operations() -> None:
    supernet = BehaviorSupernet(DIM, 2, has_target=False)
    readout = sum(p.numel() for p in supernet.readout_layer.parameters())
    assert readout == 0  # sum + last state: no weights without a target
    conv3 = DIM * DIM * 3 + DIM
    layer_norm = 2 * DIM
    choices = [BlockChoice("layernorm", "conv3", "relu"), BlockChoice("layernorm", "zero", "relu")]
    assert supernet.parameter_count(choices) == conv3 + layer_norm
    child = supernet.derive(choices)
    assert child.parameter_count() == conv3 + layer_norm
    gru = 2 * 3 * (2 * DIM * DIM + 2 * DIM)  # two directions
    choices = [BlockChoice("none", "bigru", "relu"), BlockChoice("none", "max_pool3", "relu")]
    assert supernet.derive(choices).parameter_count() == gru
    convs = (1 + 3 + 3 + 5 + 7) * DIM * DIM + 5 * DIM
    attentions = 2 * (4 * DIM * DIM + 4 * DIM)
    per_block = convs + gru + attentions + layer_norm  # pools and zero have no weights
    assert sum(p.numel() for p in supernet.parameters()) == 2 * per_block


# ------------------------------------------------------------------------ next-item adapter
_ENCODER_CHOICES = (
    BlockChoice("layernorm", "dilated_conv5", "gelu"),
    BlockChoice("none", "bigru", "identity"),
    BlockChoice("layernorm", "self_attention4", "swish"),
    BlockChoice("none", "max_pool3", "relu"),
)


class TestSearchedSupernetEncoder(SequenceEncoderContract):
    def make_encoder(self, embedding_dim: int) -> SequenceEncoder:
        supernet = BehaviorSupernet(embedding_dim, 4, has_target=False, causal=True)
        return SupernetSequenceEncoder(supernet, _ENCODER_CHOICES)


class TestSearchedDerivedEncoder(SequenceEncoderContract):
    def make_encoder(self, embedding_dim: int) -> SequenceEncoder:
        supernet = BehaviorSupernet(embedding_dim, 4, has_target=False, causal=True)
        return SupernetSequenceEncoder(supernet, _ENCODER_CHOICES).derive()


class TestSearchedEncoderWithPositionsAndNorm(SequenceEncoderContract):
    """The retrieval backbone: recency positions, input dropout and a final LayerNorm."""

    def make_encoder(self, embedding_dim: int) -> SequenceEncoder:
        supernet = BehaviorSupernet(embedding_dim, 4, has_target=False, causal=True)
        encoder = SupernetSequenceEncoder(
            supernet, _ENCODER_CHOICES, input_dropout=0.2, positions=50, final_norm=True
        )
        return encoder.derive()


def test_derived_backbone_inherits_positions_and_norm() -> None:
    torch.manual_seed(0)
    supernet = BehaviorSupernet(DIM, 4, has_target=False, causal=True)
    encoder = SupernetSequenceEncoder(supernet, _ENCODER_CHOICES, positions=6, final_norm=True)
    with torch.no_grad():
        encoder.final_norm.weight.uniform_(0.5, 1.5)  # type: ignore[union-attr]
    model = NextItemModel(30, encoder).eval()
    derived = NextItemModel(30, encoder.derive()).eval()
    derived.item_table.load_state_dict(model.item_table.state_dict())
    ids = torch.tensor([[0, 0, 3, 7, 1, 2], [4, 2, 9, 9, 5, 6]])
    assert torch.equal(derived(ids), model(ids))
    with pytest.raises(ValueError, match="max_length"):
        model(torch.ones(1, 7, dtype=torch.long))


def test_adapter_switches_children_and_derives_the_current_one() -> None:
    torch.manual_seed(0)
    supernet = BehaviorSupernet(DIM, 2, has_target=False, causal=True)
    encoder = SupernetSequenceEncoder(supernet)
    model = NextItemModel(30, encoder).eval()
    ids = torch.tensor([[0, 0, 3, 7, 1], [4, 2, 9, 9, 5]])
    with pytest.raises(RuntimeError, match="choices"):
        model(ids)
    outputs = []
    for seed in range(3):
        encoder.choices = _random_choices(seed, 2, has_target=False)
        outputs.append(model(ids))
        derived = NextItemModel(30, encoder.derive()).eval()
        derived.item_table.load_state_dict(model.item_table.state_dict())
        assert torch.equal(derived(ids), outputs[-1])
    assert not torch.equal(outputs[0], outputs[1])
    with pytest.raises(TypeError):
        encoder.derive().choices = _random_choices(0, 2, has_target=False)


def test_adapter_rejects_targets_and_bidirectional_networks_unless_asked() -> None:
    with pytest.raises(ValueError, match="target"):
        SupernetSequenceEncoder(BehaviorSupernet(DIM, 1, has_target=True, causal=True))
    bidirectional = BehaviorNetwork(DIM, [BlockChoice(layer="bigru")], has_target=False)
    with pytest.raises(ValueError, match="causal"):
        SearchedSequenceEncoder(bidirectional)
    encoder = SearchedSequenceEncoder(bidirectional, allow_bidirectional=True)
    model = NextItemModel(30, encoder).eval()
    ids = torch.tensor([[0, 0, 3, 7, 1], [4, 2, 9, 9, 5]])
    hidden = model(ids)
    torch.testing.assert_close(model(ids[:, 2:])[0], hidden[0, 2:], atol=1e-6, rtol=1e-5)
