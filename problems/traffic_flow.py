r"""``traffic-flow``: vehicles on a ring road choose their acceleration; speed is capped by the local density.

Model. State :math:`x = (s, v)`: position :math:`s \in [0, L)` on a ring road of length :math:`L` and speed
:math:`v \ge 0`; action :math:`a \in [-a_{max}, a_{max}]` (acceleration). With :math:`\rho_t(s)` the relative
density of the traffic :math:`m_t` at :math:`s` (kernel density estimate on the ring, bandwidth ``h``, scaled
so that uniform traffic has :math:`\rho \equiv 1`) and the Greenshields speed limit
:math:`V(\rho) = v_{free}\,(1 - \rho/\rho_{jam})_+`,

.. math::

    v_{t+1} = \min\big(\max(v_t + dt\,a_t + \sigma\sqrt{dt}\,\xi_t,\ 0),\ V(\rho_t(s_t))\big), \qquad
    s_{t+1} = (s_t + dt\,v_{t+1}) \bmod L,

and the reward per step is minus travel time, fuel and congestion:

.. math::

    r_t = -dt\Big[w_{time}\,(1 - v_t/v_{free})^2 + w_{fuel}\,a_t^2
          + w_{cong}\,\frac{\rho_t(s_t)}{\rho_{jam}}\,\frac{v_t}{v_{free}}\Big].

The first term is the time lost against free flow (the efficiency cost of the LWR mean field game [1]), the
last the risk of driving fast in dense traffic ([1]'s safety term). There is no terminal reward. Traffic starts
as a platoon: positions uniform on :math:`[0, \ell_0)`, speeds :math:`N(v_0, s_0^2)` clipped at 0.
There is no exact reference; exploitability is measured by a longer best-response run.

Parameters (overridable, ``--set key=value``): ``T = 20``, ``dt = 0.05``, ``length = 1``, ``v_free = 1``,
``rho_jam = 4``, ``a_max = 2``, ``sigma = 0.05``, ``w_time = 1``, ``w_fuel = 0.1``, ``w_cong = 0.5``,
``bandwidth = 0.05``, ``platoon = 0.5``, ``v0_mean = 0.3``, ``v0_std = 0.05``.

References
----------
.. [1] Huang, Di, Du, Chen (2019), "A game-theoretic framework for autonomous vehicles velocity control:
       bridging microscopic differential games and macroscopic mean field games", arXiv:1903.06053.
.. [2] Lighthill, Whitham (1955); Richards (1956): the LWR model and the Greenshields speed-density law.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mfgsolve import Flow, SpecError

from ._kernels import KERNEL_PARTICLES, kernel_density
from ._params import integer, merge, number

__all__ = ["DEFAULTS", "TrafficFlow", "traffic_flow"]

DEFAULTS: dict[str, Any] = {
    "T": 20, "dt": 0.05, "length": 1.0, "v_free": 1.0, "rho_jam": 4.0, "a_max": 2.0, "sigma": 0.05,
    "w_time": 1.0, "w_fuel": 0.1, "w_cong": 0.5, "bandwidth": 0.05, "platoon": 0.5, "v0_mean": 0.3,
    "v0_std": 0.05,
}
_NONNEG = number(low=0.0, strict=False)
_CHECKS = {
    "T": integer(low=1), "dt": number(low=0.0), "length": number(low=0.0), "v_free": number(low=0.0),
    "rho_jam": number(low=0.0), "a_max": number(low=0.0), "sigma": _NONNEG, "w_time": _NONNEG, "w_fuel": _NONNEG,
    "w_cong": _NONNEG, "bandwidth": number(low=0.0), "platoon": number(low=0.0), "v0_mean": _NONNEG,
    "v0_std": _NONNEG,
}


def _params(overrides: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, _CHECKS, overrides)
    if p["platoon"] > p["length"]:
        raise SpecError("platoon", f"must be at most the road length {p['length']:g}, got {p['platoon']:g}")
    if p["bandwidth"] > p["length"] / 6:
        raise SpecError("bandwidth", f"must be at most length / 6 = {p['length'] / 6:g} (one periodic image)")
    return p


class TrafficFlow:
    """The ring-road traffic game (module docstring), a :class:`mfgsolve.Problem` on particle flows."""

    n = 2
    p = 1
    particles = KERNEL_PARTICLES

    def __init__(self, params: dict[str, Any], name: str = "traffic-flow") -> None:
        self.params = dict(params)
        self.name = name
        self.T = params["T"]
        self.action_low = torch.tensor([-params["a_max"]], dtype=torch.float64)
        self.action_high = torch.tensor([params["a_max"]], dtype=torch.float64)
        self._noise = params["sigma"] * math.sqrt(params["dt"])

    def sample_x0(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        p = self.params
        s = p["platoon"] * torch.rand(n, generator=generator, dtype=dtype, device=generator.device)
        v = p["v0_mean"] + p["v0_std"] * torch.randn(n, generator=generator, dtype=dtype, device=generator.device)
        v = v.clamp_min(0.0)
        return torch.stack([s, v], dim=1)

    def density(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        """Relative density :math:`\\rho_t(s)` (uniform traffic = 1) at the positions of ``x``, shape ``(batch,)``."""
        p = self.params
        pdf = kernel_density(m, t, x[:, :1], p["bandwidth"], dims=slice(0, 1), period=p["length"])
        return p["length"] * pdf

    def speed_limit(self, rho: torch.Tensor) -> torch.Tensor:
        """Greenshields: :math:`v_{free}(1 - \\rho/\\rho_{jam})_+`."""
        return self.params["v_free"] * (1.0 - rho / self.params["rho_jam"]).clamp_min(0.0)

    def step(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow, generator: torch.Generator) -> torch.Tensor:
        p = self.params
        s, v = x[:, 0], x[:, 1]
        z = torch.randn(s.shape, generator=generator, dtype=x.dtype, device=x.device)
        v_next = torch.minimum((v + p["dt"] * a[:, 0] + self._noise * z).clamp_min(0.0),
                               self.speed_limit(self.density(t, x, m)))
        s_next = torch.remainder(s + p["dt"] * v_next, p["length"])
        return torch.stack([s_next, v_next], dim=1)

    def reward(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow) -> torch.Tensor:
        p = self.params
        v = x[:, 1] / p["v_free"]
        rho = self.density(t, x, m) / p["rho_jam"]
        cost = p["w_time"] * (1.0 - v) ** 2 + p["w_fuel"] * a[:, 0] ** 2 + p["w_cong"] * rho * v
        return -p["dt"] * cost

    def terminal_reward(self, x: torch.Tensor, m: Flow) -> torch.Tensor:
        return x.new_zeros(x.shape[0])

    def reference(self) -> None:
        """No exact equilibrium is known for this game."""
        return None

    def config(self) -> dict[str, Any]:
        return {"family": "traffic-flow", "name": self.name, "params": dict(self.params)}

    def __repr__(self) -> str:
        return f"TrafficFlow(T={self.T}, length={self.params['length']})"


def traffic_flow(**overrides: Any) -> TrafficFlow:
    """The ``traffic-flow`` problem (module docstring); keyword overrides are validated like a spec."""
    return TrafficFlow(_params(overrides))
