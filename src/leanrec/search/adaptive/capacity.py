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

Grown from the small end (the ``leanrec`` preset). The tower starts at fixed-small's widths and
never shrinks below ``floor_widths``; the reference is fixed-medium's tower, so that from the
start every session measures what capacity *above* the tower buys (a reference as small as the
tower measures nothing, and one below a shrunk tower measures the capacity the tower no longer
has). Growth keeps the function (new units' outgoing weights start at zero), so a growth that
does not pay costs size, not accuracy, while a shrink removes what the pruned units computed.

Shift rule (``shift_threshold``). The measurement lags a session: the drift's first session is
measured at its end. A shift of the input is seen before the session is learnt: the item drift
of the first chunk (:class:`~leanrec.search.adaptive.policy.SessionObservation`) against its
mean and standard deviation over the earlier sessions. Beyond ``shift_threshold`` standard
deviations the controller takes the largest growth step at once (no shrink follows in that
decision), and the measurements of the next sessions price the new units as any others. The
units a shift grows learn at ``new_unit_boost`` times the dense step for that session: they
must learn data the tower has not seen, in a session of a few hundred optimiser steps.
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


SHIFT_HISTORY = 3
"""Item-drift values (earlier sessions) before the shift rule can judge one: a mean and a
spread need a few sessions."""
SHIFT_SPREAD_FLOOR = 1e-3
"""Smallest standard deviation of the item drift the shift rule divides by (a stream whose
drift barely varies would otherwise make any rise a shift)."""


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
        self.item_drifts: list[float] = []
        """The item drift of every session decided so far (the shift rule's history)."""
        self.last_shift: float | None = None
        """The shift score of the latest decision (None: too little history or no rule)."""
        self.shifted = False
        """Whether the latest decision was the shift rule's growth."""

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
        """The same width change on every layer, each layer's delta cut to the limits (and to
        the floor: a layer already below it is not shrunk further); duplicates (after cutting)
        once, in :data:`WIDTH_DELTAS` order."""
        cfg = self.config
        floor = self.floor(widths)
        seen: list[ArchitectureChange] = []
        for delta in WIDTH_DELTAS:
            deltas = tuple(
                int(min(max(w + delta, low), cfg.max_width) - w)
                for w, low in zip(widths, floor, strict=True)
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
    def floor(self, widths: tuple[int, ...]) -> tuple[int, ...]:
        """Per layer, the narrowest width a shrink may reach: ``floor_widths`` where it has the
        layer, the width limit otherwise, and never above the layer's current width."""
        cfg = self.config
        floor = cfg.floor_widths or ()
        return tuple(
            min(w, max(cfg.min_width, floor[i] if i < len(floor) else cfg.min_width))
            for i, w in enumerate(widths)
        )

    def shift_score(self, item_drift: float) -> float | None:
        """``(d − mean) / sd`` of this session's item drift ``d`` over the earlier sessions'
        (sd at least :data:`SHIFT_SPREAD_FLOOR`); None with fewer than
        :data:`SHIFT_HISTORY` earlier sessions."""
        if len(self.item_drifts) < SHIFT_HISTORY:
            return None
        history = np.asarray(self.item_drifts, dtype=np.float64)
        spread = max(float(history.std(ddof=1)), SHIFT_SPREAD_FLOOR)
        return (item_drift - float(history.mean())) / spread

    def decide(self, observation: SessionObservation) -> ArchitectureChange:
        """On a shift of the input (``shift_threshold``), the largest growth step; else the
        candidate of the highest expected gain over keeping, when that gain exceeds its
        margin; else no change (also before the first measurements)."""
        widths = observation.widths
        keep = ArchitectureChange((0,) * len(widths))
        score = self.shift_score(observation.item_drift)
        self.item_drifts.append(float(observation.item_drift))
        self.last_shift = score
        self.shifted = False
        threshold = self.config.shift_threshold
        if threshold is not None and score is not None and score > threshold:
            grow = self.candidates(widths)[-1]  # +max(WIDTH_DELTAS), cut to the limits
            if any(d > 0 for d in grow.width_deltas):
                self.shifted = True
                return grow
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
        if self.last_shift is not None:
            out["shift_score"] = self.last_shift
        return out

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything learning changes, as plain values."""
        return {"values": list(self.values), "sessions": list(self.sessions),
                "learned": self.learned, "item_drifts": list(self.item_drifts),
                "last_shift": self.last_shift, "shifted": self.shifted}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where the controller that wrote ``state`` stopped."""
        self.values = [float(v) for v in state["values"]]
        self.sessions = [int(s) for s in state["sessions"]]
        self.learned = int(state["learned"])
        self.item_drifts = [float(v) for v in state.get("item_drifts", [])]
        last = state.get("last_shift")
        self.last_shift = None if last is None else float(last)
        self.shifted = bool(state.get("shifted", False))


__all__ = ["MIN_MEASUREMENTS", "SHIFT_HISTORY", "SHIFT_SPREAD_FLOOR", "CapacityController"]
