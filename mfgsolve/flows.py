r"""Population flows :math:`m = (m_0, \dots, m_T)`: what a policy produces and an oracle is frozen on.

Two kinds share one small interface (:class:`Flow`): :class:`ParticleFlow` (weighted samples per ``t``; any
problem) and :class:`GaussianFlow` (mean and covariance per ``t``; exact for LQ problems under affine policies).
Mixing two flows, :math:`(1 - \alpha) m + \alpha m'`, is the only operation the outer schemes need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from mfgsolve._linalg import psd_sqrt

__all__ = ["Flow", "GaussianFlow", "ParticleFlow"]


@runtime_checkable
class Flow(Protocol):
    """A population flow over ``t = 0..T`` in ``R^n``."""

    @property
    def T(self) -> int: ...

    @property
    def n(self) -> int: ...

    def mean(self, t: int) -> torch.Tensor:
        """Mean of ``m_t``, shape ``(n,)``."""
        ...

    def means(self) -> torch.Tensor:
        """Means of every marginal, shape ``(T+1, n)``."""
        ...

    def mix(self, other: Flow, weight: float, generator: torch.Generator | None = None) -> Flow:
        """The mixture ``(1 - weight) * self + weight * other`` (``generator``: for particle flows, mix by
        drawing each particle from one side, see :meth:`ParticleFlow.mix`)."""
        ...

    def arrays(self) -> dict[str, np.ndarray]:
        """Named arrays for ``flow.npz`` (always ``mean``, ``(T+1, n)``)."""
        ...


def _check_weight(weight: float) -> None:
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"mixing weight must lie in [0, 1], got {weight}")


@dataclass(frozen=True, eq=False)
class GaussianFlow:
    r"""Gaussian marginals :math:`m_t = N(\text{mean}_t, \text{cov}_t)`.

    Parameters
    ----------
    mean_ : torch.Tensor
        Shape ``(T+1, n)``.
    cov_ : torch.Tensor
        Shape ``(T+1, n, n)``, symmetric PSD.

    Notes
    -----
    A mixture of Gaussians is not Gaussian; :meth:`mix` returns the Gaussian with the mixture's exact first two
    moments, :math:`\bar\mu = (1-\alpha)\mu + \alpha\mu'`,
    :math:`\bar\Sigma = (1-\alpha)\Sigma + \alpha\Sigma' + \alpha(1-\alpha)(\mu-\mu')(\mu-\mu')'`.
    LQ best responses read only the mean, so the outer loop on means stays exact.
    """

    mean_: torch.Tensor
    cov_: torch.Tensor

    @property
    def T(self) -> int:
        return self.mean_.shape[0] - 1

    @property
    def n(self) -> int:
        return self.mean_.shape[1]

    def mean(self, t: int) -> torch.Tensor:
        return self.mean_[t]

    def means(self) -> torch.Tensor:
        return self.mean_

    def cov(self, t: int) -> torch.Tensor:
        return self.cov_[t]

    def covs(self) -> torch.Tensor:
        return self.cov_

    def mix(self, other: Flow, weight: float, generator: torch.Generator | None = None) -> GaussianFlow:
        if not isinstance(other, GaussianFlow):
            raise TypeError("a GaussianFlow mixes only with another GaussianFlow")
        _check_weight(weight)
        d = other.mean_ - self.mean_
        mean = self.mean_ + weight * d
        cov = (1 - weight) * self.cov_ + weight * other.cov_ + weight * (1 - weight) * d[:, :, None] * d[:, None, :]
        return GaussianFlow(mean, cov)

    def sample(self, t: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws from ``m_t``, shape ``(n, self.n)``."""
        root = psd_sqrt(self.cov_[t])
        z = torch.randn(n, self.n, generator=generator, dtype=self.mean_.dtype, device=generator.device)
        return self.mean_[t].to(z) + z @ root.T.to(z)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_.detach().cpu().numpy(), "cov": self.cov_.detach().cpu().numpy()}

    @classmethod
    def from_numpy(cls, mean: np.ndarray, cov: np.ndarray) -> GaussianFlow:
        return cls(torch.as_tensor(mean, dtype=torch.float64), torch.as_tensor(cov, dtype=torch.float64))


@dataclass(frozen=True, eq=False)
class ParticleFlow:
    """Weighted samples per time: ``x`` ``(T+1, N, n)`` and weights ``w`` ``(T+1, N)`` summing to one per ``t``.

    Particle ``i`` need not be one trajectory; only the marginals ``m_t`` matter to a flow.
    """

    x: torch.Tensor
    w: torch.Tensor

    @classmethod
    def uniform(cls, x: torch.Tensor) -> ParticleFlow:
        """Equal weights on every sample of ``x`` ``(T+1, N, n)``."""
        N = x.shape[1]
        return cls(x, torch.full(x.shape[:2], 1.0 / N, dtype=x.dtype, device=x.device))

    def to(self, device: torch.device) -> ParticleFlow:
        """The same flow with its samples and weights on ``device`` (``self`` when they are there already)."""
        if self.x.device == device and self.w.device == device:
            return self
        return ParticleFlow(self.x.to(device), self.w.to(device))

    @property
    def T(self) -> int:
        return self.x.shape[0] - 1

    @property
    def n(self) -> int:
        return self.x.shape[2]

    @property
    def size(self) -> int:
        """Number of particles per time."""
        return self.x.shape[1]

    def mean(self, t: int) -> torch.Tensor:
        return self.w[t] @ self.x[t]

    def means(self) -> torch.Tensor:
        return torch.einsum("tn,tnd->td", self.w, self.x)

    def cov(self, t: int) -> torch.Tensor:
        d = self.x[t] - self.mean(t)
        return (d * self.w[t][:, None]).T @ d

    def particles(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``(N, n)`` and weights ``(N,)`` of ``m_t``."""
        return self.x[t], self.w[t]

    def mix(self, other: Flow, weight: float, generator: torch.Generator | None = None) -> ParticleFlow:
        """The mixture ``(1 - weight) * self + weight * other``.

        Without ``generator``: the samples concatenated, reweighted by ``1 - weight`` and ``weight`` (exact;
        grows the size). With ``generator`` and two flows of equally many particles: particle ``i`` (its whole
        path) is taken from ``other`` with probability ``weight`` and from ``self`` otherwise, one uniform
        draw per particle. The size stays, and particles paired by index (common random numbers) stay paired,
        so the distance between successive flows can be measured by the index coupling.
        """
        if not isinstance(other, ParticleFlow):
            raise TypeError("a ParticleFlow mixes only with another ParticleFlow")
        _check_weight(weight)
        if weight == 0.0:
            return self
        if weight == 1.0:
            return other
        if generator is not None and other.size == self.size:
            take = torch.rand(self.size, generator=generator, dtype=torch.float64, device=generator.device) < weight
            take = take.to(self.x.device)
            x = torch.where(take[None, :, None], other.x.to(self.x), self.x)
            ow = other.w.to(self.w)
            if torch.equal(ow, self.w):  # equal weights stay exactly equal (1/N need not sum to one in floats)
                return ParticleFlow(x, self.w)
            w = torch.where(take[None, :], ow, self.w)
            return ParticleFlow(x, w / w.sum(dim=1, keepdim=True))
        x = torch.cat([self.x, other.x.to(self.x)], dim=1)
        w = torch.cat([(1 - weight) * self.w, weight * other.w.to(self.w)], dim=1)
        return ParticleFlow(x, w)

    def resample(self, n: int, generator: torch.Generator) -> ParticleFlow:
        """Systematic resampling to ``n`` equally weighted particles per ``t`` (one uniform per ``t``).

        References
        ----------
        .. [1] Douc, Cappe, Moulines (2005), "Comparison of resampling schemes for particle filtering".
        """
        T1 = self.T + 1
        u = torch.rand(T1, 1, generator=generator, dtype=self.w.dtype, device=generator.device)
        u = (u + torch.arange(n, dtype=self.w.dtype, device=u.device)) / n
        cdf = torch.cumsum(self.w, dim=1)
        cdf = cdf / cdf[:, -1:]
        idx = torch.searchsorted(cdf, u.to(cdf.device)).clamp_max(self.size - 1)
        x = torch.gather(self.x, 1, idx[:, :, None].expand(-1, -1, self.n))
        return ParticleFlow.uniform(x)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.means().detach().cpu().numpy(),
            "particles": self.x.detach().cpu().numpy(),
            "weights": self.w.detach().cpu().numpy(),
        }
