r"""``crowd-navigation``: a crowd walks to a goal in the plane and avoids its own congestion (no exact reference).

Model. State :math:`x \in \mathbb{R}^2` (position), action :math:`a \in [-v_{max}, v_{max}]^2` (velocity),

.. math::

    x_{t+1} = x_t + dt\,a_t + \sigma\sqrt{dt}\,\xi_t, \qquad \xi_t \sim N(0, I_2),

reward per step

.. math::

    r_t = dt\Big[\,w_{goal}\,\langle a_t, e(x_t)\rangle
          - w_{cong}\,\rho_t(x_t) - w_{coll}\,(\rho_t(x_t) - \rho_{comf})_+^2 - w_{eff}|a_t|^2\Big],

with :math:`e(x) = (g - x)/\max(|g - x|, \delta)` the unit direction to the goal :math:`g` (so the first term is
the progress made towards the goal per unit time, softened within :math:`\delta` of it), :math:`\rho_t(x)` the
kernel density estimate of the crowd :math:`m_t` at :math:`x` (Gaussian kernel, bandwidth ``h``; agents per unit
area for a crowd of mass one), a linear congestion cost and a collision cost once the density exceeds the
comfort level :math:`\rho_{comf}`. Terminal reward :math:`-w_T|x_T - g|^2`. The crowd starts as
:math:`N(x_{0}, s_0^2 I)`.

Without the crowd terms every agent walks straight at the goal at speed
:math:`\min(w_{goal}/(2w_{eff}), v_{max})`; with them the crowd spreads out sideways and in depth, which a
learned best response has to discover. There is no closed form or grid reference in two dimensions at this
resolution; exploitability is measured by a longer best-response run.

Parameters (overridable, ``--set key=value``): ``T = 20``, ``dt = 0.1``, ``goal = [3, 0]``, ``x0_mean = [0, 0]``,
``x0_std = 0.4``, ``sigma = 0.2``, ``v_max = 2``, ``w_goal = 1``, ``w_eff = 0.25``, ``w_cong = 1``,
``w_coll = 2``, ``rho_comf = 0.5``, ``bandwidth = 0.3``, ``w_T = 1``, ``delta = 0.1``.

References
----------
.. [1] Lachapelle, Wolfram (2011), "On a mean field game approach modeling congestion and aversion in
       pedestrian crowds", Transportation Research Part B 45(10), 1572-1589.
.. [2] Dogbe (2010), "Modeling crowd dynamics by the mean-field limit approach", Mathematical and Computer
       Modelling 52, 1506-1520.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mfgsolve import Flow

from ._kernels import KERNEL_PARTICLES, kernel_density
from ._params import integer, merge, number, vector

__all__ = ["DEFAULTS", "CrowdNavigation", "crowd_navigation"]

DEFAULTS: dict[str, Any] = {
    "T": 20, "dt": 0.1, "goal": [3.0, 0.0], "x0_mean": [0.0, 0.0], "x0_std": 0.4, "sigma": 0.2, "v_max": 2.0,
    "w_goal": 1.0, "w_eff": 0.25, "w_cong": 1.0, "w_coll": 2.0, "rho_comf": 0.5, "bandwidth": 0.3, "w_T": 1.0,
    "delta": 0.1,
}
_NONNEG = number(low=0.0, strict=False)
_CHECKS = {
    "T": integer(low=1), "dt": number(low=0.0), "goal": vector(2), "x0_mean": vector(2), "x0_std": _NONNEG,
    "sigma": _NONNEG, "v_max": number(low=0.0), "w_goal": _NONNEG, "w_eff": number(low=0.0), "w_cong": _NONNEG,
    "w_coll": _NONNEG, "rho_comf": _NONNEG, "bandwidth": number(low=0.0), "w_T": _NONNEG, "delta": number(low=0.0),
}


class CrowdNavigation:
    """The crowd-navigation game (module docstring), a :class:`mfgsolve.Problem` on particle flows."""

    n = 2
    p = 2
    particles = KERNEL_PARTICLES

    def __init__(self, params: dict[str, Any], name: str = "crowd-navigation") -> None:
        self.params = dict(params)
        self.name = name
        self.T = params["T"]
        v = params["v_max"]
        self.action_low = torch.tensor([-v, -v], dtype=torch.float64)
        self.action_high = torch.tensor([v, v], dtype=torch.float64)
        self._noise = params["sigma"] * math.sqrt(params["dt"])

    def _goal(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.params["goal"], dtype=x.dtype, device=x.device)

    def sample_x0(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        z = torch.randn(n, 2, generator=generator, dtype=dtype, device=generator.device)
        return torch.as_tensor(self.params["x0_mean"], dtype=dtype, device=z.device) + self.params["x0_std"] * z

    def step(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + self.params["dt"] * a + self._noise * z

    def density(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        """Kernel density estimate :math:`\\rho_t(x)` of the crowd, shape ``(batch,)``."""
        return kernel_density(m, t, x, self.params["bandwidth"])

    def reward(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow) -> torch.Tensor:
        p = self.params
        to_goal = self._goal(x) - x
        direction = to_goal / to_goal.norm(dim=1, keepdim=True).clamp_min(p["delta"])
        rho = self.density(t, x, m)
        gain = (
            p["w_goal"] * (a * direction).sum(1)
            - p["w_cong"] * rho
            - p["w_coll"] * (rho - p["rho_comf"]).clamp_min(0.0) ** 2
            - p["w_eff"] * (a * a).sum(1)
        )
        return p["dt"] * gain

    def terminal_reward(self, x: torch.Tensor, m: Flow) -> torch.Tensor:
        return -self.params["w_T"] * ((x - self._goal(x)) ** 2).sum(1)

    def reference(self) -> None:
        """No exact equilibrium is known for this game."""
        return None

    def config(self) -> dict[str, Any]:
        return {"family": "crowd-navigation", "name": self.name, "params": dict(self.params)}

    def __repr__(self) -> str:
        return f"CrowdNavigation(T={self.T}, goal={self.params['goal']})"


def crowd_navigation(**overrides: Any) -> CrowdNavigation:
    """The ``crowd-navigation`` problem (module docstring); keyword overrides are validated like a spec."""
    return CrowdNavigation(merge(DEFAULTS, _CHECKS, overrides))
