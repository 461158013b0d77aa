"""Errors of a run that a caller may catch without importing torch (the command line does)."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message names the setting to lower."""


class NaNScoresError(ValueError):
    """A model scored NaN during evaluation (its weights diverged, or its file is damaged)."""
