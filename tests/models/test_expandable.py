"""ExpandableMLP: the swap keeps predictions; grow, add_layer keep the function; shrink keeps
the kept units' weights and drops the least salient; remove_layer composes the maps; counts
are exact; apply_change clamps and reports; a stream model with a re-shaped tower saves, loads
and predicts identically."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from leanrec.models import load_model
from leanrec.models.ctr.registry import build_ctr_model
from leanrec.models.expandable import (
    ArchitectureChange,
    ExpandableMLP,
    ExpandableTower,
    ShapeLimits,
    apply_change,
    expandable_tower,
    make_expandable,
)
from leanrec.models.ncf import NeuMF, NeuMFConfig
from leanrec.models.stream import StreamModel, build_stream_model, stream_feature_map
from tests.models.contract import StreamModelContract

INPUT_DIM = 12


def _tower(
    widths: tuple[int, ...] = (20, 18), activation: str = "relu", seed: int = 0
) -> tuple[ExpandableMLP, nn.Linear]:
    """A tower with a 1-logit head, small limits so that tiny widths are allowed."""
    torch.manual_seed(seed)
    tower = ExpandableMLP(
        INPUT_DIM, widths, activation, limits=ShapeLimits(min_width=1, max_width=64)
    )
    head = nn.Linear(widths[-1], 1)
    tower.attach_head(head)
    return tower, head


def _out(tower: ExpandableMLP, head: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return head(tower(x))


def _x(n: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, INPUT_DIM, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------- swap
@pytest.mark.parametrize("name", ["dnn", "deepfm", "wide_deep", "xdeepfm"])
def test_swap_keeps_ctr_predictions_bit_for_bit(name: str, one_torch_thread: None) -> None:
    model = build_ctr_model(name, stream_feature_map(["user", "item"]), seed=3, embedding_dim=4)
    model.eval()
    x = torch.randn(16, model.num_stacked_fields * 4)  # type: ignore[attr-defined]
    before = model.deep(x)
    tower = make_expandable(model)
    assert isinstance(model.deep, ExpandableTower)
    assert tower.widths == [200, 80] and expandable_tower(model) is tower
    assert torch.equal(model.deep(x), before)
    assert make_expandable(model) is tower  # a second call finds the tower


def test_swap_keeps_neumf_scores_bit_for_bit(one_torch_thread: None) -> None:
    torch.manual_seed(0)
    model = NeuMF(5, 7, NeuMFConfig(embedding_dim=8, mlp_layers=[16, 8]))
    users, items = torch.tensor([0, 1, 4]), torch.tensor([6, 2, 0])
    pairs, full = model.score_pairs(users, items), model.score_all(torch.arange(5))
    tower = make_expandable(model)
    assert model.mlp is tower and tower.head is model.output and tower.head_offset == 8
    assert torch.equal(model.score_pairs(users, items), pairs)
    assert torch.equal(model.score_all(torch.arange(5)), full)  # the split first layer path
    tower.grow(1, 5)
    tower.add_layer(2)
    assert torch.allclose(model.score_all(torch.arange(5)), full, atol=1e-6, rtol=0)


def test_swap_refuses_models_without_a_tower() -> None:
    with pytest.raises(TypeError, match="no deep tower"):
        make_expandable(nn.Linear(2, 2))
    model = build_ctr_model("dnn", stream_feature_map(["user", "item"]), activation="dice")
    with pytest.raises(ValueError, match="activations"):
        make_expandable(model)


# ---------------------------------------------------------------------------------- grow
@pytest.mark.parametrize("layer", [0, 1])
def test_grow_keeps_the_function_and_the_old_weights(layer: int, one_torch_thread: None) -> None:
    tower, head = _tower()
    x = _x()
    before = _out(tower, head, x)
    old = [(lin.weight.detach().clone(), lin.bias.detach().clone()) for lin in tower.linears]
    old_head = head.weight.detach().clone()
    tower.grow(layer, 30, torch.Generator().manual_seed(5))
    assert tower.widths[layer] == [20, 18][layer] + 30
    assert torch.allclose(_out(tower, head, x), before, atol=1e-6, rtol=0)
    grown = tower.linears[layer]
    width = old[layer][0].shape[0]
    assert torch.equal(grown.weight[:width], old[layer][0])
    assert torch.equal(grown.bias[:width], old[layer][1])
    assert torch.equal(grown.bias[width:], torch.zeros(30))
    # new incoming weights: N(0, (0.1 · sqrt(2 / (fan_in + new width)))²), all distinct
    expected_std = 0.1 * (2.0 / (grown.in_features + width + 30)) ** 0.5
    new_rows = grown.weight[width:].detach()
    assert 0.7 * expected_std < float(new_rows.std()) < 1.3 * expected_std
    reader = tower.linears[1].weight if layer == 0 else head.weight
    assert torch.equal(reader[:, width:], torch.zeros(reader.shape[0], 30))
    if layer == 0:
        assert torch.equal(reader[:, :width], old[1][0])
    else:
        assert torch.equal(reader[:, :width], old_head)


def test_grow_is_exact_with_a_single_thread_on_a_hidden_reader(one_torch_thread: None) -> None:
    # zero columns add exact zeros: growing the first of two layers changes nothing at all
    tower, _ = _tower()
    x = _x()
    hidden_before = tower(x)
    tower.grow(0, 7)
    assert torch.allclose(tower(x), hidden_before, atol=1e-6, rtol=0)


def test_grow_and_shrink_refuse_to_cross_the_limits() -> None:
    tower, _ = _tower()
    with pytest.raises(ValueError, match="max 64"):
        tower.grow(0, 45)
    with pytest.raises(ValueError, match="min 1"):
        tower.shrink(1, 18)
    with pytest.raises(IndexError):
        tower.grow(2, 1)


# ---------------------------------------------------------------------------------- shrink
def _hand_tower() -> tuple[ExpandableMLP, nn.Linear]:
    """2 inputs -> 3 ReLU units -> head, weights chosen so the saliencies are easy:

    unit 0: w = (3, 4), b = 0     -> ‖(w, b)‖ = 5;       outgoing 0.1  -> 0.5
    unit 1: w = (1, 0), b = 0     -> 1;                  outgoing 2.0  -> 2.0
    unit 2: w = (0, 0.6), b = 0.8 -> 1;                  outgoing -0.4 -> 0.4 (lowest)
    """
    tower = ExpandableMLP(2, [3], limits=ShapeLimits(min_width=1))
    head = nn.Linear(3, 1)
    with torch.no_grad():
        tower.linears[0].weight.copy_(torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.6]]))
        tower.linears[0].bias.copy_(torch.tensor([0.0, 0.0, 0.8]))
        head.weight.copy_(torch.tensor([[0.1, 2.0, -0.4]]))
        head.bias.fill_(0.3)
    tower.attach_head(head)
    return tower, head


def test_saliency_by_hand() -> None:
    tower, _ = _hand_tower()
    assert torch.allclose(tower.saliency(0), torch.tensor([0.5, 2.0, 0.4]))
    # with data: mean |h| · ‖outgoing‖; x = (1, 1) and (-1, 0):
    # h = relu(7, 1, 1.4) = (7, 1, 1.4) and relu(-3, -1, 0.8) = (0, 0, 0.8)
    # mean |h| = (3.5, 0.5, 1.1) -> (0.35, 1.0, 0.44)
    inputs = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
    assert torch.allclose(tower.saliency(0, inputs), torch.tensor([0.35, 1.0, 0.44]))


def test_saliency_ignores_the_relu_rescaling(one_torch_thread: None) -> None:
    tower, head = _tower((6,))
    x = _x()
    before, score = _out(tower, head, x), tower.saliency(0)
    with torch.no_grad():  # unit 2: incoming x 4, outgoing / 4 leaves the function as it is
        tower.linears[0].weight[2] *= 4
        tower.linears[0].bias[2] *= 4
        head.weight[:, 2] /= 4
    assert torch.allclose(_out(tower, head, x), before, atol=1e-6)
    assert torch.allclose(tower.saliency(0), score, rtol=1e-6)


def test_shrink_removes_the_least_salient_units_and_keeps_the_rest_exactly() -> None:
    tower, head = _hand_tower()
    x = torch.tensor([[1.0, 1.0], [-1.0, 0.0], [0.5, -2.0]])
    # the old network with unit 2's outgoing weight zeroed is what shrinking must give
    with torch.no_grad():
        zeroed = head.weight.clone()
        zeroed[0, 2] = 0.0
        expected = torch.relu(tower(x)) @ zeroed.T + head.bias
    tower.shrink(0, 1)
    assert tower.widths == [2]
    assert torch.equal(tower.linears[0].weight, torch.tensor([[3.0, 4.0], [1.0, 0.0]]))
    assert torch.equal(tower.linears[0].bias, torch.tensor([0.0, 0.0]))
    assert torch.equal(head.weight, torch.tensor([[0.1, 2.0]]))
    assert torch.equal(_out(tower, head, x), expected)
    tower.shrink(0, 1)  # unit 0 (0.5) goes before unit 1 (2.0)
    assert torch.equal(tower.linears[0].weight, torch.tensor([[1.0, 0.0]]))


def test_shrink_a_hidden_layer_keeps_the_kept_units_rows_and_columns() -> None:
    tower, _ = _tower()
    saliency = tower.saliency(0)
    kept = torch.sort(torch.argsort(saliency, descending=True)[:12]).values
    w0, b0 = tower.linears[0].weight.detach().clone(), tower.linears[0].bias.detach().clone()
    w1 = tower.linears[1].weight.detach().clone()
    tower.shrink(0, 8)
    assert tower.widths == [12, 18]
    assert torch.equal(tower.linears[0].weight, w0[kept])
    assert torch.equal(tower.linears[0].bias, b0[kept])
    assert torch.equal(tower.linears[1].weight, w1[:, kept])
    assert int((saliency >= saliency[kept].min()).sum()) == 12  # the 8 least salient went


def test_prelu_parameters_follow_their_units() -> None:
    tower, _ = _tower((5,), activation="prelu")
    act = tower[1]
    assert isinstance(act, nn.PReLU)
    with torch.no_grad():
        act.weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))
    tower.grow(0, 2)
    assert torch.equal(tower[1].weight, torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.25, 0.25]))
    saliency = tower.saliency(0)
    kept = torch.sort(torch.argsort(saliency, descending=True, stable=True)[:3]).values
    tower.shrink(0, 4)
    full = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.25, 0.25])
    assert torch.equal(tower[1].weight, full[kept])


# ---------------------------------------------------------------------------------- depth
@pytest.mark.parametrize("position", [1, 2])
def test_add_layer_keeps_a_relu_network_exactly(position: int) -> None:
    tower, head = _tower()
    x = _x()
    before = _out(tower, head, x)
    tower.add_layer(position)
    assert tower.depth == 3
    assert tower.widths == [20, 18, 18] if position == 2 else [20, 20, 18]
    inserted = tower.linears[position]
    assert torch.equal(inserted.weight, torch.eye(inserted.in_features))
    assert torch.equal(_out(tower, head, x), before)  # bit for bit
    with pytest.raises(ValueError, match="max 3"):
        tower.add_layer(1)


def test_add_layer_refuses_position_zero() -> None:
    tower, _ = _tower()
    with pytest.raises(ValueError, match=r"position 1\.\.2"):
        tower.add_layer(0)


@pytest.mark.parametrize("position", [1, 2])
def test_remove_layer_inverts_add_layer(position: int, one_torch_thread: None) -> None:
    tower, head = _tower()
    x = _x()
    before = _out(tower, head, x)
    weights = [lin.weight.detach().clone() for lin in tower.linears]
    head_weight, head_bias = head.weight.detach().clone(), head.bias.detach().clone()
    tower.add_layer(position)
    tower.remove_layer(position)
    assert tower.widths == [20, 18]
    for lin, old in zip(tower.linears, weights, strict=True):
        assert torch.equal(lin.weight, old)  # W I = W
    assert torch.equal(head.weight, head_weight) and torch.equal(head.bias, head_bias)
    assert torch.allclose(_out(tower, head, x), before, atol=1e-6, rtol=0)


def test_remove_layer_composes_the_affine_maps() -> None:
    # layer 1 of 2 -> 3 -> 2: with every unit of the removed layer active the map is exact
    tower = ExpandableMLP(2, [3, 2], limits=ShapeLimits(min_width=1))
    head = nn.Linear(2, 1)
    tower.attach_head(head)
    with torch.no_grad():
        tower.linears[1].weight.copy_(torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.2, 1.0]]))
        tower.linears[1].bias.copy_(torch.tensor([1.0, 2.0]))  # pre-activations > 0 for h >= 0
    x = _x(8)[:, :2]
    before = _out(tower, head, x)
    w1 = tower.linears[1].weight.detach().clone()
    b1 = tower.linears[1].bias.detach().clone()
    head_weight, head_bias = head.weight.detach().clone(), head.bias.detach().clone()
    tower.remove_layer(1)
    assert tower.widths == [3]
    # the head now reads layer 0: H' = H W_1, b' = H b_1 + b_head
    assert torch.allclose(head.weight, head_weight @ w1)
    assert torch.allclose(head.bias, head_weight @ b1 + head_bias)
    assert torch.allclose(_out(tower, head, x), before, atol=1e-6)
    with pytest.raises(ValueError, match="min 1"):
        tower.remove_layer(0)


def test_remove_a_first_layer_merges_into_the_next() -> None:
    tower, _ = _tower((20, 18))
    w0, b0 = tower.linears[0].weight.detach().clone(), tower.linears[0].bias.detach().clone()
    w1, b1 = tower.linears[1].weight.detach().clone(), tower.linears[1].bias.detach().clone()
    tower.remove_layer(0)
    assert tower.widths == [18] and tower.input_dim == INPUT_DIM
    assert torch.allclose(tower.linears[0].weight, w1 @ w0)
    assert torch.allclose(tower.linears[0].bias, w1 @ b0 + b1)


# ---------------------------------------------------------------------------------- counts
def test_counts_by_hand_and_against_the_parameters() -> None:
    # DeepFM on two stream fields, d = 16: input m·d = 3·16 = 48 (user, item, history slot)
    model = build_ctr_model("deepfm", stream_feature_map(["user", "item"]), embedding_dim=16)
    tower = make_expandable(model)
    # 48·200 + 200 + 200·80 + 80 + 80·1 (head columns; the head's bias is not shaped)
    assert tower.num_parameters() == 9600 + 200 + 16000 + 80 + 80 == 25960
    assert tower.nbytes() == 4 * 25960
    assert tower.num_parameters() == sum(p.numel() for p in model.deep.parameters()) - 1
    apply_change(model, ArchitectureChange((+32, -16), depth_delta=+1))
    assert tower.widths == [232, 64, 64]
    # 48·232 + 232 + 232·64 + 64 + 64·64 + 64 + 64
    assert tower.num_parameters() == 11136 + 232 + 14848 + 64 + 4096 + 64 + 64
    assert tower.num_parameters() == sum(p.numel() for p in model.deep.parameters()) - 1


@pytest.mark.parametrize("name", ["deepfm", "neumf"])
def test_the_model_bytes_move_by_the_towers_bytes(name: str) -> None:
    # the tower's nbytes is a part of the stream model's dense bytes: every change moves both
    # by the same amount (the tables' bytes do not move)
    model = build_stream_model(name, embedding_dim=8, seed=0)
    tower = make_expandable(model)
    dense, tables = model.dense_bytes() - tower.nbytes(), model.embedding_bytes()
    for change in (
        ArchitectureChange((+40,) + (0,) * (tower.depth - 1), depth_delta=-1),
        ArchitectureChange((-16,) * (tower.depth - 1), depth_delta=+1),
    ):
        apply_change(model, change)
        assert model.dense_bytes() - tower.nbytes() == dense
        assert model.embedding_bytes() == tables


def test_counts_of_neumf_and_prelu_towers() -> None:
    model = NeuMF(3, 4, NeuMFConfig(embedding_dim=8, mlp_layers=[32, 16]))
    tower = make_expandable(model)
    # 16·32 + 32 + 32·16 + 16 + 16 (the output's MLP columns; GMF columns and bias not shaped)
    assert tower.num_parameters() == 512 + 32 + 512 + 16 + 16
    mlp_parameters = sum(p.numel() for p in model.mlp.parameters())
    assert tower.num_parameters() == mlp_parameters + model.output.weight[:, 8:].numel()
    prelu, _ = _tower((5,), activation="prelu")
    assert prelu.num_parameters() == 12 * 5 + 5 + 5 + 5  # weights, bias, PReLU a, head columns


def test_neumf_counts_are_exact_after_every_change() -> None:
    model = NeuMF(3, 4, NeuMFConfig(embedding_dim=8, mlp_layers=[32, 16]))
    tower = make_expandable(model)

    def counted() -> int:  # the MLP's tensors and the output's MLP columns (after the d GMF ones)
        return sum(p.numel() for p in model.mlp.parameters()) + model.output.weight[:, 8:].numel()

    apply_change(model, ArchitectureChange((+8, 0), depth_delta=+1))
    assert tower.widths == [40, 16, 16]
    # input 2·8 = 16: 16·40 + 40 + 40·16 + 16 + 16·16 + 16 + 16 (output columns)
    assert tower.num_parameters() == 640 + 40 + 640 + 16 + 256 + 16 + 16 == 1624 == counted()
    assert tower.nbytes() == 4 * 1624
    apply_change(model, ArchitectureChange((-16, +16, 0), depth_delta=-1))
    assert tower.widths == [24, 32]
    # 16·24 + 24 + 24·32 + 32 + 32; the output layer reads the GMF vector and 32 tower units
    assert tower.num_parameters() == 384 + 24 + 768 + 32 + 32 == 1240 == counted()
    assert model.output.in_features == 8 + 32
    scores = model.score_all(torch.arange(3))  # the split first-layer path still serves
    assert scores.shape == (3, 4) and bool(torch.isfinite(scores).all())


# ---------------------------------------------------------------------------------- changes
def test_apply_change_clamps_to_the_limits_and_reports() -> None:
    torch.manual_seed(0)
    tower = ExpandableMLP(8, [500, 20])
    head = nn.Linear(20, 1)
    tower.attach_head(head)
    holder = NeuMF(2, 2, NeuMFConfig(embedding_dim=4, mlp_layers=[16]))
    holder.mlp = tower  # any model whose tower is found: NeuMF's slot
    applied = apply_change(holder, ArchitectureChange((+32, -16), depth_delta=+1))
    assert applied.applied == ArchitectureChange((+12, -4), depth_delta=+1)
    assert applied.clamped and len(applied.notes) == 2
    assert tower.widths == [512, 16, 16] == applied.widths_after
    assert applied.widths_before == [500, 20]
    again = apply_change(holder, ArchitectureChange((0, 0, 0), depth_delta=+1))
    assert again.applied == ArchitectureChange((0, 0, 0), 0) and "max 3" in again.notes[0]
    with pytest.raises(ValueError, match="3 layers"):
        apply_change(holder, ArchitectureChange((0, 0)))
    plain = NeuMF(2, 2)
    with pytest.raises(ValueError, match="no expandable tower"):
        apply_change(plain, ArchitectureChange((0,)))


def test_apply_change_removes_the_last_layer_at_most_to_depth_one() -> None:
    model = build_ctr_model("dnn", stream_feature_map(["user", "item"]), embedding_dim=4)
    tower = make_expandable(model)
    applied = apply_change(model, ArchitectureChange((0, 0), depth_delta=-1))
    assert tower.widths == [200] and applied.applied.depth_delta == -1
    assert model.deep.output.in_features == 200  # type: ignore[union-attr]
    applied = apply_change(model, ArchitectureChange((0,), depth_delta=-1))
    assert applied.clamped and tower.widths == [200]


@pytest.mark.parametrize(
    ("changes", "widths"),
    [
        (
            [ArchitectureChange((+40, -16), depth_delta=+1), ArchitectureChange((0, +8, -48))],
            [240, 72, 16],
        ),
        ([ArchitectureChange((-100, 0), depth_delta=-1)], [100]),
    ],
)
def test_spec_rebuilds_the_shapes_for_loading(
    changes: list[ArchitectureChange], widths: list[int]
) -> None:
    source = build_ctr_model("deepfm", stream_feature_map(["user", "item"]), embedding_dim=4)
    tower = make_expandable(source)
    for change in changes:
        apply_change(source, change)
    target = build_ctr_model("deepfm", stream_feature_map(["user", "item"]), embedding_dim=4)
    rebuilt = make_expandable(target, tower.spec())
    assert rebuilt.widths == tower.widths == widths
    target.load_state_dict(source.state_dict())
    x = torch.randn(5, 12)
    assert torch.equal(target.deep(x), source.deep(x))


# ---------------------------------------------------------------------------------- files
class _ExpandableStreamContract(StreamModelContract):
    """The stream-model contract on a model whose tower was made expandable and then grown,
    shrunk and deepened before its parameters are shifted: it saves, loads through
    ``load_model`` (family "stream") and predicts identically at the widths it reached."""

    widths_reached: ClassVar[list[int]]

    def assign(self, model: StreamModel) -> None:
        tower = make_expandable(model)
        generator = torch.Generator().manual_seed(3)
        apply_change(model, ArchitectureChange((+24, -16), depth_delta=+1), generator)
        tower.shrink(0, 8)
        assert tower.widths == self.widths_reached

    def test_the_loaded_tower_has_the_saved_widths(
        self, model: StreamModel, tmp_path: Path
    ) -> None:
        loaded = load_model(self.save(model, tmp_path / "model.pt"))
        tower = expandable_tower(loaded.model)
        assert tower is not None and tower.widths == self.widths_reached
        source = expandable_tower(model)
        assert source is not None and tower.spec() == source.spec()
        assert tower.num_parameters() == source.num_parameters()


class TestExpandableDeepFMFile(_ExpandableStreamContract):
    model_name = "deepfm"
    options: ClassVar[dict[str, Any]] = {"mlp_dims": (32, 24)}
    widths_reached: ClassVar[list[int]] = [48, 16, 16]


class TestExpandableNeuMFFile(_ExpandableStreamContract):
    model_name = "neumf"
    options: ClassVar[dict[str, Any]] = {"mlp_layers": [32, 24]}
    widths_reached: ClassVar[list[int]] = [48, 16, 16]
