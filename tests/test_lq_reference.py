"""The exact LQ-MFG reference against independent routes.

Routes: (1) backward value function vs forward moments for the same policy; (2) first-order optimality of
the best response, by autograd through a torch forward-moment cost written here; (3) Monte Carlo with the
torch problem (standard errors stated); (4) scipy's discrete algebraic Riccati equation at long horizon;
(5) iterating the Picard map where rho < 1, and the fixed-point equation itself where rho > 1;
(6) the exploitability of the equilibrium (zero) and of perturbed policies (positive).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from lq_specs import MONOTONE, random_spec
from lq_torch import forward, tensors

import mfgsolve as mfg
from mfgsolve.lq import reference as lqref

SPECS = [
    random_spec(0, n=1, p=1, T=6),
    random_spec(1, n=2, p=2, T=8),
    random_spec(2, n=3, p=2, T=5),
    random_spec(3, n=2, p=1, T=10, coupling=1.5),  # strong coupling
]


def test_lq_1d_matches_issue_figures():
    # The issue states J* = 8.761918 and rho(M) = 0.4723 for lq-1d (values independent of this code).
    ref = mfg.load_problem("lq-1d").reference()
    assert ref.J == pytest.approx(8.761918, abs=5e-7)
    assert ref.rho == pytest.approx(0.4723, abs=5e-5)


def test_monotone_instance_rho():
    # The issue: rho(M) is "about 2.99" for the monotone instance.
    assert mfg.LQProblem.from_spec(MONOTONE).reference().rho == pytest.approx(2.99, abs=0.01)


@pytest.mark.parametrize("spec", SPECS)
def test_value_function_equals_forward_moments(spec):
    coef = mfg.LQProblem.from_spec(spec).coef
    m = np.random.default_rng(7).normal(size=(coef.T + 1, coef.n))
    br = lqref.best_response(coef, m)
    # Two algebraically independent evaluations of the same expected cost: agreement to rounding.
    assert br.cost == pytest.approx(lqref.policy_cost(coef, br.K, br.k, m), rel=1e-11, abs=1e-11)


def _torch_cost(coef, K, k, m):
    """Expected cost of a_t = -K_t x - k_t against the mean flow m, by forward moments in torch (tests/lq_torch)."""
    return forward(tensors(coef), coef.T, K, k, torch.as_tensor(m, dtype=torch.float64))[0]


def _mc_costs(pb, actor, m, x, g, on_step=None):
    """Total cost of each agent in ``x`` playing ``actor`` against the frozen flow ``m`` (plain simulation)."""
    cost = torch.zeros(x.shape[0], dtype=torch.float64)
    for t in range(pb.T):
        a = actor.act(t, x, m)
        cost -= pb.reward(t, x, a, m)
        x = pb.step(t, x, a, m, g)
        if on_step is not None:
            on_step(t + 1, x)
    return cost - pb.terminal_reward(x, m), x


@pytest.mark.parametrize("spec", SPECS)
def test_best_response_is_stationary_and_optimal(spec):
    coef = mfg.LQProblem.from_spec(spec).coef
    m = np.random.default_rng(3).normal(size=(coef.T + 1, coef.n))
    br = lqref.best_response(coef, m)
    K = torch.tensor(br.K, requires_grad=True)
    k = torch.tensor(br.k, requires_grad=True)
    cost = _torch_cost(coef, K, k, m)
    assert cost.item() == pytest.approx(br.cost, rel=1e-11, abs=1e-11)
    gK, gk = torch.autograd.grad(cost, (K, k))
    # The gradient of a smooth cost at its minimiser is zero; 1e-8 is rounding on O(1..100) entries.
    assert float(gK.abs().max()) < 1e-8 and float(gk.abs().max()) < 1e-8
    rng = np.random.default_rng(11)
    for _ in range(5):  # every perturbation costs more
        dK, dk = 0.05 * rng.normal(size=br.K.shape), 0.05 * rng.normal(size=br.k.shape)
        assert lqref.policy_cost(coef, br.K + dK, br.k + dk, m) > br.cost


@pytest.mark.parametrize("spec", [SPECS[1], SPECS[3]])
def test_monte_carlo_cost_and_mean_flow(spec):
    pb = mfg.LQProblem.from_spec(spec)
    ref = pb.reference()
    m = mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)
    pi = mfg.AffinePolicy(ref.K, ref.k)
    g = torch.Generator().manual_seed(0)
    n = 200_000

    def mean_within_5_se(t, x):
        se = x.std(0) / n**0.5
        assert torch.all((x.mean(0) - torch.as_tensor(ref.mean[t])).abs() < 5 * se)

    cost, x = _mc_costs(pb, pi, m, pb.sample_x0(n, g), g, on_step=mean_within_5_se)
    se = float(cost.std() / n**0.5)
    assert abs(float(cost.mean()) - ref.J) < 5 * se, (float(cost.mean()), ref.J, se)
    # the covariance flow too, at the horizon (relative error of a sample covariance ~ sqrt(2/n))
    np.testing.assert_allclose(np.cov(x.numpy().T).reshape(pb.n, pb.n), ref.cov[-1], rtol=0.02, atol=0.02)


def test_long_horizon_riccati_matches_dare():
    spec = random_spec(5, n=3, p=2, T=400, coupling=0.0)
    spec.update(QT=np.zeros((3, 3)).tolist(), A=(0.9 * np.eye(3)).tolist())
    coef = mfg.LQProblem.from_spec(spec).coef
    ric = lqref.riccati(coef)
    P = scipy.linalg.solve_discrete_are(coef.A, coef.B, coef.Q, coef.R, s=coef.N)
    K = np.linalg.solve(coef.R + coef.B.T @ P @ coef.B, coef.B.T @ P @ coef.A + coef.N.T)
    # A is stable (spectral radius 0.9 plus noise), so P_0 converges geometrically; 400 steps reach rounding.
    np.testing.assert_allclose(ric.P[0], P, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ric.K[0], K, rtol=1e-9, atol=1e-9)


CONTRACTIVE = [SPECS[0], SPECS[2], random_spec(1, coupling=0.15), random_spec(6, n=3, p=3, T=6, coupling=0.2)]


@pytest.mark.parametrize("spec", CONTRACTIVE)
def test_iterating_the_picard_map_reaches_the_linear_solve(spec):
    pb = mfg.LQProblem.from_spec(spec)
    ref = pb.reference()
    assert ref.rho < 1
    coef, m = pb.coef, np.zeros((pb.T + 1, pb.n))
    for _ in range(2000):
        br = lqref.best_response(coef, m)
        m_new = lqref.mean_flow(coef, br.K, br.k, m)
        if np.abs(m_new - m).max() < 1e-14:
            break
        m = m_new
    np.testing.assert_allclose(m_new, ref.mean, atol=1e-11)


@pytest.mark.parametrize("spec", [MONOTONE, SPECS[3], random_spec(9, coupling=3.0)])
def test_equilibrium_solves_the_fixed_point_equation(spec):
    pb = mfg.LQProblem.from_spec(spec)
    ref = pb.reference()
    br = lqref.best_response(pb.coef, ref.mean)
    # m* = mu(BR(m*)), checked by the definition whatever rho is (including rho > 1)
    np.testing.assert_allclose(lqref.mean_flow(pb.coef, br.K, br.k, ref.mean), ref.mean, atol=1e-10)
    np.testing.assert_allclose(br.k, ref.k, atol=1e-12)
    np.testing.assert_allclose(ref.cov, lqref.cov_flow(pb.coef, br.K), atol=1e-14)


@pytest.mark.parametrize("spec", [SPECS[1], MONOTONE, random_spec(9, coupling=3.0)])
def test_rho_is_the_growth_rate_of_picard_differences(spec):
    pb = mfg.LQProblem.from_spec(spec)
    ref = pb.reference()
    coef = pb.coef
    rng = np.random.default_rng(0)
    # differences of iterates evolve by M alone: d_{k+1} = M d_k; their growth rate is rho(M)
    d = rng.normal(size=(pb.T + 1, pb.n))
    norms = []
    F = lambda m: lqref.mean_flow(coef, *(lambda b: (b.K, b.k))(lqref.best_response(coef, m)), m)  # noqa: E731
    base = ref.mean
    # power iteration; 600 steps also separate the close eigenvalues of the monotone instance (2.99 vs 2.93)
    for _ in range(600):
        d = F(base + d) - F(base)
        norms.append(np.linalg.norm(d))
        d = d / norms[-1]
    slope = np.mean(np.log(norms[-20:]))
    assert np.exp(slope) == pytest.approx(ref.rho, rel=1e-3)


def test_exploitability_of_equilibrium_is_zero_and_positive_elsewhere():
    pb = mfg.LQProblem.from_spec(SPECS[1])
    ref = pb.reference()
    e = mfg.exploitability(pb, mfg.AffinePolicy(ref.K, ref.k))
    assert abs(e.value) < 1e-10 * abs(e.J_best)
    assert e.J_best == pytest.approx(ref.J, rel=1e-12)
    rng = np.random.default_rng(1)
    for _ in range(3):
        off = mfg.AffinePolicy(ref.K + 0.1 * rng.normal(size=ref.K.shape), ref.k + 0.1 * rng.normal(size=ref.k.shape))
        assert mfg.exploitability(pb, off).value > 1e-6


def test_mixture_exploitability_matches_monte_carlo():
    pb = mfg.LQProblem.from_spec(SPECS[1])
    ref = pb.reference()
    rng = np.random.default_rng(2)
    comps = [mfg.AffinePolicy(ref.K + 0.2 * rng.normal(size=ref.K.shape), ref.k + 0.3 * rng.normal(size=ref.k.shape)) for _ in range(3)]
    mix = mfg.MixturePolicy(tuple(comps), (0.5, 0.3, 0.2))
    e = mfg.exploitability(pb, mix)
    # Monte Carlo of the population playing the mixture (self-consistent flow), then the cost of the mixture
    g = torch.Generator().manual_seed(1)
    n = 200_000
    own = mfg.propagate(pb, mix, None, n=n, generator=g)
    m_pi = lqref.self_consistent_mean(pb.coef, [c.K for c in comps], [c.k for c in comps], mix.weights)
    sd = torch.stack([own.cov(t).diagonal().sqrt() for t in range(pb.T + 1)]).numpy()
    assert np.all(np.abs(own.means().numpy() - m_pi) < 5 * sd / n**0.5)  # 5 standard errors per coordinate
    frozen = mfg.GaussianFlow.from_numpy(m_pi, np.zeros((pb.T + 1, pb.n, pb.n)))
    actor = mix.for_population(n, g)
    cost, _ = _mc_costs(pb, actor, frozen, pb.sample_x0(n, g), g)
    se = float(cost.std() / n**0.5)
    assert abs(float(cost.mean()) - e.J_policy) < 5 * se
