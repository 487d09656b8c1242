r"""What a non-LQ problem reads of a population flow: Gaussian kernel sums over its particles.

For a flow marginal :math:`m_t` given by weighted particles :math:`(X_i, w_i)`,

.. math:: (\Phi_h * m_t)(x) = \sum_i w_i \exp\!\big(-|x - X_i|^2 / (2h^2)\big),

which is exact for a Gaussian interaction kernel :math:`\Phi_h` and, divided by :math:`(2\pi h^2)^{d/2}`, the
kernel density estimate of :math:`m_t` at :math:`x` with bandwidth :math:`h`. On a ring of length ``period`` the
nearest periodic image is used (valid for :math:`h \ll` ``period``).
"""

from __future__ import annotations

import math

import torch

from mfgsolve import Flow, GaussianFlow, ParticleFlow

__all__ = ["kernel_sum", "kernel_density", "KERNEL_PARTICLES"]

#: Default flow size of the problems that read their flow by kernel sums (their ``particles`` attribute): every
#: step sums a kernel over all of the flow's particles for each agent, so a best response costs linearly more
#: with it (mfgsolve's general default of 4096 is four times slower).
KERNEL_PARTICLES = 1000

#: Points x particles per chunk: bounds the temporary (batch, N) matrix to 32 MB in float64.
_CHUNK_ENTRIES = 4_000_000


def _kernel_sum_particles(x: torch.Tensor, samples: torch.Tensor, weights: torch.Tensor, h: float,
                          period: float | None) -> torch.Tensor:
    samples, weights = samples.to(x), weights.to(x)
    rows = max(1, _CHUNK_ENTRIES // max(1, samples.shape[0]))
    out = []
    for start in range(0, x.shape[0], rows):
        d = x[start:start + rows, None, :] - samples[None, :, :]
        if period is not None:
            d = torch.remainder(d + period / 2, period) - period / 2
        out.append(torch.exp(-(d * d).sum(-1) / (2 * h * h)) @ weights)
    return torch.cat(out) if out else x.new_zeros(0)


def kernel_sum(flow: Flow, t: int, x: torch.Tensor, h: float, *, dims: slice = slice(None),
               period: float | None = None) -> torch.Tensor:
    r""":math:`(\Phi_h * m_t)(x)` for points ``x`` ``(batch, d)``, reading coordinates ``dims`` of the flow's state.

    Particle flows give the exact kernel sum. A :class:`GaussianFlow` (no ``period``) gives the closed form
    :math:`\det(I + \Sigma/h^2)^{-1/2}\exp(-\tfrac12 (x-\mu)'(h^2 I + \Sigma)^{-1}(x-\mu))`.
    """
    if isinstance(flow, ParticleFlow):
        samples, weights = flow.particles(t)
        return _kernel_sum_particles(x, samples[:, dims], weights, h, period)
    if isinstance(flow, GaussianFlow) and period is None:
        mu = flow.mean(t)[dims].to(x)
        cov = flow.cov(t)[dims, dims].to(x)
        S = h * h * torch.eye(mu.shape[0], dtype=x.dtype, device=x.device) + cov
        d = x - mu
        quad = (d * torch.linalg.solve(S, d.T).T).sum(-1)
        return torch.exp(-0.5 * quad) * h ** mu.shape[0] / torch.sqrt(torch.linalg.det(S))
    raise TypeError(f"cannot read a kernel sum from a {type(flow).__name__}")


def kernel_density(flow: Flow, t: int, x: torch.Tensor, h: float, *, dims: slice = slice(None),
                   period: float | None = None) -> torch.Tensor:
    """Gaussian kernel density estimate of ``m_t`` at ``x`` ``(batch, d)`` with bandwidth ``h``."""
    return kernel_sum(flow, t, x, h, dims=dims, period=period) / (2 * math.pi * h * h) ** (x.shape[1] / 2)
