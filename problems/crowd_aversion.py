r"""``crowd-aversion``: a non-LQ potential mean field game with a cvxpy ground truth.

Model (the issue's grid version; :math:`m_t` the population's distribution on the grid):

* grid of ``points = 41`` points on ``[low, high] = [-2, 2]``; ``T = 10`` steps of ``dt = 0.1``;
* from :math:`x` an agent picks a destination :math:`y` on the grid and pays :math:`(y - x)^2 / (2\,dt)`;
* it lands at :math:`z` with probability :math:`\propto \exp(-(z - y)^2 / (2\sigma^2 dt))` (rows normalised on the
  grid), :math:`\sigma = 0.5`;
* running cost per step :math:`dt\,\kappa \sum_j \Phi(x, x_j) m_t(x_j)` with
  :math:`\Phi(x, y) = \exp(-(x - y)^2 / (2 \cdot 0.4^2))` (``width = 0.4``), :math:`\kappa = 2`;
* terminal cost :math:`2 (x - 1)^2 + \kappa_T \sum_j \Phi(x, x_j) m_T(x_j)` (``terminal_weight = 2``,
  ``target = 1``), :math:`\kappa_T = 2`;
* :math:`m_0 \propto \exp(-(x + 1)^2 / (2 \cdot 0.3^2))` normalised on the grid (``x0_mean = -1``,
  ``x0_std = 0.3``).

The crowd starts around -1, wants to reach +1 by ``T`` and dislikes company along the way (``Phi`` is a
positive-definite kernel, so the interaction is a convex potential). The ground truth is the convex
(potential) program of :mod:`mfgsolve.reference.potential`, solved with cvxpy and certified by DP
(status ``optimal`` and exploitability < 1e-5 on these defaults,
:data:`mfgsolve.reference.potential.CERTIFIED_EXPLOITABILITY`); settings where the interior point cannot reach
its tolerances (e.g. ``dt = 1e-5``: moves cost :math:`1/(2\,dt)`) have no reference and say so
(:class:`mfgsolve.UncertifiedReferenceError`).

The problem this factory returns is the **continuous-state version** of the same model, the one a learned
oracle solves: state :math:`x \in \mathbb{R}`, action :math:`a = y - x` (a displacement, bounded by the grid's
width ``high - low``), :math:`x_{t+1} = x_t + a_t + \sigma\sqrt{dt}\,\xi_t`, reward
:math:`-(a^2/(2\,dt) + dt\,\kappa\,(\Phi * m_t)(x))`, terminal reward
:math:`-(2(x - 1)^2 + \kappa_T (\Phi * m_T)(x))`, :math:`x_0 \sim N(-1, 0.3^2)`. The interaction
:math:`(\Phi * m_t)(x) = \int \Phi(x, y)\,m_t(dy)` is read exactly from a particle flow (a Gaussian kernel sum)
or in closed form from a Gaussian flow. Its :meth:`CrowdAversion.reference` is the grid equilibrium; a learned
solution is measured against it by :meth:`CrowdAversion.reference_distance` (per-time :math:`W_1` to the grid
density) and :meth:`CrowdAversion.exploitability` (its policy projected on the grid, exploitability by DP).

Parameters (overridable, ``--set key=value``): ``points = 41``, ``low = -2``, ``high = 2``, ``T = 10``,
``dt = 0.1``, ``sigma = 0.5``, ``kappa = 2``, ``kappa_T = 2``, ``width = 0.4``, ``target = 1``,
``terminal_weight = 2``, ``x0_mean = -1``, ``x0_std = 0.3``.

References
----------
.. [1] Lasry, Lions (2007), "Mean field games", Japanese Journal of Mathematics 2(1) (potential games).
.. [2] Lachapelle, Salomon, Turinici (2010), "Computation of mean field equilibria in economics",
       M3AS 20(4) (the discrete variational formulation solved by convex optimisation).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mfgsolve import Flow, Gap, GridPotentialMFG, MixturePolicy, ParticleFlow, Policy, PotentialReference, SpecError, solve_potential
from mfgsolve import UncertifiedReferenceError
from mfgsolve import wasserstein
from mfgsolve.reference.potential import grid_exploitability, mixture_policy

from ._kernels import KERNEL_PARTICLES, kernel_sum
from ._params import integer, merge, number

__all__ = ["DEFAULTS", "CrowdAversion", "crowd_aversion", "grid_model"]

DEFAULTS: dict[str, Any] = {
    "points": 41, "low": -2.0, "high": 2.0, "T": 10, "dt": 0.1, "sigma": 0.5, "kappa": 2.0, "kappa_T": 2.0,
    "width": 0.4, "target": 1.0, "terminal_weight": 2.0, "x0_mean": -1.0, "x0_std": 0.3,
}
_CHECKS = {
    "points": integer(low=2), "low": number(), "high": number(), "T": integer(low=1), "dt": number(low=0.0),
    "sigma": number(low=0.0), "kappa": number(low=0.0, strict=False), "kappa_T": number(low=0.0, strict=False),
    "width": number(low=0.0), "target": number(), "terminal_weight": number(low=0.0, strict=False),
    "x0_mean": number(), "x0_std": number(low=0.0),
}


def _params(overrides: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, _CHECKS, overrides)
    if p["high"] <= p["low"]:
        raise SpecError("high", f"must exceed low = {p['low']:g}, got {p['high']:g}")
    return p


#: Largest grid program of the reference: T * points^2 transport variables. The default (T = 10, 41 points) has
#: 16810 and solves in a few seconds; the interior point's time and memory grow faster than the size (the audit's
#: points = 400, 1.6 million variables, held 4.4 GB after 40 s without an answer).
MAX_GRID_VARIABLES = 250_000
#: Bytes of solver memory per transport variable, measured at points = 400 (a lower bound: the solve was unfinished).
_BYTES_PER_VARIABLE = 2800


def _check_grid_size(params: dict[str, Any]) -> None:
    """Refuse, up front and with an estimate, a grid program far too large to solve (a :class:`SpecError`)."""
    size = params["T"] * params["points"] ** 2
    if size > MAX_GRID_VARIABLES:
        gib = size * _BYTES_PER_VARIABLE / 2**30
        raise SpecError("points", f"the grid reference would have T * points^2 = {size:,} transport variables "
                                  f"(at least {gib:.1f} GiB and far longer than the default's 16,810 in a few "
                                  f"seconds); at most {MAX_GRID_VARIABLES:,}: lower points or T")


def grid_model(params: dict[str, Any]) -> GridPotentialMFG:
    """The issue's grid model as a :class:`mfgsolve.GridPotentialMFG` (``params`` validated)."""
    p = params
    x = np.linspace(p["low"], p["high"], p["points"])
    d = x[None, :] - x[:, None]
    kernel = np.exp(-(d**2) / (2 * p["sigma"] ** 2 * p["dt"]))
    Phi = np.exp(-(d**2) / (2 * p["width"] ** 2))
    m0 = np.exp(-((x - p["x0_mean"]) ** 2) / (2 * p["x0_std"] ** 2))
    if not m0.sum() > 0:
        raise SpecError("x0_mean", "the initial law puts no mass on the grid")
    return GridPotentialMFG(
        grid=x,
        T=p["T"],
        move=d**2 / (2 * p["dt"]),
        kernel=kernel / kernel.sum(axis=1, keepdims=True),
        f=np.zeros_like(x),
        C=p["dt"] * p["kappa"] * Phi,
        g=p["terminal_weight"] * (x - p["target"]) ** 2,
        CT=p["kappa_T"] * Phi,
        m0=m0 / m0.sum(),
    )


class CrowdAversion:
    """The continuous-state crowd-aversion game (module docstring), a :class:`mfgsolve.Problem`."""

    n = 1
    p = 1
    particles = KERNEL_PARTICLES

    def __init__(self, params: dict[str, Any], name: str = "crowd-aversion") -> None:
        self.params = dict(params)
        self.name = name
        self.T = params["T"]
        span = params["high"] - params["low"]
        self.action_low = torch.tensor([-span], dtype=torch.float64)
        self.action_high = torch.tensor([span], dtype=torch.float64)
        self._noise = params["sigma"] * math.sqrt(params["dt"])
        self._reference: PotentialReference | UncertifiedReferenceError | None = None

    def sample_x0(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        z = torch.randn(n, 1, generator=generator, dtype=dtype, device=generator.device)
        return self.params["x0_mean"] + self.params["x0_std"] * z

    def step(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + a + self._noise * z

    def interaction(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        r""":math:`(\Phi * m_t)(x) = \int \exp(-(x-y)^2/(2 w^2))\,m_t(dy)`, shape ``(batch,)``."""
        return kernel_sum(m, t, x, self.params["width"])

    def reward(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow) -> torch.Tensor:
        p = self.params
        return -(a[:, 0] ** 2 / (2 * p["dt"]) + p["dt"] * p["kappa"] * self.interaction(t, x, m))

    def terminal_reward(self, x: torch.Tensor, m: Flow) -> torch.Tensor:
        p = self.params
        return -(p["terminal_weight"] * (x[:, 0] - p["target"]) ** 2 + p["kappa_T"] * self.interaction(self.T, x, m))

    def grid_model(self) -> GridPotentialMFG:
        return grid_model(self.params)

    def reference(self) -> PotentialReference:
        """The grid equilibrium by the convex program (solved once, a few seconds), certified by DP.

        Raises :class:`mfgsolve.UncertifiedReferenceError` (every call, solved once) when the solution does not
        certify itself; :func:`mfgsolve.solve` then runs without a reference.
        """
        if self._reference is None:
            _check_grid_size(self.params)
            try:
                self._reference = solve_potential(self.grid_model())
            except UncertifiedReferenceError as exc:
                self._reference = exc
        if isinstance(self._reference, UncertifiedReferenceError):
            raise UncertifiedReferenceError(str(self._reference))
        return self._reference

    def reference_distance(self, m: Flow, p: int = 1) -> np.ndarray:
        """Per-time Wasserstein distance :math:`W_p(m_t, m^*_t)` to the grid equilibrium, shape ``(T+1,)``."""
        ref = self.reference()
        grid = torch.as_tensor(ref.grid, dtype=torch.float64)[None, :, None].expand(self.T + 1, -1, -1)
        return wasserstein(m, ParticleFlow(grid, torch.as_tensor(ref.density)), p=p)

    def grid_policy(self, policy: Policy, m: Flow) -> np.ndarray:
        r"""``policy`` (acting against the flow ``m``) projected on the grid, shape ``(T, S, S)``.

        From grid point :math:`x` the destination :math:`x + a` is split between its two grid neighbours in the
        proportions that keep its mean (linear interpolation); beyond the grid it is the end point. A mixture
        (fictitious play's average) becomes the Markov grid policy with its occupation measure
        (:func:`mfgsolve.reference.potential.mixture_policy`).
        """
        if isinstance(policy, MixturePolicy):
            parts = [self.grid_policy(c, m) for c in policy.components]
            return mixture_policy(self.grid_model(), parts, policy.weights)
        x = self.grid_model().grid
        S, h = x.shape[0], x[1] - x[0]
        pi = np.zeros((self.T, S, S))
        xs = torch.as_tensor(x, dtype=torch.float64, device=m.means().device)[:, None]  # where the run's policies act
        rows = np.arange(S)
        with torch.no_grad():
            for t in range(self.T):
                y = np.clip(x + policy.act(t, xs, m)[:, 0].double().cpu().numpy(), x[0], x[-1])
                u = (y - x[0]) / h  # position in grid steps; snapped when on a grid point up to rounding
                u = np.where(np.abs(u - np.round(u)) < 1e-9, np.round(u), u)
                j = np.minimum(np.floor(u).astype(int), S - 2)
                w = u - j
                np.add.at(pi[t], (rows, j), 1.0 - w)
                np.add.at(pi[t], (rows, j + 1), w)
        return pi

    def exploitability(self, policy: Policy, m: Flow) -> Gap:
        """Exact (DP) exploitability on the grid of ``policy`` projected by :meth:`grid_policy` (also the solve
        loop's exploitability hook, see :func:`mfgsolve.exploitability`)."""
        return grid_exploitability(self.grid_model(), self.grid_policy(policy, m))

    def config(self) -> dict[str, Any]:
        return {"family": "crowd-aversion", "name": self.name, "params": dict(self.params)}

    def __repr__(self) -> str:
        return f"CrowdAversion(T={self.T}, points={self.params['points']})"


def crowd_aversion(**overrides: Any) -> CrowdAversion:
    """The ``crowd-aversion`` problem (module docstring); keyword overrides are validated like a spec."""
    return CrowdAversion(_params(overrides))
