"""The compiled row kernel of ``sparse_adam``: bit for bit the torch path on random rows and
steps, in a whole training run, and a silent fallback where it cannot be built."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from leanrec.data.splits import ratio_split
from leanrec.data.synthetic import make_synthetic
from leanrec.embeddings.base import sparse_gradients
from leanrec.embeddings.full import FullEmbedding
from leanrec.models import build_model
from leanrec.train import BPRTrainer, TrainerConfig, row_kernel, row_optim
from leanrec.train.row_optim import RowWiseOptimizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def kernel() -> Iterator[row_kernel.RowKernel]:
    """The checked kernel (skips where it does not build or differs from torch here); the
    kernel is on again after the test."""
    loaded = row_optim.checked_row_kernel()
    if loaded is None:
        pytest.skip("no row kernel here (no compiler, or LEANREC_ROW_KERNEL=0)")
    yield loaded
    row_optim.use_row_kernel(True)


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.view(torch.int32) if tensor.dtype == torch.float32 else tensor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_equals_torch_on_random_rows_and_steps(
    kernel: row_kernel.RowKernel, seed: int
) -> None:
    """Catch-up and step of random rows (never stepped, small and large moments, every
    number of skipped steps up to 40, with and without weight decay) at widths that fill
    vector registers, leave a remainder, or hold one value: equal to the last bit."""
    assert row_optim.kernel_matches_torch(kernel, widths=(64, 48, 17, 8, 1), seed=seed)


def test_a_kernel_that_rounds_otherwise_is_found_out(kernel: row_kernel.RowKernel) -> None:
    """The check fails where a root is rounded otherwise (the IEEE root instead of MKL's, or
    the reverse), so the optimiser would fall back to torch rather than change a result."""
    chosen = kernel.square_root
    others = [choice for choice in row_kernel.torch_square_roots() if choice != chosen]
    try:
        for choice in others:
            kernel.use_square_root(choice)
            assert not row_optim.kernel_matches_torch(kernel, widths=(64,))
    finally:
        kernel.use_square_root(chosen)
    if not others:
        pytest.skip("one square root only on this machine")


def _counting_kernel_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the steps the kernel takes (so a test sees the kernel path was run)."""
    calls: list[int] = []
    step = row_optim._kernel_adam_step

    def counted(*args: object, **kwargs: object) -> None:
        calls.append(1)
        step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(row_optim, "_kernel_adam_step", counted)
    return calls


def _sparse_run(use_kernel: bool) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """80 steps of sparse_adam with weight decay on a 500-row table, random lookups with
    repeats, a second read of the same rows in some steps, a read of other rows in some, no
    gradient in some, a flush at step 50; the weights after every step and the final state."""
    row_optim.use_row_kernel(use_kernel)
    torch.manual_seed(0)
    table = FullEmbedding(500, 32)
    optimizer = RowWiseOptimizer(
        [{"params": table.row_parameters(), "weight_decay": 1e-3}], [], lr=0.02, dense_share=None
    )
    generator = torch.Generator().manual_seed(5)
    history = []
    for step in range(80):
        ids = torch.randint(0, 500, (64,), generator=generator)
        with sparse_gradients([table], catch_up=optimizer.catch_up):
            loss = (table.lookup(ids) - 0.3).pow(2).sum()
            if step % 6 == 2:
                loss = loss + table.lookup(ids[:8]).sum()
            elif step % 6 == 4:
                loss = loss + table.lookup(torch.randint(0, 500, (5,), generator=generator)).sum()
        optimizer.zero_grad(set_to_none=True)
        if step % 13 != 7:
            loss.backward()
        optimizer.step()
        if step == 50:
            optimizer.flush()
        history.append(table.weight.detach().clone())
    optimizer.flush()
    state = optimizer.state[table.weight]
    return history, {key: value.clone() for key, value in state.items()}


def test_sparse_adam_steps_the_same_bits_with_and_without_the_kernel(
    kernel: row_kernel.RowKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting_kernel_steps(monkeypatch)
    torch_history, torch_state = _sparse_run(use_kernel=False)
    assert not calls
    kernel_history, kernel_state = _sparse_run(use_kernel=True)
    assert len(calls) > 40  # most steps: the others read other rows before their step
    for step, (ours, theirs) in enumerate(zip(kernel_history, torch_history, strict=True)):
        assert torch.equal(_bits(ours), _bits(theirs)), step
    for key, value in torch_state.items():
        assert torch.equal(_bits(kernel_state[key]), _bits(value)), key
    assert (torch_history[-1] - torch_history[0]).abs().mean() > 1e-2  # the rows did move


def test_mf_training_is_bit_identical_with_and_without_the_kernel(
    kernel: row_kernel.RowKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two epochs of MF on the row path (``dense_share`` of the default trainer: tables of
    600 and 400 rows, batches of 64 read a small part of them): the same weights and
    optimiser state to the last bit."""
    data = make_synthetic(n_users=600, n_items=400, n_interactions=6000, seed=0)
    split = ratio_split(data, (0.8, 0.1, 0.1), seed=0)
    calls = _counting_kernel_steps(monkeypatch)
    results = []
    for use_kernel in (False, True):
        row_optim.use_row_kernel(use_kernel)
        model = build_model("mf", split.train, {"embedding_dim": 16}, seed=0)
        config = TrainerConfig(max_epochs=2, batch_size=64, seed=0, progress=False, l2=1e-4)
        trainer = BPRTrainer(model, split.train, None, config)
        trainer.fit()
        results.append((model.state_dict(), trainer.optimizer.state_dict()["state"]))
        assert bool(calls) == use_kernel
    (torch_model, torch_state), (kernel_model, kernel_state) = results
    for name, value in torch_model.items():
        assert torch.equal(_bits(kernel_model[name]), _bits(value)), name
    for key, values in torch_state.items():
        for name, value in values.items():
            assert torch.equal(_bits(kernel_state[key][name]), _bits(value)), (key, name)


def test_the_kernel_builds_into_an_empty_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A fresh machine builds the library at first use (about a second) and loads it."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(row_kernel, "_LOADED", {})
    try:
        loaded = row_kernel.load()
    except Exception as error:  # pragma: no cover - load() itself never raises
        pytest.fail(f"load raised {error!r}")
    if loaded is None:
        pytest.skip("no C++ compiler here")
    assert list(tmp_path.rglob("row_kernel-*.so"))


@pytest.mark.parametrize("how", ["no compiler", "switched off"])
def test_without_the_kernel_one_log_line_and_the_torch_path(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    if how == "no compiler":
        monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    else:
        monkeypatch.setenv("LEANREC_ROW_KERNEL", "0")
    monkeypatch.setattr(row_kernel, "_LOADED", {})
    monkeypatch.setattr(row_optim, "_KERNEL", {})
    with caplog.at_level(logging.INFO, logger="leanrec.train.row_kernel"):
        assert row_kernel.load() is None
        assert row_kernel.load() is None  # the answer is kept: one line, not one per step
    assert len(caplog.records) == 1
    assert "torch code" in caplog.records[0].getMessage()
    history, _ = _sparse_run(use_kernel=True)  # asks for the kernel, runs torch
    assert row_optim._KERNEL == {"kernel": None}
    assert torch.isfinite(history[-1]).all()
