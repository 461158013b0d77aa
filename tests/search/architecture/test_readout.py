"""The behaviour readout ``h^a``: its parts, their order, and how architectures carry them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leanrec.models.ctr.ameir.architecture import (
    PAPER_READOUT,
    Architecture,
    BlockChoice,
    check_readout,
)
from leanrec.models.ctr.ameir.blocks import BehaviorNetwork, SequenceReadout
from leanrec.search.architecture.blocks import BehaviorSupernet
from leanrec.search.architecture.config import ArchitectureSearchConfig
from leanrec.search.architecture.space import sample_blocks


def _hand_batch() -> tuple[torch.Tensor, torch.Tensor]:
    # two rows, d = 2: row 0 has real positions 1 and 2, row 1 is empty
    h = torch.tensor([[[7.0, 7.0], [1.0, 2.0], [3.0, -4.0]], [[5.0, 5.0], [6.0, 6.0], [8.0, 8.0]]])
    mask = torch.tensor([[False, True, True], [False, False, False]])
    return h, mask


def test_parts_on_a_hand_example_in_the_order_given() -> None:
    h, mask = _hand_batch()
    readout = SequenceReadout(2, has_target=False, parts=("last", "mean", "sum"))
    out = readout(h, mask, None)
    assert readout.output_dim == 6
    expected = torch.tensor([[3.0, -4.0, 2.0, -1.0, 4.0, -2.0], [0.0] * 6])
    assert torch.equal(out, expected)  # padding never counts; an empty row reads 0


def test_paper_readout_is_sum_last_attention_and_attention_needs_a_target() -> None:
    assert SequenceReadout(4).parts == PAPER_READOUT
    assert SequenceReadout(4, has_target=False).parts == ("sum", "last")
    assert SequenceReadout(4, parts=("mean",)).unit is None  # no attention parameters
    with pytest.raises(ValueError, match="needs a target"):
        SequenceReadout(4, has_target=False, parts=("mean", "attention"))


@pytest.mark.parametrize(
    ("parts", "message"),
    [((), "at least one part"), (("median",), "unknown readout"), (("sum", "sum"), "repeats")],
)
def test_bad_readouts_are_named(parts: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_readout(parts)


def test_comma_separated_readout_from_the_command_line() -> None:
    assert check_readout("mean, last") == ("mean", "last")
    assert ArchitectureSearchConfig(readout="sum,attention").readout == ("sum", "attention")  # type: ignore[arg-type]


def test_derived_network_keeps_the_readout_and_matches_the_supernet() -> None:
    torch.manual_seed(0)
    supernet = BehaviorSupernet(8, 2, has_target=True, readout=("mean", "attention"))
    choices = sample_blocks(np.random.default_rng(3), 2)
    h, target = torch.randn(3, 5, 8), torch.randn(3, 8)
    mask = torch.tensor([[True] * 5, [False, False, True, True, True], [False] * 4 + [True]])
    supernet.eval()
    child = supernet.derive(choices)
    assert child.readout_layer.parts == ("mean", "attention")
    expected = supernet.readout(supernet(h, mask, target, choices), mask, target)
    torch.testing.assert_close(child.readout(child(h, mask, target), mask, target), expected)
    assert expected.shape == (3, 16)


def test_readout_parameters_are_counted() -> None:
    blocks = (BlockChoice("none", "conv1", "relu"),)
    with_attention = BehaviorNetwork(8, blocks, readout=("mean", "attention")).parameter_count()
    mean_only = BehaviorNetwork(8, blocks, readout=("mean",)).parameter_count()
    assert mean_only == 8 * 8 + 8  # the conv1 layer alone
    assert with_attention > mean_only


def test_architecture_json_round_trip_and_default_for_old_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    arch = Architecture(mlp_widths=(0.5,), mlp_activations=("relu",), readout=("mean", "last"))
    loaded = Architecture.load(arch.save(tmp_path / "a.json"))
    assert loaded == arch and loaded.readout == ("mean", "last")
    raw = arch.to_dict()
    del raw["readout"]  # an architecture saved before the readout was a choice
    (tmp_path / "old.json").write_text(json.dumps(raw))
    assert Architecture.load(tmp_path / "old.json").readout == PAPER_READOUT
    with pytest.raises(ValueError, match="unknown readout"):
        Architecture(readout=("max",))
