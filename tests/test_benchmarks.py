"""Every benchmark script imports, says how it runs, and every results file names its script.

Benchmarks run rarely and by hand, so a renamed library symbol would otherwise break one silently:
importing each script runs its imports and module-level code (and nothing more: the work of a
script sits under ``main()`` / ``if __name__ == "__main__":``).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"

MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in BENCHMARKS.rglob("*.py")
    if path.name != "__init__.py" and not any(p.startswith(".") for p in path.parts)
)
SCRIPTS = {name.rsplit(".", 1)[1]: name for name in MODULES}
"""Script stem -> module name (stems are unique across the sub-folders)."""

PEER_SIDE = {
    "benchmarks.peers.recbole_side",
    "benchmarks.peers.deepctr_runner",
    "benchmarks.peers.river_side",
}
"""Run by path inside a peer's own venv, where neither leanrec nor ``benchmarks`` exists."""

WRITTEN_ELSEWHERE = {
    "ciess_per_role_projection.json",
    "ciess_search_curve.png",
    "ciess_size_vs_popularity.png",
}
"""Cited by docs/ but written by ``leanrec experiment embedding-size`` or by hand, not by a
benchmark script."""


def _source(module: str) -> str:
    return (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()


def test_the_benchmark_folders_are_found() -> None:
    for folder in ("paper", "peers", "perf", "probes"):
        assert any(name.startswith(f"benchmarks.{folder}.") for name in MODULES), folder
    assert len(SCRIPTS) == len(MODULES), "two scripts share a name"


@pytest.mark.parametrize("module", MODULES)
def test_every_script_imports_without_running(module: str) -> None:
    imported = importlib.import_module(module)
    assert imported.__doc__, f"{module} has no module docstring"


@pytest.mark.parametrize("module", MODULES)
def test_every_script_says_how_it_runs(module: str) -> None:
    tree = ast.parse(_source(module))
    guarded = any(
        isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body
    )
    docstring = ast.get_docstring(tree) or ""
    if module in PEER_SIDE:
        assert f"benchmarks/{module.split('.', 1)[1].replace('.', '/')}.py" in docstring
    elif guarded:
        assert f"python -m {module}" in docstring, f"{module}: no `python -m {module}` line"
    else:
        assert "Not a script" in docstring or "python -m benchmarks." in docstring, module


def test_every_results_file_is_named_after_the_script_that_writes_it() -> None:
    pattern = re.compile(r"(?P<script>[a-z0-9_]+)(--[A-Za-z0-9][A-Za-z0-9._-]*)?\.(json|png)")
    for path in sorted(RESULTS.iterdir()):
        if path.name in WRITTEN_ELSEWHERE:
            continue
        match = pattern.fullmatch(path.name)
        assert match is not None, f"{path.name}: not <script>[--<tag>].json|png"
        script = match.group("script")
        assert script in SCRIPTS, f"{path.name}: no benchmark script named {script}"
        assert re.search(f"[\"']{script}[\"']", _source(SCRIPTS[script])), (
            f"{path.name}: {SCRIPTS[script]} never writes under its own name"
        )


def test_results_names_follow_the_tag() -> None:
    from benchmarks.common import RESULTS_DIR, results_name, results_path

    assert results_name("ameir_table") == "ameir_table"
    assert results_name("ameir_table", "fm-5seeds") == "ameir_table--fm-5seeds"
    assert results_name("vs_recbole", "init-normal--epochs-10") == (
        "vs_recbole--init-normal--epochs-10"
    )
    assert (
        results_path("sketch_table", "beauty", ".png") == RESULTS_DIR / "sketch_table--beauty.png"
    )
    with pytest.raises(ValueError, match="tag"):
        results_name("ameir_table", "../elsewhere")
