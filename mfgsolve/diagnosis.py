r"""Contraction diagnostics for the outer loop: rate estimates, the a-posteriori bound, a verdict with advice.

If the map :math:`\Phi` contracts with rate :math:`\rho < 1`, Banach's theorem gives the a-posteriori bound

.. math:: \|m^{k+1} - m^*\| \le \frac{\rho}{1 - \rho}\, \|m^{k+1} - m^k\| ,

which the loop evaluates with an estimated :math:`\rho` (so it is an estimate, not a certificate).
The verdict is read from the fixed-point gap :math:`g_k = W(\mu(\pi^k), m^k)`: geometric decay (constant
weights) or power-law decay (fictitious play's decreasing weights) is ``contracting``; growth is
``diverging``; a gap that stops falling at the sampling floor of the distance (what the particle count
resolves, measured beside it) is ``resolution``; a flat gap above that floor whose successive flow increments
alternate in sign is ``oscillating`` (period 2); any other flat gap is ``stalled`` (with a learned oracle: its
noise floor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from mfgsolve.presets import EXACT, LEARNED
from mfgsolve.schemes import Damped, Scheme

__all__ = ["Diagnosis", "Verdict", "regression_rate", "running_rate", "posterior_bound", "diagnose"]

Diagnosis = Literal[
    "contracting", "oscillating", "diverging", "stalled", "resolution", "no-equilibrium", "failed-response"
]

#: A learned policy whose exploitability exceeds its best response's cost (relative exploitability above 1)
#: did not learn a response: the run failed, whatever its gaps do.
_FAILED_RELATIVE = 1.0
#: A damping weight below this moves the flow by less than a hundredth of the gap per iteration.
_TINY_ALPHA = 0.01

#: A trend counts only if its log-slope exceeds twice its standard error and this size: per iteration for
#: constant weights (a rate within 0.1% of 1 is flat), per unit of log k for fictitious play (decay slower than
#: k^-0.1 is flat).
_MIN_SLOPE = 1e-3
_MIN_EXPONENT = 0.1
#: A gap within this factor of the distance's sampling floor is at the floor (two samples of one law at full
#: size lie about 1/sqrt(2) of the half-size floor apart).
_AT_FLOOR = 1.5


@dataclass(frozen=True)
class Verdict:
    """How the run behaved and what to try next: ``advice`` in words (options as the command line spells them),
    ``suggestion`` the scheme it recommends, typed (e.g. ``Damped(alpha=0.31)``), when it recommends one."""

    diagnosis: Diagnosis
    advice: str
    rate: float | None
    suggestion: Scheme | None = None


def _tail(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & (v > 0)
    idx = np.nonzero(ok)[0]
    if idx.size < 3:
        return np.empty(0, dtype=int)
    start = max(0, len(v) // 2)
    idx = idx[idx >= start]
    if idx.size < 3:
        idx = np.nonzero(ok)[0][-3:]
    return idx


def regression_rate(residuals: Sequence[float]) -> float | None:
    r"""Geometric rate :math:`\exp(\hat\beta)` from a least-squares fit of :math:`\log r_k` on :math:`k` over the
    second half of the run (at least three points); ``None`` with fewer than three positive residuals."""
    idx = _tail(residuals)
    if idx.size < 3:
        return None
    slope = np.polyfit(idx.astype(float), np.log(np.asarray(residuals, dtype=float)[idx]), 1)[0]
    return float(math.exp(slope))


def _trend(values: Sequence[float], *, loglog: bool, minimum: float) -> str | None:
    """``"down"``, ``"up"`` or ``"flat"``: the sign of the tail's log-slope when it exceeds both twice its
    standard error and ``minimum``; ``None`` with fewer than three usable points."""
    idx = _tail(values)
    if idx.size < 3:
        return None
    x = np.log(idx + 1.0) if loglog else idx.astype(float)
    y = np.log(np.asarray(values, dtype=float)[idx])
    slope, icept = np.polyfit(x, y, 1)
    resid = y - (slope * x + icept)
    se = math.sqrt(float(resid @ resid) / max(1, x.size - 2) / float(((x - x.mean()) ** 2).sum()))
    threshold = max(2.0 * se, minimum)
    return "down" if slope < -threshold else "up" if slope > threshold else "flat"


def running_rate(residuals: Sequence[float], window: int = 3) -> float | None:
    """Conservative rate for the bound: the largest of the last ``window`` successive ratios; ``None`` until
    there are ``window`` of them (the first ratios, before the dominant mode dominates, understate the rate)."""
    r = np.asarray(residuals, dtype=float)
    if r.size < window + 1:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):  # a residual of exactly zero (nothing moved)
        ratios = r[1:] / r[:-1]
    ratios = ratios[np.isfinite(ratios)][-window:]
    return float(ratios.max()) if ratios.size == window else None


def posterior_bound(rate: float | None, residual: float, floor: float = 0.0) -> float | None:
    r""":math:`\rho / (1 - \rho) \cdot r_k + 2 f_k` when the estimated rate is below one, else ``None``.

    The Banach term bounds the distance to the fixed point of the map the loop iterates. On particle flows
    that map is the sampled one (common random numbers), whose fixed point differs from the equilibrium by
    the flow's sampling error; :math:`f_k` (:func:`mfgsolve.resolution`) is about two standard errors of it,
    so :math:`2 f_k` covers it at about four."""
    if rate is None or not rate < 1.0:
        return None
    return rate / (1.0 - rate) * residual + 2.0 * floor


def _alternating(cosines: Sequence[float]) -> bool:
    c = np.asarray([x for x in cosines if np.isfinite(x)], dtype=float)[-6:]
    return c.size >= 2 and float(np.mean(c < 0)) >= 0.75


def _at_floor(gaps: Sequence[float], floors: Sequence[float] | None) -> tuple[bool, float, float]:
    """Whether the tail of the gaps sits at the sampling floor; the tail medians of both."""
    if not floors or len(floors) != len(gaps) or len(gaps) < 3:
        return False, math.nan, math.nan
    tail = slice(len(gaps) // 2, None)
    g, f = float(np.median(np.asarray(gaps)[tail])), float(np.median(np.asarray(floors)[tail]))
    return bool(f > 0 and g <= _AT_FLOOR * f), g, f


def diagnose(
    gaps: Sequence[float],
    cosines: Sequence[float],
    *,
    converged: bool,
    blew_up: bool,
    decreasing_weights: bool,
    scheme: str,
    alpha: float | None = None,
    tol: float | None = None,
    floors: Sequence[float] | None = None,
    learned: bool = True,
    no_equilibrium: str | None = None,
    relative_exploitability: float | None = None,
) -> Verdict:
    """Classify a run from its fixed-point gaps and the cosines between successive flow increments.

    Parameters
    ----------
    gaps : sequence of float
        :math:`g_k = W(\\mu(\\pi^k), m^k)` per iteration.
    cosines : sequence of float
        Cosine between the mean-flow increments of iterations ``k`` and ``k-1`` (negative: sign alternation).
    converged, blew_up : bool
        Whether the run met its tolerance, or stopped because the residual exploded.
    decreasing_weights : bool
        Fictitious play: judge the trend on a log-log scale (power law), not a log scale.
    scheme, alpha, tol
        Used to phrase the advice.
    floors : sequence of float, optional
        The distance's sampling floor per iteration (:func:`mfgsolve.resolution`); a gap that stops at it is
        ``resolution``, not a property of the map.
    learned : bool
        Whether the oracle learns (its noise can hold the gap up) or is exact.
    no_equilibrium : str, optional
        Why the game has no unique equilibrium, when its exact reference found so (e.g. ``I - M`` singular).
    relative_exploitability : float, optional
        Of the final policy; above 1 with a learned oracle, its responses failed.
    """
    alternating = _alternating(cosines)
    rate = regression_rate(gaps)
    # fictitious play as a run of this oracle's kind would take it (recency 6 learned, classical exact)
    fp = (LEARNED if learned else EXACT).scheme("fp")
    if learned and relative_exploitability is not None and relative_exploitability > _FAILED_RELATIVE:
        # before "converged": responses that learned nothing leave the flow still, and the gap small
        return Verdict(
            "failed-response",
            f"the learned responses failed (relative exploitability {relative_exploitability:.3g}): raise "
            "--br-updates, or rescale the problem (--br-set reward_scale=..., --br-set actor_lr=...)",
            rate,
        )
    if converged:
        return Verdict("contracting", "", rate)
    if no_equilibrium:
        return Verdict(
            "no-equilibrium",
            f"the game has no unique equilibrium ({no_equilibrium}): no scheme can converge to one; check the "
            "coupling terms",
            rate,
        )

    if blew_up:
        return Verdict("diverging", *_diverging_advice(rate, alternating, scheme, alpha, fp))
    trend = _trend(gaps, loglog=decreasing_weights, minimum=_MIN_EXPONENT if decreasing_weights else _MIN_SLOPE)
    if trend is None:
        return Verdict("stalled", "too few iterations to judge: raise --iterations", rate)
    if trend == "down":
        more = ""
        if not decreasing_weights and rate is not None and rate < 1 and tol and gaps and gaps[-1] > 0:
            more = f"; about {max(1, math.ceil(math.log(tol / gaps[-1]) / math.log(rate)))} more iterations"
        return Verdict("contracting", f"still contracting but not converged: raise --iterations{more}", rate)
    floor_reached, g, f = _at_floor(gaps, floors)
    if floor_reached:
        return Verdict(
            "resolution",
            f"the gap ({g:.2g}) has reached the sampling floor of the distance ({f:.2g}): the flow is a fixed "
            "point as far as this many particles resolve; more particles (or --metric coupling) measure further",
            rate,
        )
    if trend == "up":
        return Verdict("diverging", *_diverging_advice(rate, alternating, scheme, alpha, fp))
    if alternating:
        damped = Damped(float(f"{0.5 if scheme != 'damped' or not alpha else alpha / 2:.2g}"))
        return Verdict("oscillating", f"period-2 oscillation: try {damped.flags()} or {fp.flags()}",
                       rate, damped)
    if scheme == "damped" and alpha is not None and alpha < _TINY_ALPHA:
        return Verdict("stalled", f"the damping weight {alpha:.2g} barely moves the flow: raise --alpha", rate)
    other = "a smaller --recency (longer memory)" if scheme == "fp" else fp.flags()
    switch = None if scheme == "fp" else fp
    if learned:
        return Verdict(
            "stalled",
            "the gap no longer decreases, above the distance's sampling floor: this is the learned oracle's noise "
            f"floor (raise the best-response budget, --br-updates); or try {other}",
            rate,
            switch,
        )
    return Verdict("stalled", f"the gap no longer decreases with an exact oracle: try {other}", rate, switch)


def _diverging_advice(rate: float | None, alternating: bool, scheme: str, alpha: float | None,
                      fp: Scheme) -> tuple[str, float | None, Scheme]:
    """The advice, the rate and the suggested scheme of a diverging run (``fp``: fictitious play as this run's
    oracle would take it)."""
    if not alternating:
        return ("the map expands without oscillating: damping cannot cure a real eigenvalue above one; "
                f"try {fp.flags()} and check the sign of the coupling (monotonicity)", rate, fp)
    if rate is None:
        return f"plain iteration overshoots: try {Damped(0.3).flags()} or {fp.flags()}", rate, Damped(0.3)
    # A negative eigenvalue -lam of the plain map becomes 1 - a(1 + lam) under damping a; a = 1/(1 + lam) cancels it.
    lam = rate if scheme != "damped" or not alpha else (rate + 1.0) / alpha - 1.0
    damped = Damped(float(f"{1.0 / (1.0 + lam):.2g}"))
    return (f"the iteration overshoots (alternating increments): try {damped.flags()} or {fp.flags()}", rate,
            damped)
