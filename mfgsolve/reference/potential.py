r"""Exact discrete potential mean field games on a grid: a convex program (cvxpy) and dynamic programming.

A representative agent on the grid :math:`x_1, \dots, x_S` picks at each :math:`t < T` a destination :math:`y`
with probability :math:`\pi_t(x, y)`, pays :math:`c(x, y)` for it, and lands at :math:`z` with probability
:math:`P(y, z)`. Its running and terminal costs are

.. math::

    \ell_t(x, y, m_t) = c(x, y) + f_t(x) + (C m_t)(x), \qquad g(x, m_T) = g(x) + (C_T m_T)(x),

with :math:`C, C_T` symmetric positive semi-definite interaction matrices and :math:`m_t \in \Delta_S` the
population's distribution. The game is *potential*: an equilibrium flow minimises the convex function

.. math::

    \Phi(n) = \sum_{t<T} \Big[ \langle c, n_t \rangle + \langle f_t, m_t \rangle
              + \tfrac12 m_t' C m_t \Big] + \langle g, m_T \rangle + \tfrac12 m_T' C_T m_T

over mass transfers :math:`n_t(x, y) \ge 0` with :math:`\sum_y n_t(x, y) = m_t(x)` and
:math:`m_{t+1}(z) = \sum_{x, y} n_t(x, y) P(y, z)` from the given :math:`m_0`, because the gradient of the
interaction potential :math:`\tfrac12 m'Cm` is the interaction cost :math:`Cm` each agent pays. The KKT
conditions of this program are the HJB (dual variables = the value function) and Fokker-Planck (primal)
equations of the game, and the equilibrium policy is :math:`\pi_t(x, y) = n_t(x, y) / m_t(x)`.

:func:`solve_potential` solves the program with cvxpy (Clarabel, an interior-point method, with tight
tolerances), reads the policy off the transfers, and certifies it: its exploitability on its own flow,

.. math:: \mathcal{E}(\pi) = J(\pi \mid m^\pi) - \min_{\pi'} J(\pi' \mid m^\pi),

is computed exactly by backward dynamic programming on the same grid (:func:`grid_exploitability`). A solution
is returned only when the solver reports ``optimal`` and this exploitability is at most
:data:`CERTIFIED_EXPLOITABILITY` (relative to the equilibrium cost where that exceeds one); otherwise
:func:`solve_potential` raises :class:`~mfgsolve.errors.UncertifiedReferenceError`.

References
----------
.. [1] Lasry, Lions (2007), "Mean field games", Japanese Journal of Mathematics 2(1), sec. 2.6 (potential games).
.. [2] Benamou, Carlier, Santambrogio (2017), "Variational mean field games", in *Active Particles* Vol. 1.
.. [3] Gueant (2009), "Mean field games and applications", ch. 2 (discrete potential formulation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from mfgsolve._linalg import psd_sqrt
from mfgsolve.errors import UncertifiedReferenceError
from mfgsolve.gap import Gap

__all__ = [
    "CERTIFIED_EXPLOITABILITY",
    "GridPotentialMFG",
    "PotentialReference",
    "solve_potential",
    "flow_of",
    "policy_value",
    "best_response_value",
    "grid_exploitability",
]


@dataclass(frozen=True, eq=False)
class GridPotentialMFG:
    r"""A discrete potential MFG on a 1-D grid (see the module docstring for the model).

    Parameters
    ----------
    grid : np.ndarray
        Grid points, shape ``(S,)`` (used for the mean position).
    T : int
        Number of decision steps.
    move : np.ndarray
        Cost :math:`c(x, y)` of choosing destination ``y`` from ``x``, shape ``(S, S)``.
    kernel : np.ndarray
        Landing probabilities :math:`P(y, z)`, shape ``(S, S)``, rows summing to one.
    f : np.ndarray
        State running cost :math:`f_t(x)`, shape ``(S,)`` or ``(T, S)``.
    C : np.ndarray
        Running interaction matrix, ``(S, S)``, symmetric PSD: an agent at ``x`` pays :math:`(C m_t)(x)`.
    g : np.ndarray
        Terminal state cost, ``(S,)``.
    CT : np.ndarray
        Terminal interaction matrix, ``(S, S)``, symmetric PSD.
    m0 : np.ndarray
        Initial distribution, ``(S,)``, non-negative and summing to one.
    """

    grid: np.ndarray
    T: int
    move: np.ndarray
    kernel: np.ndarray
    f: np.ndarray
    C: np.ndarray
    g: np.ndarray
    CT: np.ndarray
    m0: np.ndarray

    def __post_init__(self) -> None:
        S = self.grid.shape[0]
        if self.T < 1:
            raise ValueError("T must be a positive integer")
        for name, shape in (("move", (S, S)), ("kernel", (S, S)), ("C", (S, S)), ("CT", (S, S)),
                            ("g", (S,)), ("m0", (S,))):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {np.shape(getattr(self, name))}")
        if np.shape(self.f) not in ((S,), (self.T, S)):
            raise ValueError(f"f must have shape ({S},) or ({self.T}, {S})")
        if np.any(self.kernel < 0) or not np.allclose(self.kernel.sum(1), 1.0, rtol=0, atol=1e-12):
            raise ValueError("kernel rows must be probability vectors")
        if np.any(self.m0 < 0) or not np.isclose(self.m0.sum(), 1.0, rtol=0, atol=1e-12):
            raise ValueError("m0 must be a probability vector")
        for name in ("C", "CT"):
            M = getattr(self, name)
            if not np.allclose(M, M.T, rtol=0, atol=1e-12):
                raise ValueError(f"{name} must be symmetric (the game is potential only then)")

    @property
    def S(self) -> int:
        return self.grid.shape[0]

    def f_t(self, t: int) -> np.ndarray:
        return self.f if self.f.ndim == 1 else self.f[t]

    def running_state_cost(self, t: int, m_t: np.ndarray) -> np.ndarray:
        """:math:`f_t(x) + (C m_t)(x)`, shape ``(S,)``."""
        return self.f_t(t) + self.C @ m_t

    def terminal_cost(self, m_T: np.ndarray) -> np.ndarray:
        """:math:`g(x) + (C_T m_T)(x)`, shape ``(S,)``."""
        return self.g + self.CT @ m_T

    def potential(self, n: np.ndarray) -> float:
        r"""The potential :math:`\Phi` of transfers ``n`` ``(T, S, S)`` (flow rebuilt from ``n`` and ``m0``)."""
        m = np.empty((self.T + 1, self.S))
        m[0] = self.m0
        total = 0.0
        for t in range(self.T):
            total += float(np.sum(self.move * n[t]) + self.f_t(t) @ m[t] + 0.5 * m[t] @ self.C @ m[t])
            m[t + 1] = n[t].sum(0) @ self.kernel
        return total + float(self.g @ m[self.T] + 0.5 * m[self.T] @ self.CT @ m[self.T])


def flow_of(mfg: GridPotentialMFG, pi: np.ndarray) -> np.ndarray:
    r"""The population's flow when everybody plays ``pi`` ``(T, S, S)``: :math:`m_{t+1} = (m_t' \pi_t) P`."""
    m = np.empty((mfg.T + 1, mfg.S))
    m[0] = mfg.m0
    for t in range(mfg.T):
        m[t + 1] = (m[t] @ pi[t]) @ mfg.kernel
    return m


def mixture_policy(mfg: GridPotentialMFG, policies: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    r"""The Markov grid policy equivalent to a population mixing ``policies`` ``(T, S, S)`` with ``weights``.

    Each agent draws policy :math:`j` once and keeps it (fictitious play's average policy). On the grid the
    dynamics do not read the flow, so component :math:`j` has the flow :math:`m^j` of :func:`flow_of`, and the
    Markov policy :math:`\bar\pi_t(x, \cdot) = \sum_j w_j m^j_t(x)\,\pi^j_t(x, \cdot) / \sum_j w_j m^j_t(x)` has the
    same state-action occupation measure at every ``t``: the same flow, and (costs being linear in it against a
    frozen flow) the same expected cost. Where no component has mass, the weights alone average.
    """
    w = np.asarray(weights, dtype=float)
    pis = np.stack([np.asarray(p, dtype=float) for p in policies])  # (J, T, S, S)
    occupancy = np.stack([flow_of(mfg, p)[: mfg.T] for p in pis]) * w[:, None, None]  # (J, T, S)
    total = occupancy.sum(axis=0)
    share = np.where(total > 0, occupancy / np.where(total > 0, total, 1.0), w[:, None, None])
    return np.einsum("jts,jtsy->tsy", share, pis)


def policy_value(mfg: GridPotentialMFG, pi: np.ndarray, m: np.ndarray) -> np.ndarray:
    r"""Value :math:`V^\pi_t(x)` of ``pi`` against the frozen flow ``m`` ``(T+1, S)``, shape ``(T+1, S)``."""
    V = np.empty((mfg.T + 1, mfg.S))
    V[mfg.T] = mfg.terminal_cost(m[mfg.T])
    for t in range(mfg.T - 1, -1, -1):
        q = mfg.move + mfg.kernel @ V[t + 1]  # q[x, y] = c(x, y) + E[V_{t+1}(z) | y]
        V[t] = mfg.running_state_cost(t, m[t]) + np.sum(pi[t] * q, axis=1)
    return V


def best_response_value(mfg: GridPotentialMFG, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Optimal value :math:`V^*_t(x)` against the frozen flow ``m`` and the q-values :math:`c(x,y) + (PV^*_{t+1})(y)`.

    Returns
    -------
    V : np.ndarray
        ``(T+1, S)``.
    q : np.ndarray
        ``(T, S, S)``; a best response at ``(t, x)`` picks any ``y`` in ``argmin_y q[t, x, y]``.
    """
    V = np.empty((mfg.T + 1, mfg.S))
    q = np.empty((mfg.T, mfg.S, mfg.S))
    V[mfg.T] = mfg.terminal_cost(m[mfg.T])
    for t in range(mfg.T - 1, -1, -1):
        q[t] = mfg.move + mfg.kernel @ V[t + 1]
        V[t] = mfg.running_state_cost(t, m[t]) + q[t].min(axis=1)
    return V, q


def grid_exploitability(mfg: GridPotentialMFG, pi: np.ndarray) -> Gap:
    r"""Exact exploitability of ``pi`` on its own flow, :math:`J(\pi \mid m^\pi) - J(\mathrm{BR}(m^\pi) \mid m^\pi)`."""
    m = flow_of(mfg, pi)
    J_pi = float(mfg.m0 @ policy_value(mfg, pi, m)[0])
    J_br = float(mfg.m0 @ best_response_value(mfg, m)[0][0])
    return Gap(value=J_pi - J_br, J_policy=J_pi, J_best=J_br)


@dataclass(frozen=True, eq=False)
class PotentialReference:
    """The equilibrium of a :class:`GridPotentialMFG`, certified by DP.

    Attributes
    ----------
    potential : float
        Optimal value of the convex program.
    exploitability : float
        Exact (DP) exploitability of ``policy`` on its own flow.
    J : float
        Equilibrium cost of the representative agent, :math:`J(\\pi \\mid m^\\pi)`.
    grid : np.ndarray
        ``(S,)``.
    density : np.ndarray
        Equilibrium flow ``(T+1, S)`` (probabilities on the grid), the flow of ``policy``.
    mean : np.ndarray
        Mean position ``(T+1, 1)`` (the shape of every mfgsolve mean flow).
    policy : np.ndarray
        ``(T, S, S)``: ``policy[t, x]`` is the distribution of the destination chosen at ``x``.
    value : np.ndarray
        ``(T+1, S)``: the optimal value :math:`V^*` against the equilibrium flow.
    kkt_gap : float
        :math:`\\max_t \\sum_x m_t(x) |\\nu_t(x) - V^*_t(x)|` between the program's duals :math:`\\nu` and the DP
        value: a certificate that the KKT conditions are the game's HJB equation.
    solver, status : str
        The cvxpy solver and its final status (always ``optimal``: :func:`solve_potential` refuses any other).
    solve_seconds : float
        Wall time of the cvxpy solve.
    """

    potential: float
    exploitability: float
    J: float
    grid: np.ndarray
    density: np.ndarray
    mean: np.ndarray
    policy: np.ndarray
    value: np.ndarray
    kkt_gap: float
    solver: str
    status: str
    solve_seconds: float
    #: A grid flow is not Gaussian and the map has no linear rate: the :class:`~mfgsolve.problem.Reference`
    #: protocol's optional parts are absent.
    cov = None
    rho = None

    def to_json(self) -> dict[str, Any]:
        return {
            "potential": float(self.potential),
            "exploitability": float(self.exploitability),
            "J": float(self.J),
            "mean": self.mean.tolist(),
            "kkt_gap": float(self.kkt_gap),
            "solver": self.solver,
            "status": self.status,
            "solve_seconds": float(self.solve_seconds),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "grid": self.grid,
            "density": self.density,
            "mean": self.mean,
            "policy": self.policy,
            "value": self.value,
        }


def _factor(C: np.ndarray) -> np.ndarray:
    """``L`` with ``L L' = C`` for a PSD ``C`` (tiny negative eigenvalues from rounding are clipped)."""
    vals = np.linalg.eigvalsh(0.5 * (C + C.T))  # ascending, as psd_sqrt's columns
    if vals.min() < -1e-9 * max(1.0, abs(vals).max()):
        raise ValueError("interaction matrix is not positive semi-definite: the potential is not convex")
    return psd_sqrt(C)[:, vals > 1e-14 * max(1.0, abs(vals).max())]


#: The certificate of a reference: its exact (DP) exploitability on its own flow is at most this times
#: ``max(1, |J|)`` (the equilibrium cost). Absolute 1e-5 on games with costs of order one (crowd-aversion's
#: J = 4.25; measured 6.6e-8), relative beyond, because the interior point's gap tolerances are relative
#: (kappa = 1e6 on crowd-aversion: J = 2.6e5, exploitability 3.2e-3, i.e. 1.3e-8 relative).
CERTIFIED_EXPLOITABILITY = 1e-5

#: Clarabel's defaults are 1e-8; 1e-9 gives a DP exploitability near 3e-8 on crowd-aversion (certificate: < 1e-5),
#: while 1e-10 is below what the interior point reaches in double precision ("optimal_inaccurate").
DEFAULT_SOLVER_OPTIONS: dict[str, Any] = {
    "tol_gap_abs": 1e-9,
    "tol_gap_rel": 1e-9,
    "tol_feas": 1e-9,
    "max_iter": 500,
}


def solve_potential(
    mfg: GridPotentialMFG,
    *,
    solver: str = "CLARABEL",
    mass_floor: float = 1e-9,
    tolerance: float = CERTIFIED_EXPLOITABILITY,
    **solver_options: Any,
) -> PotentialReference:
    r"""Solve the potential program with cvxpy and certify the equilibrium by DP.

    The solution is returned only if it certifies itself: cvxpy's status is ``optimal`` (not
    ``optimal_inaccurate``) and the DP exploitability of the policy on its own flow is at most
    ``tolerance * max(1, |J|)``.

    Parameters
    ----------
    mfg : GridPotentialMFG
    solver : str
        A cvxpy solver that returns duals (default Clarabel).
    mass_floor : float
        The policy is :math:`n_t(x, \cdot) / m_t(x)` where :math:`m_t(x) >` ``mass_floor``; off the equilibrium
        path (less mass than the solver resolves) it is a best response to the flow, which an equilibrium
        policy is free to be there.
    tolerance : float
        The certificate (default :data:`CERTIFIED_EXPLOITABILITY`).
    **solver_options
        Passed to ``cvxpy.Problem.solve`` (default :data:`DEFAULT_SOLVER_OPTIONS` for Clarabel).

    Returns
    -------
    PotentialReference

    Raises
    ------
    UncertifiedReferenceError
        When the solver fails or ends with another status than ``optimal``, or the DP exploitability is above
        the tolerance: the message (one line) gives the status and the exploitability.

    Examples
    --------
    Three sites, no noise, a crowd at -1 that wants to be at +1 but pays for moving and for company:

    >>> import numpy as np
    >>> x = np.linspace(-1.0, 1.0, 3)
    >>> game = GridPotentialMFG(grid=x, T=2, move=(x[None, :] - x[:, None]) ** 2, kernel=np.eye(3),
    ...                         f=np.zeros(3), C=np.eye(3), g=(x - 1.0) ** 2, CT=np.eye(3), m0=np.array([1.0, 0, 0]))
    >>> ref = solve_potential(game)
    >>> bool(ref.exploitability < 1e-6), ref.density.shape
    (True, (3, 3))
    """
    import cvxpy as cp

    T, S = mfg.T, mfg.S
    L, LT = _factor(mfg.C), _factor(mfg.CT)
    n = [cp.Variable((S, S), nonneg=True, name=f"n{t}") for t in range(T)]
    m: list[Any] = [mfg.m0]
    rows, transitions = [], []
    for t in range(T):
        rows.append(cp.sum(n[t], axis=1) == m[t])
        m_next = cp.Variable(S, name=f"m{t + 1}")
        transitions.append(m_next == mfg.kernel.T @ cp.sum(n[t], axis=0))
        m.append(m_next)
    terms = [cp.sum(cp.multiply(mfg.move, n[t])) for t in range(T)]
    terms += [mfg.f_t(t) @ m[t] + 0.5 * cp.sum_squares(L.T @ m[t]) for t in range(1, T)]
    terms += [mfg.g @ m[T] + 0.5 * cp.sum_squares(LT.T @ m[T])]
    constant = float(mfg.f_t(0) @ mfg.m0 + 0.5 * mfg.m0 @ mfg.C @ mfg.m0)
    program = cp.Problem(cp.Minimize(cp.sum(cp.hstack(terms))), rows + transitions)
    options = dict(DEFAULT_SOLVER_OPTIONS) if solver.upper() == "CLARABEL" and not solver_options else solver_options
    start = time.perf_counter()
    try:
        program.solve(solver=solver, **options)
    except cp.error.SolverError as exc:
        raise UncertifiedReferenceError(f"no certified reference: {solver.upper()} failed on the potential program "
                                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    seconds = time.perf_counter() - start
    if program.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):  # no solution to read off
        raise UncertifiedReferenceError(f"no certified reference: the potential program ended with status "
                                        f"{program.status!r}")

    transfers = np.stack([np.clip(v.value, 0.0, None) for v in n])
    m_opt = np.stack([mfg.m0] + [np.asarray(v.value) for v in m[1:]])
    _, q = best_response_value(mfg, m_opt)
    pi = np.empty((T, S, S))
    for t in range(T):
        mass = transfers[t].sum(axis=1)
        greedy = np.zeros((S, S))
        greedy[np.arange(S), q[t].argmin(axis=1)] = 1.0
        resolved = mass > mass_floor
        pi[t] = np.where(resolved[:, None], transfers[t] / np.where(resolved, mass, 1.0)[:, None], greedy)

    density = flow_of(mfg, pi)
    V, _ = best_response_value(mfg, density)
    J_pi = float(mfg.m0 @ policy_value(mfg, pi, density)[0])
    expl = J_pi - float(mfg.m0 @ V[0])
    bound = tolerance * max(1.0, abs(J_pi))
    if program.status != cp.OPTIMAL or not abs(expl) <= bound:  # DP values: J_policy >= J_best up to rounding
        raise UncertifiedReferenceError(
            f"no certified reference: {solver.upper()} ended {program.status!r}, DP exploitability {expl:.3g} "
            f"(certificate: status 'optimal' and at most {bound:.3g}) with J {J_pi:.6g}"
        )

    # cvxpy's dual of m_{t+1} = P'(column sums of n_t) is -V*_{t+1}: the KKT conditions are the HJB equation.
    # Interior-point complementary slackness (n * slack ~ tolerance) leaves the dual loose where the mass is
    # below the tolerance, so the gap is averaged under the flow.
    kkt = max(
        float(density[t + 1] @ np.abs(-np.asarray(transitions[t].dual_value) - V[t + 1])) for t in range(T)
    )

    return PotentialReference(
        potential=float(program.value) + constant,
        exploitability=expl,
        J=J_pi,
        grid=np.asarray(mfg.grid, dtype=float),
        density=density,
        mean=(density @ mfg.grid)[:, None],
        policy=pi,
        value=V,
        kkt_gap=kkt,
        solver=solver.upper(),
        status=str(program.status),
        solve_seconds=seconds,
    )
