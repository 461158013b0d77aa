"""Layering of ``src/leanrec``: lower layers never import higher ones, and the substrate has no
import cycle.

Layers, bottom to top: the substrate (``embeddings``, ``data``, ``models``, ``train``,
``evaluate``, ``rl``, ``runner`` and the top-level helper modules such as ``seeding`` and
``options``) < ``search`` (the policies) < ``api`` < ``cli``. Every import counts for the
layering, also one inside a function (a lazy import still makes the lower layer depend on the
higher one). Cycles are looked for among the imports that run when a module is imported: the
module-level ones, outside ``if TYPE_CHECKING:`` blocks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "leanrec"

LAYERS: dict[str, int] = {"search": 1, "api": 2, "cli": 3}
"""Rank of each upper layer by its first name under ``leanrec``; everything else is 0."""


def module_name(path: Path, src: Path = SRC) -> str:
    """``src/leanrec/data/behavior.py`` -> ``leanrec.data.behavior`` (``__init__`` dropped)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    """0 for the substrate, else the rank in :data:`LAYERS`."""
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import: the module body, into ``if``/``try``/``with`` blocks but
    not into functions, classes' methods or ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _module_level(node.body)
        else:
            yield node


def imported_modules(
    node: ast.AST, importer: str, known: set[str], is_package: bool = False
) -> list[str]:
    """The ``leanrec`` modules an ``import`` / ``from ... import`` statement names.

    ``from leanrec.data import splits`` names ``leanrec.data.splits`` when that is a module,
    ``from leanrec.data.behavior import FeatureMap`` names ``leanrec.data.behavior``.
    """
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: resolve against the importer's package
        package = importer.split(".")
        package = package if is_package else package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    if base.split(".")[0] != PACKAGE:
        return []
    out = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        out.append(submodule if submodule in known else base)
    return out


def import_graph(src: Path = SRC) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(all_imports, import_time_imports)``: per module, the leanrec modules it imports
    anywhere, and those imported when it is imported."""
    paths = {module_name(p, src): p for p in sorted((src / PACKAGE).rglob("*.py"))}
    known = set(paths)
    every: dict[str, set[str]] = {}
    at_import: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        every[module] = {
            target
            for node in ast.walk(tree)
            for target in imported_modules(node, module, known, is_package)
        }
        at_import[module] = {
            target
            for node in _module_level(tree.body)
            for target in imported_modules(node, module, known, is_package)
            if target != module
        }
    return every, at_import


def layer_violations(imports: dict[str, set[str]]) -> list[str]:
    """``"importer -> imported"`` for every import of a higher layer."""
    return sorted(
        f"{module} -> {target}"
        for module, targets in imports.items()
        for target in targets
        if layer(target) > layer(module)
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]`` of ``graph``, or None (iterative depth-first
    search; an edge back to a module on the current path closes a cycle)."""
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        path = [root]
        stack = [iter(sorted(graph[root]))]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                done.add(path.pop())
            elif target in path:
                return [*path[path.index(target) :], target]
            elif target not in done and target in graph:
                path.append(target)
                stack.append(iter(sorted(graph[target])))
    return None


# ------------------------------------------------------------------------------------ the tree
EVERY_IMPORT, IMPORT_TIME = import_graph()


def test_the_tree_is_parsed() -> None:
    """Guards the checks below against an empty or mis-rooted walk."""
    assert {"leanrec.models.base", "leanrec.search.base", "leanrec.api", "leanrec.cli"} <= set(
        EVERY_IMPORT
    )
    assert "leanrec.models.ctr.base" in EVERY_IMPORT["leanrec.models.ctr.registry"]


def test_no_lower_layer_imports_a_higher_one() -> None:
    """Substrate never imports search / api / cli; search never api / cli; api never cli."""
    assert layer_violations(EVERY_IMPORT) == []


def test_no_import_cycle_in_the_substrate() -> None:
    substrate = {
        module: {t for t in targets if layer(t) == 0}
        for module, targets in IMPORT_TIME.items()
        if layer(module) == 0
    }
    assert find_cycle(substrate) is None


# ------------------------------------------------------------------------ the checks can fail
def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_function_level_import_of_a_higher_layer_is_caught(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        {
            "__init__.py": "",
            "models/__init__.py": "",
            "models/base.py": "def f():\n    from leanrec.search.space import x\n",
            "search/__init__.py": "",
            "search/space.py": "from leanrec.models import base\nfrom leanrec import api\n",
            "api/__init__.py": "",
        },
    )
    every, at_import = import_graph(src)
    assert every["leanrec.models.base"] == {"leanrec.search.space"}
    assert at_import["leanrec.models.base"] == set()  # lazy: no import-time edge
    assert every["leanrec.search.space"] == {"leanrec.models.base", "leanrec.api"}
    assert layer_violations(every) == [
        "leanrec.models.base -> leanrec.search.space",
        "leanrec.search.space -> leanrec.api",
    ]


def test_cycles_are_found_and_type_checking_imports_ignored(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        {
            "__init__.py": "",
            "data/__init__.py": "",
            "data/a.py": "from leanrec.data.b import y\n",
            "data/b.py": "from leanrec.data import c\n",
            "data/c.py": "import leanrec.data.a\n",
            "data/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from leanrec.data.e import z\n",
            "data/e.py": "from leanrec.data.d import w\n",
        },
    )
    _, at_import = import_graph(src)
    assert find_cycle(at_import) == [
        "leanrec.data.a",
        "leanrec.data.b",
        "leanrec.data.c",
        "leanrec.data.a",
    ]
    del at_import["leanrec.data.c"]
    assert find_cycle(at_import) is None  # d -> e only under TYPE_CHECKING


@pytest.mark.parametrize(
    ("module", "rank"),
    [
        ("leanrec.seeding", 0),
        ("leanrec.models.ctr.ameir", 0),
        ("leanrec.search.base", 1),
        ("leanrec.api.training", 2),
        ("leanrec.cli", 3),
    ],
)
def test_layer_ranks(module: str, rank: int) -> None:
    assert layer(module) == rank
