"""The results tables of docs/ match their JSON, and the table renderer does what it says.

``docs/tables.py`` is not a package module: it is loaded from its file, as ``python
docs/tables.py`` runs it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

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
