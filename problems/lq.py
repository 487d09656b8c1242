"""Linear-quadratic benchmark problems (DESIGN.md's LQ convention)."""

from __future__ import annotations

from typing import Any

from mfgsolve import LQProblem

__all__ = ["LQ_1D", "lq_1d"]

#: ``lq-1d``: a scalar herding game, cost (x - m/2)^2 + 0.1 a^2 per step and (x_T - m_T/2)^2 at the end.
#: Exact equilibrium cost J* = 8.761918, Picard rate rho(M) = 0.4723.
LQ_1D: dict[str, Any] = {
    "family": "lq",
    "name": "lq-1d",
    "T": 20,
    "A": 1.0,
    "B": 0.1,
    "Q": 0.0,
    "R": 0.1,
    "Qbar": 1.0,
    "H": 0.5,
    "QbarT": 1.0,
    "HT": 0.5,
    "Sigma_w": 0.09,
    "mu0": 1.0,
    "Sigma0": 0.25,
}


def lq_1d(**overrides: Any) -> LQProblem:
    """The ``lq-1d`` problem; keyword overrides replace spec terms and are validated like a spec."""
    return LQProblem.from_spec({**LQ_1D, **overrides}, name="lq-1d")
