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

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from mfgsolve.errors import NoEquilibriumError, SpecError

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
    "equilibrium",
    "self_consistent_mean",
    "exploitability",
    "LQExploitability",
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
    M, b : np.ndarray
        The affine Picard map on flattened mean flows, ``((T+1) n, (T+1) n)`` and ``((T+1) n,)``.
    rho : float
        Spectral radius of ``M``: the exact asymptotic rate of plain (Picard) iteration.
    """

    J: float
    mean: np.ndarray
    cov: np.ndarray
    K: np.ndarray
    k: np.ndarray
    M: np.ndarray
    b: np.ndarray
    rho: float

    def to_json(self) -> dict[str, object]:
        return {
            "J": float(self.J),
            "mean": self.mean.tolist(),
            "cov": self.cov.tolist(),
            "K": self.K.tolist(),
            "k": self.k.tolist(),
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
    A, B = coef.A, coef.B
    P = np.empty((T + 1, n, n))
    K = np.empty((T, p, n))
    G = np.empty((T, p, p))
    P[T] = coef.QT
    for t in range(T - 1, -1, -1):
        Pn = P[t + 1]
        G[t] = _sym(coef.R + B.T @ Pn @ B)
        try:
            chol = np.linalg.cholesky(G[t])
        except np.linalg.LinAlgError:
            raise SpecError("R", f"R + B'P_{{t+1}}B is not positive definite at t={t}") from None
        L = coef.N.T + B.T @ Pn @ A
        K[t] = np.linalg.solve(chol.T, np.linalg.solve(chol, L))
        P[t] = _sym(coef.Q + A.T @ Pn @ A - L.T @ K[t])
    return Riccati(P=P, K=K, G=G)


def _batched(m: np.ndarray) -> tuple[np.ndarray, bool]:
    """View a mean flow ``(T+1, n)`` as ``(T+1, n, 1)``; pass ``(T+1, n, J)`` through."""
    m = np.asarray(m, dtype=float)
    if m.ndim == 2:
        return m[:, :, None], True
    return m, False


def _affine_terms(coef: LQCoefficients, ric: Riccati, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward recursions for ``p_t``, ``k_t``, ``r_t`` against batched mean flows ``m`` ``(T+1, n, J)``."""
    T, n, p = coef.T, coef.n, coef.p
    J = m.shape[2]
    A, B, P, K, G = coef.A, coef.B, ric.P, ric.K, ric.G
    pv = np.empty((T + 1, n, J))
    kv = np.empty((T, p, J))
    r = np.empty((T + 1, J))
    mT = m[T]
    pv[T] = coef.ST @ mT + coef.sT[:, None]
    r[T] = np.einsum("ij,ik,kj->j", mT, coef.WT, mT) + 2.0 * coef.wT @ mT
    trace_noise = np.einsum("tij,ji->t", P[1:], coef.Sigma_w)
    for t in range(T - 1, -1, -1):
        mt = m[t]
        Pn, pn = P[t + 1], pv[t + 1]
        d = coef.Abar @ mt + coef.c[:, None]
        Pd_p = Pn @ d + pn
        l = coef.U @ mt + coef.u[:, None] + B.T @ Pd_p
        kv[t] = np.linalg.solve(G[t], l)
        pv[t] = coef.S @ mt + coef.S_next @ m[t + 1] + coef.s[:, None] + A.T @ Pd_p - K[t].T @ l
        r[t] = (
            np.einsum("ij,ik,kj->j", mt, coef.W, mt)
            + 2.0 * coef.w @ mt
            + np.einsum("ij,ik,kj->j", d, Pn, d)
            + 2.0 * np.einsum("ij,ij->j", pn, d)
            + trace_noise[t]
            + r[t + 1]
            - np.einsum("ij,ij->j", l, kv[t])
        )
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
    """The affine Picard map on flattened mean flows, ``vec(F(m)) = M vec(m) + b`` (C order over ``(t, i)``).

    ``F(m)`` is the mean flow of the best response to ``m`` with the population frozen at ``m``. ``F`` is
    affine, so ``b = F(0)`` and column ``j`` of ``M`` is ``F(e_j) - b``, all in one batched pass.
    """
    ric = riccati(coef) if ric is None else ric
    T, n = coef.T, coef.n
    d = (T + 1) * n
    basis = np.concatenate([np.zeros((d, 1)), np.eye(d)], axis=1).reshape(T + 1, n, d + 1)
    _, kv, _ = _affine_terms(coef, ric, basis)
    out = mean_flow(coef, ric.K, kv, basis).reshape(d, d + 1)
    b = out[:, 0]
    return out[:, 1:] - b[:, None], b


def equilibrium(coef: LQCoefficients) -> LQReference:
    """The exact equilibrium: one linear solve ``(I - M) m = b``, valid whatever ``rho(M)`` is.

    Raises
    ------
    NoEquilibriumError
        When ``I - M`` is (numerically) singular: no unique equilibrium mean flow.
    """
    ric = riccati(coef)
    M, b = picard_map(coef, ric)
    d = M.shape[0]
    I_M = np.eye(d) - M
    if np.linalg.cond(I_M) > 1e12:
        raise NoEquilibriumError("I - M is singular: the mean field game has no unique equilibrium mean flow")
    mean = np.linalg.solve(I_M, b).reshape(coef.T + 1, coef.n)
    br = best_response(coef, mean, ric)
    rho = float(np.max(np.abs(np.linalg.eigvals(M)))) if d else 0.0
    return LQReference(J=br.cost, mean=mean, cov=cov_flow(coef, ric.K), K=ric.K, k=br.k, M=M, b=b, rho=rho)


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


@dataclass(frozen=True)
class LQExploitability:
    """Exploitability of a policy on its own flow: ``J_policy - J_best`` (both exact)."""

    exploitability: float
    J_policy: float
    J_best: float
    mean: np.ndarray  # (T+1, n): the policy's own mean flow

    @property
    def relative(self) -> float:
        return self.exploitability / abs(self.J_best) if self.J_best != 0 else float("inf")


def exploitability(
    coef: LQCoefficients,
    Ks: Sequence[np.ndarray],
    ks: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    ric: Riccati | None = None,
) -> LQExploitability:
    r"""Exact exploitability of a mixture of affine policies (one component: a plain affine policy).

    .. math:: \mathcal{E}(\pi) = J(\pi \mid m^\pi) - J(\mathrm{BR}(m^\pi) \mid m^\pi),

    where :math:`m^\pi` is the mean flow of the population playing :math:`\pi` (:func:`self_consistent_mean`),
    :math:`J(\pi \mid m) = \sum_j w_j J(\pi^j \mid m)` by forward moments and the best-response cost by Riccati.
    """
    weights = [1.0 / len(Ks)] * len(Ks) if weights is None else list(weights)
    m = self_consistent_mean(coef, Ks, ks, weights)
    J_pi = float(np.asarray(weights) @ policy_costs(coef, np.stack(Ks), np.stack(ks), m))
    J_br = best_response(coef, m, ric).cost
    return LQExploitability(exploitability=J_pi - J_br, J_policy=J_pi, J_best=J_br, mean=m)
