r"""Distances between flows (through POT) and errors against a reference.

* particles, 1-D: exact :math:`W_p` (``ot.wasserstein_1d``; for two clouds of equally many, equally weighted
  particles the same value from the sorted samples, :math:`W_p^p = \frac1N \sum_i |x_{(i)} - y_{(i)}|^p`,
  which skips POT's quantile search and is about 5x faster on the outer loop's 131072-particle flows);
* particles, n-D: exact :math:`W_p` on a subsample (``ot.emd2``) or sliced :math:`W_p`
  (``ot.sliced_wasserstein_distance``);
* Gaussians: the closed form :math:`W_2^2 = |\mu - \mu'|^2 + \mathcal{B}^2(\Sigma, \Sigma')`;
* ``"coupling"``: for two clouds of equally many, equally weighted particles paired by index (drawn with common
  random numbers, as the outer loop draws its flows), the synchronous coupling
  :math:`(\sum_i w_i |x_i - y_i|^p)^{1/p} \ge W_p`: an upper bound with no sampling floor, linear cost;
* ``"moments"``: the Gelbrich bound :math:`W_2 \ge W_2(N(\mu, \Sigma), N(\mu', \Sigma'))` from the means and
  covariances (Gelbrich 1990), any two flows (particles or Gaussian), precise at large particle counts.

For samples of one law the exact and sliced estimates do not vanish: they sit at a floor set by the sample
size (in ``n`` dimensions of order :math:`N^{-1/n}` for the exact one). :func:`resolution` measures that floor
for a given flow as the distance between two independent halves of it.

Distances are per ``t`` (an array ``(T+1,)``); the outer loop uses their maximum over ``t``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import ot
import torch

from mfgsolve.errors import SpecError

from mfgsolve._linalg import psd_sqrt
from mfgsolve.flows import Flow, GaussianFlow, ParticleFlow
from mfgsolve.gap import Gap
from mfgsolve.oracles.base import Oracle
from mfgsolve.problem import Problem
from mfgsolve.lq.problem import LQProblem
from mfgsolve.policies import AffinePolicy, MixturePolicy, Policy
from mfgsolve.lq import reference as lqref

__all__ = ["wasserstein", "flow_distance", "gaussian_w2", "mean_error", "exploitability", "exploitability_by_oracle", "Method", "METHODS", "resolution", "gaussian_w2_many"]

Method = Literal["auto", "exact", "sliced", "coupling", "moments"]
METHODS: tuple[str, ...] = ("auto", "exact", "sliced", "coupling", "moments")


def gaussian_w2_many(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> np.ndarray:
    """:func:`gaussian_w2` over stacks: means ``(..., n)``, covariances ``(..., n, n)``; shape ``(...)``."""
    X, Y = psd_sqrt(cov1, symmetric=True), psd_sqrt(cov2, symmetric=True)
    u, _, vt = np.linalg.svd(np.swapaxes(Y, -1, -2) @ X)
    bures2 = np.sum((X - Y @ (u @ vt)) ** 2, axis=(-2, -1))
    dm = mean1 - mean2
    return np.sqrt(np.sum(dm * dm, axis=-1) + bures2)


def gaussian_w2(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    r"""Closed-form :math:`W_2` between :math:`N(\mu_1, \Sigma_1)` and :math:`N(\mu_2, \Sigma_2)`.

    .. math::

        W_2^2 = |\mu_1 - \mu_2|^2 + \mathcal{B}^2(\Sigma_1, \Sigma_2), \qquad
        \mathcal{B}(\Sigma_1, \Sigma_2) = \min_{U U' = I} \| \Sigma_1^{1/2} - \Sigma_2^{1/2} U \|_F .

    The Procrustes form (optimal ``U`` from the SVD of :math:`\Sigma_2^{1/2}\Sigma_1^{1/2}`) equals the usual
    trace formula :math:`\operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
    - 2\operatorname{tr}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}` (as in ``ot.gaussian.bures_distance``) but
    subtracts matrices instead of traces: for nearly equal covariances the trace formula cancels to a floor
    of about 1e-8 (the square root of machine precision), the Procrustes form does not. A fixed-point
    residual at tolerance 1e-10 needs the latter.

    References
    ----------
    .. [1] Bhatia, Jain, Lim (2019), "On the Bures-Wasserstein distance between positive definite matrices".
    """
    return float(gaussian_w2_many(np.atleast_1d(mean1), np.atleast_2d(cov1), np.atleast_1d(mean2), np.atleast_2d(cov2)))


def _subsample(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if x.shape[0] <= k:
        return x, w
    idx = rng.choice(x.shape[0], size=k, replace=True, p=w / w.sum())
    return x[idx], np.full(k, 1.0 / k)


def _particles_wp(
    x1: np.ndarray, w1: np.ndarray, x2: np.ndarray, w2: np.ndarray, *, p: int, method: Method,
    max_points: int, n_projections: int, rng: np.random.Generator,
) -> float:
    w1, w2 = w1 / w1.sum(), w2 / w2.sum()
    if x1.shape[1] == 1 and method in ("auto", "exact"):
        if x1.shape[0] == x2.shape[0] and np.all(w1 == w1[0]) and np.all(w2 == w2[0]):
            # equal uniform weights: the optimal coupling matches order statistics
            return float(np.mean(np.abs(np.sort(x1[:, 0]) - np.sort(x2[:, 0])) ** p)) ** (1.0 / p)
        return float(ot.wasserstein_1d(x1[:, 0], x2[:, 0], w1, w2, p=p)) ** (1.0 / p)
    if method == "sliced":
        seed = int(rng.integers(2**31 - 1))
        return float(ot.sliced_wasserstein_distance(x1, x2, w1, w2, n_projections=n_projections, p=p, seed=seed))
    x1, w1 = _subsample(x1, w1, max_points, rng)
    x2, w2 = _subsample(x2, w2, max_points, rng)
    cost = ot.dist(x1, x2, metric="euclidean") ** p
    return float(ot.emd2(w1, w2, cost, numItermax=1_000_000)) ** (1.0 / p)


def _cloud_moments(x: torch.Tensor, w: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means ``(..., n)`` and covariances ``(..., n, n)`` of clouds ``x`` ``(..., N, n)``, ``w`` ``(..., N)``."""
    x, w = x.detach().double(), w.detach().double()
    w = (w / w.sum(dim=-1, keepdim=True)).unsqueeze(-2)  # (..., 1, N)
    mean = w @ x  # (..., 1, n)
    d = x - mean
    cov = (d * w.transpose(-1, -2)).transpose(-1, -2) @ d
    return mean.squeeze(-2).cpu().numpy(), cov.cpu().numpy()


def _moments(m: Flow) -> tuple[np.ndarray, np.ndarray]:
    """Means ``(T+1, n)`` and covariances ``(T+1, n, n)`` of a flow, float64 numpy."""
    if isinstance(m, GaussianFlow):
        return m.mean_.detach().cpu().double().numpy(), m.cov_.detach().cpu().double().numpy()
    if isinstance(m, ParticleFlow):
        return _cloud_moments(m.x, m.w)
    raise TypeError(f"no moments for {type(m).__name__}")


def _coupling(m1: ParticleFlow, m2: ParticleFlow, p: int) -> np.ndarray:
    if m1.x.shape != m2.x.shape or not torch.equal(m1.w, m2.w.to(m1.w)):
        raise ValueError("the coupling distance needs two flows of equally many, equally weighted particles")
    diff = m1.x.detach().double() - m2.x.detach().to(m1.x.device).double()
    w = m1.w.detach().double()
    if p == 2:  # one reduction over each time's contiguous block
        return ((diff * diff * w[:, :, None]).sum(dim=(1, 2)) ** 0.5).cpu().numpy()
    return ((w * diff.norm(dim=2) ** p).sum(dim=1) ** (1.0 / p)).cpu().numpy()


def wasserstein(
    m1: Flow,
    m2: Flow,
    *,
    p: int = 2,
    method: Method = "auto",
    max_points: int = 2000,
    n_projections: int = 200,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Per-time Wasserstein distances :math:`W_p(m_{1,t}, m_{2,t})` (or bounds on them), shape ``(T+1,)``.

    Parameters
    ----------
    m1, m2 : Flow
        Two flows on one horizon: of one kind, or of any kinds with ``method="moments"``.
    p : int
        Order; Gaussian flows and ``"moments"`` support only ``p = 2`` (closed form).
    method : {"auto", "exact", "sliced", "coupling", "moments"}
        For particles in n-D: ``"exact"`` (and ``"auto"``) solve the OT problem on at most ``max_points``
        samples per side (drawn by weight with ``rng``), ``"sliced"`` averages ``n_projections`` 1-D problems.
        1-D particles always use the exact 1-D formula with ``"auto"`` and ``"exact"``. ``"coupling"`` is the
        upper bound of the index coupling (equally many, equally weighted particles); ``"moments"`` the
        Gelbrich lower bound from means and covariances (``p = 2``).
    rng : numpy.random.Generator, optional
        Randomness for subsampling and projections (default: a fixed seed, so distances are reproducible).

    Examples
    --------
    Two clouds that differ by a shift of every particle: the coupling gives the shift, the moments too.

    >>> import torch, mfgsolve as mfg
    >>> x = torch.randn(1, 1000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> a, b = mfg.ParticleFlow.uniform(x), mfg.ParticleFlow.uniform(x + torch.tensor([0.3, 0.0, 0.4], dtype=torch.float64))
    >>> [round(float(mfg.wasserstein(a, b, method=k)[0]), 12) for k in ("coupling", "moments")]
    [0.5, 0.5]
    """
    for name, m in (("m1", m1), ("m2", m2)):
        if not isinstance(m, (GaussianFlow, ParticleFlow)):
            raise SpecError(name, f"expected a GaussianFlow or ParticleFlow, got {type(m).__name__}")
    if m1.T != m2.T or m1.n != m2.n:
        raise SpecError("m2", f"flows differ in horizon or dimension ({m1.T}, {m1.n} against {m2.T}, {m2.n})")
    if method not in METHODS:
        raise SpecError("method", f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    for name, value, least in (("p", p, 1), ("max_points", max_points, 2), ("n_projections", n_projections, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise SpecError(name, f"must be an integer >= {least}, got {value!r}")
    if method == "moments":
        if p != 2:
            raise ValueError("the moment (Gelbrich) bound is for W_2 only")
        return gaussian_w2_many(*_moments(m1), *_moments(m2))
    if isinstance(m1, GaussianFlow) and isinstance(m2, GaussianFlow):
        if p != 2:
            raise ValueError("Gaussian flows have a closed form for W_2 only")
        return wasserstein(m1, m2, method="moments")
    if isinstance(m1, ParticleFlow) and isinstance(m2, ParticleFlow):
        if method == "coupling":
            return _coupling(m1, m2, p)
        rng = np.random.default_rng(0) if rng is None else rng
        out = np.empty(m1.T + 1)
        for t in range(m1.T + 1):
            x1, w1 = (v.detach().cpu().double().numpy() for v in m1.particles(t))
            x2, w2 = (v.detach().cpu().double().numpy() for v in m2.particles(t))
            out[t] = _particles_wp(
                x1, w1, x2, w2, p=p, method=method, max_points=max_points, n_projections=n_projections, rng=rng
            )
        return out
    raise TypeError(f"no Wasserstein distance between {type(m1).__name__} and {type(m2).__name__}")


#: Batches for the moment estimators' floor (batch means: a standard error with 16 - 1 degrees of freedom per
#: coordinate, where a single split into halves has one).
_BATCHES = 16


def resolution(m: Flow, *, method: Method = "auto", p: int = 2, **kwargs: object) -> np.ndarray:
    r"""The sampling floor of a distance on the flow ``m``, per ``t``: what it reports between two halves of ``m``.

    Two independent halves of one flow are two samples of one law; their distance is what the estimator
    cannot tell from zero at this size, and a residual below it says nothing about the law. For exact optimal
    transport on subsamples (``"exact"`` in several dimensions), whose own noise is that floor, it is measured
    directly, on the even- and odd-indexed halves (independent draws when the particles are i.i.d. over the
    index, as the outer loop's are). The other estimators read whole flows whose particles are paired by
    common random numbers; their floor is the sampling error of the flow's law itself, the moment distance
    expected between two halves, estimated by batch means (stabler than one split): with
    :math:`B = 16` batches of consecutive particles, the moment distances :math:`d_b` of each batch to the whole flow give the
    standard error :math:`s^2 = \sum_b d_b^2 / (B (B - 1))` of the flow's moments, and the halves' expected
    distance is :math:`2 s`. Zero for a :class:`GaussianFlow` (closed forms have no sampling error).

    Examples
    --------
    The mean of 100000 standard normal points in 2-D errs by about sqrt(2 / 100000) = 0.0045; two halves
    differ by about twice that:

    >>> import torch, mfgsolve as mfg
    >>> x = torch.randn(1, 100_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> 0.006 < float(mfg.resolution(mfg.ParticleFlow.uniform(x), method="moments")[0]) < 0.02
    True
    """
    if isinstance(m, GaussianFlow):
        return np.zeros(m.T + 1)
    if not isinstance(m, ParticleFlow):
        raise TypeError(f"no resolution for {type(m).__name__}")
    if method != "exact" or m.n == 1:  # every estimator but subsampled exact OT reads the whole, paired flow
        B = _BATCHES
        N = m.size - m.size % B
        if N < 2 * B:
            return np.full(m.T + 1, np.inf)
        # B contiguous blocks of N/B particles: (T+1, N, n) -> (T+1, B, N/B, n), a view
        xb = m.x[:, :N].reshape(m.T + 1, B, N // B, m.n)
        wb = m.w[:, :N].reshape(m.T + 1, B, N // B)
        mb, cb = _cloud_moments(xb, wb)
        mean, cov = _moments(m)
        d = gaussian_w2_many(mb, cb, mean[:, None], cov[:, None])  # (T+1, B)
        return 2.0 * np.sqrt(np.sum(d**2, axis=1) / (B * (B - 1)))
    if m.size < 4:
        return np.full(m.T + 1, np.inf)
    half = m.size // 2
    even, odd = (ParticleFlow(m.x[:, j : 2 * half : 2], m.w[:, j : 2 * half : 2]) for j in (0, 1))
    even, odd = (ParticleFlow(f.x, f.w / f.w.sum(dim=1, keepdim=True)) for f in (even, odd))
    return wasserstein(even, odd, p=p, method=method, **kwargs)  # type: ignore[arg-type]


def flow_distance(m1: Flow, m2: Flow, **kwargs: object) -> float:
    """:math:`\\max_t W_p(m_{1,t}, m_{2,t})` (keyword arguments as in :func:`wasserstein`)."""
    return float(np.max(wasserstein(m1, m2, **kwargs)))  # type: ignore[arg-type]


def mean_error(m: Flow, reference_mean: np.ndarray) -> float:
    r"""Relative error of the mean flow: :math:`\max_t \|m_t - m^*_t\|_\infty / \max_t \|m^*_t\|_\infty`."""
    means = m.means().detach().cpu().double().numpy()
    scale = float(np.max(np.abs(reference_mean)))
    err = float(np.max(np.abs(means - reference_mean)))
    return err / scale if scale > 0 else err


def computes_exploitability(problem: object) -> bool:
    """Whether :func:`exploitability` has a value for ``problem``: an LQ problem, or one with its own
    ``exploitability`` (a grid DP). Elsewhere a run bounds it by a trained response (:func:`bounding_response`)."""
    return isinstance(problem, LQProblem) or callable(getattr(problem, "exploitability", None))


def exploitability(
    problem: object, policy: Policy, *, n: int = 0, generator: torch.Generator | None = None,
    flow: Flow | None = None,
) -> Gap | None:
    r"""Exploitability :math:`J(\pi \mid m^\pi) - J(\mathrm{BR}(m^\pi) \mid m^\pi)` of ``policy`` on its own flow,
    where mfgsolve can compute it; ``None`` elsewhere.

    * A problem with its own ``exploitability(policy, m)`` method (e.g. exact dynamic programming on a grid,
      as ``crowd-aversion`` has) is asked first, with the current ``flow`` (what a population-aware policy reads).
    * LQ problem, affine policy or mixture of affine policies: exact (both terms Gaussian expectations).
    * LQ problem, any other policy (a learned actor, a mixture of them), given ``n`` agents and a
      ``generator``: the policy's own flow :math:`m^\pi` by simulating the population (``n`` particles), the
      best response to it exactly by Riccati, and :math:`J(\pi \mid m^\pi) - J(\mathrm{BR} \mid m^\pi)` by
      Monte Carlo on common random numbers (each mixture component against the best response, ``n`` agents
      shared in proportion to the weights), with its standard error in ``se``.
    """
    if not computes_exploitability(problem):
        return None
    own = getattr(problem, "exploitability", None)
    if callable(own) and flow is not None:
        e = own(policy, flow)
        if e is None or isinstance(e, Gap):
            return e
        return Gap(value=e.value, J_policy=e.J_policy, J_best=e.J_best, se=getattr(e, "se", 0.0))
    if not isinstance(problem, LQProblem):
        return None
    if isinstance(policy, AffinePolicy):
        parts: list[AffinePolicy] = [policy]
        weights: list[float] = [1.0]
    elif isinstance(policy, MixturePolicy) and all(isinstance(c, AffinePolicy) for c in policy.components):
        parts, weights = list(policy.components), list(policy.weights)  # type: ignore[arg-type]
    else:
        return _lq_exploitability_mc(problem, policy, n, generator) if generator is not None and n >= 2 else None
    Ks, ks = [q.K for q in parts], [q.k for q in parts]
    gap, _ = lqref.affine_exploitability(problem.coef, Ks, ks, weights, problem.riccati)
    return gap


def _lq_exploitability_mc(problem: LQProblem, policy: Policy, n: int, generator: torch.Generator) -> Gap:
    from mfgsolve.population import propagate

    own = propagate(problem, policy, None, kind="particles", n=n, generator=generator)
    br = lqref.best_response(problem.coef, own.means().detach().cpu().double().numpy(), problem.riccati)
    best = AffinePolicy(br.K, br.k)
    value, se = _gap_to(problem, policy, best, own, n=n, generator=generator)
    return Gap(value=value, J_policy=br.cost + value, J_best=br.cost, se=se)


def _gap_to(
    problem: Problem, policy: Policy, best: Policy, own: Flow, *, n: int, generator: torch.Generator
) -> tuple[float, float]:
    r""":math:`J(\pi \mid m) - J(\text{best} \mid m)` and its standard error, on common random numbers.

    A mixture is its components' weighted average: each component against ``best``, with the ``n`` agents
    shared in proportion to the weights (at least two each).
    """
    from mfgsolve.evaluation import cost_difference

    if isinstance(policy, MixturePolicy):
        comps, weights = list(policy.components), list(policy.weights)
    else:
        comps, weights = [policy], [1.0]
    value, var = 0.0, 0.0
    for comp, w in zip(comps, weights):
        d = cost_difference(problem, comp, best, own, n=max(2, round(n * w)), generator=generator)
        value += w * d.mean
        var += (w * d.se) ** 2
    return value, math.sqrt(var)


def bounding_response(problem: Problem, kind: str = "auto", *, updates: int | None = None,
                      seed: int = 0) -> tuple[Oracle, dict[str, Any]]:
    """The strongest best-response oracle available for a problem with no exact exploitability, and its record.

    ``kind`` ``auto``: the pathwise oracle where the problem's callbacks pass gradients
    (:func:`mfgsolve.oracles.pathwise.differentiable`), DDPG elsewhere. ``updates`` default:
    :data:`mfgsolve.presets.FINAL_RESPONSE_UPDATES`. The record (``oracle``, ``updates``, ``seed``) is what a
    report states beside the bound (:func:`exploitability_by_oracle`).

    Raises
    ------
    SpecError
        (``final_response``) ``pathwise`` asked for a problem whose callbacks cut the gradient.
    """
    from mfgsolve.oracles.ddpg import DDPGOracle
    from mfgsolve.oracles.pathwise import PathwiseOracle, differentiable
    from mfgsolve.presets import FINAL_RESPONSE_UPDATES

    smooth = differentiable(problem) if kind in ("auto", "pathwise") else False
    if kind == "pathwise" and not smooth:
        raise SpecError("final_response", "pathwise: the problem's callbacks do not pass gradients (use ddpg or auto)")
    name = "pathwise" if kind == "pathwise" or (kind == "auto" and smooth) else "ddpg"
    n = FINAL_RESPONSE_UPDATES[name] if updates is None else int(updates)
    oracle: Oracle = (PathwiseOracle(seed=seed, updates=n, progress=False) if name == "pathwise"
                      else DDPGOracle(seed=seed, updates=n, progress=False))
    return oracle, {"oracle": name, "updates": n, "seed": seed}


def exploitability_by_oracle(
    problem: Problem, policy: Policy, oracle: Oracle, *, n: int, generator: torch.Generator,
    particles: int | None = None,
) -> Gap:
    r"""Exploitability against a strong learned best response, for problems with no exact one.

    The population plays ``policy`` (its own flow :math:`m^\pi`, ``particles`` particles: by default the
    problem's own flow size); ``oracle`` (give it a long budget, and state it) trains a best response to
    :math:`m^\pi`; the difference of costs is estimated on common random numbers with ``n`` agents facing
    that flow. Since the trained response is at best optimal, the value is a **lower bound** on the true
    exploitability, up to its Monte-Carlo standard error ``se``. A mixture (fictitious play's average policy)
    is the weighted average of its components' gaps, the ``n`` agents shared in proportion to the weights.
    """
    from mfgsolve.evaluation import policy_cost
    from mfgsolve.population import propagate
    from mfgsolve.problem import default_particles

    size = default_particles(problem) if particles is None else particles
    own = propagate(problem, policy, None, kind="particles", n=size, generator=generator)
    best, _ = oracle.best_response(problem, own)
    value, se = _gap_to(problem, policy, best, own, n=n, generator=generator)
    J_best = policy_cost(problem, best, own, n=n, generator=generator).mean
    return Gap(value=value, J_policy=J_best + value, J_best=J_best, se=se)
