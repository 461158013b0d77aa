"""Fixtures of the CTR model tests: small synthetic behaviour samples."""

from __future__ import annotations

import pytest

from leanrec.data.behavior import BehaviorSamples
from tests.models.ctr.synthetic import make_samples


@pytest.fixture(scope="session")
def ctr_samples() -> BehaviorSamples:
    """300 samples with histories of length 0..10 (some empty, some full)."""
    samples, _ = make_samples(300, seed=5)
    return samples
