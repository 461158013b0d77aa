"""One registry shape for every model family: names (and aliases) to classes, and a model's
config dataclass built from options with unknown names rejected."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

__all__ = ["ModelRegistry"]


class _Configured(Protocol):
    config_class: ClassVar[type[Any]]


ModelT = TypeVar("ModelT", bound=_Configured)


class ModelRegistry(Generic[ModelT]):
    """The classes of one model family by name.

    Args:
        models: name (and aliases) -> class; each class names its config dataclass in
            ``config_class``. Held, not copied: entries added to it later are found.
        family: what messages call a model of the family (``"model"``, ``"CTR model"``).
        normalise: maps a name as given to its key in ``models`` (default: lower case).

    Example:
        >>> from leanrec.models import MF
        >>> registry = ModelRegistry({"mf": MF}, "model")
        >>> registry.model_class("MF") is MF
        True
    """

    def __init__(
        self,
        models: dict[str, type[ModelT]],
        family: str,
        normalise: Callable[[str], str] = str.lower,
    ) -> None:
        self.models = models
        self.family = family
        self.normalise = normalise

    def model_class(self, name: str) -> type[ModelT]:
        """The class of ``name``; ``ValueError`` listing the known names otherwise."""
        try:
            return self.models[self.normalise(name)]
        except KeyError:
            raise ValueError(
                f"unknown {self.family} {name!r}; known: {sorted(self.models)}"
            ) from None

    def make_config(self, name: str, options: Mapping[str, Any] | None = None) -> Any:
        """The config dataclass of model ``name`` with ``options`` overriding its defaults.

        Unknown option names raise ``ValueError`` listing the valid ones.
        """
        cls = self.model_class(name).config_class
        options = dict(options or {})
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = set(options) - valid
        if unknown:
            raise ValueError(
                f"unknown option(s) {sorted(unknown)} for {self.family} {name}; "
                f"known: {sorted(valid)}"
            )
        return cls(**options)
