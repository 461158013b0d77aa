"""The test split is read once, in the final evaluation, after every choice is made.

An experiment marks its final evaluation with :func:`final_evaluation`; model selection
(epochs, masks, architectures, hyper-parameters) happens outside such blocks, on validation
data. :func:`guard_test_data` wraps a test set so that any read outside a final evaluation
raises :class:`TestDataReadError`: the policies' contract tests run every experiment with a
guarded test split to show that selection never looks at it::

    with final_evaluation():
        test_metrics = evaluate(model, split.test)
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

_IN_FINAL_EVALUATION = contextvars.ContextVar("leanrec_final_evaluation", default=False)

T = TypeVar("T")


class TestDataReadError(RuntimeError):
    """The test split was read outside a final evaluation (selection must use validation)."""

    __test__ = False  # not a pytest test class, despite its name


@contextmanager
def final_evaluation() -> Iterator[None]:
    """Mark the block as a final evaluation: the only place the test split may be read."""
    token = _IN_FINAL_EVALUATION.set(True)
    try:
        yield
    finally:
        _IN_FINAL_EVALUATION.reset(token)


def in_final_evaluation() -> bool:
    """Whether the caller runs inside :func:`final_evaluation`."""
    return _IN_FINAL_EVALUATION.get()


class GuardedTestData:
    """A stand-in for a test set that forwards every read to it only inside a final
    evaluation, and counts those reads (``reads``), so a test can also check the guard was
    reached. ``isinstance`` sees the wrapped object's class."""

    def __init__(self, data: Any, name: str = "test split") -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "reads", 0)

    def _check(self, what: str) -> Any:
        if not in_final_evaluation():
            raise TestDataReadError(
                f"{self._name} read ({what}) outside the final evaluation: model selection "
                "must use validation data"
            )
        object.__setattr__(self, "reads", self.reads + 1)
        return self._data

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # makes isinstance see the wrapped type
        return type(self._data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._check(f".{name}"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._check(f".{name} ="), name, value)

    def __len__(self) -> int:
        return len(self._check("len"))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._check("iteration"))

    def __getitem__(self, index: Any) -> Any:
        return self._check("[]")[index]

    def __bool__(self) -> bool:
        return bool(self._check("truth value"))


def guard_test_data(data: T, name: str = "test split") -> T:
    """``data`` behind a :class:`GuardedTestData` (typed as ``data`` for the caller)."""
    return GuardedTestData(data, name)  # type: ignore[return-value]


__all__ = [
    "GuardedTestData",
    "TestDataReadError",
    "final_evaluation",
    "guard_test_data",
    "in_final_evaluation",
]
