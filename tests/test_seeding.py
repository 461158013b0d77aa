"""torch_seeded: a seeded fork of torch's generator that leaves the caller's stream alone."""

from __future__ import annotations

import torch

from leanrec.seeding import torch_seeded


def test_same_seed_same_draws_whatever_the_caller_did_before() -> None:
    torch.manual_seed(1)
    with torch_seeded(7):
        first = torch.randn(5)
    torch.manual_seed(2)
    torch.randn(100)
    with torch_seeded(7):
        second = torch.randn(5)
    assert torch.equal(first, second)
    with torch_seeded(8):
        assert not torch.equal(torch.randn(5), first)


def test_the_callers_stream_does_not_advance() -> None:
    torch.manual_seed(3)
    expected = torch.randn(4)
    for seed in (7, None):
        torch.manual_seed(3)
        with torch_seeded(seed):
            torch.randn(50)
        assert torch.equal(torch.randn(4), expected)


def test_no_seed_draws_from_the_callers_stream() -> None:
    torch.manual_seed(4)
    expected = torch.randn(3)
    torch.manual_seed(4)
    with torch_seeded(None):
        assert torch.equal(torch.randn(3), expected)
