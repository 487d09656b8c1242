r"""Propagation: the flow :math:`\mu(\pi)` a policy produces, as particles or (LQ, affine) exact Gaussians.

Against a frozen flow ``m`` this is the map of the fixed-point search, :math:`\pi \mapsto \mu(\pi \mid m)`: the
law of a representative agent playing :math:`\pi` while the mean field seen by the dynamics is ``m``. With
``m=None`` the population is self-consistent: everybody plays :math:`\pi` and ``m`` is the population itself.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from mfgsolve.flows import Flow, GaussianFlow, ParticleFlow
from mfgsolve.lq.problem import LQProblem
from mfgsolve.policies import AffinePolicy, MixturePolicy, Policy
from mfgsolve.problem import Problem
from mfgsolve.lq import reference as lqref

__all__ = ["propagate", "static_flow", "FlowKind"]

FlowKind = Literal["particles", "gaussian"]


def propagate(
    problem: Problem,
    policy: Policy,
    m: Flow | None = None,
    *,
    kind: FlowKind = "particles",
    n: int = 4096,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    noise: torch.Generator | None = None,
) -> Flow:
    """The flow of ``policy``: against the frozen ``m``, or self-consistently when ``m`` is ``None``.

    Parameters
    ----------
    problem : Problem
    policy : Policy
    m : Flow, optional
        Frozen population flow read by the dynamics; ``None`` for the population's own flow.
    kind : {"particles", "gaussian"}
        ``"gaussian"`` is exact and needs an :class:`LQProblem` and affine policies (or mixtures of them).
    n : int
        Number of particles (``kind="particles"``).
    generator : torch.Generator
        The source of randomness (``kind="particles"``): initial states and dynamics noise unless ``noise`` is
        given, and the draws of the policy (a mixture's component per particle).
    noise : torch.Generator, optional
        Initial states and dynamics noise only. The outer loop passes a generator reset to one seed at every
        iteration: particle ``i`` then keeps its initial state and noise path from flow to flow (common random
        numbers), so successive flows differ only by what the policies changed. The particles live on this
        generator's device (``generator``'s when ``noise`` is not given).
    """
    if kind == "gaussian":
        return _propagate_gaussian(problem, policy, m)
    if kind != "particles":
        raise ValueError(f"unknown flow kind {kind!r}")
    if generator is None:
        raise ValueError("particle propagation needs an explicit torch.Generator")
    return _propagate_particles(problem, policy, m, n=n, generator=generator, noise=noise or generator, dtype=dtype)


def _propagate_particles(
    problem: Problem, policy: Policy, m: Flow | None, *, n: int, generator: torch.Generator,
    noise: torch.Generator, dtype: torch.dtype,
) -> ParticleFlow:
    xs = torch.empty(problem.T + 1, n, problem.n, dtype=dtype, device=noise.device)  # the flow lives with its noise
    xs[0] = problem.sample_x0(n, noise).to(dtype)
    own = ParticleFlow.uniform(xs)  # filled in place; step t reads only marginals up to t
    frozen = own if m is None else m
    actor = policy.for_population(n, generator)
    with torch.no_grad():
        for t in range(problem.T):
            a = actor.act(t, xs[t], frozen)
            xs[t + 1] = problem.step(t, xs[t], a, frozen, noise)
    return own


def _affine_parts(policy: Policy) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    if isinstance(policy, AffinePolicy):
        return [policy.K], [policy.k], [1.0]
    if isinstance(policy, MixturePolicy) and all(isinstance(c, AffinePolicy) for c in policy.components):
        comps = policy.components
        return [c.K for c in comps], [c.k for c in comps], list(policy.weights)  # type: ignore[attr-defined]
    raise TypeError("Gaussian propagation needs an affine policy or a mixture of affine policies")


def _propagate_gaussian(problem: Problem, policy: Policy, m: Flow | None) -> GaussianFlow:
    if not isinstance(problem, LQProblem):
        raise TypeError("Gaussian propagation is exact only for LQ problems")
    coef = problem.coef
    Ks, ks, weights = _affine_parts(policy)
    if m is None:
        mbar = lqref.self_consistent_mean(coef, Ks, ks, weights)
    else:
        mbar = m.means().detach().cpu().numpy().astype(float)
    means = [lqref.mean_flow(coef, K, k, mbar) for K, k in zip(Ks, ks)]
    covs = [lqref.cov_flow(coef, K) for K in Ks]
    mean = sum(w * mu for w, mu in zip(weights, means))
    second = sum(w * (C + mu[:, :, None] * mu[:, None, :]) for w, C, mu in zip(weights, covs, means))
    cov = second - mean[:, :, None] * mean[:, None, :]
    return GaussianFlow.from_numpy(mean, 0.5 * (cov + np.swapaxes(cov, 1, 2)))


def static_flow(
    problem: Problem,
    *,
    kind: FlowKind = "particles",
    n: int = 4096,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Flow:
    """The initial law held still, ``m_t = law(x_0)`` for every ``t``: the outer loop's default ``m^0``."""
    T = problem.T
    if kind == "gaussian":
        if not isinstance(problem, LQProblem):
            raise TypeError("a Gaussian flow needs an LQ problem")
        c = problem.coef
        return GaussianFlow.from_numpy(np.tile(c.mu0, (T + 1, 1)), np.tile(c.Sigma0, (T + 1, 1, 1)))
    if generator is None:
        raise ValueError("a particle flow needs an explicit torch.Generator")
    x0 = problem.sample_x0(n, generator).to(dtype)
    return ParticleFlow.uniform(x0.expand(T + 1, -1, -1).clone())
