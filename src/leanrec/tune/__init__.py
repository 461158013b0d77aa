"""leanrec.tune: hyper-parameter tuning of the base recommenders with Ray Tune (ASHA early
stopping, choice on validation only, resumable); ``leanrec tune`` on the command line.

Ray is imported only when a tuning run starts (``pip install leanrec[ray]``)."""

from leanrec.tune.space import DISTRIBUTIONS, Dimension, SearchSpace, read_space
from leanrec.tune.tuner import TuneResult, TuneSettings, tune_model

__all__ = [
    "DISTRIBUTIONS",
    "Dimension",
    "SearchSpace",
    "TuneResult",
    "TuneSettings",
    "read_space",
    "tune_model",
]
