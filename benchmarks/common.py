"""Helpers shared by the benchmark scripts: flat JSON results and printed tables."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_dir() -> Path:
    """``LEANREC_DATA`` if set, else the shared data folder beside the repository."""
    return Path(os.environ.get("LEANREC_DATA", SHARED_DATA))


def machine() -> dict[str, Any]:
    return {
        "machine_cpus": os.cpu_count() or 0,
        "machine_torch": torch.__version__,
        "machine_python": platform.python_version(),
        "machine_torch_threads": torch.get_num_threads(),
    }


def write_results(script: str, results: dict[str, Any]) -> Path:
    """Write flat ``results`` (plus machine facts and a timestamp) to results/<script>.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    flat = {k: v for k, v in results.items() if not isinstance(v, (dict, list))}
    nested = {k: v for k, v in results.items() if isinstance(v, (dict, list))}
    if nested:
        raise ValueError(f"results must be flat; nested keys: {sorted(nested)}")
    record = {"script": script, "written": time.strftime("%Y-%m-%dT%H:%M:%S"), **machine(), **flat}
    path = RESULTS_DIR / f"{script}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
