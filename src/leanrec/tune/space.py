"""The search space of ``leanrec tune``: a YAML file of trainer and model options.

Each top-level key is an option of ``leanrec train`` (a field of the trainer's
:class:`~leanrec.train.bpr.TrainerConfig` or of the model's config, short names such as ``lr``
included); its value is either a fixed value or one distribution::

    learning_rate: {loguniform: [1.0e-4, 0.05]}   # log-uniform between the bounds
    l2: {loguniform: [1.0e-6, 1.0e-2]}
    embedding_dim: {choice: [32, 64, 128]}         # one of the values
    n_negatives: {randint: [1, 8]}                 # an integer, both bounds included
    lr_decay: {uniform: [0.3, 1.0]}                # uniform between the bounds
    batch_size: 4096                               # fixed in every trial

Every mistake is reported with the file and the line of the offending option: an unknown
option (with close matches), an unknown distribution, bounds that are not two numbers with
the lower one first (positive for ``loguniform``, integers for ``randint``), an empty choice,
or a value the option refuses (each bound and each choice is checked by building the config).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanrec.data.errors import DataError
from leanrec.options import build_config, route_options

DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
"""The distributions a space file may name."""

ALIASES = {"lr": "learning_rate", "batch": "batch_size", "reg": "l2", "epochs": "max_epochs"}
"""Short option names, as ``leanrec train`` reads them."""


@dataclass(frozen=True)
class Dimension:
    """One option of the space: a distribution over its values, or a fixed value."""

    option: str
    """The config field (aliases resolved), e.g. ``learning_rate``."""
    kind: str
    """``fixed`` or one of :data:`DISTRIBUTIONS`."""
    values: tuple[Any, ...]
    """``(value,)`` when fixed, ``(low, high)`` for a range, the choices for ``choice``."""
    line: int
    """1-based line of the option in the space file."""

    def extremes(self) -> tuple[Any, ...]:
        """The values a trial may get at the edges: every choice, both bounds of a range."""
        if self.kind == "randint":
            return (int(self.values[0]), int(self.values[1]))
        return self.values

    def to_tune(self) -> Any:
        """The Ray Tune search-space object (``tune.loguniform(…)``), or the fixed value."""
        from ray import tune

        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "uniform":
            return tune.uniform(*self.values)
        if self.kind == "loguniform":
            return tune.loguniform(*self.values)
        if self.kind == "randint":
            low, high = self.values
            return tune.randint(int(low), int(high) + 1)  # Tune's upper bound is exclusive
        return tune.choice(list(self.values))


@dataclass(frozen=True)
class SearchSpace:
    """A parsed, checked space file: which options a trial sets, split by config.

    Attributes:
        dimensions: every option of the file, in file order.
        trainer_options: names of the options that go to the trainer config.
        model_options: names of those that go to the model config.
        path: the file it was read from.
    """

    dimensions: tuple[Dimension, ...]
    trainer_options: tuple[str, ...]
    model_options: tuple[str, ...]
    path: Path

    def to_tune(self) -> dict[str, Any]:
        """``{option: Ray Tune distribution or fixed value}`` (Tune's ``param_space``)."""
        return {d.option: d.to_tune() for d in self.dimensions}

    def split(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A trial's ``params`` as ``(trainer options, model options)``."""
        trainer = {k: v for k, v in params.items() if k in self.trainer_options}
        model = {k: v for k, v in params.items() if k in self.model_options}
        return trainer, model


def read_space(path: str | Path, trainer_class: type, model_class: type) -> SearchSpace:
    """Read and check a space file against the trainer and model configs.

    Args:
        path: the YAML file.
        trainer_class: the trainer's config dataclass (:class:`~leanrec.train.bpr.TrainerConfig`).
        model_class: the model's config dataclass.

    Raises:
        DataError: a missing or unreadable file, or any mistake of the module's list, with the
            file and the line.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataError("space file not found (missing file)", path=path)
    try:
        root = yaml.compose(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", error)
        raise DataError(f"not valid YAML ({problem})", path, line) from error
    if root is None:
        raise DataError("empty space file: give at least one option", path=path)
    if not isinstance(root, yaml.MappingNode):
        raise DataError(
            "expected a mapping of options (option: value or {distribution: ...})",
            path,
            root.start_mark.line + 1,
        )
    dimensions: list[Dimension] = []
    for_trainer: set[str] = set()
    lines: dict[str, int] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        name = str(key_node.value).replace("-", "_")
        try:
            trainer_part, model_part = route_options(
                {name: None}, [trainer_class, model_class], ALIASES
            )
        except ValueError as error:
            raise DataError(f"option {name!r}: {_message(error)}", path, line) from None
        option = next(iter(trainer_part or model_part))
        if option in lines:
            raise DataError(
                f"option {option!r} is given twice (first on line {lines[option]})", path, line
            )
        lines[option] = line
        if trainer_part:
            for_trainer.add(option)
        value = yaml.safe_load(yaml.serialize(value_node))
        dimensions.append(_dimension(option, value, line, path))
    trainer_options = tuple(d.option for d in dimensions if d.option in for_trainer)
    model_options = tuple(d.option for d in dimensions if d.option not in for_trainer)
    space = SearchSpace(tuple(dimensions), trainer_options, model_options, path)
    _check_values(space, trainer_class, model_class)
    return space


def _message(error: Exception) -> str:
    return str(error.args[0]) if error.args else str(error)


def _dimension(option: str, value: Any, line: int, path: Path) -> Dimension:
    """One option's value: fixed, or ``{distribution: bounds or choices}``."""
    if not isinstance(value, dict):
        return Dimension(option, "fixed", (value,), line)
    if len(value) != 1:
        raise DataError(
            f"option {option!r}: give one distribution ({', '.join(DISTRIBUTIONS)}), got "
            f"{sorted(map(str, value))}",
            path,
            line,
        )
    ((kind, spec),) = value.items()
    if kind not in DISTRIBUTIONS:
        raise DataError(
            f"option {option!r}: unknown distribution {kind!r}; known: {', '.join(DISTRIBUTIONS)}",
            path,
            line,
        )
    if kind == "choice":
        if not isinstance(spec, list) or not spec:
            raise DataError(f"option {option!r}: choice needs a non-empty list", path, line)
        return Dimension(option, kind, tuple(spec), line)
    if (
        not isinstance(spec, list)
        or len(spec) != 2
        or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in spec)
    ):
        raise DataError(
            f"option {option!r}: {kind} needs [low, high], two numbers; got {spec!r}", path, line
        )
    low, high = spec
    if kind == "randint" and not all(isinstance(b, int) for b in spec):
        raise DataError(
            f"option {option!r}: randint bounds must be integers, got {spec}", path, line
        )
    if not low < high:
        raise DataError(
            f"option {option!r}: bad range [{low}, {high}]: the lower bound must be below the "
            "upper one",
            path,
            line,
        )
    if kind == "loguniform" and low <= 0:
        raise DataError(
            f"option {option!r}: bad range [{low}, {high}]: loguniform needs a positive lower "
            "bound",
            path,
            line,
        )
    return Dimension(option, kind, (low, high), line)


def _check_values(space: SearchSpace, trainer_class: type, model_class: type) -> None:
    """Build the configs with every extreme value of every option: a value an option refuses
    (a negative rate, a string for a number) is reported on its line."""
    for dimension in space.dimensions:
        target = trainer_class if dimension.option in space.trainer_options else model_class
        for value in dimension.extremes():
            try:
                build_config(target, {dimension.option: value})
            except (ValueError, TypeError) as error:
                raise DataError(
                    f"option {dimension.option!r}: value {value!r} is refused: {_message(error)}",
                    space.path,
                    dimension.line,
                ) from None


__all__ = ["ALIASES", "DISTRIBUTIONS", "Dimension", "SearchSpace", "read_space"]
