"""The contract every learned policy of :mod:`leanrec.search` keeps.

Each policy is one subpackage of the same shape:

- ``config.py``: the typed configuration of the policy (``CIESSConfig``, ``SketchConfig``,
  ``ArchitectureSearchConfig``), every field documented with the paper's default, and the
  experiment dataclass (``EmbeddingSizeExperiment``, ...) that names a dataset, the methods
  and baselines to compare, the seeds and an ``out_dir``;
- ``policy.py``: the learned decision-maker and its learning rule;
- ``baselines.py``: ``METHODS``, a :class:`~leanrec.runner.registry.Registry` of the policy
  and its baselines as method objects, so an experiment is a loop over methods;
- ``experiment.py``: ``run_experiment(experiment, log) -> ExperimentResult``, which runs (or
  resumes) the paper-style table in a :class:`~leanrec.runner.rundir.RunDirectory`:
  ``config.json``, ``rows.json`` (one row per finished cell, written atomically), then
  ``results.json``, ``table.md`` and PNG plots. Test data are read only inside
  :func:`~leanrec.runner.final.final_evaluation`, after every choice was made on validation.

Every package exports the same names: its config and experiment classes, ``METHODS`` and
``run_experiment``. ``tests/search/contract.py`` holds the tests every policy passes: budgets
respected, the same seed gives the same rows, a killed run resumes to the rows of an
uninterrupted one, and the test split is never read before the final evaluation.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanrec.runner.rundir import RunDirectory


@dataclass
class ExperimentResult:
    """What every policy's ``run_experiment`` returns.

    Attributes:
        policy: the policy's package name (``"embedding_size"``, ``"sketch"``,
            ``"architecture"``).
        run_dir: the run directory the experiment wrote.
        rows: one row per finished cell (``rows.json``).
        summary: the aggregated results (``results.json``), from which ``table.md`` is made.
        artifacts: files the user takes away (models, packed tables, learned policies,
            searched architectures), by a short name; paths inside ``run_dir``.
    """

    policy: str
    run_dir: RunDirectory
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    artifacts: dict[str, Path] = field(default_factory=dict)

    def table(self) -> str:
        """The markdown table of the summary (``table.md``)."""
        return self.run_dir.table()

    def save(self, directory: str | Path) -> Path:
        """Copy the results (config, rows, summary, table, plots) and every artefact into
        ``directory`` (created); returns it. The run directory itself is left as it is."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        source = self.run_dir.path
        if source.resolve() == target.resolve():
            return target
        for name in ("config.json", "rows.json", "results.json", "table.md", "run.log"):
            if (source / name).exists():
                shutil.copy2(source / name, target / name)
        for plot in source.glob("*.png"):
            shutil.copy2(plot, target / plot.name)
        for path in self.artifacts.values():
            relative = path.relative_to(source) if path.is_relative_to(source) else path.name
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
        return target


__all__ = ["ExperimentResult"]


def preset_values(
    presets: dict[str, dict[str, Any]],
    additions: dict[str, dict[str, Any]],
    preset: str,
    without: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The field values a policy's ``apply_preset`` sets: those of ``presets[preset]``, then
    for each addition named in ``without`` the values of ``additions[name]`` (the paper's, which
    turn that addition off alone). Keys are whatever the policy's tables use (field names, or
    dotted paths into nested configs).

    Example::

        presets = {"paper": {"prior": 0.0}, "leanrec": {"prior": 1.0, "queue": 50}}
        preset_values(presets, {"prior": {"prior": 0.0}}, "leanrec", ("prior",))
        # {"prior": 0.0, "queue": 50}

    Raises:
        ValueError: an unknown preset or addition, naming the known ones, or additions to turn
            off of the ``paper`` preset (it has none). A single name may be given as a string.
    """
    if isinstance(without, str):  # ("screen") is a string: one name, not its letters
        without = (without,)
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(presets)}")
    if preset == "paper" and without:
        raise ValueError(
            f"the paper preset has none of leanrec's additions to turn off (without="
            f"{list(without)}): turn them off of the leanrec preset"
        )
    unknown = [name for name in without if name not in additions]
    if unknown:
        raise ValueError(f"unknown additions {unknown}; choose from {list(additions)}")
    values = dict(presets[preset])
    for name in without:
        values.update(additions[name])
    return values
