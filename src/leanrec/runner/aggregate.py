"""Mean ± sd over seeds, the way every experiment's table shows it.

>>> stat = mean_sd([0.71, 0.72, None])       # None: a seed without the figure
>>> format_mean_sd(stat)
'0.7150 ± 0.0071'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_sd(values: Sequence[float | None]) -> dict[str, float | None]:
    """``{"mean", "sd"}`` of the values that are not None (sample sd, ``ddof = 1``; 0 for one
    value; both None when no value is there)."""
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    if len(present) == 0:
        return {"mean": None, "sd": None}
    sd = float(present.std(ddof=1)) if len(present) > 1 else 0.0
    return {"mean": float(present.mean()), "sd": sd}


def format_mean_sd(stat: dict[str, float | None], digits: int = 4) -> str:
    """``"m ± s"`` with ``digits`` decimals, ``"m"`` when the sd is 0, ``"–"`` without a mean."""
    if stat["mean"] is None:
        return "–"
    if not stat["sd"]:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


__all__ = ["format_mean_sd", "mean_sd"]
