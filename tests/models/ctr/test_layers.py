"""Hand-computed checks of the CTR building blocks: FM, CIN, Dice, MLP."""

from __future__ import annotations

import itertools

import pytest
import torch

from leanrec.models.ctr import CIN, MLP, Dice, activation_layer, fm_second_order


def brute_force_fm(fields: torch.Tensor) -> torch.Tensor:
    """Σ_{i<j} <v_i, v_j> by an explicit loop over field pairs, ``(B, m, d) -> (B,)``."""
    out = torch.zeros(fields.shape[0], dtype=fields.dtype)
    for i, j in itertools.combinations(range(fields.shape[1]), 2):
        out += (fields[:, i] * fields[:, j]).sum(-1)
    return out


def test_fm_second_order_on_hand_made_vectors() -> None:
    fields = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    # <v1,v2> + <v1,v3> + <v2,v3> = 11 + 17 + 39
    assert fm_second_order(fields).tolist() == [67.0]


def test_fm_second_order_equals_brute_force_sum_over_pairs() -> None:
    gen = torch.Generator().manual_seed(0)
    fields = torch.randn(4, 7, 5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(fm_second_order(fields), brute_force_fm(fields))


def test_cin_output_shape_with_and_without_split_half() -> None:
    fields = torch.randn(3, 5, 4)
    assert CIN(5, (6, 4), split_half=True)(fields).shape == (3, 3 + 4)
    assert CIN(5, (6, 4), split_half=False)(fields).shape == (3, 6 + 4)
    assert CIN(5, (100, 100)).output_dim == 150
    with pytest.raises(ValueError, match="even"):
        CIN(5, (5, 4), split_half=True)


def test_cin_one_layer_tiny_hand_computed_case() -> None:
    cin = CIN(2, (1,))
    with torch.no_grad():
        cin.weights[0].copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]))
    fields = torch.tensor([[[2.0], [3.0]]])  # m = 2, d = 1
    # x^1 = 1 * 2*2 + 1 * 3*3 = 13, sum-pooled over d = 1
    assert cin(fields).tolist() == [[13.0]]


def test_cin_one_layer_matches_explicit_sums() -> None:
    gen = torch.Generator().manual_seed(1)
    b, m, d, h = 2, 3, 4, 2
    cin = CIN(m, (h,), activation="identity")
    weight = torch.randn(h, m, m, generator=gen)
    with torch.no_grad():
        cin.weights[0].copy_(weight)
    x = torch.randn(b, m, d, generator=gen)
    expected = torch.zeros(b, h)
    for bb, hh, i, j, k in itertools.product(range(b), range(h), range(m), range(m), range(d)):
        expected[bb, hh] += weight[hh, i, j] * x[bb, i, k] * x[bb, j, k]
    torch.testing.assert_close(cin(x), expected, rtol=1e-5, atol=1e-5)


def test_cin_two_layers_feed_the_kept_half_forward() -> None:
    gen = torch.Generator().manual_seed(2)
    m, d = 2, 3
    cin = CIN(m, (2, 1), split_half=True)
    w1, w2 = torch.randn(2, m, m, generator=gen), torch.randn(1, 1, m, generator=gen)
    with torch.no_grad():
        cin.weights[0].copy_(w1)
        cin.weights[1].copy_(w2)
    x = torch.randn(1, m, d, generator=gen)
    layer1 = torch.einsum("hij,id,jd->hd", w1, x[0], x[0])  # (2, d)
    layer2 = torch.einsum("hij,id,jd->hd", w2, layer1[:1], x[0])  # kept half -> (1, d)
    expected = torch.stack([layer1[1].sum(), layer2[0].sum()])
    torch.testing.assert_close(cin(x)[0], expected)


def test_dice_in_eval_mode_is_x_sigmoid_x_at_init() -> None:
    dice = Dice(3).eval()
    x = torch.tensor([[-2.0, 0.5, 3.0]])
    # running mean 0, var 1 and alpha 0: f(s) = σ(s) s
    torch.testing.assert_close(dice(x), torch.sigmoid(x) * x)


def test_dice_handles_3d_inputs_and_single_rows_in_training() -> None:
    dice = Dice(4).train()
    assert dice(torch.randn(2, 5, 4)).shape == (2, 5, 4)
    assert torch.isfinite(dice(torch.randn(1, 4))).all()


def test_mlp_widths_and_unknown_activation() -> None:
    mlp = MLP(6, (5, 3), activation="prelu", dropout=0.1, output_dim=1)
    assert mlp(torch.randn(4, 6)).shape == (4, 1)
    assert MLP(6, ()).output_width == 6
    with pytest.raises(ValueError, match="unknown activation"):
        activation_layer("swishy", 3)
