r"""``flocking``: velocity alignment, the linear case of Nourian, Caines, Malhame (2011), an LQ mean field game.

Model (continuous time; :math:`v \in \mathbb{R}^2` a bird's velocity, :math:`m_t = E[v_t]` the flock's mean
velocity):

.. math::

    dv_t = u_t\,dt + \sigma\,dW_t, \qquad
    J = E\Big[\int_0^{T_h} \big(|v_t - m_t|^2 + r|u_t|^2\big)\,dt\Big] \quad\text{(no terminal cost)}.

Equilibrium: :math:`u^*_t = -k_t (v_t - m_t)` with the gain
:math:`k_t = \sqrt{r}\tanh((T_h - t)/\sqrt{r}) / r` (from :math:`p_t = \sqrt r \tanh((T_h-t)/\sqrt r)`, the
solution of :math:`\dot p = p^2/r - 1`, :math:`p_{T_h} = 0`), and the mean velocity is constant.

Discretisation (Euler, step ``dt``, ``T = horizon / dt`` steps, left-point running cost times ``dt``, noise
:math:`\sigma\sqrt{dt}\,N(0, I_2)`), in DESIGN.md's LQ convention (which has no 1/2 factors):

======================  ===============================  ==============================================
term                    value                            from
======================  ===============================  ==============================================
A, B, Sigma_w           I, dt I, sigma^2 dt I            v_{t+1} = v_t + dt u_t + sigma sqrt(dt) xi
R                       r dt I                           r |u|^2 dt
Qbar, H                 dt I, I                          |v - m|^2 dt
mu0, Sigma0             v0_mean, v0_var I                v_0 ~ N(v0_mean, v0_var I)
======================  ===============================  ==============================================

Parameters (overridable, ``--set key=value``): ``r = 0.5``, ``sigma = 0.2``, ``horizon = 2``, ``dt = 0.05``,
``v0_mean = [0.3, -0.2]``, ``v0_var = 0.5``.

References
----------
.. [1] Nourian, Caines, Malhame (2011), "Mean field analysis of controlled Cucker-Smale type flocking: linear
       analysis and perturbation equations", IFAC Proceedings 44(1), 4471-4476.
.. [2] Carmona, Delarue (2018), *Probabilistic Theory of Mean Field Games*, Vol. I (the flocking model).
"""

from __future__ import annotations

from typing import Any

from mfgsolve import LQProblem

from ._params import merge, number, steps, vector

__all__ = ["DEFAULTS", "flocking", "lq_spec"]

DEFAULTS: dict[str, Any] = {
    "r": 0.5, "sigma": 0.2, "horizon": 2.0, "dt": 0.05, "v0_mean": [0.3, -0.2], "v0_var": 0.5,
}
_CHECKS = {
    "r": number(low=0.0), "sigma": number(low=0.0, strict=False), "horizon": number(low=0.0),
    "dt": number(low=0.0), "v0_mean": vector(2), "v0_var": number(low=0.0, strict=False),
}


def _eye(scale: float) -> list[list[float]]:
    return [[scale, 0.0], [0.0, scale]]


def lq_spec(params: dict[str, Any]) -> dict[str, Any]:
    """The LQ spec (DESIGN.md's convention) of the Euler discretisation with validated ``params``."""
    p = params
    dt = p["dt"]
    return {
        "family": "lq",
        "name": "flocking",
        "description": "flocking " + ", ".join(f"{k}={v}" for k, v in p.items()),
        "T": steps(p["horizon"], dt),
        "A": _eye(1.0),
        "B": _eye(dt),
        "Sigma_w": _eye(p["sigma"] ** 2 * dt),
        "R": _eye(p["r"] * dt),
        "Qbar": _eye(dt),
        "H": _eye(1.0),
        "mu0": list(p["v0_mean"]),
        "Sigma0": _eye(p["v0_var"]),
    }


def flocking(**overrides: Any) -> LQProblem:
    """The ``flocking`` problem (module docstring); keyword overrides are validated like a spec."""
    return LQProblem.from_spec(lq_spec(merge(DEFAULTS, _CHECKS, overrides)), name="flocking")
