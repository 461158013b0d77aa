"""The results tables of docs/ match their JSON, and the table renderer does what it says.

``docs/tables.py`` is not a package module: it is loaded from its file, as ``python
docs/tables.py`` runs it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "docs" / "tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_tables"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


tables = _load_tables()


def test_every_docs_table_matches_its_results_json() -> None:
    stale = tables.stale()
    assert not stale, (
        "out of date with benchmarks/results (run `python docs/tables.py`): "
        + ", ".join(str(page.relative_to(ROOT)) for page in stale)
    )


def test_every_named_table_is_used_and_every_cited_results_file_exists() -> None:
    used = {name for page in tables.pages() for name in tables.marked_names(page.read_text())}
    assert used == set(tables.TABLES)
    for table in tables.TABLES.values():
        for source in table.sources:
            assert (tables.RESULTS / source).is_file(), source


def _small_results(directory: Path) -> None:
    (directory / "toy.json").write_text(
        json.dumps(
            {
                "best": "run b (older label)",
                "run a|recall": 0.21449,
                "run b (older label)|recall": 0.2145,
                "run a|valid": float("nan"),
                "run b (older label)|valid": 0.18,
                "params": 157083.5,
                "a_seed0": 0.50004,
                "b_seed0": 0.50006,
                "a_seed1": 0.6,
                "b_seed1": 0.4,
            }
        )
    )
    (directory / "other.json").write_text(json.dumps({"seconds": 7200.0}))


SMALL = tables.Table(
    ("toy.json", "other.json"),
    ("row", "Recall", "valid", "extra"),
    (
        (
            "a",
            tables.F("{:.4f}", "run a|recall"),
            tables.F("{:.3f}", "run a|valid"),
            tables.F("{:,}", "params", transform=int),
        ),
        (
            tables.F("best: {}", "best", transform=tables.short_label),
            tables.F("{:.4f}", "{best}|recall"),
            tables.F("{:.3f}", "{best}|valid"),
            tables.PerSeedDifference("a_seed{seed}", "b_seed{seed}", seeds=(0, 1)),
        ),
        ("hours", "", "", tables.F("{:.1f} h", "other.json:seconds", transform=lambda s: s / 3600)),
    ),
    best=(tables.Best((1,)),),
)

# Hand-derived: 0.21449 -> "0.2145" ties with 0.2145, so both are bold (compared as printed);
# NaN shows as "—"; 157083.5 is truncated to 157,083; "{best}" reads "run b (older label)", and the
# label drops its parenthesis; 0.50004 - 0.50006 = -0.00002 -> "-0.0000", 0.6 - 0.4 -> "+0.2000";
# the second file's key carries its file name; 7200 s = 2.0 h; an empty cell is one space.
EXPECTED = """\
| row | Recall | valid | extra |
|---|---|---|---|
| a | **0.2145** | — | 157,083 |
| best: run b | **0.2145** | 0.180 | -0.0000, +0.2000 |
| hours | | | 2.0 h |
"""


def test_renderer_gives_the_hand_written_table(tmp_path: Path) -> None:
    _small_results(tmp_path)
    data = tables.load_sources(SMALL.sources, tmp_path)
    assert SMALL.render(data) == EXPECTED


def test_seed_mean_names_the_splits_it_averages_when_some_have_not_run() -> None:
    cell = tables.SeedMean("x_seed{seed}")
    assert cell.render({"x_seed0": 0.1, "x_seed1": 0.2, "x_seed2": 0.6}) == "0.3000"
    assert cell.render({"x_seed0": 0.1, "x_seed2": 0.2}) == "0.1500 (splits 0, 2)"
    assert cell.render({"x_seed1": 0.25}) == "0.2500 (split 1)"
    assert cell.render({"y_seed0": 0.1}) == "not run"


def test_best_without_ties_bolds_no_row_of_a_tie_and_above_compares_unrounded() -> None:
    """``Best(ties=False)``: 0.39699 and 0.39697 both print 0.3970, so neither is bold, while
    the column without a tie still bolds its best. ``Above``: 0.07468 is above 0.07466 though
    both print 0.0747, not above 0.0750; a NaN reference is left out, and with every reference
    NaN nothing is bold."""
    data = {
        "ciess|n5": 0.39699,
        "su|n5": 0.39697,
        "ciess|r20": 0.1960,
        "su|r20": 0.1954,
        "run": 0.07468,
        "magprune": 0.07466,
        "pep": 0.0750,
        "valid": 0.1723,
        "pep valid": 0.1721,
        "magprune valid": float("nan"),
    }
    table = tables.Table(
        (),
        ("c", "N@5", "R@20"),
        tuple(
            ("80%", tables.F("{:.4f}", f"{m}|n5"), tables.F("{:.4f}", f"{m}|r20"))
            for m in ("ciess", "su")
        ),
        best=(tables.Best((1, 2), group_column=0, ties=False),),
    )
    assert table.render(data).splitlines()[2:] == [
        "| 80% | 0.3970 | **0.1960** |",
        "| 80% | 0.3970 | 0.1954 |",
    ]
    tied = tables.Table((), ("N@5",), (("0.3970",), ("0.3970",)), best=(tables.Best((0,)),))
    assert tied.render({}).count("**0.3970**") == 2  # the default: ties are all bold
    assert tables.Above("{:.4f}", "run", ("magprune",)).render(data) == "**0.0747**"
    assert tables.Above("{:.4f}", "run", ("magprune", "pep")).render(data) == "0.0747"
    both = ("pep valid", "magprune valid")
    assert tables.Above("{:.4f}", "valid", both).render(data) == "**0.1723**"
    assert tables.Above("{:.4f}", "valid", ("magprune valid",)).render(data) == "0.1723"
    assert tables.Above("{:.4f}", "magprune valid", ("valid",)).render(data) == tables.MISSING


def test_screened_wins_count_the_metrics_above_each_pruner() -> None:
    """Hand-counted: above PEP on the last two of four metrics, above MagPrune on three (the
    first is a tie, not a win); three or more is bold."""
    search = (0.0746, 0.2027, 0.4237, 0.3689)
    pep = (0.0750, 0.2031, 0.4233, 0.3677)
    magprune = (0.0746, 0.2021, 0.4184, 0.3636)
    assert tables._wins(*search, *pep, *magprune) == "2/4, **3/4**"
    assert tables._uniform_sizes(0.8046875) == "25 / 25"  # 25 of d_max = 128 dimensions


def test_rewrite_replaces_only_the_marked_body_and_check_reports_a_stale_page(
    tmp_path: Path,
) -> None:
    _small_results(tmp_path)
    page = "intro\n<!-- table: small -->\n| old | table |\n<!-- /table -->\nafter\n"
    named = {"small": SMALL}
    rendered = tables.rewrite(page, lambda name: tables.render(name, named, tmp_path))
    assert rendered == "intro\n<!-- table: small -->\n" + EXPECTED + "<!-- /table -->\nafter\n"
    assert tables.rewrite(rendered, lambda name: tables.render(name, named, tmp_path)) == rendered


def test_stale_names_an_unknown_table(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("<!-- table: no-such-table -->\n<!-- /table -->\n")
    with pytest.raises(KeyError, match="no-such-table"):
        tables.stale(tmp_path)


def test_check_exits_1_with_a_diff_when_a_table_is_out_of_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    stale_page = docs / "page.md"
    stale_page.write_text("<!-- table: vs-deepctr -->\n| stale |\n<!-- /table -->\n")
    monkeypatch.setattr(tables, "DOCS", docs)
    monkeypatch.setattr(tables, "stale", lambda: {stale_page: ("a\n", "b\n")})
    assert tables.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "-a" in out and "+b" in out
    assert stale_page.read_text().startswith("<!-- table: vs-deepctr -->\n| stale |")


# ---------------------------------------------------------------------------------------------
# Every table of figures in docs/results/, docs/history/ and docs/design/ is generated, so a
# figure cannot drift from its JSON.
# ---------------------------------------------------------------------------------------------

SCANNED_FOLDERS = ("results", "history", "design")

HAND_WRITTEN_ROWS_WITH_DIGITS = {
    ("results/substrate.md", "`recbole`"): "a protocol's definition (ratios 8:1:1, cut-offs)",
    ("results/substrate.md", "`ciess`"): "a protocol's definition (split 50/25/25, cut-offs)",
    ("results/substrate.md", "`lightgcn`"): "a protocol's definition (10% validation, @20)",
    ("design/shared-embedding.md", "`threshold`"): "a method's knob grid (n in {2, 5, 10, 20})",
    ("design/shared-embedding.md", "`hashing`"): "a method's knob grid (shares 1/8 to 1)",
    ("design/shared-embedding.md", "`threshold_hierarchy`"): "a method's knob grid (t_k values)",
    ("design/shared-embedding.md", "`autoassign`"): "a method's knob grid (k = 3)",
}
"""Body rows of hand-written tables in the scanned pages that may hold a digit:
``(page under docs/, first cell) -> why it is no measured figure``."""

HAND_WRITTEN_PAGES = {
    "design/streams.md": "figures printed by the code snippets of the page, each table naming "
    "its snippet; no benchmarks/results file holds them",
    "design/stream-tables.md": "figures printed by the code snippets of the page, each table "
    "naming its snippet; no benchmarks/results file holds them",
}
"""Pages whose hand-written tables may all hold figures: ``page under docs/ -> why``."""


def hand_written_rows_with_digits(text: str) -> list[str]:
    """First cells of the body rows, with a digit in some cell, of the markdown tables of
    ``text`` that lie outside every generated ``<!-- table: ... -->`` block."""
    outside = tables._MARKERS.sub("", text)
    rows: list[str] = []
    table: list[str] = []
    for line in [*outside.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        for row in table[2:]:  # header and separator first
            cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
            if any(re.search(r"\d", cell) for cell in cells):
                rows.append(cells[0])
        table = []
    return rows


def test_the_hand_written_table_scanner_sees_figures_outside_generated_blocks() -> None:
    page = (
        "| setting | value |\n|---|---|\n| plain | text |\n| K = 2 | 0.9571 |\n\n"
        "<!-- table: small -->\n| row | R@20 |\n|---|---|\n| a | 0.2 |\n<!-- /table -->\n"
        "| a 2 header | only |\n|---|---|\n| no | figures |\n"
    )
    assert hand_written_rows_with_digits(page) == ["K = 2"]


def test_every_figure_table_in_docs_results_history_and_design_is_generated() -> None:
    docs = ROOT / "docs"
    found = {
        (str(page.relative_to(docs)), first_cell)
        for folder in SCANNED_FOLDERS
        for page in sorted((docs / folder).glob("*.md"))
        for first_cell in hand_written_rows_with_digits(page.read_text())
    }
    assert {page for page, _ in found} >= set(HAND_WRITTEN_PAGES), "an allowed page is gone"
    unexplained = {
        (page, cell)
        for page, cell in found - set(HAND_WRITTEN_ROWS_WITH_DIGITS)
        if page not in HAND_WRITTEN_PAGES
    }
    assert not unexplained, (
        "hand-written table rows with figures (generate them in docs/tables.py, or list them "
        f"with the reason in HAND_WRITTEN_ROWS_WITH_DIGITS): {sorted(unexplained)}"
    )
    assert set(HAND_WRITTEN_ROWS_WITH_DIGITS) <= found, "an allowed row is gone: drop it"


# ---------------------------------------------------------------------------------------------
# Every file the README and docs cite exists, and the README's Python still imports.
# ---------------------------------------------------------------------------------------------

DOC_PAGES = [ROOT / "README.md", *tables.pages()]

_RESULTS_PATH = re.compile(r"(?<![\w/\"-])(?:benchmarks/)?results/[\w.{},*-]*[\w}*]")
"""A results file as the pages cite it: ``benchmarks/results/ciess_seeds.json``, or
``results/ciess_seeds.json`` (relative to ``benchmarks/``); ``{a,b}`` is brace-expanded and
``*`` must match at least one file. A quoted ``"results/..."`` is a Python argument, not a file."""
_RESULTS_NAME = re.compile(r"(?<![\w/.-])([\w.{},-]+\.(?:json|png))\b")
"""A bare file name (``ameir_table--fm.json``): a results file when it is named after a script."""
_SCRIPT_PATH = re.compile(r"\bbenchmarks/[\w/]+\.py\b")
_SCRIPT_MODULE = re.compile(r"python -m (benchmarks(?:\.\w+)+)")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
SCRIPTS = {path.stem for path in (ROOT / "benchmarks").glob("*/*.py")} - {"__init__"}


def _expand_braces(path: str) -> list[str]:
    """``a--{x,y}.json`` -> ``["a--x.json", "a--y.json"]`` (one brace group at most)."""
    match = re.search(r"\{([^{}]*)\}", path)
    if match is None:
        return [path]
    return [path[: match.start()] + part + path[match.end() :] for part in match[1].split(",")]


def _cited(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """``(page, first group or whole match)`` for every match of ``pattern`` in the pages."""
    return [
        (str(page.relative_to(ROOT)), match.group(1 if pattern.groups else 0))
        for page in DOC_PAGES
        for match in pattern.finditer(page.read_text())
    ]


def _results_file(cited: str) -> Path:
    """Where a cited results path points: ``results/`` is ``benchmarks/results/``."""
    return ROOT / cited if cited.startswith("benchmarks/") else ROOT / "benchmarks" / cited


def _is_results_name(name: str) -> bool:
    """Results files are named after their script: ``<script>.json``, ``<script>--<tag>.png``
    (and, before the ``--tag`` convention, ``<script>_<tag>.json``, which must fail)."""
    stem = name.rsplit(".", 1)[0]
    return any(
        stem == script or stem.startswith((f"{script}--", f"{script}_")) for script in SCRIPTS
    )


def test_the_citation_scanners_see_what_they_should() -> None:
    """A scanner that finds nothing would check nothing: pin a few citations of each kind."""
    paths = {cited for _, cited in _cited(_RESULTS_PATH)}
    assert "benchmarks/results/ciess_seeds.json" in paths
    assert "results/ciess_retrain_budget--{ciess,su}.json" in paths
    assert "results/sketch_table--beauty-probe-*.json" in paths
    assert not any(path.startswith("results/es-") for path in paths)  # result.save("results/..")
    assert _expand_braces("r--{ciess,su}.json") == ["r--ciess.json", "r--su.json"]
    assert _results_file("results/a.json") == ROOT / "benchmarks" / "results" / "a.json"
    names = {name for _, name in _cited(_RESULTS_NAME)}
    assert {"ameir_table--fm.json", "rows.json"} <= names
    assert _is_results_name("ameir_table--fm.json") and _is_results_name("ameir_table_fm.json")
    assert not _is_results_name("rows.json") and not _is_results_name("search_curve.png")
    assert "benchmarks.paper.quickstart_synthetic" in {m for _, m in _cited(_SCRIPT_MODULE)}
    assert "benchmarks/peers/vs_deepctr.py" in {p for _, p in _cited(_SCRIPT_PATH)}
    assert "../design/ameir-one-shot.md" in {link for _, link in _cited(_LINK)}


def test_every_cited_results_file_exists() -> None:
    """Paths under ``results/`` and bare names of results files (named after a script)."""
    cited = [(page, _results_file(path)) for page, path in _cited(_RESULTS_PATH)]
    cited += [
        (page, ROOT / "benchmarks" / "results" / name)
        for page, name in _cited(_RESULTS_NAME)
        if _is_results_name(name)
    ]
    missing = [
        (page, expanded)
        for page, path in cited
        for expanded in _expand_braces(str(path.relative_to(ROOT)))
        if not any(ROOT.glob(expanded))
    ]
    assert not missing, missing


def test_every_cited_benchmark_script_and_module_exists() -> None:
    scripts = _cited(_SCRIPT_PATH)
    modules = [(page, m.replace(".", "/") + ".py") for page, m in _cited(_SCRIPT_MODULE)]
    missing = [(page, path) for page, path in scripts + modules if not (ROOT / path).is_file()]
    assert not missing, missing


def test_every_relative_link_resolves() -> None:
    """Links to pages (``../design/ciess-search.md``), folders and figures, from the page."""
    missing = [
        (page, link)
        for page, link in _cited(_LINK)
        if "://" not in link and not (ROOT / page).parent.joinpath(link).exists()
    ]
    assert not missing, missing


_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _readme_python_blocks() -> list[str]:
    return _PYTHON_BLOCK.findall((ROOT / "README.md").read_text())


def test_the_readme_has_python_examples() -> None:
    assert len(_readme_python_blocks()) >= 4


@pytest.mark.parametrize(
    "source", _readme_python_blocks(), ids=lambda source: source.split("\n", 1)[0]
)
def test_readme_python_block_compiles_and_its_imports_succeed(source: str) -> None:
    """Only the import statements run (the examples train models). Every name the README imports
    is a class or a function, so a name that resolves to a module (a package's submodule
    shadowing a missing export) fails too."""
    tree = ast.parse(source)
    compile(tree, "README.md", "exec")
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports, "a README example that imports nothing"
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=imports, type_ignores=[]), "README.md", "exec"), namespace)
    for node in imports:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                value = namespace[alias.asname or alias.name]
                assert not isinstance(value, ModuleType), f"{node.module}.{alias.name} is a module"
