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
    it is not ours to overwrite)."""
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()) != []
    except (OSError, json.JSONDecodeError):
        return True


def check_resumable(
    experiment: Any,
    directory: str | Path,
    defaults: Any,
    resumable: Sequence[str],
    row_files: Sequence[str] = ("rows.json",),
) -> None:
    """Raise when ``directory`` holds rows written with settings other than ``experiment``'s.

    Args:
        experiment: the experiment about to run (a dataclass).
        directory: its run directory.
        defaults: the experiment class's defaults: a setting missing from an older
            ``config.json`` (a field added since) counts as its default.
        resumable: settings a rerun may change (where the output goes, which methods or seeds
            are added: they add rows without changing the stored ones).
        row_files: the files whose rows would be reused.

    Raises:
        ValueError: the directory holds rows and its ``config.json`` cannot be read or differs;
            the message names the file, each changed setting with both values, and says that
            nothing was written.
    """
    path = Path(directory)
    stored_rows = [name for name in row_files if has_rows(path / name)]
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
        if name in resumable:
            continue
        before = stored.get(name, base.get(name))
        if isinstance(before, dict) and isinstance(base.get(name), dict):
            before = {**base[name], **before}  # fields added since that run: their defaults
        if before != value:
            changed.append(f"{name} {json.dumps(before)} -> {json.dumps(value)}")
    if changed:
        raise ValueError(
            f"{path} holds rows ({', '.join(stored_rows)}) of a run with other settings: "
            f"{'; '.join(changed)}. Resume it with its own settings (its {config_path.name}), "
            "or write to another output directory (--out); nothing was written"
        )


__all__ = ["check_resumable", "has_rows"]
