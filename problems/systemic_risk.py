r"""``systemic-risk``: inter-bank borrowing and lending (Carmona, Fouque, Sun 2015), an LQ mean field game.

Model (continuous time; :math:`X` is a bank's log-monetary reserve, :math:`m_t = E[X_t]`):

.. math::

    dX_t = [a(m_t - X_t) + \alpha_t]\,dt + \sigma\,dW_t, \qquad
    J = E\Big[\int_0^{T_h} \Big(\tfrac12\alpha_t^2 - q\alpha_t(m_t - X_t) + \tfrac{\epsilon}{2}(m_t - X_t)^2\Big)dt
          + \tfrac{c}{2}(m_{T_h} - X_{T_h})^2\Big].

Equilibrium: :math:`\alpha^*_t = (q + \eta_t)(m_t - X_t)` with
:math:`\dot\eta = 2(a+q)\eta + \eta^2 - (\epsilon - q^2)`, :math:`\eta_{T_h} = c` (explicit solution in [1]),
and the mean :math:`m_t = E[X_0]` is constant.

Discretisation (Euler, step ``dt``, ``T = horizon / dt`` steps, left-point running cost times ``dt``, noise
:math:`\sigma\sqrt{dt}\,N(0, 1)`), in DESIGN.md's LQ convention (which has no 1/2 factors):

.. math::

    x_{t+1} = (1 - a\,dt)x_t + dt\,\alpha_t + a\,dt\,m_t + \sqrt{dt}\,\sigma\,\xi_t

======================  ===============================  ==============================================
term                    value                            from
======================  ===============================  ==============================================
A, B, Abar              1 - a dt, dt, a dt               drift
Sigma_w                 sigma^2 dt                       noise
R                       dt / 2                           alpha^2/2 dt
N, U                    q dt / 2, -q dt / 2              -q alpha (m - x) dt = 2 x N alpha + 2 alpha U m
Qbar, H                 eps dt / 2, 1                    eps/2 (x - m)^2 dt
QbarT, HT               c / 2, 1                         c/2 (x_T - m_T)^2
mu0, Sigma0             x0_mean, x0_var                  X_0 ~ N(x0_mean, x0_var)
======================  ===============================  ==============================================

Parameters (overridable, ``--set key=value``): ``a = 1``, ``q = 0.8``, ``eps = 2`` (needs ``eps >= q^2``, the
convexity assumption of [1]), ``c = 1``, ``sigma = 0.5``, ``horizon = 1``, ``dt = 0.05``, ``x0_mean = 0.5``,
``x0_var = 0.2`` (a variance).

References
----------
.. [1] Carmona, Fouque, Sun (2015), "Mean field games and systemic risk", Communications in Mathematical
       Sciences 13(4), 911-933, sec. 3 (the common-noise correlation rho = 0 here).
"""

from __future__ import annotations

from typing import Any

from mfgsolve import LQProblem, SpecError

from ._params import merge, number, steps

__all__ = ["DEFAULTS", "systemic_risk", "lq_spec"]

DEFAULTS: dict[str, float] = {
    "a": 1.0, "q": 0.8, "eps": 2.0, "c": 1.0, "sigma": 0.5,
    "horizon": 1.0, "dt": 0.05, "x0_mean": 0.5, "x0_var": 0.2,
}
_CHECKS = {
    "a": number(), "q": number(), "eps": number(), "c": number(low=0.0, strict=False),
    "sigma": number(low=0.0, strict=False), "horizon": number(low=0.0), "dt": number(low=0.0),
    "x0_mean": number(), "x0_var": number(low=0.0, strict=False),
}


def lq_spec(params: dict[str, float]) -> dict[str, Any]:
    """The LQ spec (DESIGN.md's convention) of the Euler discretisation with validated ``params``."""
    p = params
    dt = p["dt"]
    if p["eps"] < p["q"] ** 2:
        raise SpecError("eps", f"must be at least q^2 = {p['q'] ** 2:g} (convex running cost), got {p['eps']:g}")
    return {
        "family": "lq",
        "name": "systemic-risk",
        "description": "systemic-risk " + ", ".join(f"{k}={v:g}" for k, v in p.items()),
        "T": steps(p["horizon"], dt),
        "A": 1.0 - p["a"] * dt,
        "B": dt,
        "Abar": p["a"] * dt,
        "Sigma_w": p["sigma"] ** 2 * dt,
        "R": dt / 2,
        "N": p["q"] * dt / 2,
        "U": -p["q"] * dt / 2,
        "Qbar": p["eps"] * dt / 2,
        "H": 1.0,
        "QbarT": p["c"] / 2,
        "HT": 1.0,
        "mu0": p["x0_mean"],
        "Sigma0": p["x0_var"],
    }


def systemic_risk(**overrides: Any) -> LQProblem:
    """The ``systemic-risk`` problem (module docstring); keyword overrides are validated like a spec."""
    return LQProblem.from_spec(lq_spec(merge(DEFAULTS, _CHECKS, overrides)), name="systemic-risk")
