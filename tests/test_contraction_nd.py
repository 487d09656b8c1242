"""The contraction check on particle flows in several dimensions: estimators against closed forms and each
other, the sampling floor, and the exact oracle's outer loop measuring rho(M) through particles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ot
import pytest
import torch
from lq_specs import random_spec

import mfgsolve as mfg

ROOT = Path(__file__).resolve().parents[1]


def _cloud(x: np.ndarray) -> mfg.ParticleFlow:
    return mfg.ParticleFlow.uniform(torch.as_tensor(x, dtype=torch.float64)[None])


def _gaussian_pair(n: int, seed: int, size: int) -> tuple[np.ndarray, ...]:
    """Two Gaussians in R^n and samples of each drawn from one standard normal sample (paired draws)."""
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    C1, C2 = X @ X.T / n + 0.2 * np.eye(n), Y @ Y.T / n + 0.2 * np.eye(n)
    m1, m2 = rng.normal(size=n), rng.normal(size=n)
    z = rng.normal(size=(size, n))
    return m1, C1, m2, C2, m1 + z @ np.linalg.cholesky(C1).T, m2 + z @ np.linalg.cholesky(C2).T


@pytest.mark.parametrize("n", [2, 3])
def test_moments_estimator_approaches_the_gaussian_closed_form(n):
    m1, C1, m2, C2, x, y = _gaussian_pair(n, seed=n, size=200_000)
    want = mfg.gaussian_w2(m1, C1, m2, C2)
    got = mfg.wasserstein(_cloud(x), _cloud(y), method="moments")[0]
    # the sample moments err by O(N^-1/2): two sampling floors of the distance bound the difference
    floor = mfg.resolution(_cloud(x), method="moments")[0] + mfg.resolution(_cloud(y), method="moments")[0]
    assert abs(got - want) <= floor
    assert floor < 0.02 * want


@pytest.mark.parametrize("n", [2, 3])
def test_coupling_bounds_the_closed_form_from_above_and_is_exact_on_shifts(n):
    m1, C1, m2, C2, x, y = _gaussian_pair(n, seed=10 + n, size=200_000)
    want = mfg.gaussian_w2(m1, C1, m2, C2)
    coupled = mfg.wasserstein(_cloud(x), _cloud(y), method="coupling")[0]
    floor = mfg.resolution(_cloud(x), method="coupling")[0] + mfg.resolution(_cloud(y), method="coupling")[0]
    assert coupled >= want - floor
    # a shift: the synchronous coupling is the optimal plan, W2 = |shift| to rounding
    shift = np.linspace(0.1, 0.3, n)
    assert mfg.wasserstein(_cloud(x), _cloud(x + shift), method="coupling")[0] == pytest.approx(
        np.linalg.norm(shift), rel=1e-12
    )


@pytest.mark.parametrize("n", [2, 3])
def test_lower_bound_exact_coupling_order_on_small_clouds(n):
    # on any two clouds: Gelbrich (moments) <= exact W2 (full EMD) <= any coupling, here the index coupling
    m1, C1, m2, C2, x, y = _gaussian_pair(n, seed=20 + n, size=300)
    rng = np.random.default_rng(0)
    y = y + 0.3 * rng.normal(size=y.shape)  # not a deterministic image of x
    w = np.full(300, 1 / 300)
    exact = float(np.sqrt(ot.emd2(w, w, ot.dist(x, y))))
    lower = mfg.wasserstein(_cloud(x), _cloud(y), method="moments")[0]
    upper = mfg.wasserstein(_cloud(x), _cloud(y), method="coupling")[0]
    assert lower <= exact * (1 + 1e-12)
    assert exact <= upper * (1 + 1e-12)
    assert mfg.wasserstein(_cloud(x), _cloud(y), method="exact", max_points=300)[0] == pytest.approx(exact, rel=1e-9)


def test_coupling_needs_paired_clouds():
    with pytest.raises(ValueError, match="equally many"):
        mfg.wasserstein(_cloud(np.zeros((5, 2))), _cloud(np.zeros((6, 2))), method="coupling")


def test_moments_compare_particles_with_a_gaussian_flow():
    x = np.random.default_rng(0).normal(size=(50_000, 2))
    g = mfg.GaussianFlow.from_numpy(np.array([[0.5, 0.0]]), np.eye(2)[None])
    d = mfg.wasserstein(_cloud(x), g, method="moments")[0]
    assert d == pytest.approx(0.5, abs=mfg.resolution(_cloud(x), method="moments")[0])


def test_resolution_is_about_twice_the_standard_error_of_the_moments():
    # N(0, I_2), N points: the mean errs by sqrt(2 / N) in rms, the covariance's square root (Bures) by about
    # sqrt(3 / (4 N)) (entries of S^(1/2) - I: variances 1/(2N) on the diagonal, 1/(4N) off it, both halves);
    # two independent halves lie about twice the full sample's error apart: 2 sqrt((2 + 3/4) / N)
    N = 131072
    x = torch.randn(4, N, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    floor = mfg.resolution(mfg.ParticleFlow.uniform(x), method="moments")
    want = 2 * np.sqrt((2 + 0.75) / N)
    # batch means with 16 batches: a chi statistic with 15 degrees of freedom per coordinate (~12% rel. sd)
    assert np.all((floor > 0.6 * want) & (floor < 1.4 * want))


def test_resolution_of_the_exact_estimator_is_its_subsampling_floor():
    x = torch.randn(1, 40_000, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    flow = mfg.ParticleFlow.uniform(x)
    # 2000-point subsamples of one 3-D law lie ~0.3 apart: the floor the outer loop used to measure
    assert mfg.resolution(flow, method="exact")[0] > 0.1
    assert mfg.resolution(flow, method="moments")[0] < 0.05
    assert mfg.resolution(mfg.GaussianFlow.from_numpy(np.zeros((2, 3)), np.tile(np.eye(3), (2, 1, 1))))[1] == 0


def test_mixing_by_selection_keeps_size_pairs_and_weight():
    g = torch.Generator().manual_seed(0)
    a = mfg.ParticleFlow.uniform(torch.zeros(3, 100_000, 2, dtype=torch.float64))
    b = mfg.ParticleFlow.uniform(torch.ones(3, 100_000, 2, dtype=torch.float64))
    mix = a.mix(b, 0.3, g)
    assert mix.size == 100_000
    taken = mix.x[:, :, 0] == 1.0
    assert torch.equal(taken[0], taken[2])  # a particle's whole path comes from one side
    # binomial fraction: sd sqrt(0.21 / 1e5) = 0.0014
    assert float(taken[0].double().mean()) == pytest.approx(0.3, abs=0.006)
    assert mix.means()[0, 0].item() == pytest.approx(float(taken[0].double().mean()), rel=1e-12)


def _exact_particle_run(pb, seed=0, **kw):
    kw = {"stop": mfg.Stop(iterations=60, tol=1e-10), "flow": mfg.Particles(), **kw}
    return mfg.solve(pb, mfg.ExactLQOracle(), seed=seed, progress=False, **kw)


def _check_against_rho(res, rho):
    s = res.summary
    assert s.converged and s.diagnosis == "contracting"
    assert res.config["metric"] == "coupling"
    r = res.residuals
    assert r[0] / r[-1] > 1e6  # the rate is read over six decades and more
    assert s.contraction_rate == pytest.approx(rho, rel=0.1)
    reported = [h for h in res.history if h.bound is not None]
    assert len(reported) >= len(res.history) - 3
    # the a-posteriori bound (Banach term + sampling term) holds against the distance to the exact law
    for h in reported:
        assert h.bound >= h.reference_w2


def test_exact_oracle_on_particles_measures_rho_in_2d():
    pb = mfg.load_problem(ROOT / "bench" / "lq_2d_cross.toml")
    _check_against_rho(_exact_particle_run(pb, flow=mfg.Particles(16384)), pb.reference().rho)


def test_exact_oracle_on_particles_measures_rho_in_3d():
    pb = mfg.LQProblem.from_spec(random_spec(5, n=3, p=2, T=8, coupling=0.35))
    rho = pb.reference().rho
    assert 0.2 < rho < 0.9
    _check_against_rho(_exact_particle_run(pb, flow=mfg.Particles(16384), seed=1), rho)


def _verdict(gaps, floors, **kw):
    base = dict(converged=False, blew_up=False, decreasing_weights=False, scheme="picard")
    return mfg.diagnose(gaps, [0.5] * len(gaps), floors=floors, **{**base, **kw})


def test_a_gap_at_the_sampling_floor_is_resolution_not_the_map():
    flat = [1.0, 0.3, 0.11, 0.05, 0.048, 0.052, 0.047, 0.05, 0.049, 0.051]
    # the former n-D estimator: the gap stops at the floor of 2000-point subsamples
    v = _verdict(flat, [0.05] * len(flat), learned=False)
    assert v.diagnosis == "resolution" and "--scheme" not in v.advice
    # the same flat gap well above the floor: with an exact oracle the map stalls; with a learned one, its noise
    assert _verdict(flat, [1e-3] * len(flat), learned=False).diagnosis == "stalled"
    learned = _verdict(flat, [1e-3] * len(flat), learned=True)
    assert learned.diagnosis == "stalled" and "noise floor" in learned.advice
    assert "noise floor" not in _verdict(flat, [1e-3] * len(flat), learned=False).advice


def test_no_equilibrium_and_failed_responses_have_their_own_verdicts():
    flat = [1.0, 0.9, 1.1, 1.0, 0.95, 1.05, 1.0]
    v = _verdict(flat, None, learned=False, no_equilibrium="I - M is singular")
    assert v.diagnosis == "no-equilibrium" and "singular" in v.advice and "--scheme" not in v.advice
    v = _verdict(flat, None, learned=True, relative_exploitability=1e11)
    assert v.diagnosis == "failed-response" and "noise floor" not in v.advice


def test_damped_and_fp_on_particles_stop_on_the_gap():
    pb = mfg.load_problem(ROOT / "bench" / "lq_2d_cross.toml")
    # rate 1 - alpha + alpha rho(M) = 0.68: about 60 iterations from 1 to 1e-10
    damped = _exact_particle_run(pb, stop=mfg.Stop(iterations=100), flow=mfg.Particles(8192), scheme=mfg.Damped(0.5))
    assert damped.summary.converged and damped.history[-1].gap <= 1e-10
    assert damped.summary.mean_error < 0.02
    # a tiny damping weight makes every step tiny, never the gap: no false convergence
    tiny = _exact_particle_run(pb, stop=mfg.Stop(iterations=5), flow=mfg.Particles(8192), scheme=mfg.Damped(1e-12))
    assert not tiny.summary.converged and tiny.history[-1].residual < 1e-10 < tiny.history[-1].gap


def test_particle_runs_are_reproducible():
    pb = mfg.load_problem(ROOT / "bench" / "lq_2d_cross.toml")
    a, b = (_exact_particle_run(pb, stop=mfg.Stop(iterations=4), flow=mfg.Particles(4096), scheme=mfg.FictitiousPlay()) for _ in range(2))
    assert [h.residual for h in a.history] == [h.residual for h in b.history]
    assert torch.equal(a.flow.x, b.flow.x)


# The verdicts from the command line: one run each, on games written here.
NO_EQUILIBRIUM = {"family": "lq", "T": 1, "A": 1.0, "B": 1.0, "R": 1.0, "QbarT": 1.0, "HT": 2.0, "Sigma_w": 0.01,
                  "mu0": 1.0, "Sigma0": 0.1}  # I - M singular
DIVERGING = {"family": "lq", "T": 20, "A": 50.0, "B": 0.1, "R": 1e-6, "Qbar": 1.0, "H": 0.5, "QbarT": 1.0,
             "HT": 0.5, "Sigma_w": 0.09, "mu0": 1.0, "Sigma0": 0.25}  # states grow like 50^t


def test_cli_names_a_game_without_equilibrium(tmp_path, capsys):
    from lq_specs import to_toml

    from mfgsolve.cli import main

    spec = tmp_path / "nouniq.toml"
    spec.write_text(to_toml(NO_EQUILIBRIUM))
    assert main(["solve", str(spec), "--oracle", "exact", "--iterations", "20", "--quiet", "--out",
                 str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "no-equilibrium" in out and "singular" in out and "noise floor" not in out


def test_cli_failed_response_exits_3_with_a_summary_and_settable_advice(tmp_path, capsys):
    import json

    from lq_specs import to_toml

    from mfgsolve.cli import main

    spec = tmp_path / "div.toml"
    spec.write_text(to_toml(DIVERGING))
    run = tmp_path / "run"
    code = main(["solve", str(spec), "--oracle", "ddpg", "--br-updates", "3", "--particles", "64", "--iterations",
                 "2", "--quiet", "--out", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and "--br-set" in err[0]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["diagnosis"] == "failed-response" and not summary["converged"]
    # the settings the message recommends are accepted from the command line; unknown ones are one clean line
    assert main(["solve", str(spec), "--oracle", "ddpg", "--br-set", "bogus=1", "--out", str(tmp_path / "b")]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["solve", str(spec), "--oracle", "exact", "--br-set", "grad_clip=1", "--out",
                 str(tmp_path / "c")]) == 2
    assert main(["solve", str(spec), "--oracle", "ddpg", "--br-set", "actor_lr=-1", "--out", str(tmp_path / "e")]) == 2
    from mfgsolve.cli import _br_settings

    assert _br_settings(["grad_clip=1", "actor_lr=1e-3"], "ddpg") == {"grad_clip": 1, "actor_lr": 1e-3}


def test_mixing_flows_of_equal_weights_keeps_them_equal_for_any_size():
    # 1/N need not sum to one in floats (N = 1000): a renormalised mixture's weights then differ from the other
    # flow's by an ulp and the coupling distance refused them (a 2-D learned run failed at its second iteration)
    g = torch.Generator().manual_seed(0)
    a = mfg.ParticleFlow.uniform(torch.randn(3, 1000, 2, generator=g, dtype=torch.float64))
    b = mfg.ParticleFlow.uniform(torch.randn(3, 1000, 2, generator=g, dtype=torch.float64))
    mixed = a.mix(b, 1 / 7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mixed.w, a.w)
    assert mfg.wasserstein(mixed, b, method="coupling").shape == (3,)
