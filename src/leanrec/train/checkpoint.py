"""Training checkpoints: everything needed to resume exactly where a run stopped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from leanrec.model_files import read_torch_file


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` to a temporary file then rename: a kill never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_atomic` (tensors and plain values only)."""
    return read_torch_file(path, "training checkpoint")


def start_run(
    num_threads: int, seed: int, checkpoint_path: Path | None = None, resume: bool = False
) -> dict[str, Any] | None:
    """Begin a seeded run: set torch's intra-op threads (0: leave torch's default) and seed its
    generator; return the checkpoint to continue from when ``resume`` and one exists (its
    generator states then replace the fresh seed)."""
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        return load_checkpoint(checkpoint_path)
    return None
