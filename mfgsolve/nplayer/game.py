r"""N-player games from any mean field game, and the epsilon-Nash of a mean-field policy in them.

The N-player game of a :class:`~mfgsolve.problem.Problem`: agents :math:`i = 1..N` with their own states
:math:`x^i_t`, each moving by the problem's ``step`` and earning its ``reward`` against the **empirical measure**
:math:`m^N_t = \frac1N \sum_j \delta_{x^j_t}` of the N agents (the deviator included), read through a
:class:`~mfgsolve.flows.ParticleFlow` of the N states; an LQ problem then reads ``m.mean(t)`` and
``m.mean(t + 1)`` as the empirical means. ``G`` independent copies of the game are played side by side.

The epsilon-Nash of a policy :math:`\pi` played by everybody is the gain of one agent deviating to its best
response while the other N - 1 keep :math:`\pi`:

.. math::

    \varepsilon_N(\pi) = J^N_1(\pi; \pi^{\otimes(N-1)}) - \inf_{\beta} J^N_1(\beta; \pi^{\otimes(N-1)}).

For an LQ problem and an affine :math:`\pi` (``a = -K_t x - k_t``) it is exact (:func:`lq_epsilon_nash`): let
:math:`y` be the deviator's state and :math:`z` the mean of the others. Then

.. math::

    m^N_t &= \tfrac1N y_t + \tfrac{N-1}{N} z_t, \\
    y_{t+1} &= A y_t + B a_t + \bar A m^N_t + c + w_t, \\
    z_{t+1} &= (A - B K_t) z_t - B k_t + \bar A m^N_t + c + \bar w_t, \quad \bar w_t \sim N(0, \Sigma_w / (N-1)),

so :math:`X = (y, z, 1)` is a linear system controlled by the deviator alone, with Gaussian noise and a cost
quadratic in :math:`(X, a)` (the :math:`S_{next} m_{t+1}` term enters through :math:`E[m^N_{t+1} | X_t, a_t]`;
its noise part has mean zero given :math:`y_t`). Its best response and the cost of :math:`\pi` are one backward
Riccati recursion each in dimension :math:`2n + 1`; :math:`z_0 \sim N(\mu_0, \Sigma_0 / (N-1))`. The
deviator's own effect on the mean (the :math:`1/N` terms) is kept, not neglected.

As :math:`N \to \infty` the game tends to the MFG: for the exact equilibrium policy :math:`\varepsilon_N \to 0`
(at rate :math:`O(1/\sqrt N)` in general, Carmona and Delarue 2018, Vol. II, Thm 6.7; faster for LQ, where the
gain is quadratic in the :math:`O(N^{-1/2})` fluctuation of the empirical mean and the :math:`O(1/N)` own effect).

References
----------
.. [1] Carmona, Delarue (2018), *Probabilistic Theory of Mean Field Games*, Vol. II, ch. 6 (approximate Nash
       equilibria of N-player games from MFG solutions).
.. [2] Huang, Malhame, Caines (2006), "Large population stochastic dynamic games", CIS 6(3) (LQ epsilon-Nash).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from mfgsolve.errors import SpecError
from mfgsolve.evaluation import CostEstimate
from mfgsolve.flows import Flow, ParticleFlow
from mfgsolve.gap import Gap
from mfgsolve.lq.problem import LQProblem
from mfgsolve.policies import AffinePolicy, Policy
from mfgsolve.problem import Problem

__all__ = ["NPlayerGame", "NashGap", "lq_epsilon_nash", "epsilon_nash_mc", "nplayer_costs", "affine_projection",
           "mean_cost"]

#: A deviating agent: ``(t, x)`` with ``x`` the states of every agent ``(G, N, n)`` -> its actions ``(G, p)``.
Deviator = Callable[[int, torch.Tensor], torch.Tensor]


class NPlayerGame:
    r"""``games`` independent copies of the N-player game of ``problem`` (module docstring).

    Parameters
    ----------
    problem : Problem
    N : int
        Number of players (at least 2).
    games : int
        Copies played side by side (one batched call per copy and step).

    Notes
    -----
    The states of an episode are kept in ``xs`` ``(games, T+1, N, n)``; the flow of copy ``g``,
    :meth:`flow`, is a :class:`ParticleFlow` view of ``xs[g]``, filled as the episode goes. The reward at
    ``t`` is computed after the step, so problems that read :math:`m_{t+1}` (the LQ family) see it.
    """

    def __init__(self, problem: Problem, N: int, games: int = 1) -> None:
        if N < 2:
            raise ValueError(f"an N-player game needs N >= 2, got {N}")
        if games < 1:
            raise ValueError(f"games must be positive, got {games}")
        self.problem, self.N, self.games = problem, N, games
        self.T = problem.T
        self.xs = torch.zeros(games, problem.T + 1, N, problem.n, dtype=torch.float64)
        self._flows = [ParticleFlow.uniform(self.xs[g]) for g in range(games)]
        self.t = 0

    def flow(self, g: int) -> ParticleFlow:
        """The empirical flow of copy ``g`` (valid up to the current time)."""
        return self._flows[g]

    @property
    def x(self) -> torch.Tensor:
        """Current states ``(games, N, n)``."""
        return self.xs[:, self.t]

    def reset(self, generator: torch.Generator) -> torch.Tensor:
        """Draw the initial states (every agent independently from the problem's initial law); ``(G, N, n)``."""
        G, N, n = self.games, self.N, self.problem.n
        self.xs.zero_()
        self.xs[:, 0] = self.problem.sample_x0(G * N, generator).to(torch.float64).reshape(G, N, n)
        self.t = 0
        return self.xs[:, 0]

    def step(self, a: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Play actions ``a`` ``(G, N, p)``: next states ``(G, N, n)``, rewards ``(G, N)`` (the terminal reward
        folded into the last step) and whether the horizon ended."""
        t, pb = self.t, self.problem
        if t >= self.T:
            raise RuntimeError("the episode has ended: reset the game")
        a = a.to(torch.float64)
        r = torch.empty(self.games, self.N, dtype=torch.float64)
        done = t == self.T - 1
        for g, m in enumerate(self._flows):
            self.xs[g, t + 1] = pb.step(t, self.xs[g, t], a[g], m, generator)
            r[g] = pb.reward(t, self.xs[g, t], a[g], m)
            if done:
                r[g] += pb.terminal_reward(self.xs[g, t + 1], m)
        self.t = t + 1
        return self.xs[:, t + 1], r, done


def nplayer_costs(
    problem: Problem, N: int, policy: Policy, *, games: int, generator: torch.Generator,
    deviator: Deviator | None = None, m: Flow | None = None,
) -> torch.Tensor:
    r"""Total costs ``(games, N)`` of every agent when all play ``policy`` (agent 0 plays ``deviator`` if given).

    ``policy`` reads, as its population input, the fixed flow ``m`` when given (decentralised execution of a
    mean-field policy with the MFG flow plugged in, the setting of the epsilon-Nash theorems) and otherwise the
    empirical flow of its own game. With ``deviator=None`` the costs of all N agents are exchangeable, so their
    mean over agents and games estimates one agent's cost.
    """
    game = NPlayerGame(problem, N, games)
    x = game.reset(generator)
    cost = torch.zeros(games, N, dtype=torch.float64)
    n = problem.n
    with torch.no_grad():
        for t in range(problem.T):
            if m is not None:
                a = policy.act(t, x.reshape(-1, n), m).reshape(games, N, -1)
            else:
                a = torch.stack([policy.act(t, x[g], game.flow(g)) for g in range(games)])
            a = a.to(torch.float64).clone()
            if deviator is not None:
                a[:, 0] = deviator(t, x)
            x, r, _ = game.step(a, generator)
            cost -= r
    return cost


def epsilon_nash_mc(
    problem: Problem, policy: Policy, deviation: Policy, N: int, *, games: int, generator: torch.Generator,
    m: Flow | None = None,
) -> CostEstimate:
    r"""Gain of agent 0 switching from ``policy`` to ``deviation`` while the N - 1 others keep ``policy``.

    :math:`J^N_1(\pi; \pi^{\otimes(N-1)}) - J^N_1(eta; \pi^{\otimes(N-1)})` by Monte Carlo over ``games`` games
    on common random numbers (both games start from the same generator state; the policies must draw no
    randomness), with its standard error. With ``deviation`` a best response (exact or from a strong oracle) this
    is the epsilon-Nash of ``policy``; with an approximate one it is a lower bound up to the Monte-Carlo error.
    Both policies read the fixed flow ``m`` when given (``policy`` otherwise reads the game's empirical flow and
    ``deviation`` reads ``None``).
    """
    start = generator.get_state()
    c_pol = nplayer_costs(problem, N, policy, games=games, generator=generator, m=m)
    generator.set_state(start)

    def dev(t: int, x: torch.Tensor) -> torch.Tensor:
        return deviation.act(t, x[:, 0], m).to(torch.float64)  # type: ignore[arg-type]

    c_dev = nplayer_costs(problem, N, policy, games=games, generator=generator, m=m, deviator=dev)
    d = c_pol[:, 0] - c_dev[:, 0]
    return CostEstimate(float(d.mean()), float(d.std(unbiased=True)) / math.sqrt(games), games)


@dataclass(frozen=True, kw_only=True)
class NashGap(Gap):
    r"""The epsilon-Nash of an affine policy in the N-player LQ game: a :class:`~mfgsolve.Gap` (exact, ``se = 0``)
    whose flow is the N - 1 others playing the policy, with the deviator's best response.

    ``K_best`` ``(T, p, 2n+1)`` is the deviator's best response on :math:`X = (y, z, 1)`,
    :math:`a_t = -K^{best}_t X_t` (:meth:`deviator` plays it in an :class:`NPlayerGame`).
    """

    N: int
    """Number of players."""
    K_best: np.ndarray

    def deviator(self, t: int, x: torch.Tensor) -> torch.Tensor:
        """The best response's actions ``(G, p)`` from every agent's state ``(G, N, n)`` (agent 0 deviates)."""
        y, z = x[:, 0], x[:, 1:].mean(dim=1)
        X = torch.cat([y, z, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)
        return -X @ torch.as_tensor(self.K_best[t], dtype=x.dtype).T


def _sym(X: np.ndarray) -> np.ndarray:
    return 0.5 * (X + X.T)


def lq_epsilon_nash(problem: LQProblem, policy: AffinePolicy, N: int) -> NashGap:
    r"""Exact epsilon-Nash of the affine ``policy`` in the N-player game of the LQ ``problem`` (module docstring).

    Parameters
    ----------
    problem : LQProblem
    policy : AffinePolicy
        ``a_t = -K_t x - k_t`` played by the N - 1 others (and, for ``J_policy``, by the deviator too).
    N : int
        Number of players, at least 2.

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> pb = mfg.load_problem("lq-1d")
    >>> ref = pb.reference()
    >>> gap = lq_epsilon_nash(pb, mfg.AffinePolicy(ref.K, ref.k), 10**6)
    >>> abs(gap.J_policy - ref.J) < 1e-4, 0 <= gap.value < 1e-6
    (True, True)
    """
    if not isinstance(problem, LQProblem):
        raise SpecError("problem", f"the exact epsilon-Nash needs an LQ problem, got {type(problem).__name__}")
    if not isinstance(policy, AffinePolicy):
        raise SpecError("policy", f"the exact epsilon-Nash is of an affine policy, got {type(policy).__name__}")
    if np.shape(policy.K) != (problem.T, problem.p, problem.n) or np.shape(policy.k) != (problem.T, problem.p):
        raise SpecError("policy", f"K {np.shape(policy.K)} and k {np.shape(policy.k)} do not fit the problem "
                                  f"({problem.T}, {problem.p}, {problem.n})")
    if not isinstance(N, (int, np.integer)) or isinstance(N, bool) or N < 2:
        raise SpecError("N", f"an N-player game needs an integer N >= 2, got {N!r}")
    c = problem.coef
    n, p, T = c.n, c.p, c.T
    d = 2 * n + 1
    I = np.eye(n)
    Ey = np.zeros((n, d)); Ey[:, :n] = I  # noqa: E702
    e1 = np.zeros((1, d)); e1[0, -1] = 1.0  # noqa: E702
    Mx = np.zeros((n, d)); Mx[:, :n] = I / N; Mx[:, n:2 * n] = I * (N - 1) / N  # noqa: E702
    Gm = np.zeros((d, p)); Gm[:n] = c.B  # noqa: E702
    Sig = np.zeros((d, d)); Sig[:n, :n] = c.Sigma_w; Sig[n:2 * n, n:2 * n] = c.Sigma_w / (N - 1)  # noqa: E702
    u, s, w = c.u.reshape(p, 1), c.s.reshape(n, 1), c.w.reshape(n, 1)

    def F(t: int) -> np.ndarray:
        out = np.zeros((d, d))
        out[:n, :n] = c.A
        out[n:2 * n, n:2 * n] = c.A - c.B @ policy.K[t]
        out[:n, -1] = c.c
        out[n:2 * n, -1] = c.c - c.B @ policy.k[t]
        out[:2 * n] += np.vstack([c.Abar @ Mx, c.Abar @ Mx])
        out[-1, -1] = 1.0
        return out

    def stage(t: int, Ft: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        CX = (Ey.T @ c.Q @ Ey + _sym(2 * Ey.T @ c.S @ Mx) + _sym(2 * Ey.T @ c.S_next @ Mx @ Ft)
              + _sym(2 * Ey.T @ s @ e1) + Mx.T @ c.W @ Mx + _sym(2 * Mx.T @ w @ e1))
        CXa = Ey.T @ c.N + Ey.T @ c.S_next @ Mx @ Gm + Mx.T @ c.U.T + e1.T @ u.T
        return CX, CXa

    PT = (Ey.T @ c.QT @ Ey + _sym(2 * Ey.T @ c.ST @ Mx) + _sym(2 * Ey.T @ c.sT.reshape(n, 1) @ e1)
          + Mx.T @ c.WT @ Mx + _sym(2 * Mx.T @ c.wT.reshape(n, 1) @ e1))
    P_best, P_pol = PT.copy(), PT.copy()
    r_best = r_pol = 0.0
    K_best = np.zeros((T, p, d))
    for t in range(T - 1, -1, -1):
        Ft = F(t)
        CX, CXa = stage(t, Ft)
        r_best += float(np.trace(P_best @ Sig))
        r_pol += float(np.trace(P_pol @ Sig))
        # best response
        Haa = c.R + Gm.T @ P_best @ Gm
        HaX = CXa.T + Gm.T @ P_best @ Ft
        K_best[t] = np.linalg.solve(Haa, HaX)
        P_best = _sym(CX + Ft.T @ P_best @ Ft - HaX.T @ K_best[t])
        # the policy itself: a = -Kpol X with Kpol = [K_t, 0, k_t]
        Kpol = np.zeros((p, d)); Kpol[:, :n] = policy.K[t]; Kpol[:, -1] = policy.k[t]  # noqa: E702
        Haa = c.R + Gm.T @ P_pol @ Gm
        HaX = CXa.T + Gm.T @ P_pol @ Ft
        P_pol = _sym(CX + Ft.T @ P_pol @ Ft - HaX.T @ Kpol - Kpol.T @ HaX + Kpol.T @ Haa @ Kpol)
    mean0 = np.concatenate([c.mu0, c.mu0, [1.0]])
    cov0 = np.zeros((d, d)); cov0[:n, :n] = c.Sigma0; cov0[n:2 * n, n:2 * n] = c.Sigma0 / (N - 1)  # noqa: E702
    J_best = float(mean0 @ P_best @ mean0 + np.trace(P_best @ cov0) + r_best)
    J_pol = float(mean0 @ P_pol @ mean0 + np.trace(P_pol @ cov0) + r_pol)
    return NashGap(N=N, value=J_pol - J_best, J_policy=J_pol, J_best=J_best, K_best=K_best)


def affine_projection(problem: Problem, policy: Policy, m: Flow, *, n: int, generator: torch.Generator) -> AffinePolicy:
    r"""The affine policy closest to ``policy`` in least squares on its own states against ``m``.

    Per ``t``: :math:`(K_t, k_t) = \arg\min E|\pi(t, x_t, m) + K_t x_t + k_t|^2` over ``n`` agents playing
    ``policy`` against the frozen ``m``. This is how a learned (network) policy enters :func:`lq_epsilon_nash`;
    the residual of the fit is what it leaves out.
    """
    x = problem.sample_x0(n, generator).to(torch.float64)
    actor = policy.for_population(n, generator)
    T, p, nx = problem.T, problem.p, problem.n
    K, k = np.zeros((T, p, nx)), np.zeros((T, p))
    with torch.no_grad():
        for t in range(T):
            a = actor.act(t, x, m).to(torch.float64)
            design = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)
            coef = torch.linalg.lstsq(design, a).solution  # (n+1, p)
            K[t], k[t] = -coef[:nx].T.numpy(), -coef[nx].numpy()
            x = problem.step(t, x, a, m, generator)
    return AffinePolicy(K, k)


def mean_cost(costs: torch.Tensor) -> CostEstimate:
    """Mean of exchangeable costs ``(games, N)`` with the standard error over games (agents of a game correlate)."""
    per_game = costs.mean(dim=1)
    G = per_game.numel()
    se = float(per_game.std(unbiased=True)) / math.sqrt(G) if G > 1 else math.nan
    return CostEstimate(float(per_game.mean()), se, G)
