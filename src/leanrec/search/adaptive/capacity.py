"""The ``leanrec`` controller: changes priced by a learned model of the reward.

Why not a sampled policy. One decision per session gives 27 samples in a whole run; a sampled
policy (REINFORCE or actor-critic) learns from the one action it took, while the AUC moves by a
few thousandths between architectures and by hundredths between sessions. On the three
streams the RCL controller's towers followed its sampling, not the stream (on one seed the
same towers on all three streams). The issue names the other way a cheap controller can
decide: a learned model of the reward.

The model. The reference model (a fixed tower trained beside the controlled one on the same
chunks) already answers, every session and whatever the action was, the question the reward
asks: what did the controlled tower's capacity buy on this session's events? With ``P`` the
shaped parameters, ``u = log₂(P / P_ref)`` the controlled tower's size in doublings over the
reference's, and ``y = AUC_s − AUC_ref,s`` its AUC over the reference's, one session measures
the **capacity value** ``k = y / u`` (AUC per doubling; sessions with ``|u| <`` ``size_contrast``
measure nothing and are skipped). The model of the reward of a tower of ``P(a)`` parameters
after change ``a`` is

    ``R̂(a) = AUC_ref + m̂ · u(a) − λ p(a)``,   ``p(a) = P(a) / P_large``,

with ``m̂`` the recency-weighted mean of the measured ``k`` (weights halve every
``capacity_halflife`` sessions: capacity pays where the data has just changed) and ``σ̂`` its
standard error. ``AUC_ref`` is the same for every action, so the decision is

    ``a* = argmax_a  m̂ (u(a) − u₀) − λ (p(a) − p₀)``,

taken only when its gain over keeping exceeds ``confidence · σ̂ · |u(a) − u₀|`` (no change on
what one noisy session measured). Candidates: the same width change on every layer, from
:data:`~leanrec.search.adaptive.config.WIDTH_DELTAS` (each layer's delta cut to the width
limits); the depth is kept (a layer added moves ``P`` by ``w²``, a jump the size model prices
no differently from widening, and two layers span 16-16 to 512-512, past fixed-large's
parameters). Nothing is sampled: the same stream gives the same towers, and a different stream
different ones.

Log-size, not parameters, in the model: the AUC a tower gains is close to linear in its
doublings (fixed-small to fixed-medium is 2.3 doublings, medium to large 2.9, and on the
warm-ups each bought about the same), so one number per session describes the curve and
a step's expected gain ``m̂ Δu`` shrinks as the tower grows while its price ``λ Δp`` rises:
the tower settles where the two meet.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from leanrec.search.adaptive.config import WIDTH_DELTAS, AdaptiveConfig
from leanrec.search.adaptive.policy import SessionObservation
from leanrec.search.adaptive.tower import ArchitectureChange, tower_parameters

MIN_MEASUREMENTS = 3
"""Measurements before the first change: the spread of two is no estimate of a session's noise
(on the planted-drift warm-up two close values gave a standard error of 0.00006 AUC per
doubling, a tenth of what the next sessions showed, and the controller acted on it)."""


class CapacityController:
    """The decision-maker of one run with ``algorithm="capacity_model"``.

    Args:
        config: the controller's settings (``penalty`` is ``λ``).
        input_dim: width of the tower's input (the model's concatenated embeddings).
        reference_parameters: ``P_ref``, the reference tower's parameters.
        large_parameters: ``P_large``, fixed-large's (``p = 1``).
    """

    def __init__(
        self,
        config: AdaptiveConfig,
        input_dim: int,
        reference_parameters: int,
        large_parameters: int,
    ) -> None:
        self.config = config
        self.input_dim = input_dim
        self.reference_parameters = reference_parameters
        self.large_parameters = large_parameters
        self.values: list[float] = []
        """Measured capacity values ``k`` (AUC per doubling over the reference), in order."""
        self.sessions: list[int] = []
        """The learn-call index of each measurement (its age for the recency weights)."""
        self.learned = 0
        """Sessions learnt from so far."""

    # ------------------------------------------------------------------ the model
    def doublings(self, widths: tuple[int, ...]) -> float:
        """``u = log₂(P / P_ref)`` of a tower of ``widths``."""
        return math.log2(tower_parameters(self.input_dim, widths) / self.reference_parameters)

    def share(self, widths: tuple[int, ...]) -> float:
        """``p = P / P_large`` of a tower of ``widths``."""
        return tower_parameters(self.input_dim, widths) / self.large_parameters

    def estimate(self) -> tuple[float, float] | None:
        """``(m̂, σ̂)``: the recency-weighted mean of the measured capacity values and its
        standard error (weighted variance over the effective count ``(Σw)² / Σw²``; infinite
        before :data:`MIN_MEASUREMENTS` measurements, so that no change is made before then);
        None before the first measurement."""
        if not self.values:
            return None
        ages = self.learned - 1 - np.asarray(self.sessions, dtype=np.float64)
        weights = 0.5 ** (ages / self.config.capacity_halflife)
        values = np.asarray(self.values, dtype=np.float64)
        mean = float(np.sum(weights * values) / np.sum(weights))
        if len(values) < MIN_MEASUREMENTS:
            return mean, math.inf
        variance = float(np.sum(weights * (values - mean) ** 2) / np.sum(weights))
        effective = float(np.sum(weights) ** 2 / np.sum(weights**2))
        return mean, math.sqrt(variance / effective)

    def candidates(self, widths: tuple[int, ...]) -> list[ArchitectureChange]:
        """The same width change on every layer, each layer's delta cut to the limits;
        duplicates (after cutting) once, in :data:`WIDTH_DELTAS` order."""
        cfg = self.config
        seen: list[ArchitectureChange] = []
        for delta in WIDTH_DELTAS:
            deltas = tuple(
                int(min(max(w + delta, cfg.min_width), cfg.max_width) - w) for w in widths
            )
            change = ArchitectureChange(deltas)
            if change not in seen:
                seen.append(change)
        return seen

    def scores(self, widths: tuple[int, ...]) -> list[tuple[ArchitectureChange, float, float]]:
        """Per candidate: ``(change, expected gain over keeping, required margin)``."""
        estimate = self.estimate()
        if estimate is None:
            return []
        mean, error = estimate
        u0, p0 = self.doublings(widths), self.share(widths)
        out = []
        for change in self.candidates(widths):
            after = tuple(w + d for w, d in zip(widths, change.width_deltas, strict=True))
            du = self.doublings(after) - u0
            gain = mean * du - self.config.penalty * (self.share(after) - p0)
            margin = self.config.confidence * error * abs(du) if du else 0.0
            out.append((change, gain, margin))
        return out

    # ------------------------------------------------------------------ acting, learning
    def decide(self, observation: SessionObservation) -> ArchitectureChange:
        """The candidate of the highest expected gain over keeping, when that gain exceeds
        its margin; else no change (also before the first measurement)."""
        widths = observation.widths
        keep = ArchitectureChange((0,) * len(widths))
        best, best_gain = keep, 0.0
        for change, gain, margin in self.scores(widths):
            if gain > margin and gain > best_gain:
                best, best_gain = change, gain
        return best

    def learn(
        self, auc: float | None, reference_auc: float | None, widths: tuple[int, ...]
    ) -> dict[str, float]:
        """Add the session's measurement ``k = (AUC_s − AUC_ref,s) / u`` (none without both
        AUCs or with ``|u| <`` ``size_contrast``). Returns ``k`` and the estimate after it."""
        self.learned += 1
        out: dict[str, float] = {}
        if auc is not None and reference_auc is not None:
            u = self.doublings(widths)
            out["doublings"] = u
            if abs(u) >= self.config.size_contrast:
                self.values.append((auc - reference_auc) / u)
                self.sessions.append(self.learned - 1)
                out["capacity_value"] = self.values[-1]
        estimate = self.estimate()
        if estimate is not None:
            out["capacity_estimate"] = estimate[0]
            if math.isfinite(estimate[1]):
                out["capacity_error"] = estimate[1]
        return out

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything learning changes, as plain values."""
        return {"values": list(self.values), "sessions": list(self.sessions),
                "learned": self.learned}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where the controller that wrote ``state`` stopped."""
        self.values = [float(v) for v in state["values"]]
        self.sessions = [int(s) for s in state["sessions"]]
        self.learned = int(state["learned"])


__all__ = ["MIN_MEASUREMENTS", "CapacityController"]
