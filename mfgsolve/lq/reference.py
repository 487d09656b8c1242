r"""Exact discrete-time linear-quadratic mean field games.

Conventions (``../shared/DESIGN.md``; minimise cost, reward = -cost). State :math:`x \in \mathbb{R}^n`,
action :math:`a \in \mathbb{R}^p`, population mean flow :math:`m_0, \dots, m_T`:

.. math::

    x_{t+1} &= A x_t + B a_t + \bar A m_t + c + w_t, \quad w_t \sim N(0, \Sigma_w),
    \quad x_0 \sim N(\mu_0, \Sigma_0) \\
    \ell_t &= x'Qx + a'Ra + 2x'Na + 2x'(S m_t + S_{next} m_{t+1} + s) + 2a'(U m_t + u)
             + m_t'W m_t + 2w'm_t \\
    g &= x'Q_T x + 2x'(S_T m_T + s_T) + m_T'W_T m_T + 2 w_T'm_T

The cost of a policy against a frozen mean flow is :math:`J = E[\sum_{t<T} \ell_t + g]`. The best response is
:math:`a_t = -K_t x - k_t` with the value :math:`V_t(x) = x'P_t x + 2 p_t'x + r_t`:

.. math::

    G_t &= R + B'P_{t+1}B, \qquad L_t = N' + B'P_{t+1}A, \qquad K_t = G_t^{-1} L_t, \\
    P_t &= Q + A'P_{t+1}A - L_t'K_t, \qquad d_t = \bar A m_t + c, \\
    l_t &= U m_t + u + B'(P_{t+1} d_t + p_{t+1}), \qquad k_t = G_t^{-1} l_t, \\
    p_t &= S m_t + S_{next} m_{t+1} + s + A'(P_{t+1} d_t + p_{t+1}) - K_t' l_t, \\
    r_t &= m_t'W m_t + 2w'm_t + d_t'P_{t+1}d_t + 2p_{t+1}'d_t + \operatorname{tr}(P_{t+1}\Sigma_w) + r_{t+1} - l_t'k_t,

from :math:`P_T = Q_T`, :math:`p_T = S_T m_T + s_T`, :math:`r_T = m_T'W_T m_T + 2w_T'm_T`, and
:math:`J = \mu_0'P_0\mu_0 + \operatorname{tr}(P_0\Sigma_0) + 2p_0'\mu_0 + r_0`. :math:`K_t` does not depend on
the flow and :math:`k_t` is affine in it, so the Picard map on mean flows is affine, :math:`m \mapsto Mm + b`:
its fixed point is one linear solve and :math:`\rho(M)` is the exact rate of plain iteration.

Mean flows are arrays ``(T+1, n)``. Internally the recursions carry a trailing batch axis ``(T+1, n, J)`` so
that ``M`` is built from one pass over the identity basis.

References
----------
.. [1] Bensoussan, Frehse, Yam (2013), *Mean Field Games and Mean Field Type Control Theory*, ch. 6.
.. [2] Carmona, Delarue (2018), *Probabilistic Theory of Mean Field Games*, Vol. I, sec. 3.5 (LQ models).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Sequence

import numpy as np
import scipy.sparse
from scipy.linalg.lapack import dpotrf as _potrf, dpotrs as _potrs
import scipy.sparse.linalg

from mfgsolve.errors import NoEquilibriumError, SpecError
from mfgsolve.gap import Gap

__all__ = [
    "LQCoefficients",
    "Riccati",
    "LQBestResponse",
    "LQReference",
    "riccati",
    "best_response",
    "mean_flow",
    "cov_flow",
    "policy_cost",
    "policy_costs",
    "picard_map",
    "PicardOperator",
    "reference_memory",
    "equilibrium",
    "self_consistent_mean",
    "affine_exploitability",
]


@dataclass(frozen=True, eq=False)
class LQCoefficients:
    """Every term of the LQ convention, shorthand (``Qbar``, ``H``...) already folded in; float64 arrays."""

    T: int
    A: np.ndarray  # (n, n)
    B: np.ndarray  # (n, p)
    Abar: np.ndarray  # (n, n)
    c: np.ndarray  # (n,)
    Sigma_w: np.ndarray  # (n, n)
    Q: np.ndarray  # (n, n)
    R: np.ndarray  # (p, p)
    N: np.ndarray  # (n, p)
    S: np.ndarray  # (n, n)
    S_next: np.ndarray  # (n, n)
    s: np.ndarray  # (n,)
    U: np.ndarray  # (p, n)
    u: np.ndarray  # (p,)
    W: np.ndarray  # (n, n)
    w: np.ndarray  # (n,)
    QT: np.ndarray  # (n, n)
    ST: np.ndarray  # (n, n)
    sT: np.ndarray  # (n,)
    WT: np.ndarray  # (n, n)
    wT: np.ndarray  # (n,)
    mu0: np.ndarray  # (n,)
    Sigma0: np.ndarray  # (n, n)

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def p(self) -> int:
        return self.B.shape[1]

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, eq=False)
class Riccati:
    """The flow-independent part of the best response: ``P`` (T+1, n, n), ``K`` (T, p, n), ``G`` (T, p, p)."""

    P: np.ndarray
    K: np.ndarray
    G: np.ndarray


@dataclass(frozen=True, eq=False)
class LQBestResponse:
    """Best response to a frozen mean flow: ``a_t = -K_t x - k_t`` and its exact expected cost."""

    K: np.ndarray  # (T, p, n)
    k: np.ndarray  # (T, p)
    P: np.ndarray  # (T+1, n, n)
    p: np.ndarray  # (T+1, n)
    r: np.ndarray  # (T+1,)
    cost: float


@dataclass(frozen=True, eq=False)
class LQReference:
    """The exact equilibrium of an LQ mean field game.

    Attributes
    ----------
    J : float
        Equilibrium cost :math:`J(\\pi^* \\mid m^*)`.
    mean, cov : np.ndarray
        Equilibrium mean ``(T+1, n)`` and covariance ``(T+1, n, n)`` flows (the law is Gaussian).
    K, k : np.ndarray
        Equilibrium policy ``a_t = -K_t x - k_t``: ``(T, p, n)`` and ``(T, p)``.
    b : np.ndarray
        The constant of the affine Picard map on flattened mean flows, ``((T+1) n,)``.
    M : np.ndarray
        Its matrix ``((T+1) n, (T+1) n)``, dense: built on first access only (the equilibrium never needs it;
        ``operator`` applies it in linear time).
    rho : float
        Spectral radius of ``M``: the exact asymptotic rate of plain (Picard) iteration. Dense eigenvalues up to
        ``(T+1) n = 400``, ARPACK to ``20000``; beyond, an estimate of bounded cost: the largest Ritz value on a
        60-dimensional Krylov space (:meth:`PicardOperator.spectral_radius`; 60 operator applications).
    operator : PicardOperator
        The Picard map as a structured operator.
    """

    J: float
    mean: np.ndarray
    cov: np.ndarray
    K: np.ndarray
    k: np.ndarray
    b: np.ndarray
    rho: float
    operator: "PicardOperator" = field(repr=False)

    @cached_property
    def M(self) -> np.ndarray:
        d = self.b.shape[0]
        _check_memory(8.0 * 2 * d * d, f"the dense Picard matrix of {d} x {d}")
        return self.operator.matvec(np.eye(d))

    def to_json(self) -> dict[str, object]:
        return {
            "J": float(self.J),
            "mean": self.mean,  # arrays: write_json turns each into lists in one call
            "cov": self.cov,
            "K": self.K,
            "k": self.k,
            "rho": float(self.rho),
        }


def _sym(X: np.ndarray) -> np.ndarray:
    return 0.5 * (X + np.swapaxes(X, -1, -2))


def riccati(coef: LQCoefficients) -> Riccati:
    """Backward Riccati recursion for ``P_t`` and the feedback gains ``K_t``.

    Raises
    ------
    SpecError
        (field ``R``) when :math:`G_t = R + B'P_{t+1}B` is not positive definite at some ``t``: the stage
        problem in ``a`` then has no minimiser.
    """
    T, n, p = coef.T, coef.n, coef.p
    _check_memory(reference_memory(T, n, p), f"the exact LQ solution (T={T}, n={n}, p={p})")
    A, B = coef.A, coef.B
    P = np.empty((T + 1, n, n))
    K = np.empty((T, p, n))
    G = np.empty((T, p, p))
    P[T] = coef.QT
    for t in range(T - 1, -1, -1):
        Pn = P[t + 1]
        G[t] = _sym(coef.R + B.T @ Pn @ B)
        chol, info = _potrf(G[t], lower=1)  # LAPACK directly: a long horizon makes the call overhead count
        if info != 0:
            raise SpecError("R", f"R + B'P_{{t+1}}B is not positive definite at t={t}")
        L = coef.N.T + B.T @ Pn @ A
        K[t] = _potrs(chol, L, lower=1)[0]
        P[t] = _sym(coef.Q + A.T @ Pn @ A - L.T @ K[t])
    return Riccati(P=P, K=K, G=G)


def _batched(m: np.ndarray) -> tuple[np.ndarray, bool]:
    """View a mean flow ``(T+1, n)`` as ``(T+1, n, 1)``; pass ``(T+1, n, J)`` through."""
    m = np.asarray(m, dtype=float)
    if m.ndim == 2:
        return m[:, :, None], True
    return m, False


def _affine_terms(coef: LQCoefficients, ric: Riccati, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Backward recursions for ``p_t``, ``k_t``, ``r_t`` against batched mean flows ``m`` ``(T+1, n, J)``.

    Everything but the recursion itself is computed for all ``t`` at once: with :math:`F_t = A - BK_t` and
    :math:`d_t = \bar A m_t + c` the recursion for ``p`` is
    :math:`p_t = e_t + F_t' p_{t+1}`, :math:`e_t = S m_t + S_{next} m_{t+1} + s - K_t'(U m_t + u) + F_t'P_{t+1}d_t`
    (the module docstring's formula with :math:`l_t` expanded), one small product per step; ``k`` and ``r``
    follow from ``p`` without a loop (``r`` by a reversed cumulative sum, in the recursion's order).
    """
    T, n, p = coef.T, coef.n, coef.p
    J = m.shape[2]
    A, B, P, K, G = coef.A, coef.B, ric.P, ric.K, ric.G
    P1 = P[1:]  # (T, n, n)
    Ft = np.swapaxes(A[None] - B[None] @ K, 1, 2)  # F_t' (T, n, n)
    mt, mn = m[:T], m[1:]
    d = coef.Abar @ mt + coef.c[:, None]  # (T, n, J)
    Pd = P1 @ d
    Um = coef.U @ mt + coef.u[:, None]  # (T, p, J)
    e = coef.S @ mt + coef.S_next @ mn + coef.s[:, None] - np.swapaxes(K, 1, 2) @ Um + Ft @ Pd
    pv = np.empty((T + 1, n, J))
    mT = m[T]
    pv[T] = coef.ST @ mT + coef.sT[:, None]
    for t in range(T - 1, -1, -1):
        pv[t] = e[t] + Ft[t] @ pv[t + 1]
    l = Um + B.T @ (Pd + pv[1:])  # (T, p, J)
    kv = np.linalg.solve(G, l)
    stage = (
        np.einsum("tij,ik,tkj->tj", mt, coef.W, mt)
        + 2.0 * np.einsum("i,tij->tj", coef.w, mt)
        + np.einsum("tij,tij->tj", d, Pd)
        + 2.0 * np.einsum("tij,tij->tj", pv[1:], d)
        + np.einsum("tij,ji->t", P1, coef.Sigma_w)[:, None]
        - np.einsum("tij,tij->tj", l, kv)
    )  # (T, J)
    r = np.empty((T + 1, J))
    r[T] = np.einsum("ij,ik,kj->j", mT, coef.WT, mT) + 2.0 * coef.wT @ mT
    r[::-1] = np.cumsum(np.concatenate([r[T][None], stage[::-1]]), axis=0)  # r_t = stage_t + r_{t+1}
    return pv, kv, r


def _initial_value(coef: LQCoefficients, ric: Riccati, pv: np.ndarray, r: np.ndarray) -> np.ndarray:
    mu0 = coef.mu0
    return mu0 @ ric.P[0] @ mu0 + np.trace(ric.P[0] @ coef.Sigma0) + 2.0 * mu0 @ pv[0] + r[0]


def best_response(coef: LQCoefficients, m: np.ndarray, ric: Riccati | None = None) -> LQBestResponse:
    """Exact best response to the frozen mean flow ``m`` ``(T+1, n)`` and its expected cost."""
    ric = riccati(coef) if ric is None else ric
    mb, _ = _batched(m)
    pv, kv, r = _affine_terms(coef, ric, mb)
    cost = _initial_value(coef, ric, pv, r)
    return LQBestResponse(K=ric.K, k=kv[:, :, 0], P=ric.P, p=pv[:, :, 0], r=r[:, 0], cost=float(cost[0]))


def mean_flow(coef: LQCoefficients, K: np.ndarray, k: np.ndarray, m: np.ndarray) -> np.ndarray:
    r"""Mean of the agent's state under ``a_t = -K_t x - k_t`` while the population follows the frozen ``m``.

    .. math:: \bar x_{t+1} = (A - BK_t)\bar x_t - Bk_t + \bar A m_t + c, \qquad \bar x_0 = \mu_0.

    ``k`` and ``m`` may carry a trailing batch axis (``(T, p, J)`` and ``(T+1, n, J)``).
    """
    mb, squeeze = _batched(m)
    kb = k[:, :, None] if k.ndim == 2 else k
    T = coef.T
    x = np.empty_like(mb)
    x[0] = coef.mu0[:, None]
    for t in range(T):
        x[t + 1] = (coef.A - coef.B @ K[t]) @ x[t] - coef.B @ kb[t] + coef.Abar @ mb[t] + coef.c[:, None]
    return x[:, :, 0] if squeeze else x


def cov_flow(coef: LQCoefficients, K: np.ndarray) -> np.ndarray:
    r"""Covariance flow under the feedback ``K``: :math:`\Sigma_{t+1} = (A-BK_t)\Sigma_t(A-BK_t)' + \Sigma_w`."""
    cov = np.empty((coef.T + 1, coef.n, coef.n))
    cov[0] = coef.Sigma0
    for t in range(coef.T):
        F = coef.A - coef.B @ K[t]
        cov[t + 1] = _sym(F @ cov[t] @ F.T + coef.Sigma_w)
    return cov


def policy_costs(coef: LQCoefficients, K: np.ndarray, k: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Exact expected costs of ``J`` affine policies ``a_t = -K^j_t x - k^j_t`` against the frozen mean flow ``m``.

    ``K`` is ``(J, T, p, n)``, ``k`` is ``(J, T, p)``; the result is ``(J,)``. Computed by forward moments
    (mean and covariance of ``x_t`` under each policy), so it never touches the value function and checks
    :func:`best_response` independently.
    """
    m = np.asarray(m, dtype=float)
    J = K.shape[0]
    x = np.tile(coef.mu0, (J, 1))  # (J, n)
    S = np.tile(coef.Sigma0, (J, 1, 1))  # (J, n, n)
    total = np.zeros(J)
    tr = lambda X, Y: np.einsum("ij,bji->b", X, Y)  # noqa: E731  tr(X Y_b)
    quad = lambda v, X: np.einsum("bi,ij,bj->b", v, X, v)  # noqa: E731
    for t in range(coef.T):
        Kt, mt, mn = K[:, t], m[t], m[t + 1]
        a = -np.einsum("bpn,bn->bp", Kt, x) - k[:, t]
        KS = Kt @ S  # (J, p, n)
        total += (
            tr(coef.Q, S) + quad(x, coef.Q)
            + tr(coef.R, KS @ np.swapaxes(Kt, 1, 2)) + quad(a, coef.R)
            - 2.0 * tr(coef.N, KS) + 2.0 * np.einsum("bi,ij,bj->b", x, coef.N, a)
            + 2.0 * x @ (coef.S @ mt + coef.S_next @ mn + coef.s)
            + 2.0 * a @ (coef.U @ mt + coef.u)
            + mt @ coef.W @ mt + 2.0 * coef.w @ mt
        )
        F = coef.A - coef.B @ Kt  # (J, n, n)
        x = np.einsum("bij,bj->bi", F, x) - k[:, t] @ coef.B.T + coef.Abar @ mt + coef.c
        S = _sym(F @ S @ np.swapaxes(F, 1, 2) + coef.Sigma_w)
    mT = m[coef.T]
    total += (
        tr(coef.QT, S) + quad(x, coef.QT) + 2.0 * x @ (coef.ST @ mT + coef.sT)
        + mT @ coef.WT @ mT + 2.0 * coef.wT @ mT
    )
    return total


def policy_cost(coef: LQCoefficients, K: np.ndarray, k: np.ndarray, m: np.ndarray) -> float:
    """Exact expected cost of one affine policy against the frozen mean flow ``m`` (see :func:`policy_costs`)."""
    return float(policy_costs(coef, K[None], k[None], m)[0])


def picard_map(coef: LQCoefficients, ric: Riccati | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The affine Picard map on flattened mean flows as a dense matrix, ``vec(F(m)) = M vec(m) + b``.

    C order over ``(t, i)``. ``F(m)`` is the mean flow of the best response to ``m`` with the population frozen
    at ``m``. ``F`` is affine, so ``b = F(0)`` and column ``j`` of ``M`` is ``F(e_j) - b``, all in one batched
    pass. Dense in ``(T+1) n``: for small games and as an oracle in tests; :func:`equilibrium` never builds it
    (see :class:`PicardOperator`).
    """
    ric = riccati(coef) if ric is None else ric
    T, n = coef.T, coef.n
    d = (T + 1) * n
    # the basis, the responses and about eight temporaries of the same size in the vectorised recursions
    _check_memory(8.0 * 10 * d * (d + 1), f"the dense Picard matrix of {d} x {d}")
    basis = np.concatenate([np.zeros((d, 1)), np.eye(d)], axis=1).reshape(T + 1, n, d + 1)
    _, kv, _ = _affine_terms(coef, ric, basis)
    out = mean_flow(coef, ric.K, kv, basis).reshape(d, d + 1)
    b = out[:, 0]
    return out[:, 1:] - b[:, None], b


def _available_memory() -> float:
    """Bytes this process may still allocate: MemAvailable where Linux says it, else the physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return 1024.0 * float(line.split()[1])
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE")) * float(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return math.inf


def _check_memory(nbytes: float, what: str, field: str = "T") -> None:
    """Refuse up front, with the estimate, a computation that cannot fit in memory."""
    avail = _available_memory()
    if nbytes > avail:
        raise SpecError(field, f"{what} needs about {nbytes / 2**30:.3g} GiB, more than the "
                               f"{avail / 2**30:.3g} GiB of memory available")


def reference_memory(T: int, n: int, p: int) -> float:
    """Estimated peak bytes of :func:`equilibrium` (linear in ``T``): Riccati and policy arrays, the sparse
    forward-backward system with its LU factors (bandwidth a few ``n``), flows and workspace."""
    per_step = 8.0 * (40 * n * n + 8 * n * p + 2 * p * p + 30 * n) + 12.0 * 12 * n * n
    return (T + 1) * per_step + 64 * 2**20


class PicardOperator:
    r"""The affine Picard map on mean flows, :math:`m \mapsto Mm + b`, without forming ``M``.

    The best response to ``m`` and its mean flow ``x`` solve one sparse forward-backward system in the
    unknowns :math:`u = (x_t, p_t)_{t \le T}` (the flow-dependent part of the value function, see the module
    docstring), with :math:`F_t = A - BK_t`:

    .. math::

        x_0 &= \mu_0, \qquad x_{t+1} - F_t x_t + X_t m_t + B G_t^{-1}B' p_{t+1} = c - BG_t^{-1}(u + B'P_{t+1}c), \\
        p_T &= S_T m_T + s_T, \qquad p_t - F_t' p_{t+1} - Z_t m_t - S_{next} m_{t+1}
            = s + F_t'P_{t+1}c - K_t'u, \\
        X_t &= BG_t^{-1}(U + B'P_{t+1}\bar A) - \bar A, \qquad Z_t = S + F_t'P_{t+1}\bar A - K_t'U,

    written :math:`A_{uu} u + A_{um} m = c_u`. So :math:`M = -E_x A_{uu}^{-1} A_{um}` and
    :math:`b = E_x A_{uu}^{-1} c_u` (:math:`E_x` keeps the ``x`` part), and the equilibrium :math:`m = x`
    solves the bordered system :math:`\begin{pmatrix} A_{uu} & A_{um} \\ -E_x & I \end{pmatrix}
    \binom{u}{m} = \binom{c_u}{0}`, whose Schur complement on ``m`` is exactly :math:`I - M`. All of it is
    block-banded (bandwidth a few ``n``): sparse LU factors cost :math:`O(T n^3)` time and :math:`O(T n^2)`
    memory, against :math:`O(T^3 n^3)` and :math:`O(T^2 n^2)` for the dense ``M``.
    """

    def __init__(self, coef: LQCoefficients, ric: Riccati) -> None:
        T, n = coef.T, coef.n
        self.T, self.n = T, n
        A, B, Abar, c = coef.A, coef.B, coef.Abar, coef.c
        P1, K, G = ric.P[1:], ric.K, ric.G  # (T, n, n), (T, p, n), (T, p, p)
        F = A[None] - B[None] @ K  # (T, n, n)
        Ft = np.swapaxes(F, 1, 2)
        Kt = np.swapaxes(K, 1, 2)
        PAbar = P1 @ Abar  # (T, n, n)
        Pc = P1 @ c  # (T, n)
        Y = B @ np.linalg.solve(G, np.broadcast_to(B.T, (T, *B.T.shape)))  # B G^-1 B'
        X = B @ np.linalg.solve(G, coef.U[None] + B.T @ PAbar) - Abar
        cx = c - (B @ np.linalg.solve(G, (coef.u + Pc @ B)[:, :, None]))[:, :, 0]
        Z = coef.S[None] + Ft @ PAbar - Kt @ coef.U
        cp = coef.s + (Ft @ Pc[:, :, None])[:, :, 0] - Kt @ coef.u

        # Block unknowns interleaved in time, (x_t, p_t, m_t) at block 3t, 3t+1, 3t+2: the matrix is banded.
        ts = np.arange(T)
        eye = np.broadcast_to(np.eye(n), (T + 1, n, n))
        blocks = [  # (row block, column block, data (k, n, n))
            (3 * np.arange(T + 1), 3 * np.arange(T + 1), eye),  # x_t (rows x-eq)
            (3 * ts + 3, 3 * ts, -F),
            (3 * ts + 3, 3 * ts + 2, X),
            (3 * ts + 3, 3 * ts + 4, Y),
            (3 * np.arange(T + 1) + 1, 3 * np.arange(T + 1) + 1, eye),  # p_t (rows p-eq)
            (3 * ts + 1, 3 * ts + 4, -Ft),
            (3 * ts + 1, 3 * ts + 2, -Z),
            (3 * ts + 1, 3 * ts + 5, -np.broadcast_to(coef.S_next, (T, n, n))),
            (np.array([3 * T + 1]), np.array([3 * T + 2]), -coef.ST[None]),
            (3 * np.arange(T + 1) + 2, 3 * np.arange(T + 1) + 2, eye),  # m_t - x_t = 0
            (3 * np.arange(T + 1) + 2, 3 * np.arange(T + 1), -eye),
        ]
        ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        rows = np.concatenate([(rb[:, None, None] * n + ii).ravel() for rb, _, _ in blocks])
        cols = np.concatenate([(cb[:, None, None] * n + jj).ravel() for _, cb, _ in blocks])
        data = np.concatenate([np.asarray(v, dtype=float).ravel() for _, _, v in blocks])
        D = 3 * (T + 1) * n
        self._aug = scipy.sparse.csc_matrix((data, (rows, cols)), shape=(D, D))
        rhs = np.zeros((T + 1, 3, n))
        rhs[0, 0] = coef.mu0
        rhs[1:, 0] = cx
        rhs[:T, 1] = cp
        rhs[T, 1] = coef.sT
        self._rhs = rhs.ravel()
        blk = np.arange(D).reshape(T + 1, 3, n)
        self._u = blk[:, :2].ravel()  # (x_t, p_t) interleaved
        self._m = blk[:, 2].ravel()
        self._x_in_u = np.arange(2 * (T + 1) * n).reshape(T + 1, 2, n)[:, 0].ravel()
        aug_rows = self._aug[self._u]
        self._A_uu = aug_rows[:, self._u].tocsc()
        self._A_um = aug_rows[:, self._m].tocsr()
        self._lu_uu = scipy.sparse.linalg.splu(self._A_uu)
        self._lu_aug: scipy.sparse.linalg.SuperLU | None = None
        self.b = self._lu_uu.solve(self._rhs[self._u])[self._x_in_u]

    @property
    def shape(self) -> tuple[int, int]:
        d = (self.T + 1) * self.n
        return d, d

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``M v`` for flattened mean flows ``v`` ``((T+1) n,)`` or a block of them ``((T+1) n, J)``."""
        return -self._lu_uu.solve(np.asarray(self._A_um @ v, dtype=float))[self._x_in_u]

    def rmatvec(self, w: np.ndarray) -> np.ndarray:
        """``M' w``."""
        e = np.zeros((self._A_uu.shape[0],) + np.shape(w)[1:])
        e[self._x_in_u] = w
        return -(self._A_um.T @ self._lu_uu.solve(e, trans="T"))

    def linear_operator(self) -> scipy.sparse.linalg.LinearOperator:
        """``M`` as a scipy ``LinearOperator`` (for ``eigs``, ``onenormest``, Krylov solvers)."""
        return scipy.sparse.linalg.LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.rmatvec,
                                                  matmat=self.matvec, dtype=float)

    def _factor(self) -> scipy.sparse.linalg.SuperLU:
        if self._lu_aug is None:
            try:
                self._lu_aug = scipy.sparse.linalg.splu(self._aug)
            except RuntimeError:  # SuperLU: "Factor is exactly singular"
                raise NoEquilibriumError(_SINGULAR) from None
        return self._lu_aug

    def solve_fixed_point(self, r: np.ndarray, trans: str = "N") -> np.ndarray:
        """``(I - M)^{-1} r`` (``trans="T"``: ``(I - M')^{-1} r``) from the bordered system's LU factors."""
        e = np.zeros((self._aug.shape[0],) + np.shape(r)[1:])
        e[self._m] = r
        return self._factor().solve(e, trans=trans)[self._m]

    def equilibrium_mean(self) -> np.ndarray:
        """The flattened fixed point of ``m -> M m + b``, with one step of iterative refinement on the
        residual of ``(I - M) m = b`` itself."""
        m = self._factor().solve(self._rhs)[self._m]
        m = m + self.solve_fixed_point(self.b - (m - self.matvec(m)))
        return m

    def condition(self) -> float:
        """Estimated 1-norm condition number of ``I - M`` (Higham-Tisseur block estimates, never forming it)."""
        d = self.shape[0]
        I_M = scipy.sparse.linalg.LinearOperator(
            (d, d), matvec=lambda v: v - self.matvec(v), rmatvec=lambda w: w - self.rmatvec(w), dtype=float)
        inv = scipy.sparse.linalg.LinearOperator(
            (d, d), matvec=self.solve_fixed_point, rmatvec=lambda w: self.solve_fixed_point(w, "T"), dtype=float)
        with np.errstate(all="ignore"):
            return float(scipy.sparse.linalg.onenormest(I_M) * scipy.sparse.linalg.onenormest(inv))

    def spectral_radius(self) -> float:
        r"""``rho(M)``: dense eigenvalues while ``M`` is small, else implicitly restarted Arnoldi (ARPACK
        ``eigs``) on the operator, widening the Krylov space until the largest eigenvalues converge.

        Where ``M`` is far from normal (long horizons with a continuous-time limit, e.g. systemic-risk at small
        ``dt``) its top eigenvalues are clustered and ill-conditioned (condition numbers near ``1/eps``): any
        method, dense ones included, then returns a point of the ``eps``-pseudospectrum, good to a few digits.
        """
        d = self.shape[0]
        if d <= _DENSE_EIG:
            return float(np.max(np.abs(np.linalg.eigvals(self.matvec(np.eye(d)))))) if d else 0.0
        if d > _ARNOLDI_WORK // 10:  # too long for restarted Arnoldi to settle in budget: Ritz values
            return self._ritz_radius(60)
        try:
            vals = scipy.sparse.linalg.eigs(self.linear_operator(), k=6, which="LM", ncv=min(d - 1, 40),
                                            tol=1e-13, maxiter=max(10, _ARNOLDI_WORK // d), v0=np.ones(d),
                                            return_eigenvectors=False)
            return float(np.max(np.abs(vals)))
        except scipy.sparse.linalg.ArpackNoConvergence:
            return self._ritz_radius(min(d - 1, 60))

    def _ritz_radius(self, k: int) -> float:
        """Largest modulus of the Ritz values of ``M`` on a ``k``-dimensional Krylov space (Arnoldi with
        full reorthogonalisation): the estimate of ``rho(M)`` where restarted Arnoldi does not settle."""
        d = self.shape[0]
        V = np.zeros((d, k + 1))
        H = np.zeros((k + 1, k))
        V[:, 0] = 1.0 / math.sqrt(d)
        for j in range(k):
            w = self.matvec(V[:, j])
            for _ in range(2):
                h = V[:, : j + 1].T @ w
                w -= V[:, : j + 1] @ h
                H[: j + 1, j] += h
            H[j + 1, j] = np.linalg.norm(w)
            if H[j + 1, j] < 1e-14 * np.linalg.norm(H[: j + 1, j]):  # invariant subspace: Ritz values exact
                k = j + 1
                break
            V[:, j + 1] = w / H[j + 1, j]
        return float(np.max(np.abs(np.linalg.eigvals(H[:k, :k]))))


#: Restarts of implicitly restarted Arnoldi times ``(T+1) n`` (a work budget) before
#: :meth:`PicardOperator.spectral_radius` falls back to Ritz values.
_ARNOLDI_WORK = 200_000

_SINGULAR = "I - M is singular: the mean field game has no unique equilibrium mean flow"

#: Largest ``(T+1) n`` whose ``rho(M)`` comes from dense eigenvalues (exact, and cheap up to here).
_DENSE_EIG = 400


def equilibrium(coef: LQCoefficients, ric: Riccati | None = None) -> LQReference:
    """The exact equilibrium: one linear solve ``(I - M) m = b``, valid whatever ``rho(M)`` is.

    Structured (:class:`PicardOperator`): time and memory linear in ``T``. ``ric``, the game's
    :func:`riccati` when the caller has it (e.g. ``LQProblem.riccati``), is not recomputed.

    Raises
    ------
    NoEquilibriumError
        When ``I - M`` is (numerically) singular: no unique equilibrium mean flow.
    SpecError
        (field ``T``) when the computation cannot fit in the available memory; the message gives the estimate.
    """
    _check_memory(reference_memory(coef.T, coef.n, coef.p),
                  f"the exact reference (T={coef.T}, n={coef.n}, p={coef.p})")
    ric = riccati(coef) if ric is None else ric
    op = PicardOperator(coef, ric)
    with np.errstate(all="ignore"):
        mean = op.equilibrium_mean()
    if not np.all(np.isfinite(mean)) or op.condition() > 1e12:
        raise NoEquilibriumError(_SINGULAR)
    mean = mean.reshape(coef.T + 1, coef.n)
    br = best_response(coef, mean, ric)
    return LQReference(J=br.cost, mean=mean, cov=cov_flow(coef, ric.K), K=ric.K, k=br.k, b=op.b,
                       rho=op.spectral_radius(), operator=op)


def self_consistent_mean(
    coef: LQCoefficients, Ks: Sequence[np.ndarray], ks: Sequence[np.ndarray], weights: Sequence[float]
) -> np.ndarray:
    r"""Mean flow when the whole population plays the mixture of affine policies ``(K^j, k^j)`` with ``weights``.

    Each agent draws a component once and keeps it; the population mean is the weighted mean of the
    component means, which all feel that same population mean:
    :math:`\bar x^j_{t+1} = (A - BK^j_t)\bar x^j_t - Bk^j_t + \bar A m_t + c`, :math:`m_t = \sum_j w_j \bar x^j_t`.
    """
    wts = np.asarray(weights, dtype=float)
    K, k = np.stack(Ks), np.stack(ks)  # (J, T, p, n), (J, T, p)
    xs = np.tile(coef.mu0, (len(Ks), 1))  # (J, n)
    m = np.empty((coef.T + 1, coef.n))
    m[0] = wts @ xs
    for t in range(coef.T):
        F = coef.A - coef.B @ K[:, t]
        xs = np.einsum("bij,bj->bi", F, xs) - k[:, t] @ coef.B.T + coef.Abar @ m[t] + coef.c
        m[t + 1] = wts @ xs
    return m


def affine_exploitability(
    coef: LQCoefficients,
    Ks: Sequence[np.ndarray],
    ks: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    ric: Riccati | None = None,
) -> tuple[Gap, np.ndarray]:
    r"""Exact exploitability of a mixture of affine policies (one component: a plain affine policy).

    .. math:: \mathcal{E}(\pi) = J(\pi \mid m^\pi) - J(\mathrm{BR}(m^\pi) \mid m^\pi),

    where :math:`m^\pi` is the mean flow of the population playing :math:`\pi` (:func:`self_consistent_mean`),
    :math:`J(\pi \mid m) = \sum_j w_j J(\pi^j \mid m)` by forward moments and the best-response cost by Riccati.

    Returns
    -------
    gap : Gap
        The exploitability (exact: ``se = 0``).
    mean : np.ndarray
        ``(T+1, n)``: the policy's own mean flow :math:`m^\pi`, on which both costs are taken.
    """
    weights = [1.0 / len(Ks)] * len(Ks) if weights is None else list(weights)
    m = self_consistent_mean(coef, Ks, ks, weights)
    J_pi = float(np.asarray(weights) @ policy_costs(coef, np.stack(Ks), np.stack(ks), m))
    J_br = best_response(coef, m, ric).cost
    return Gap(value=J_pi - J_br, J_policy=J_pi, J_best=J_br), m
