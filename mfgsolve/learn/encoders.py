r"""Population encoders: :math:`m_t \mapsto` a feature vector for the actor and the critic.

Each encoder has two halves:

* :meth:`PopulationEncoder.raw` reads a fixed description of :math:`m_t` off a flow (no parameters, no
  gradient): moments, a histogram or a particle subsample, standardised by a fixed location and scale;
* :meth:`PopulationEncoder.forward` maps a batch of descriptions to features (the learned half).

For a frozen flow the descriptions depend on ``t`` only, so a trainer computes them once per flow, and the
learned half once per distinct ``t`` in a batch.

=============  ====================================================================================
kind           description of :math:`m_t`
=============  ====================================================================================
moments        mean and standard deviation per coordinate, then an MLP (the default)
histogram      bin probabilities: 1-D for ``n = 1``, joint 2-D for ``n = 2``, per-coordinate 1-D
               marginals concatenated for ``n > 2``; then an MLP
deepsets       learned embedding :math:`\rho(\frac1k \sum_i \phi(x_i))` over a particle subsample
               (Zaheer et al. 2017)
attention      a learned query attends over the embedded particle subsample (pooling by multihead
               attention, Lee et al. 2019)
=============  ====================================================================================

Particle subsamples are deterministic: a :class:`~mfgsolve.flows.GaussianFlow` is read at fixed base points
:math:`\mu_t + \Sigma_t^{1/2} z_i` (``z`` drawn once, from the generator given at construction), a
:class:`~mfgsolve.flows.ParticleFlow` at its weighted quantile positions :math:`(i + 1/2)/k`.

References
----------
.. [1] Zaheer et al. (2017), "Deep Sets", NeurIPS.
.. [2] Lee et al. (2019), "Set Transformer", ICML (pooling by multihead attention).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Literal

import torch
from torch import nn

from mfgsolve._linalg import psd_sqrt
from mfgsolve.flows import Flow
from mfgsolve.learn.networks import mlp

__all__ = [
    "PopulationEncoder",
    "MomentEncoder",
    "HistogramEncoder",
    "DeepSetsEncoder",
    "AttentionEncoder",
    "EncoderKind",
    "ENCODERS",
    "make_encoder",
    "flow_moments",
]

EncoderKind = Literal["moments", "histogram", "deepsets", "attention"]
ENCODERS: tuple[str, ...] = ("moments", "histogram", "deepsets", "attention")


def flow_moments(m: Flow, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(n,)`` and covariance ``(n, n)`` of ``m_t`` (float64); zero covariance for flows without one."""
    mean = m.mean(t).detach().to(torch.float64)
    cov_fn = getattr(m, "cov", None)
    cov = cov_fn(t).detach().to(torch.float64) if callable(cov_fn) else torch.zeros(m.n, m.n, dtype=torch.float64)
    return mean.cpu(), cov.cpu()


def _points(m: Flow, t: int, base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic points ``(k, n)`` and weights ``(k,)`` describing ``m_t`` (see the module docstring)."""
    particles = getattr(m, "particles", None)
    k = base.shape[0]
    if callable(particles):
        x, w = particles(t)
        x, w = x.detach().cpu().to(torch.float64), w.detach().cpu().to(torch.float64)
        cdf = torch.cumsum(w, 0)
        u = (torch.arange(k, dtype=torch.float64) + 0.5) / k * cdf[-1]
        idx = torch.searchsorted(cdf, u).clamp_max(x.shape[0] - 1)
        return x[idx], torch.full((k,), 1.0 / k, dtype=torch.float64)
    mean, cov = flow_moments(m, t)
    return mean + base.cpu().to(torch.float64) @ psd_sqrt(cov).T, torch.full((k,), 1.0 / k, dtype=torch.float64)


class PopulationEncoder(nn.Module, metaclass=ABCMeta):
    """Base class: a fixed description :meth:`raw` of ``m_t`` and a learned map :meth:`forward` to features.

    Parameters
    ----------
    n : int
        State dimension.
    loc, scale : torch.Tensor
        Fixed standardisation of the state space, ``(n,)`` each (set once, from the first flow seen).
    out_dim : int
        Feature dimension.
    """

    kind: str = "base"

    def __init__(self, n: int, loc: torch.Tensor, scale: torch.Tensor, out_dim: int) -> None:
        super().__init__()
        self.n = n
        self.out_dim = out_dim
        self.register_buffer("loc", loc.detach().to(torch.float32).clone())
        self.register_buffer("scale", scale.detach().to(torch.float32).clone())

    @abstractmethod
    def raw(self, m: Flow, t: int) -> torch.Tensor:
        """The fixed description of ``m_t`` (float32, no gradient), computed on the CPU wherever the encoder
        lives (it reads moments and a few thousand points); the caller moves it to the networks' device."""

    def raw_flow(self, m: Flow) -> torch.Tensor:
        """Descriptions of every marginal, stacked: ``(T+1, *raw_shape)`` (on the CPU, as :meth:`raw`)."""
        return torch.stack([self.raw(m, t) for t in range(m.T + 1)])

    def _std(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.loc.to(x)) / self.scale.to(x)).to(torch.float32)


class MomentEncoder(PopulationEncoder):
    """Mean and standard deviation per coordinate (standardised), then an MLP."""

    kind = "moments"

    def __init__(self, n: int, loc: torch.Tensor, scale: torch.Tensor, out_dim: int, *, hidden: int,
                 activation: str) -> None:
        super().__init__(n, loc, scale, out_dim)
        self.net = mlp([2 * n, hidden, out_dim], activation)

    def raw(self, m: Flow, t: int) -> torch.Tensor:
        mean, cov = flow_moments(m, t)
        std = torch.diagonal(cov).clamp_min(0).sqrt()
        return torch.cat([self._std(mean), (std / self.scale.to(std)).to(torch.float32)])

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.net(raw)


class HistogramEncoder(PopulationEncoder):
    """Bin probabilities on ``loc +- width * scale`` per coordinate (end bins catch the tails), then an MLP.

    1-D for ``n = 1``, a joint ``bins x bins`` histogram for ``n = 2``, concatenated 1-D marginals for ``n > 2``.
    A Gaussian flow is read at ``base`` points (fixed standard normal draws), a particle flow at all its
    weighted particles.
    """

    kind = "histogram"

    def __init__(self, n: int, loc: torch.Tensor, scale: torch.Tensor, out_dim: int, *, hidden: int,
                 activation: str, bins: int, base: torch.Tensor, width: float = 4.0) -> None:
        super().__init__(n, loc, scale, out_dim)
        self.bins = bins
        self.register_buffer("base", base.detach().to(torch.float32).clone())
        self.register_buffer("edges", torch.linspace(-width, width, bins + 1)[1:-1])
        self.in_dim = bins if n == 1 else bins * bins if n == 2 else n * bins
        self.net = mlp([self.in_dim, hidden, out_dim], activation)

    def raw(self, m: Flow, t: int) -> torch.Tensor:
        particles = getattr(m, "particles", None)
        if callable(particles):
            x, w = particles(t)
            x, w = x.detach().cpu().to(torch.float64), w.detach().cpu().to(torch.float64)
        else:
            x, w = _points(m, t, self.base)
        idx = torch.bucketize(self._std(x).contiguous(), self.edges.cpu())  # (N, n) bin of each coordinate
        if self.n == 2:
            flat = idx[:, 0] * self.bins + idx[:, 1]
            h = torch.zeros(self.bins * self.bins, dtype=torch.float64).index_add_(0, flat, w)
        else:
            offsets = torch.arange(self.n) * self.bins
            h = torch.zeros(self.n * self.bins, dtype=torch.float64)
            h.index_add_(0, (idx + offsets).flatten(), w.repeat_interleave(self.n))
        return (h / w.sum()).to(torch.float32)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.net(raw)


class DeepSetsEncoder(PopulationEncoder):
    r"""Learned embedding :math:`\rho\big(\frac1k\sum_i \phi(\tilde x_i)\big)` of ``k`` standardised particles."""

    kind = "deepsets"

    def __init__(self, n: int, loc: torch.Tensor, scale: torch.Tensor, out_dim: int, *, hidden: int,
                 activation: str, base: torch.Tensor) -> None:
        super().__init__(n, loc, scale, out_dim)
        self.register_buffer("base", base.detach().to(torch.float32).clone())
        self.phi = mlp([n, hidden, hidden], activation)
        self.rho = mlp([hidden, out_dim], activation)

    def raw(self, m: Flow, t: int) -> torch.Tensor:
        x, _ = _points(m, t, self.base)
        return self._std(x)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.rho(self.phi(raw).mean(dim=-2))


class AttentionEncoder(PopulationEncoder):
    """A learned query attends over ``k`` embedded standardised particles (pooling by multihead attention)."""

    kind = "attention"

    def __init__(self, n: int, loc: torch.Tensor, scale: torch.Tensor, out_dim: int, *, hidden: int,
                 activation: str, base: torch.Tensor, heads: int) -> None:
        super().__init__(n, loc, scale, out_dim)
        if hidden % heads:
            raise ValueError(f"attention: hidden={hidden} is not a multiple of heads={heads}")
        self.register_buffer("base", base.detach().to(torch.float32).clone())
        self.embed = mlp([n, hidden, hidden], activation)
        self.query = nn.Parameter(torch.zeros(1, 1, hidden))
        self.attend = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.out = mlp([hidden, out_dim], activation)

    def raw(self, m: Flow, t: int) -> torch.Tensor:
        x, _ = _points(m, t, self.base)
        return self._std(x)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        e = self.embed(raw)  # (U, k, hidden)
        q = self.query.expand(e.shape[0], -1, -1)
        pooled, _ = self.attend(q, e, e, need_weights=False)
        return self.out(pooled.squeeze(1))


def make_encoder(
    kind: str,
    n: int,
    *,
    loc: torch.Tensor,
    scale: torch.Tensor,
    out_dim: int,
    hidden: int,
    activation: str,
    bins: int,
    particles: int,
    heads: int,
    generator: torch.Generator,
) -> PopulationEncoder:
    """Build an encoder of ``kind`` (one of :data:`ENCODERS`); base points are drawn from ``generator``.

    Parameters are left for the caller to initialise (:func:`mfgsolve.learn.networks.init_parameters`).
    """
    if kind == "moments":
        return MomentEncoder(n, loc, scale, out_dim, hidden=hidden, activation=activation)
    base = torch.randn(max(particles, 1), n, generator=generator, dtype=torch.float64, device=generator.device)
    if kind == "histogram":
        hist_base = torch.randn(max(1024, particles), n, generator=generator, dtype=torch.float64,
                                device=generator.device)
        return HistogramEncoder(n, loc, scale, out_dim, hidden=hidden, activation=activation, bins=bins,
                                base=hist_base)
    if kind == "deepsets":
        return DeepSetsEncoder(n, loc, scale, out_dim, hidden=hidden, activation=activation, base=base)
    if kind == "attention":
        return AttentionEncoder(n, loc, scale, out_dim, hidden=hidden, activation=activation, base=base, heads=heads)
    raise ValueError(f"unknown population encoder {kind!r} (choose from {', '.join(ENCODERS)})")
