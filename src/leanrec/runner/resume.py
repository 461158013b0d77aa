"""Refusing to resume a run directory with other settings.

A rerun in an existing run directory skips the rows it finds. That is right when the settings
are those of the run that wrote them, and wrong otherwise: a stored row of another stream,
model or grid would be counted as done and mixed into the new table. :func:`check_resumable`
compares the experiment with the directory's ``config.json`` before anything is written, and
names every setting that changed::

    check_resumable(experiment, out_dir, defaults=AdaptiveExperiment(),
                    resumable=("out_dir", "methods", "seeds"),
                    row_files=("rows.json", "warmup_scores.json"))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leanrec.runner.rundir import jsonable


def has_rows(path: Path) -> bool:
    """Whether ``path`` is a row file holding at least one row (a torn or foreign file counts:
    it is not ours to overwrite), any other file that exists (a checkpoint: a search's state
    is work done) or a folder holding anything (a folder of per-cell checkpoints)."""
    if path.is_dir():
        return any(path.iterdir())
    if not path.is_file():
        return False
    if path.suffix != ".json":
        return True
    try:
        return json.loads(path.read_text()) != []
    except (OSError, ValueError):  # torn JSON or bytes that are not text
        return True


NOT_WORK = ("config.json", "run.log")
"""What a run directory holds besides its work: the settings and the log."""


def work_in(directory: str | Path) -> tuple[str, ...]:
    """Everything in ``directory`` but :data:`NOT_WORK`, by name: rows, checkpoints, models,
    tables (every file a rerun would reuse, or take for its own)."""
    path = Path(directory)
    if not path.is_dir():
        return ()
    return tuple(sorted(entry.name for entry in path.iterdir() if entry.name not in NOT_WORK))


def check_resumable(
    experiment: Any,
    directory: str | Path,
    defaults: Any,
    resumable: Sequence[str],
    row_files: Sequence[str] | None = ("rows.json",),
) -> None:
    """Raise when ``directory`` holds rows written with settings other than ``experiment``'s.

    Args:
        experiment: the experiment about to run (a dataclass).
        directory: its run directory.
        defaults: the experiment class's defaults: a setting missing from an older
            ``config.json`` (a field added since) counts as its default.
        resumable: settings a rerun may change (where the output goes, which methods or seeds
            are added: they add rows without changing the stored ones); ``"config.field"``
            names a field of a nested configuration (e.g. ``"search.num_threads"``).
        row_files: the files (or folders) whose work would be reused; None: everything in
            the directory but its settings and log (:func:`work_in`).

    Raises:
        ValueError: the directory holds rows and its ``config.json`` cannot be read or differs;
            the message names the file, each changed setting with both values, and says that
            nothing was written.
    """
    path = Path(directory)
    names = work_in(path) if row_files is None else row_files
    stored_rows = [name for name in names if has_rows(path / name)]
    config_path = path / "config.json"
    if not stored_rows or not config_path.is_file():
        return
    try:
        stored = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{config_path}: cannot read the settings of the run that wrote {stored_rows} "
            f"({error}); resume with a readable config.json or choose another output "
            "directory; nothing was written"
        ) from error
    current = jsonable(experiment)
    base = jsonable(defaults)
    changed = []
    for name, value in current.items():
        # fields added since that run (at any depth) count as their defaults
        before = _with_defaults(stored.get(name, base.get(name)), base.get(name))
        changed += _differences(name, before, value, frozenset(resumable))
    if changed:
        raise ValueError(
            f"{path} holds the work ({_names(stored_rows)}) of a run with other settings: "
            f"{'; '.join(changed)}. Resume it with its own settings (its {config_path.name}), "
            "or write to another output directory (--out); nothing was written"
        )


def _names(names: Sequence[str], shown: int = 6) -> str:
    """``"a, b, c"``, or the first ``shown`` names and ``"and N more"``."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def _with_defaults(stored: Any, default: Any) -> Any:
    """``stored`` with the fields of ``default`` it lacks, at every depth of nested dicts."""
    if not (isinstance(stored, dict) and isinstance(default, dict)):
        return stored
    return {
        **default,
        **{key: _with_defaults(value, default.get(key)) for key, value in stored.items()},
    }


def _differences(name: str, before: Any, now: Any, resumable: frozenset[str]) -> list[str]:
    """``"name before -> now"`` for setting ``name`` and, inside nested configurations, for
    each field that differs (``"search.retrain.learning_rate 0.005 -> 0.01"``); settings named
    in ``resumable`` (dotted inside nested ones) are skipped."""
    if name in resumable:
        return []
    if isinstance(before, dict) and isinstance(now, dict):
        return [
            line
            for key in sorted(set(before) | set(now))
            for line in _differences(f"{name}.{key}", before.get(key), now.get(key), resumable)
        ]
    if before == now:
        return []
    return [f"{name} {json.dumps(before)} -> {json.dumps(now)}"]


__all__ = ["NOT_WORK", "check_resumable", "has_rows", "work_in"]
