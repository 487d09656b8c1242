"""Wasserstein distances against closed forms and independent implementations."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import scipy.stats
import torch

import mfgsolve as mfg


def _pflow(x: np.ndarray, w: np.ndarray | None = None) -> mfg.ParticleFlow:
    """A one-time (T = 0) particle flow from samples (N, n)."""
    xt = torch.as_tensor(x, dtype=torch.float64)[None]
    if w is None:
        return mfg.ParticleFlow.uniform(xt)
    return mfg.ParticleFlow(xt, torch.as_tensor(w / w.sum(), dtype=torch.float64)[None])


def test_1d_w1_matches_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 1)), rng.gamma(2.0, size=(200, 1))
    wx, wy = rng.uniform(size=300), rng.uniform(size=200)
    got = mfg.wasserstein(_pflow(x, wx), _pflow(y, wy), p=1)[0]
    want = scipy.stats.wasserstein_distance(x[:, 0], y[:, 0], wx, wy)
    assert got == pytest.approx(want, rel=1e-10)


def test_1d_w2_matches_quantile_formula():
    rng = np.random.default_rng(1)
    x, y = np.sort(rng.normal(size=500)), np.sort(rng.normal(2.0, 3.0, size=500))
    # equal sizes and weights: the optimal plan matches order statistics
    want = np.sqrt(np.mean((x - y) ** 2))
    assert mfg.wasserstein(_pflow(x[:, None]), _pflow(y[:, None]))[0] == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_1d_uniform_equal_size_matches_pot(p):
    # the sorted-samples path (equal sizes, equal weights) against POT's general quantile solver
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(4000, 1)), rng.standard_t(3.0, size=(4000, 1)) + 0.1
    w = np.full(4000, 1.0 / 4000)
    want = ot.wasserstein_1d(x[:, 0], y[:, 0], w, w, p=p) ** (1.0 / p)
    assert mfg.wasserstein(_pflow(x), _pflow(y), p=p)[0] == pytest.approx(want, rel=1e-12)


def test_nd_exact_on_translates_is_the_shift():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 3))
    shift = np.array([0.3, -1.0, 2.0])
    # a translate is optimally transported by the translation: W_p = |shift| for every p
    for p in (1, 2):
        d = mfg.wasserstein(_pflow(x), _pflow(x + shift), p=p)[0]
        assert d == pytest.approx(np.linalg.norm(shift), rel=1e-9)


def test_nd_sliced_on_translates():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    shift = np.array([0.3, -1.0, 2.0])
    d = mfg.wasserstein(_pflow(x), _pflow(x + shift), method="sliced", n_projections=4000)[0]
    # sliced W2 of a translate: E_theta[(theta . v)^2]^(1/2) = |v| / sqrt(d) for theta uniform on the sphere;
    # with 4000 projections the Monte Carlo error of E[(theta.v)^2] is about 1.4 / sqrt(4000) relative (< 3%)
    assert d == pytest.approx(np.linalg.norm(shift) / np.sqrt(3), rel=0.05)


def test_nd_subsampled_exact_matches_full_emd():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(300, 2)), rng.normal(1.0, 1.0, size=(300, 2))
    full = np.sqrt(ot.emd2(np.full(300, 1 / 300), np.full(300, 1 / 300), ot.dist(x, y)))
    assert mfg.wasserstein(_pflow(x), _pflow(y), max_points=300)[0] == pytest.approx(full, rel=1e-9)


def test_gaussian_w2_against_pot_and_1d_closed_form():
    rng = np.random.default_rng(5)
    for n in (1, 2, 4):
        X, Y = rng.normal(size=(n, n)), rng.normal(size=(n, n))
        C1, C2 = X @ X.T + 0.1 * np.eye(n), Y @ Y.T + 0.1 * np.eye(n)
        m1, m2 = rng.normal(size=n), rng.normal(size=n)
        want = ot.gaussian.bures_wasserstein_distance(m1, m2, C1, C2)
        assert mfg.gaussian_w2(m1, C1, m2, C2) == pytest.approx(want, rel=1e-9)
    # 1-D: W2(N(a, s^2), N(b, r^2))^2 = (a - b)^2 + (s - r)^2
    assert mfg.gaussian_w2(np.array([1.0]), np.array([[4.0]]), np.array([-1.0]), np.array([[1.0]])) == pytest.approx(
        np.sqrt(4.0 + 1.0), rel=1e-14
    )


def test_gaussian_w2_has_no_square_root_floor():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(3, 3))
    C = X @ X.T + np.eye(3)
    m = rng.normal(size=3)
    dm = np.array([1e-12, 0.0, 0.0])
    # equal covariances: W2 is the mean shift, to rounding; the trace formula would report ~1e-8 here
    assert mfg.gaussian_w2(m, C, m + dm, C) == pytest.approx(1e-12, rel=1e-3)


def test_particles_approach_gaussian_closed_form():
    rng = np.random.default_rng(7)
    n = 20_000
    a = rng.normal(0.0, 1.0, size=(n, 1))
    b = rng.normal(1.0, 2.0, size=(n, 1))
    # W2(N(0,1), N(1,4)) = sqrt(1 + 1); empirical W2 of n samples errs by O(n^-1/2 log n) in 1-D
    assert mfg.wasserstein(_pflow(a), _pflow(b))[0] == pytest.approx(np.sqrt(2.0), abs=0.05)


def test_flow_distance_is_the_max_over_time():
    mean1 = np.zeros((3, 1))
    mean2 = np.array([[0.0], [2.0], [1.0]])
    cov = np.ones((3, 1, 1))
    f1, f2 = mfg.GaussianFlow.from_numpy(mean1, cov), mfg.GaussianFlow.from_numpy(mean2, cov)
    np.testing.assert_allclose(mfg.wasserstein(f1, f2), [0.0, 2.0, 1.0], atol=1e-15)
    assert mfg.flow_distance(f1, f2) == pytest.approx(2.0)


def test_mixed_kinds_refused():
    g = mfg.GaussianFlow.from_numpy(np.zeros((1, 1)), np.ones((1, 1, 1)))
    with pytest.raises(TypeError):
        mfg.wasserstein(g, _pflow(np.zeros((5, 1))))


def test_gaussian_mixing_keeps_the_mixture_moments():
    rng = np.random.default_rng(8)
    m1, m2 = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    C = np.stack([np.eye(2), 2 * np.eye(2)])
    f = mfg.GaussianFlow.from_numpy(m1, C).mix(mfg.GaussianFlow.from_numpy(m2, C[::-1].copy()), 0.25)
    # samples of the true mixture: its mean and covariance are what the mixed flow carries
    n = 400_000
    pick = rng.uniform(size=n) < 0.25
    z = rng.normal(size=(n, 2))
    t = 1
    s = np.where(pick[:, None], m2[t] + z * np.sqrt(C[::-1][t][0, 0]), m1[t] + z * np.sqrt(C[t][0, 0]))
    np.testing.assert_allclose(f.mean(t).numpy(), s.mean(0), atol=0.01)  # SE ~ 1.5/sqrt(n) = 0.0024
    np.testing.assert_allclose(f.cov(t).numpy(), np.cov(s.T), atol=0.03)  # SE of a variance ~ 2.3*sqrt(2/n)


def test_particle_mixing_and_resampling():
    g = torch.Generator().manual_seed(0)
    a = mfg.ParticleFlow.uniform(torch.zeros(2, 100, 1, dtype=torch.float64))
    b = mfg.ParticleFlow.uniform(torch.ones(2, 50, 1, dtype=torch.float64))
    mix = a.mix(b, 0.3)
    assert mix.size == 150
    np.testing.assert_allclose(mix.means().numpy(), 0.3)
    r = mix.resample(1000, g)
    # systematic resampling puts round(1000 * 0.3) particles on b, give or take one
    assert abs(float(r.x[0].sum()) - 300) <= 1
