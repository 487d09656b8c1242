r"""An independent solver for discrete LQ mean field games, written from the model, not from mfgsolve's terms.

A discrete model is given as Python functions in the model's own notation (the issue's formulas):
``drift(t, x, a, m_t) -> x_{t+1}`` without noise, ``stage(t, x, a, m_t, m_tp1) -> cost`` and
``final(x, m_T) -> cost``. Quadratic/affine structure is read off by automatic differentiation. The solution
never touches mfgsolve's Riccati recursion or Picard map:

* mean flow: by certainty equivalence the equilibrium mean path :math:`\bar x = m` minimises the
  deterministic path cost :math:`C(\bar x, \bar a; m)` under the mean dynamics; its KKT conditions with the
  consistency :math:`m = \bar x` substituted are **one linear system** in (path, multipliers): the discrete
  forward-backward system solved at once;
* feedback gains: column ``i`` of :math:`K_s` is minus the first action of the deterministic, homogeneous
  problem started at time ``s`` from :math:`e_i` (one KKT solve per ``(s, i)``);
* cost: :math:`J = C(\bar x, \bar a; \bar x) + \sum_t \tfrac12\operatorname{tr}(H_t \operatorname{Cov}_t)`,
  with :math:`H_t` the Hessian of the stage cost in :math:`(x_t, a_t)` and the covariance propagated forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

Drift = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Stage = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Final = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class DirectModel:
    T: int
    n: int
    p: int
    mu0: np.ndarray
    Sigma0: np.ndarray
    Sigma_w: np.ndarray
    drift: Drift
    stage: Stage
    final: Final


@dataclass
class DirectSolution:
    mean: np.ndarray  # (T+1, n)
    K: np.ndarray  # (T, p, n)
    k: np.ndarray  # (T, p)
    cov: np.ndarray  # (T+1, n, n)
    J: float


def solve_direct(model: DirectModel) -> DirectSolution:
    T, n, p = model.T, model.n, model.p
    nx, na = (T + 1) * n, T * p
    nz = nx + na

    def split(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[:nx].reshape(T + 1, n), z[nx:].reshape(T, p)

    def cost(z: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
        X, A = split(z)
        M = mv.reshape(T + 1, n)
        total = sum(model.stage(t, X[t], A[t], M[t], M[t + 1]) for t in range(T))
        return total + model.final(X[T], M[T])

    def residual(z: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
        X, A = split(z)
        M = mv.reshape(T + 1, n)
        parts = [X[0] - torch.as_tensor(model.mu0, dtype=z.dtype)]
        parts += [X[t + 1] - model.drift(t, X[t], A[t], M[t]) for t in range(T)]
        return torch.cat(parts)

    z0, m0 = torch.zeros(nz, dtype=torch.float64), torch.zeros(nx, dtype=torch.float64)
    Hzz = torch.func.hessian(cost, argnums=0)(z0, m0).numpy()
    Hzm = torch.func.jacfwd(torch.func.grad(cost, argnums=0), argnums=1)(z0, m0).numpy()
    time_of = np.concatenate([np.repeat(np.arange(T + 1), n), np.repeat(np.arange(T), p)])
    if np.any(Hzz[time_of[:, None] != time_of[None, :]]):
        raise ValueError("the stage cost couples (x, a) across times; the deviation cost below assumes it does not")
    g0 = torch.func.grad(cost)(z0, m0).numpy()
    Gz, Gm = (j.numpy() for j in torch.func.jacfwd(residual, argnums=(0, 1))(z0, m0))
    r0 = residual(z0, m0).numpy()
    E = np.zeros((nx, nz))
    E[:, :nx] = np.eye(nx)  # m = the mean path's states

    nc = Gz.shape[0]
    kkt = np.block([[Hzz + Hzm @ E, Gz.T], [Gz + Gm @ E, np.zeros((nc, nc))]])
    sol = np.linalg.solve(kkt, -np.concatenate([g0, r0]))
    z = sol[:nz]
    mean, abar = z[:nx].reshape(T + 1, n), z[nx:].reshape(T, p)

    # Feedback gains from the homogeneous problem (m = 0, no constants), started at (s, e_i).
    kkt_h = np.block([[Hzz, Gz.T], [Gz, np.zeros((nc, nc))]])
    K = np.empty((T, p, n))
    for s in range(T):
        rows = slice(s * n, (s + 1) * n)  # constraint rows fixing x_s (x_0 = mu0, or the dynamics into x_s)
        for i in range(n):
            A_s = kkt_h.copy()
            A_s[nz + rows.start:nz + rows.stop, :] = 0.0
            A_s[nz + rows.start:nz + rows.stop, s * n:(s + 1) * n] = np.eye(n)
            rhs = np.zeros(nz + nc)
            rhs[nz + s * n + i] = 1.0
            zz = np.linalg.solve(A_s, rhs)[:nz]
            K[s, :, i] = -zz[nx + s * p:nx + (s + 1) * p]
    k = -abar - np.einsum("tpn,tn->tp", K, mean[:T])

    # Forward covariance and the cost of the deviations from the mean path.
    Ax = [-Gz[n + t * n:n + (t + 1) * n, t * n:(t + 1) * n] for t in range(T)]  # d drift / dx_t
    Bx = [-Gz[n + t * n:n + (t + 1) * n, nx + t * p:nx + (t + 1) * p] for t in range(T)]
    cov = np.empty((T + 1, n, n))
    cov[0] = model.Sigma0
    covz = np.zeros((nz, nz))
    for t in range(T):
        F = Ax[t] - Bx[t] @ K[t]
        cov[t + 1] = F @ cov[t] @ F.T + model.Sigma_w
        ix = np.r_[t * n:(t + 1) * n, nx + t * p:nx + (t + 1) * p]
        L = np.vstack([np.eye(n), -K[t]])  # (x - xbar, a - abar) = L (x - xbar)
        covz[np.ix_(ix, ix)] = L @ cov[t] @ L.T
    covz[T * n:(T + 1) * n, T * n:(T + 1) * n] = cov[T]
    J_mean = float(cost(torch.as_tensor(z), torch.as_tensor(z[:nx])))
    J = J_mean + 0.5 * float(np.sum(Hzz * covz))  # Hzz has no cross-time blocks: the stage cost is separable
    return DirectSolution(mean=mean, K=K, k=k, cov=cov, J=J)
