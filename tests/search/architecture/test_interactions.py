"""AMEIR Stage 2: Hadamard interactions, evolution bookkeeping, one-shot layer, SE shortcut."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from leanrec.models.ctr.ameir.architecture import Architecture
from leanrec.models.ctr.ameir.interactions import SEShortcut, hadamard_interactions
from leanrec.search.architecture.interactions import (
    InteractionSet,
    OneShotInteractionLayer,
    initial_population,
    mutate,
    select_top,
)

NAMES = ["user", "item", "city"]


def _fields(batch: int = 4, n_fields: int = 4, dim: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, n_fields, dim, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------- products
def test_hadamard_orders_two_and_three_in_one_call() -> None:
    e = _fields()
    out = hadamard_interactions(e, [(0, 1), (1, 2, 3), (2,)])
    assert out.shape == (4, 3, 3)
    assert torch.allclose(out[:, 0], e[:, 0] * e[:, 1])
    assert torch.allclose(out[:, 1], e[:, 1] * e[:, 2] * e[:, 3])
    assert torch.equal(out[:, 2], e[:, 2])
    # a hand-computed row with integers
    ints = torch.tensor([[[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]])
    got = hadamard_interactions(ints, torch.tensor([[0, 1, -1], [0, 1, 2]]))
    assert torch.equal(got, torch.tensor([[[3.0, -2.0], [1.5, -8.0]]]))


def test_hadamard_tensor_and_list_agree_and_gradients_flow() -> None:
    e = _fields().requires_grad_(True)
    table = torch.tensor([[3, 0, -1], [1, 2, 3]])
    a = hadamard_interactions(e, table)
    b = hadamard_interactions(e, [(3, 0), (1, 2, 3)])
    assert torch.equal(a, b)
    a[:, 0].sum().backward()
    assert e.grad is not None
    assert torch.allclose(e.grad[:, 0], e.detach()[:, 3])
    assert torch.all(e.grad[:, 1:3] == 0)


def test_hadamard_rejects_bad_indices() -> None:
    e = _fields()
    with pytest.raises(ValueError, match="field indices"):
        hadamard_interactions(e, [(0, 4)])
    with pytest.raises(ValueError, match="at least one"):
        hadamard_interactions(e, torch.tensor([[-1, -1]]))
    assert hadamard_interactions(e, []).shape == (4, 0, 3)


def test_interaction_set_maps_names_and_indices() -> None:
    s = InteractionSet(NAMES, [("user", "item"), ("city", "user", "item"), ("city",)])
    assert s.interactions == (("item", "user"), ("city", "item", "user"), ("city",))
    assert s.indices(("user", "item")) == (1, 0)
    assert s.interaction((0, 2)) == ("city", "user")
    assert s.index_tensor().tolist() == [[1, 0, -1], [2, 1, 0], [2, -1, -1]]
    e = _fields(n_fields=3)
    out = s(e)
    assert torch.allclose(out[:, 1], e[:, 0] * e[:, 1] * e[:, 2])
    assert [s.interaction(s.indices(i)) for i in s] == list(s.interactions)
    with pytest.raises(ValueError, match="unknown field"):
        s.indices(("user", "age"))
    with pytest.raises(ValueError, match="repeats"):
        s.indices(("user", "user"))
    with pytest.raises(ValueError, match="twice"):
        InteractionSet(NAMES, [("user", "item"), ("item", "user")])


# ---------------------------------------------------------------------------------- evolution
def test_mutate_three_fields_exact_sets() -> None:
    population = initial_population(NAMES)
    assert population == [("user",), ("item",), ("city",)]
    second = mutate(population, NAMES)
    assert len(second) == len(set(second)) == 3
    assert set(second) == {("item", "user"), ("city", "user"), ("city", "item")}
    assert all(tuple(sorted(i)) == i and len(set(i)) == len(i) for i in second)
    third = mutate(second, NAMES)
    assert third == [("city", "item", "user")]
    assert mutate(third, NAMES) == []
    # a partial population only grows from its members
    assert mutate([("item", "user")], NAMES) == [("city", "item", "user")]
    with pytest.raises(ValueError, match="unknown field"):
        mutate([("age",)], NAMES)
    # the results of order >= 2 are valid Architecture interactions
    Architecture(interactions=tuple(second + third))


def test_mutate_four_fields_counts() -> None:
    names = ["a", "b", "c", "d"]
    pairs = mutate(initial_population(names), names)
    triples = mutate(pairs, names)
    assert len(pairs) == math.comb(4, 2) and len(triples) == math.comb(4, 3)
    assert len(set(triples)) == len(triples)


def test_select_top() -> None:
    candidates = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "d")]
    assert select_top(candidates, [0.1, 0.9, 0.5, 0.9], 3) == [("a", "c"), ("a", "d"), ("b", "c")]
    assert select_top(candidates, np.array([0.1, 0.9, 0.5, 0.2]), 2, higher_is_better=False) == [
        ("a", "b"),
        ("a", "d"),
    ]
    scores = torch.tensor([float("nan"), 0.2, 0.3, 0.1])
    assert select_top(candidates, scores, 10) == [("b", "c"), ("a", "c"), ("a", "d"), ("a", "b")]
    assert select_top(candidates, [1, 2, 3, 4], 0) == []
    with pytest.raises(ValueError, match="scores"):
        select_top(candidates, [1.0, 2.0], 1)


# ---------------------------------------------------------------------------------- one-shot
def test_one_shot_layer_equals_concatenation_linear() -> None:
    torch.manual_seed(0)
    names = ["a", "b", "c", "d"]
    candidates = mutate(mutate(initial_population(names), names), names)  # order 3
    candidates += [("a", "b")]
    layer = OneShotInteractionLayer(names, dim=3, hidden_dim=5, candidates=candidates)
    e = _fields(batch=6)
    for interaction in [("a", "b"), ("b", "c", "d")]:
        p = torch.prod(e[:, [names.index(n) for n in interaction]], dim=1)  # (B, d)
        concatenated = torch.cat([e.reshape(6, -1), p], dim=1)  # [e_1, ..., e_N, p]
        dense = nn.Linear(5 * 3, 5)
        with torch.no_grad():
            dense.weight.copy_(
                torch.cat(
                    [layer.field_projection.weight, layer.candidate_weight(interaction)], dim=1
                )
            )
            dense.bias.copy_(layer.field_projection.bias)
        assert torch.allclose(layer(e, interaction), dense(concatenated), atol=1e-6)
    # order of names does not matter; None = fields only
    assert torch.equal(layer(e, ("d", "c", "b")), layer(e, ("b", "c", "d")))
    assert torch.equal(layer(e, None), layer.field_projection(e.reshape(6, -1)))
    with pytest.raises(KeyError):
        layer(e, ("a", "c"))
    # anonymous fields are named by position
    anonymous = OneShotInteractionLayer(4, 3, 5, [("1", "3")])
    assert anonymous.field_names == ("0", "1", "2", "3")
    with pytest.raises(ValueError, match="unknown field"):
        anonymous.add_candidates([("a", "b")])


def test_one_shot_weights_are_inherited_and_only_sampled_one_trains() -> None:
    names = ["a", "b", "c"]
    first = mutate(initial_population(names), names)
    layer = OneShotInteractionLayer(names, 4, 6, first, generator=torch.Generator().manual_seed(1))
    e = _fields(batch=8, n_fields=3, dim=4)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(e, ("a", "b")).pow(2).mean().backward()
    assert layer.candidate_weight(("a", "c")).grad is None
    optimizer.step()
    trained = {c: layer.candidate_weight(c).detach().clone() for c in first}
    objects = {c: layer.candidate_weight(c) for c in first}
    before = layer(e, ("a", "b")).detach()
    added = layer.add_candidates([("b", "a"), ("a", "b", "c"), ("c",)])
    assert added == [("a", "b", "c"), ("c",)]
    assert layer.candidates == [*first, ("a", "b", "c"), ("c",)]
    for c in first:
        assert layer.candidate_weight(c) is objects[c]
        assert torch.equal(layer.candidate_weight(c), trained[c])
    assert torch.equal(layer(e, ("a", "b")), before)
    assert layer(e, ("a", "b", "c")).shape == (8, 6)
    assert ("a", "b", "c") in layer and ("b", "c", "x") not in layer
    # the state dict round-trips into a layer built with the same candidates
    clone = OneShotInteractionLayer(names, 4, 6, layer.candidates)
    clone.load_state_dict(layer.state_dict())
    assert torch.equal(clone(e, ("a", "b", "c")), layer(e, ("a", "b", "c")))


# ---------------------------------------------------------------------------------- SE
def test_se_shortcut_matches_hand_computation() -> None:
    se = SEShortcut(n_inputs=3, dim=2, reduction=2.0)
    assert se.n_hidden == 2 and se.W1.shape == (2, 3) and se.W2.shape == (3, 2)
    with torch.no_grad():
        se.v.copy_(torch.tensor([1.0, -1.0]))
        se.W1.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
        se.W2.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    Q = torch.tensor([[[3.0, 1.0], [1.0, 2.0], [0.0, -2.0]]])
    # s = Q v = [2, -1, 2]; W1 s = [2, 1]; ReLU -> [2, 1]; W2 . = [2, 1, -3]
    a = torch.sigmoid(torch.tensor([2.0, 1.0, -3.0]))
    expected = a[0] * Q[0, 0] + a[1] * Q[0, 1] + a[2] * Q[0, 2]
    assert torch.allclose(se.attention(Q)[0], a)
    assert torch.allclose(se(Q)[0], expected)


def test_se_shortcut_is_a_gated_sum() -> None:
    Q = _fields(batch=5, n_fields=7, dim=4)
    se = SEShortcut(7, 4, generator=torch.Generator().manual_seed(0))
    a = se.attention(Q)
    assert a.shape == (5, 7) and torch.all((a > 0) & (a < 1))
    assert se(Q).shape == (5, 4)
    assert torch.allclose(se(Q), (a[:, :, None] * Q).sum(dim=1), atol=1e-6)
    # equal gates (W2 = 0) give half the plain sum
    with torch.no_grad():
        se.W2.zero_()
    assert torch.allclose(se(Q), 0.5 * Q.sum(dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="Q must be"):
        se(Q[:, :6])
