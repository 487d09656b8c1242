"""Parts of the DDPG oracle checked against closed forms: encoders, exploration noises, replay, MC evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mfgsolve as mfg
from mfgsolve.learn.encoders import ENCODERS, flow_moments, make_encoder
from mfgsolve.learn.exploration import GaussianNoise, OrnsteinUhlenbeckNoise, ParameterNoise, PopulationBonus
from mfgsolve.learn.networks import TIME_FEATURES, Actor, init_parameters, time_features, with_step_onehot
from mfgsolve.learn.replay import ReplayBuffer, ReplaySample
from mfgsolve.lq import reference as lqref


def _encoder(kind: str, n: int, **kw):
    g = torch.Generator().manual_seed(0)
    enc = make_encoder(kind, n, loc=torch.zeros(n), scale=torch.ones(n), out_dim=3, hidden=8, activation="silu",
                       bins=kw.get("bins", 8), particles=kw.get("particles", 16), heads=2, generator=g)
    init_parameters(enc, g)
    return enc


def _gaussian_flow(mean: list[float], cov: list[list[float]], T: int = 2) -> mfg.GaussianFlow:
    return mfg.GaussianFlow.from_numpy(np.tile(mean, (T + 1, 1)), np.tile(cov, (T + 1, 1, 1)))


def test_moment_encoder_reads_mean_and_std() -> None:
    m = _gaussian_flow([1.0, -2.0], [[4.0, 0.3], [0.3, 0.25]])
    raw = _encoder("moments", 2).raw(m, 1)
    assert torch.allclose(raw, torch.tensor([1.0, -2.0, 2.0, 0.5]))  # exact: loc 0, scale 1


def test_particle_moments_are_weighted() -> None:
    x = torch.tensor([[[0.0], [1.0], [3.0]]], dtype=torch.float64).expand(2, -1, -1)
    w = torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64).expand(2, -1)
    mean, cov = flow_moments(mfg.ParticleFlow(x, w), 0)
    assert float(mean) == pytest.approx(1.0) and float(cov) == pytest.approx(0.5 * 1 + 0.25 * 0 + 0.25 * 4)


def test_histogram_1d_of_particles_is_exact() -> None:
    # bins of width 1 on [-4, 4] (edges -3..3 inside); weights land in known bins
    x = torch.tensor([[[-10.0], [-0.5], [0.5], [0.7], [10.0]]], dtype=torch.float64).expand(2, -1, -1)
    m = mfg.ParticleFlow.uniform(x.clone())
    h = _encoder("histogram", 1, bins=8).raw(m, 0)
    expected = torch.tensor([0.2, 0, 0, 0.2, 0.4, 0, 0, 0.2], dtype=torch.float32)
    assert torch.allclose(h, expected)


def test_histogram_of_gaussian_matches_normal_probabilities() -> None:
    """1-D: the fixed base points give bin probabilities within Monte-Carlo error of the normal CDF."""
    m = _gaussian_flow([0.0], [[1.0]])
    enc = _encoder("histogram", 1, bins=8)
    h = enc.raw(m, 0).double().numpy()
    edges = np.array([-np.inf, -3, -2, -1, 0, 1, 2, 3, np.inf])
    cdf = np.array([0.5 * (1 + math.erf(e / math.sqrt(2))) if np.isfinite(e) else float(e > 0) for e in edges])
    p = np.diff(cdf)
    k = enc.base.shape[0]
    se = np.sqrt(p * (1 - p) / k)
    assert np.all(np.abs(h - p) <= 5 * se + 1e-12)  # 5 standard errors of a binomial proportion


def test_histogram_2d_and_marginals_sum_to_one() -> None:
    m2 = _gaussian_flow([0.5, -0.5], [[1.0, 0.5], [0.5, 1.0]])
    h2 = _encoder("histogram", 2, bins=4).raw(m2, 0)
    assert h2.shape == (16,) and float(h2.sum()) == pytest.approx(1.0)
    m3 = _gaussian_flow([0.0, 0.0, 0.0], np.eye(3).tolist())
    h3 = _encoder("histogram", 3, bins=4).raw(m3, 0)
    assert h3.shape == (12,) and torch.allclose(h3.view(3, 4).sum(1), torch.ones(3))


@pytest.mark.parametrize("kind", ["deepsets", "attention"])
def test_set_encoders_are_permutation_invariant(kind: str) -> None:
    enc = _encoder(kind, 2)
    raw = torch.randn(3, 16, 2, generator=torch.Generator().manual_seed(1))
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(2))
    out, out_perm = enc(raw), enc(raw[:, perm])
    assert out.shape == (3, 3)
    assert torch.allclose(out, out_perm, atol=1e-6)  # float32 sums in another order


@pytest.mark.parametrize("kind", ENCODERS)
def test_encoders_read_gaussian_points_exactly(kind: str) -> None:
    """Gaussian flows are read at mean + cov^(1/2) z for fixed z: two reads agree, shifted means shift points."""
    enc = _encoder(kind, 1)
    m, m_shift = _gaussian_flow([0.0], [[1.0]]), _gaussian_flow([1.0], [[1.0]])
    assert torch.equal(enc.raw(m, 0), enc.raw(m, 1))
    if kind in ("deepsets", "attention"):
        assert torch.allclose(enc.raw(m_shift, 0), enc.raw(m, 0) + 1.0)


@pytest.mark.parametrize("T", [1, 20, 250, 5000])
def test_step_onehot_reads_every_step_back_from_the_time_features(T: int) -> None:
    t = torch.arange(T + 1)
    s = torch.cat([torch.zeros(T + 1, 1), time_features(t, T, T + 1)], dim=1)
    out = with_step_onehot(s, 1, T)
    assert torch.equal(out[:, : 1 + TIME_FEATURES], s)
    assert torch.equal(out[:, 1 + TIME_FEATURES :], torch.eye(T + 1))
    assert with_step_onehot(s, 1, None) is s


def test_actor_with_step_onehot_holds_any_per_step_affine_policy() -> None:
    """The exact LQ best response a_t = -K_t x - k_t, with gains that jump from step to step, is one setting of the
    actor's skip weights once it reads the step: its input is [x, tf, x (x) tf] with tf = [t/T, 1/(T-t+1), onehot]."""
    T, n = 6, 1
    g = torch.Generator().manual_seed(3)
    K, k = torch.rand(T + 1, generator=g) * 3, torch.randn(T + 1, generator=g)
    actor = Actor(n, 1, _encoder("moments", n), hidden=8, activation="silu", bounded=False, skip=True, steps=T)
    init_parameters(actor, g)
    tf = TIME_FEATURES + T + 1
    with torch.no_grad():
        actor.head[-1].weight.zero_()
        actor.head[-1].bias.zero_()
        w = torch.zeros(1, n + tf + n * tf)
        w[0, n + TIME_FEATURES : n + tf] = -k  # onehot -> offset
        w[0, n + tf + TIME_FEATURES :] = -K  # x * onehot -> gain
        actor.skip.weight.copy_(w)
    x = torch.randn(T + 1, 5, generator=g)
    raw = _encoder("moments", n).raw(_gaussian_flow([0.0], [[1.0]], T), 0)[None]
    for t in range(T + 1):
        s = torch.cat([x[t, :, None], time_features(t, T, 5)], dim=1)
        a = actor(s, raw, torch.zeros(5, dtype=torch.int64)).ravel()
        assert torch.allclose(a, -K[t] * x[t] - k[t], atol=1e-6)


def test_gaussian_noise_has_its_standard_deviation() -> None:
    g = torch.Generator().manual_seed(0)
    n = 200_000
    a = GaussianNoise(0.3).explore(torch.zeros(n, 1), actor_fn=None, scale=0.5, generator=g)  # type: ignore[arg-type]
    sd = float(a.std())
    assert abs(sd - 0.15) < 5 * 0.15 / math.sqrt(2 * n)  # s.e. of a sample sd: sigma / sqrt(2n)


def test_ou_noise_variance_follows_its_recursion() -> None:
    r"""Var X_k = sigma^2 (1 - (1-theta)^(2k)) from X_0 = 0 (the normalised OU recursion)."""
    sigma, theta, n = 0.4, 0.2, 100_000
    noise = OrnsteinUhlenbeckNoise(sigma, theta)
    g = torch.Generator().manual_seed(0)
    noise.reset(n, 1, None, g)  # type: ignore[arg-type]
    for k in range(1, 6):
        a = noise.explore(torch.zeros(n, 1), actor_fn=None, scale=1.0, generator=g)  # type: ignore[arg-type]
        var = sigma**2 * (1 - (1 - theta) ** (2 * k))
        assert abs(float(a.var()) - var) < 5 * var * math.sqrt(2 / n)  # s.e. of a sample variance


def test_parameter_noise_adapts_towards_the_target_distance() -> None:
    actor = torch.nn.Linear(2, 1)
    init_parameters(actor, torch.Generator().manual_seed(0))
    s = torch.randn(256, 2, generator=torch.Generator().manual_seed(1))
    noise = ParameterNoise(sigma=10.0, initial=0.01)  # target far above the distance: sigma grows
    noise.reset(1, 1, actor, torch.Generator().manual_seed(2))
    noise.adapt(actor, lambda net: net(s), scale=1.0)
    assert noise.param_sigma == pytest.approx(0.01 * 1.01)
    noise = ParameterNoise(sigma=1e-6, initial=0.01)  # target below: sigma shrinks
    noise.reset(1, 1, actor, torch.Generator().manual_seed(2))
    noise.adapt(actor, lambda net: net(s), scale=1.0)
    assert noise.param_sigma == pytest.approx(0.01 / 1.01)
    a = noise.explore(torch.zeros(256, 1), actor_fn=lambda net: net(s), scale=1.0, generator=None)  # type: ignore[arg-type]
    assert not torch.allclose(a, actor(s))  # the perturbed actor acts


def test_population_bonus_formula() -> None:
    bonus = PopulationBonus(0.1, beta=2.0).bonus(torch.tensor([[0.0, 0.0], [1.0, 1.0], [30.0, 0.0]]))
    assert torch.allclose(bonus, torch.tensor([0.0, 2.0 * (1 - math.exp(-1.0)), 2.0]))


def test_replay_ring_buffer_overwrites_oldest() -> None:
    buf = ReplayBuffer(5, 1, 1)

    def batch(v: float, k: int) -> ReplaySample:
        z = torch.full((k,), v)
        return ReplaySample(t=torch.zeros(k, dtype=torch.int64), x=z[:, None], a=z[:, None], r=z, x_next=z[:, None],
                            done=z, bonus=z, flow=torch.zeros(k, dtype=torch.int64), k=torch.ones(k, dtype=torch.int64))

    buf.add(batch(1.0, 3))
    buf.add(batch(2.0, 4))
    assert len(buf) == 5 and buf.ptr == 2
    assert sorted(buf.state_dict()["r"].tolist()) == [1.0, 2.0, 2.0, 2.0, 2.0]  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- evaluation


def _lq_setup():
    pb = mfg.load_problem("lq-1d")
    ref = pb.reference()
    return pb, ref, mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)


def test_policy_cost_matches_exact_cost() -> None:
    pb, ref, m = _lq_setup()
    est = mfg.policy_cost(pb, mfg.AffinePolicy(ref.K, ref.k), m, n=20_000, generator=torch.Generator().manual_seed(0))
    assert abs(est.mean - ref.J) < 4 * est.se  # exact J* (Riccati) within 4 Monte-Carlo standard errors


def test_cost_difference_uses_common_random_numbers() -> None:
    pb, ref, m = _lq_setup()
    exact = mfg.AffinePolicy(ref.K, ref.k)
    same = mfg.cost_difference(pb, exact, exact, m, n=1000, generator=torch.Generator().manual_seed(0))
    assert same.mean == 0.0 and same.se == 0.0  # identical policies on identical randomness
    K2 = ref.K * 0.9
    other = mfg.AffinePolicy(K2, ref.k)
    d = mfg.cost_difference(pb, other, exact, m, n=20_000, generator=torch.Generator().manual_seed(1))
    truth = lqref.policy_cost(pb.coef, K2, ref.k, ref.mean) - ref.J
    assert abs(d.mean - truth) < 4 * d.se
    plain = mfg.policy_cost(pb, other, m, n=20_000, generator=torch.Generator().manual_seed(1))
    assert d.se < plain.se / 10  # what common random numbers buy


def test_br_check_of_the_exact_oracle_is_zero() -> None:
    pb, ref, _ = _lq_setup()
    res = mfg.br_check(pb, mfg.ExactLQOracle(), min_agents=1000, max_agents=1000)
    assert res.gap == 0.0 and res.relative_gap == 0.0 and res.J_best == pytest.approx(ref.J, rel=1e-12)
