r"""``price-impact``: optimal execution with trade crowding (Carmona-Lacker 2015, Cardaliaguet-Lehalle 2018).

Model (continuous time; :math:`X` is a trader's inventory, :math:`\nu_t = E[\alpha_t]` the crowd's mean trading
rate, which moves the price by :math:`\gamma\nu_t\,dt`):

.. math::

    dX_t = \alpha_t\,dt + \sigma\,dW_t, \qquad
    J = E\Big[\int_0^{T_h} \Big(\tfrac{c_\alpha}{2}\alpha_t^2 + \tfrac{c_X}{2}X_t^2 - \gamma X_t\nu_t\Big)dt
          + \tfrac{c_g}{2}X_{T_h}^2\Big].

Equilibrium: :math:`\alpha^*_t = -(\eta_t X_t + (\bar\eta_t - \eta_t) m_t)/c_\alpha` with the Riccati equations
:math:`\dot\eta = \eta^2/c_\alpha - c_X` and :math:`\dot{\bar\eta} = \bar\eta^2/c_\alpha - \gamma\bar\eta/c_\alpha
- c_X`, :math:`\eta_{T_h} = \bar\eta_{T_h} = c_g`, and the mean inventory
:math:`m_t = E[X_0]\exp(-\int_0^t \bar\eta_s\,ds / c_\alpha)` ([2], the price impact model of ch. 1 and 4).

Discretisation (Euler, step ``dt``, ``T = horizon / dt`` steps, left-point running cost times ``dt``, noise
:math:`\sigma\sqrt{dt}\,N(0, 1)`, and :math:`\nu_t = (m_{t+1} - m_t)/dt`, so the impact term of the running cost
is :math:`-\gamma x_t(m_{t+1} - m_t)`), in DESIGN.md's LQ convention (which has no 1/2 factors):

======================  ===============================  ==============================================
term                    value                            from
======================  ===============================  ==============================================
A, B, Sigma_w           1, dt, sigma^2 dt                x_{t+1} = x_t + dt alpha_t + sigma sqrt(dt) xi
R                       c_alpha dt / 2                   c_alpha/2 alpha^2 dt
Q                       c_X dt / 2                       c_X/2 x^2 dt
S, S_next               gamma / 2, -gamma / 2            -gamma x (m_{t+1} - m_t) = 2x(S m_t + S_next m_{t+1})
QT                      c_g / 2                          c_g/2 x_T^2
mu0, Sigma0             x0_mean, x0_var                  X_0 ~ N(x0_mean, x0_var)
======================  ===============================  ==============================================

Parameters (overridable, ``--set key=value``): ``c_alpha = 1``, ``c_X = 0.5``, ``c_g = 2``, ``gamma = 1.5``,
``sigma = 0.3``, ``horizon = 1``, ``dt = 0.05``, ``x0_mean = 1``, ``x0_var = 0.1`` (a variance).

References
----------
.. [1] Carmona, Lacker (2015), "A probabilistic weak formulation of mean field games and applications",
       Annals of Applied Probability 25(3) (its price impact example).
.. [2] Carmona, Delarue (2018), *Probabilistic Theory of Mean Field Games*, Vol. I (the price impact model, ch. 1 and 4).
.. [3] Cardaliaguet, Lehalle (2018), "Mean field game of controls and an application to trade crowding",
       Mathematics and Financial Economics 12, 335-363.
"""

from __future__ import annotations

from typing import Any

from mfgsolve import LQProblem

from ._params import merge, number, steps

__all__ = ["DEFAULTS", "price_impact", "lq_spec"]

DEFAULTS: dict[str, float] = {
    "c_alpha": 1.0, "c_X": 0.5, "c_g": 2.0, "gamma": 1.5, "sigma": 0.3,
    "horizon": 1.0, "dt": 0.05, "x0_mean": 1.0, "x0_var": 0.1,
}
_CHECKS = {
    "c_alpha": number(low=0.0), "c_X": number(low=0.0, strict=False), "c_g": number(low=0.0, strict=False),
    "gamma": number(), "sigma": number(low=0.0, strict=False), "horizon": number(low=0.0),
    "dt": number(low=0.0), "x0_mean": number(), "x0_var": number(low=0.0, strict=False),
}


def lq_spec(params: dict[str, float]) -> dict[str, Any]:
    """The LQ spec (DESIGN.md's convention) of the Euler discretisation with validated ``params``."""
    p = params
    dt = p["dt"]
    return {
        "family": "lq",
        "name": "price-impact",
        "description": "price-impact " + ", ".join(f"{k}={v:g}" for k, v in p.items()),
        "T": steps(p["horizon"], dt),
        "A": 1.0,
        "B": dt,
        "Sigma_w": p["sigma"] ** 2 * dt,
        "R": p["c_alpha"] * dt / 2,
        "Q": p["c_X"] * dt / 2,
        "S": p["gamma"] / 2,
        "S_next": -p["gamma"] / 2,
        "QT": p["c_g"] / 2,
        "mu0": p["x0_mean"],
        "Sigma0": p["x0_var"],
    }


def price_impact(**overrides: Any) -> LQProblem:
    """The ``price-impact`` problem (module docstring); keyword overrides are validated like a spec."""
    return LQProblem.from_spec(lq_spec(merge(DEFAULTS, _CHECKS, overrides)), name="price-impact")
