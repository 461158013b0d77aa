"""Helpers shared by the benchmark scripts: where results go, flat JSON results, printed tables.

Every script writes its files into one flat folder, ``benchmarks/results/``, named after itself:
``<script>.json`` / ``<script>.png``, or ``<script>--<tag>.json`` / ``.png`` for a variant run
(``--tag fm-5seeds`` of ``ameir_table`` writes ``ameir_table--fm-5seeds.json``). So every file
there says which script wrote it, and the script's ``--tag`` option rewrites exactly that file.

Scripts run as modules from the repository root, e.g. ``python -m benchmarks.paper.ciess_table``,
and import these helpers as ``benchmarks.common``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def data_dir() -> Path:
    """``LEANREC_DATA`` if set, else the shared data folder beside the repository."""
    return Path(os.environ.get("LEANREC_DATA", SHARED_DATA))


def machine() -> dict[str, Any]:
    """Facts about the machine a result was measured on (CPU count, versions, torch threads)."""
    return {
        "machine_cpus": os.cpu_count() or 0,
        "machine_torch": torch.__version__,
        "machine_python": platform.python_version(),
        "machine_torch_threads": torch.get_num_threads(),
    }


def results_name(script: str, tag: str | None = None) -> str:
    """The stem of a script's results files: ``<script>``, or ``<script>--<tag>`` for a variant.

    >>> results_name("ameir_table", "fm-5seeds")
    'ameir_table--fm-5seeds'
    """
    if not tag:
        return script
    if not _TAG.fullmatch(tag):
        raise ValueError(f"a results tag is letters, digits, '.', '_' and '-'; got {tag!r}")
    return f"{script}--{tag}"


def results_path(script: str, tag: str | None = None, suffix: str = ".json") -> Path:
    """``benchmarks/results/<script>[--<tag>]<suffix>`` (the folder is created)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR / f"{results_name(script, tag)}{suffix}"


def add_tag_argument(parser: argparse.ArgumentParser, script: str = "<script>") -> None:
    """The ``--tag`` option every results-writing script takes (one variant, one file name)."""
    parser.add_argument(
        "--tag",
        default=None,
        help=f"name this run's results results/{script}--TAG.json (default: results/{script}.json)",
    )


def write_results(script: str, results: dict[str, Any], tag: str | None = None) -> Path:
    """Write flat ``results`` (plus machine facts and a timestamp) to ``results_path(script, tag)``.

    The record names the script and, for a variant run, its tag.
    """
    path = results_path(script, tag)
    flat = {k: v for k, v in results.items() if not isinstance(v, (dict, list))}
    nested = {k: v for k, v in results.items() if isinstance(v, (dict, list))}
    if nested:
        raise ValueError(f"results must be flat; nested keys: {sorted(nested)}")
    record = {
        "script": script,
        **({"tag": tag} if tag else {}),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **machine(),
        **flat,
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print ``rows`` under ``headers`` as aligned columns (floats to 4 decimals below 100)."""

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
