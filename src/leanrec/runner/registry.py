"""Registries of named objects: the methods and baselines of an experiment.

An experiment loops over registered method objects instead of a chain of
``if method == ...``; a name that is not registered is an error that lists the known ones::

    SIZE_METHODS: Registry[SizeMethod] = Registry("embedding-size method")
    SIZE_METHODS.add(UniformSizes())                    # registered under its .name
    for method in SIZE_METHODS.resolve(["su", "sr"]):   # ValueError on an unknown name
        ...
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    """Anything with a ``name``: what a registry holds."""

    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Objects by their ``name``, in registration order.

    Args:
        kind: what the objects are, for error messages (``"sketch method"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, item: T) -> T:
        """Register ``item`` under ``item.name`` (a second object of that name is an error);
        returns it, so this also works as a class decorator on instances' factories."""
        if item.name in self._items:
            raise ValueError(f"{self.kind} {item.name!r} is registered twice")
        self._items[item.name] = item
        return item

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self._items)
            raise ValueError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def resolve(self, names: Sequence[str]) -> list[T]:
        """The objects of ``names`` in that order (one name may be a string); every unknown name
        is reported at once."""
        if isinstance(names, str):  # "su", not its letters
            names = (names,)
        unknown = [n for n in names if n not in self._items]
        if unknown:
            known = ", ".join(self._items)
            raise ValueError(f"unknown {self.kind}(s) {unknown}; known: {known}")
        return [self._items[n] for n in names]

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"


__all__ = ["Named", "Registry"]
