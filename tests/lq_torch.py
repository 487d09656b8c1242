"""An independent LQ-MFG solver for tests, written from the cost definition alone.

The expected cost of an affine policy is computed by forward moments in torch; the best response and the
equilibrium are then found from first-order conditions by autograd (the equations are affine in ``k`` and
``m``, so one Newton step is exact). Nothing here calls mfgsolve's recursions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.functional import jacobian


def tensors(coef) -> dict[str, torch.Tensor]:
    return {key: torch.as_tensor(v, dtype=torch.float64) for key, v in coef.as_dict().items() if key != "T"}


def forward(C: dict, T: int, K: torch.Tensor, k: torch.Tensor, m: torch.Tensor):
    """Expected cost and mean/covariance flows of a_t = -K_t x - k_t against the mean flow m (T+1, n)."""
    x, S = C["mu0"], C["Sigma0"]
    xs, Ss = [x], [S]
    total = torch.zeros((), dtype=torch.float64)
    for t in range(T):
        a = -K[t] @ x - k[t]
        Ex_x, Ea_a, Ex_a = S + torch.outer(x, x), K[t] @ S @ K[t].T + torch.outer(a, a), -S @ K[t].T + torch.outer(x, a)
        total = total + torch.trace(C["Q"] @ Ex_x) + torch.trace(C["R"] @ Ea_a) + 2 * torch.trace(C["N"].T @ Ex_a)
        total = total + 2 * x @ (C["S"] @ m[t] + C["S_next"] @ m[t + 1] + C["s"]) + 2 * a @ (C["U"] @ m[t] + C["u"])
        total = total + m[t] @ C["W"] @ m[t] + 2 * C["w"] @ m[t]
        F = C["A"] - C["B"] @ K[t]
        x = F @ x - C["B"] @ k[t] + C["Abar"] @ m[t] + C["c"]
        S = F @ S @ F.T + C["Sigma_w"]
        xs.append(x)
        Ss.append(S)
    total = total + torch.trace(C["QT"] @ (S + torch.outer(x, x))) + 2 * x @ (C["ST"] @ m[T] + C["sT"])
    total = total + m[T] @ C["WT"] @ m[T] + 2 * C["wT"] @ m[T]
    return total, torch.stack(xs), torch.stack(Ss)


def best_k(C: dict, T: int, K: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """argmin_k of the cost for fixed K: the cost is quadratic in k, so one Newton step from 0 is exact."""
    p = K.shape[1]
    f = lambda kk: forward(C, T, K, kk.reshape(T, p), m)[0]  # noqa: E731
    z = torch.zeros(T * p, dtype=torch.float64)
    g = torch.func.grad(f)(z)
    H = torch.func.hessian(f)(z)
    return (z - torch.linalg.solve(H, g)).reshape(T, p)


def equilibrium(coef, K: np.ndarray) -> dict[str, np.ndarray | float]:
    """Given the feedback K, the equilibrium (k, m) from: grad_k J(K, k | m) = 0 and m = meanflow(K, k, m)."""
    C, T, n, p = tensors(coef), coef.T, coef.n, coef.p
    Kt = torch.as_tensor(K)

    def residual(z: torch.Tensor) -> torch.Tensor:
        k, m = z[: T * p].reshape(T, p), z[T * p :].reshape(T + 1, n)
        grad = torch.func.grad(lambda kk: forward(C, T, Kt, kk, m)[0])(k)
        return torch.cat([grad.flatten(), (m - forward(C, T, Kt, k, m)[1]).flatten()])

    z0 = torch.zeros(T * p + (T + 1) * n, dtype=torch.float64)
    z = z0 - torch.linalg.solve(jacobian(residual, z0), residual(z0))  # affine: one step is exact
    k, m = z[: T * p].reshape(T, p), z[T * p :].reshape(T + 1, n)
    cost, _, covs = forward(C, T, Kt, k, m)

    def picard(mm: torch.Tensor) -> torch.Tensor:
        mm = mm.reshape(T + 1, n)
        return forward(C, T, Kt, best_k(C, T, Kt, mm), mm)[1].flatten()

    M = torch.func.jacrev(picard)(m.flatten()).numpy()
    return {
        "k": k.numpy(), "mean": m.numpy(), "cov": covs.numpy(), "J": float(cost),
        "rho": float(np.max(np.abs(np.linalg.eigvals(M)))),
        "grad_K": torch.func.grad(lambda KK: forward(C, T, KK, k, m)[0])(Kt).numpy(),
    }
