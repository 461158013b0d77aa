"""Typed configs from flat options, and the check of ``Literal``-typed config fields.

Every ``leanrec`` subcommand forwards its extra ``--option value`` pairs to one or more config
dataclasses. This module does that mapping once, driven by the dataclasses' type hints:

- an option names a field (``lr`` -> ``learning_rate`` through an alias), or a field of a
  nested config, prefixed by the field that holds it (``pretrain_max_epochs`` sets
  ``CIESSConfig.pretrain.max_epochs``; the group is any field whose type is a dataclass);
- each value is coerced to the field's annotated type (``tuple[int, ...]`` from a list or a
  scalar, ``float`` from ``int``, ``X | None``, ``bool``, ``Literal``); a value that does not fit
  is refused with a message naming the option;
- an unknown option is refused with a message naming it, suggesting close names (``difflib``)
  and listing the known ones.

Example::

    build_config(CIESSConfig, {"noise": "ou", "pretrain_epochs": 5, "eval_ks": 20},
                 aliases={"epochs": "max_epochs"})
    # CIESSConfig(noise="ou", pretrain=TrainerConfig(max_epochs=5, ...), eval_ks=(20,), ...)

:func:`route_options` splits one set of options between several configs (``leanrec train``:
the trainer's fields first, everything else to the model). :func:`check_literals`, called from a
config's ``__post_init__``, validates its ``Literal`` fields when the config is built in Python,
with the same message as the command line.

The options arrive already parsed: dashes normalised to underscores and values read as Python
literals (``"[64, 32]"`` -> ``[64, 32]``). Nothing here imports the rest of leanrec.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import numbers
import sys
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

__all__ = [
    "Target",
    "build_config",
    "build_configs",
    "check_at_least",
    "check_dropout",
    "check_literals",
    "check_positive",
    "check_value",
    "field_types",
    "route_options",
]

ConfigT = TypeVar("ConfigT")

FieldPath = tuple[str, ...]
"""Field names from the root config down to one field: ``("pretrain", "max_epochs")``."""


@dataclass(frozen=True)
class Target:
    """One config that takes options in :func:`route_options` and :func:`build_configs`."""

    cls: type
    """The config dataclass."""
    base: Any = None
    """An instance whose values the options override (None: the dataclass defaults)."""
    only: Collection[str] | None = None
    """The top-level fields this target takes (a group field takes all of its own); None:
    every field. Lets an experiment take a few of its fields from options while the rest come
    from dedicated command-line flags."""


# ---------------------------------------------------------------------------- type hints
@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """``{field name: resolved annotation}`` of the ``__init__`` fields of dataclass ``cls``.

    String annotations (``from __future__ import annotations``) are resolved in the module of
    the class that declares them; a field whose annotation cannot be resolved (a name imported
    only for type checking) maps to ``Any``, so it is passed through unchecked.
    """
    fields = [f for f in dataclasses.fields(cls) if f.init]
    try:
        hints = typing.get_type_hints(cls)
    except NameError:
        hints = {}
        for owner in reversed(cls.__mro__):
            namespace = vars(sys.modules[owner.__module__])
            for name, annotation in vars(owner).get("__annotations__", {}).items():
                try:  # what get_type_hints does, one annotation at a time
                    hints[name] = (
                        eval(annotation, namespace) if isinstance(annotation, str) else annotation
                    )
                except NameError:
                    hints[name] = Any
    return {f.name: hints.get(f.name, Any) for f in fields}


def _arms(tp: Any) -> tuple[Any, ...]:
    """The members of a union type (``int | None`` -> ``(int, NoneType)``); ``(tp,)`` otherwise."""
    if get_origin(tp) in (Union, types.UnionType):
        return get_args(tp)
    return (tp,)


def _group_class(tp: Any) -> type | None:
    """The dataclass a field of type ``tp`` holds (``TD3Config`` or ``TD3Config | None``)."""
    classes = [arm for arm in _arms(tp) if arm is not type(None)]
    if len(classes) == 1 and isinstance(classes[0], type) and dataclasses.is_dataclass(classes[0]):
        return classes[0]
    return None


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("NoneType", "None")


# ---------------------------------------------------------------------------- Literal checks
def _literal_message(name: str, value: Any, allowed: Sequence[Any]) -> str:
    return f"{name} {value!r}: expected one of {', '.join(map(repr, allowed))}"


def _literal_choices(tp: Any) -> tuple[Any, ...] | None:
    """The values allowed by ``Literal[...]`` or ``Literal[...] | None``; None for other types."""
    arms = _arms(tp)
    if not any(get_origin(arm) is Literal for arm in arms):
        return None
    choices: list[Any] = []
    for arm in arms:
        if get_origin(arm) is Literal:
            choices.extend(get_args(arm))
        elif arm is type(None):
            choices.append(None)
        else:
            return None  # a Literal mixed with another type: not a fixed set of values
    return tuple(choices)


def _is_choice(value: Any, choices: Sequence[Any]) -> bool:
    """``value in choices``, except that ``True`` is not ``1`` (and ``1.0`` is not ``1``)."""
    return any(value == choice and type(value) is type(choice) for choice in choices)


_SCALARS: dict[Any, Any] = {
    int: lambda v: isinstance(v, numbers.Integral) and not _is_bool(v),
    float: lambda v: isinstance(v, numbers.Real) and not _is_bool(v),
    bool: lambda v: _is_bool(v),
    type(None): lambda v: v is None,
}
"""The plain types :func:`check_value` checks, and what fits each: an ``int`` field takes any
integer but no bool or float (``8.0`` epochs would fail deep in torch), a ``float`` field any
real number but a bool, a ``bool`` field a bool (not the string ``"false"``, which is true).
``str`` fields are not checked: a directory given as a ``Path`` is fine."""


def _is_bool(value: Any) -> bool:
    """A Python bool or numpy's (``numpy.bool_``, named ``numpy.bool`` since numpy 2)."""
    kind = type(value)
    return isinstance(value, bool) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
    )


def _fits_scalar(value: Any, tp: Any) -> bool | None:
    """Whether ``value`` fits ``tp`` when ``tp`` is a plain type or a union of them (``int``,
    ``float | None``); None when ``tp`` is anything else (not checked)."""
    arms = _arms(tp)
    if not all(arm in _SCALARS for arm in arms):
        return None
    return any(_SCALARS[arm](value) for arm in arms)


def check_value(name: str, value: Any, tp: Any) -> None:
    """Raise ``ValueError`` naming ``name`` and the allowed values unless ``value`` is one of
    those of the ``Literal`` type ``tp`` (also ``Literal[...] | None`` and ``tuple`` /
    ``list`` of ``Literal``, checked element by element), or, for a plain ``int``, ``float``
    or ``bool`` type (or a union of them with None), unless it is of that type (an ``int`` for
    a ``float`` passes). Other types (``str`` among them) are not checked.

    For a function argument: ``check_value("negative_sampling", value, NegativeSampling)``.
    """
    choices = _literal_choices(tp)
    if choices is not None:
        if not _is_choice(value, choices):
            raise ValueError(_literal_message(name, value, choices))
        return
    sequences = [arm for arm in _arms(tp) if get_origin(arm) in (tuple, list)]
    if len(sequences) == 1 and len(_arms(tp)) == 2 and type(None) in _arms(tp):
        tp = sequences[0]  # tuple[int, ...] | None: None passes, a tuple is checked below
        if value is None:
            return
    fits = _fits_scalar(value, tp)
    if fits is not None:
        if not fits:
            raise ValueError(
                f"{name} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})"
            )
        return
    if get_origin(tp) in (tuple, list) and isinstance(value, (tuple, list)):
        args = get_args(tp)
        element_types = (
            [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        )
        for element, element_type in zip(value, element_types, strict=False):
            check_value(name, element, element_type)


def check_literals(config: Any) -> None:
    """Check every ``Literal``-typed field of dataclass instance ``config``, and every field of
    a plain type (``int``, ``float | None``, ``tuple[int, ...]``: see :func:`check_value`).

    Call it from ``__post_init__`` so that a config built in Python is checked as one built from
    command-line options is::

        def __post_init__(self) -> None:
            check_literals(self)

    Raises:
        ValueError: ``"noise 'brown': expected one of 'gaussian', 'ou', 'uniform'"``.
    """
    cls: type = type(config)
    for name, tp in field_types(cls).items():
        check_value(name, getattr(config, name), tp)


# ---------------------------------------------------------------------------- number checks
def _values_of(config: Any, name: str) -> list[Any]:
    """The numbers field ``name`` of ``config`` holds: itself, each element of a sequence, or
    none when it is None."""
    value = getattr(config, name)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def names_as_tuples(config: Any, *names: str) -> None:
    """Set each field of ``names`` holding one string to a tuple of it: ``methods="su"`` is
    ``("su",)``, not the letters a loop over it would take."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, str):
            object.__setattr__(config, name, (value,))


def check_not_empty(config: Any, *names: str) -> None:
    """Refuse a sequence field of ``names`` that holds nothing (an experiment without seeds
    would finish with an empty table).

    Raises:
        ValueError: ``"seeds must hold at least one value, got ()"``.
    """
    for name in names:
        value = getattr(config, name)
        if value is not None and len(value) == 0:
            raise ValueError(f"{name} must hold at least one value, got {value!r}")


def check_at_least(config: Any, minimum: int | float, *names: str) -> None:
    """Refuse a field of ``names`` (or an element of it) below ``minimum``, or NaN (which no
    comparison refuses); None passes.

    Call it from ``__post_init__`` so a config built in Python or from options is checked::

        check_at_least(self, 1, "batch_size", "max_epochs")

    Raises:
        ValueError: ``"batch_size must be at least 1, got 0"``.
    """
    for name in names:
        for value in _values_of(config, name):
            if isinstance(value, numbers.Real) and not float(value) >= minimum:
                raise ValueError(f"{name} must be at least {minimum}, got {value!r}")


def check_positive(config: Any, *names: str) -> None:
    """Refuse a field of ``names`` that is zero or negative (a step size, a time budget);
    None passes.

    Raises:
        ValueError: ``"learning_rate must be positive, got 0.0"``.
    """
    for name in names:
        for value in _values_of(config, name):
            if isinstance(value, numbers.Real) and not float(value) > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")


def check_dropout(config: Any, *names: str) -> None:
    """Refuse a probability field of ``names`` outside ``[0, 1)`` (a dropout rate).

    Raises:
        ValueError: ``"dropout must be in [0, 1), got 1.5"``.
    """
    for name in names:
        for value in _values_of(config, name):
            if isinstance(value, numbers.Real) and not 0 <= float(value) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")


# ---------------------------------------------------------------------------- coercion
class _TypeMismatchError(Exception):
    """A value that does not fit a type (turned into a ValueError naming the option)."""


def _coerce(value: Any, tp: Any, option: str) -> Any:
    """``value`` as type ``tp``; ``_TypeMismatchError`` when it cannot be, ``ValueError`` for a
    value outside a ``Literal``."""
    if tp is Any or tp is object:
        return value
    choices = _literal_choices(tp)
    if choices is not None:
        if not _is_choice(value, choices):
            raise ValueError(_literal_message(option, value, choices))
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        arms = get_args(tp)
        if value is None and type(None) in arms:
            return None
        for arm in arms:
            if arm is type(None):
                continue
            try:
                return _coerce(value, arm, option)
            except _TypeMismatchError:
                continue
        raise _TypeMismatchError
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, numbers.Integral) and value in (0, 1):
            return bool(value)
        raise _TypeMismatchError
    if isinstance(value, bool) and tp in (int, float, str):
        raise _TypeMismatchError  # a bare ``--option`` (True) where a number or a name is expected
    if tp is int:
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _TypeMismatchError
    if tp is float:
        if isinstance(value, numbers.Real):
            return float(value)
        raise _TypeMismatchError
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, numbers.Real):
            return str(value)  # ``--valid_metric 5`` was read as the number 5
        raise _TypeMismatchError
    if origin in (tuple, list):
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        args = get_args(tp)
        if origin is list:
            return [_coerce(item, args[0], option) for item in items] if args else items
        if not args:
            return tuple(items)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(item, args[0], option) for item in items)
        if len(items) != len(args):
            raise _TypeMismatchError
        return tuple(_coerce(item, arg, option) for item, arg in zip(items, args, strict=True))
    if origin is dict or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise _TypeMismatchError
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if dataclasses.is_dataclass(tp):
            raise ValueError(
                f"option {option!r} is a group of options: give its fields as "
                f"{option}_<field> ({', '.join(field_types(tp))})"
            )
        if isinstance(value, str):
            try:
                return tp(value)  # e.g. a Path from a string
            except (TypeError, ValueError):
                raise _TypeMismatchError from None
        raise _TypeMismatchError
    return value  # a type we do not know how to check (TypeVar, NewType, ...)


def _coerce_option(option: str, value: Any, tp: Any) -> Any:
    try:
        return _coerce(value, tp, option)
    except _TypeMismatchError:
        raise ValueError(f"option {option!r} expects {_type_name(tp)}, got {value!r}") from None


# ---------------------------------------------------------------------------- option names
def _locate(
    cls: type, name: str, aliases: Mapping[str, str], only: Collection[str] | None = None
) -> FieldPath | None:
    """The field ``name`` sets in dataclass ``cls``, or None.

    In order: a field of that name; the field an alias names (only where ``name`` is no field
    itself, so an alias never hides a field); a field of a nested config, as
    ``<group>_<name in the group>``.
    """
    fields = field_types(cls)
    allowed = fields if only is None else {k: v for k, v in fields.items() if k in only}
    if name in allowed:
        return (name,)
    target = aliases.get(name)
    if target is not None and name not in fields and target in allowed:
        return (target,)
    for group, tp in allowed.items():
        nested = _group_class(tp)
        if nested is not None and name.startswith(group + "_"):
            rest = _locate(nested, name[len(group) + 1 :], aliases)
            if rest is not None:
                return (group, *rest)
    return None


def _known(cls: type, only: Collection[str] | None = None, prefix: str = "") -> list[str]:
    """Every option name ``cls`` takes (groups expanded: ``pretrain_max_epochs``)."""
    names: list[str] = []
    for name, tp in field_types(cls).items():
        if only is not None and name not in only:
            continue
        nested = _group_class(tp)
        if nested is None:
            names.append(prefix + name)
        else:
            names.extend(_known(nested, None, f"{prefix}{name}_"))
    return names


def _unknown_message(
    unknown: Sequence[str], known: Sequence[str], aliases: Mapping[str, str]
) -> str:
    valid = set(known)
    candidates = sorted(valid | {alias for alias, target in aliases.items() if target in valid})
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    noun = "option" if len(unknown) == 1 else "options"
    return f"unknown {noun} {', '.join(parts)}; known: {', '.join(sorted(valid))}"


def _as_target(target: Target | type) -> Target:
    return target if isinstance(target, Target) else Target(target)


def _assign(
    options: Mapping[str, Any], targets: Sequence[Target], aliases: Mapping[str, str]
) -> list[dict[FieldPath, tuple[str, Any]]]:
    """Per target, ``{field path: (option as given, value)}``; each option goes to the first
    target that has a field for it."""
    parts: list[dict[FieldPath, tuple[str, Any]]] = [{} for _ in targets]
    unknown: list[str] = []
    for name, value in options.items():
        for part, target in zip(parts, targets, strict=True):
            path = _locate(target.cls, name, aliases, target.only)
            if path is None:
                continue
            if path in part:
                raise ValueError(
                    f"options {part[path][0]!r} and {name!r} both set {'_'.join(path)}"
                )
            part[path] = (name, value)
            break
        else:
            unknown.append(name)
    if unknown:
        known = [name for target in targets for name in _known(target.cls, target.only)]
        raise ValueError(_unknown_message(unknown, known, aliases))
    return parts


# ---------------------------------------------------------------------------- building
class _Group(dict[str, Any]):
    """Options of a nested config, inside the tree :func:`_instantiate` builds from."""


def _instantiate(cls: type, tree: Mapping[str, Any], base: Any) -> Any:
    kwargs: dict[str, Any] = {}
    for name, value in tree.items():
        if isinstance(value, _Group):
            current = getattr(base, name) if base is not None else _default(cls, name)
            nested = _group_class(field_types(cls)[name])
            assert nested is not None
            value = _instantiate(nested, value, current)
        kwargs[name] = value
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def _default(cls: type, name: str) -> Any:
    """The default value of field ``name`` of ``cls`` (None when it has none)."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _build(target: Target, assigned: Mapping[FieldPath, tuple[str, Any]]) -> Any:
    tree: dict[str, Any] = {}
    for path, (option, value) in assigned.items():
        cls, node = target.cls, tree
        for group in path[:-1]:
            node = node.setdefault(group, _Group())
            nested = _group_class(field_types(cls)[group])
            assert nested is not None
            cls = nested
        node[path[-1]] = _coerce_option(option, value, field_types(cls)[path[-1]])
    return _instantiate(target.cls, tree, target.base)


def route_options(
    options: Mapping[str, Any],
    targets: Sequence[Target | type],
    aliases: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Split ``options`` between ``targets``: each option goes to the first target with a field
    for it (see :func:`build_config` for names, groups and aliases).

    Returns:
        One dict per target, ``{option name with aliases resolved: value as given}``
        (``{"lr": 0.1}`` -> ``{"learning_rate": 0.1}``); values are not coerced yet.

    Raises:
        ValueError: an option no target takes (all named, with close matches and the known
            names of every target), or two options that set the same field.
    """
    aliases = aliases or {}
    parts = _assign(options, [_as_target(t) for t in targets], aliases)
    return [{"_".join(path): value for path, (_, value) in part.items()} for part in parts]


def build_configs(
    options: Mapping[str, Any],
    targets: Sequence[Target | type],
    aliases: Mapping[str, str] | None = None,
) -> list[Any]:
    """Route ``options`` between ``targets`` (:func:`route_options`) and build each target's
    config (:func:`build_config`), in the order of ``targets``."""
    aliases = aliases or {}
    resolved = [_as_target(t) for t in targets]
    parts = _assign(options, resolved, aliases)
    return [_build(target, part) for target, part in zip(resolved, parts, strict=True)]


def build_config(
    cls: type[ConfigT],
    options: Mapping[str, Any],
    *,
    base: ConfigT | None = None,
    only: Collection[str] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> ConfigT:
    """The config dataclass ``cls`` with ``options`` set (on top of ``base``, else defaults).

    Args:
        cls: a dataclass; fields whose type is a dataclass are groups of options.
        options: ``{name: value}``: a field (``max_dim``), or a field of a group prefixed by the
            group field (``td3_hidden``, ``pretrain_max_epochs``, nested to any depth).
        base: an instance to override (its groups too) instead of ``cls``'s defaults.
        only: the top-level fields options may set (None: all).
        aliases: ``{alias: field}``, at every level where the alias is no field itself
            (``{"lr": "learning_rate", "epochs": "max_epochs"}``).

    Raises:
        ValueError: an unknown option, a value that does not fit its field's type, or one
            outside its ``Literal``; the message names the option.
    """
    target = Target(cls, base, only)
    (part,) = _assign(options, [target], aliases or {})
    config: ConfigT = _build(target, part)
    return config
