"""The outer loop on the exact oracle: rates against rho(M), convergence, diagnoses, schemes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from lq_specs import MONOTONE, random_spec

import mfgsolve as mfg

ORACLE = mfg.ExactLQOracle()


def _run(spec_or_problem, scheme=None, **kw) -> mfg.SolveResult:
    pb = spec_or_problem if isinstance(spec_or_problem, mfg.LQProblem) else mfg.LQProblem.from_spec(spec_or_problem)
    return mfg.solve(pb, ORACLE, scheme=scheme, progress=False, **kw)


def _fitted_rate(residuals, start: int) -> float:
    r = np.asarray(residuals)[start:]
    return float(np.exp(np.polyfit(np.arange(r.size), np.log(r), 1)[0]))


CONTRACTIVE = {
    "lq-1d": mfg.load_problem("lq-1d"),
    "random-2d": mfg.LQProblem.from_spec(random_spec(1, coupling=0.15)),
    "random-3d": mfg.LQProblem.from_spec(random_spec(2, n=3, p=2, T=5, coupling=0.3)),
    "strong": mfg.LQProblem.from_spec({**random_spec(4, T=12, coupling=0.2), "H": (3.0 * np.eye(2)).tolist()}),
}


@pytest.mark.parametrize("name", CONTRACTIVE)
def test_picard_rate_matches_rho_and_converges(name):
    pb = CONTRACTIVE[name]
    ref = pb.reference()
    assert 0.05 < ref.rho < 1
    res = _run(pb, mfg.Picard(), stop=mfg.Stop(iterations=2000, tol=1e-12))
    s = res.summary
    assert s.converged and s.diagnosis == "contracting"
    assert s.mean_error < 1e-8
    # rate by log-linear regression over the second half of the run (acceptance: within 5% of rho)
    assert s.contraction_rate == pytest.approx(ref.rho, rel=0.05)
    assert _fitted_rate(res.residuals, len(res.residuals) // 2) == pytest.approx(ref.rho, rel=0.05)
    assert abs(s.exploitability) < 1e-9 * abs(s.J_best)


def test_strong_instance_is_strongly_coupled():
    assert 0.95 < CONTRACTIVE["strong"].reference().rho < 1


def test_posterior_bound_covers_the_true_error():
    res = _run(CONTRACTIVE["lq-1d"], stop=mfg.Stop(iterations=200, tol=1e-12))
    # once the dominant mode dominates (ratios settle), the bound is >= the true distance to the equilibrium
    for rec in res.history[5:]:
        assert rec.bound is not None and rec.bound >= 0.999 * rec.reference_w2


@pytest.mark.parametrize("alpha", [0.3, 0.7])
def test_damped_rate_is_the_spectral_radius_of_the_damped_map(alpha):
    pb = CONTRACTIVE["random-2d"]
    M = pb.reference().M
    rho = np.max(np.abs(np.linalg.eigvals((1 - alpha) * np.eye(len(M)) + alpha * M)))
    res = _run(pb, mfg.Damped(alpha), stop=mfg.Stop(iterations=500, tol=1e-13))
    assert res.summary.converged and res.summary.mean_error < 1e-8
    assert res.summary.contraction_rate == pytest.approx(rho, rel=0.05)


def test_monotone_instance_picard_diverges_damped_and_fp_converge():
    ref = mfg.LQProblem.from_spec(MONOTONE).reference()
    pic = _run(MONOTONE, mfg.Picard(), stop=mfg.Stop(iterations=100))
    assert pic.summary.diagnosis == "diverging" and not pic.summary.converged
    # the residual grows like rho^k
    assert pic.summary.contraction_rate == pytest.approx(ref.rho, rel=0.05)
    assert "--scheme damped" in pic.summary.advice
    suggested = float(pic.summary.advice.split("--alpha ")[1].split()[0])
    damped = _run(MONOTONE, mfg.Damped(suggested), stop=mfg.Stop(iterations=300))
    assert damped.summary.converged and damped.summary.mean_error < 1e-8
    assert damped.summary.diagnosis == "contracting"
    fp = _run(MONOTONE, mfg.FictitiousPlay(), stop=mfg.Stop(iterations=400))
    assert fp.summary.diagnosis == "contracting"
    assert fp.summary.mean_error < 1e-6


def test_oscillating_plain_iteration_is_diagnosed():
    # Tune the coupling c in (x + c m)^2 until the dominant eigenvalue of M is exactly -1: a period-2 cycle.
    def rho_minus_one(c: float) -> float:
        return mfg.LQProblem.from_spec({**MONOTONE, "H": -c}).reference().rho - 1.0

    c = scipy.optimize.brentq(rho_minus_one, 0.5, 3.0, xtol=1e-14)
    pb = mfg.LQProblem.from_spec({**MONOTONE, "H": -c})
    ev = np.linalg.eigvals(pb.reference().M)
    assert ev[np.argmax(np.abs(ev))].real == pytest.approx(-1.0, abs=1e-9)
    res = _run(pb, mfg.Picard(), stop=mfg.Stop(iterations=300))
    assert res.summary.diagnosis == "oscillating" and not res.summary.converged
    assert "damped" in res.summary.advice


def test_fictitious_play_rate_is_a_power_law():
    # With weights 1/(k+1) the slowest mode lam = max Re eig(M) decays like k^-(1 - lam): sublinear,
    # unlike Picard's rho^k. Measured as a log-log slope over iterations 100..400.
    pb = CONTRACTIVE["lq-1d"]
    lam = np.max(np.linalg.eigvals(pb.reference().M).real)
    fp = _run(pb, mfg.FictitiousPlay(), stop=mfg.Stop(iterations=400, tol=1e-14))
    gaps = np.array([h.gap for h in fp.history])
    k = np.arange(1, gaps.size + 1)
    slope = np.polyfit(np.log(k[100:]), np.log(gaps[100:]), 1)[0]
    assert slope == pytest.approx(-(1 - lam), rel=0.05)
    pic = _run(pb, mfg.Picard(), stop=mfg.Stop(iterations=400, tol=1e-14))
    assert len(pic.history) < 60 and fp.summary.mean_error > 1e3 * pic.summary.mean_error


def _fp_weight_rounding(c: float, n: int) -> float:
    """First-order relative rounding bound of fictitious play's n mixture weights (u = eps / 2 per operation).

    Component j enters with w_j = c / (j + c) (one division; w_0 = 1 is exact) and is then multiplied by
    fl(1 - w_i) at every later iteration i: the rounded w_i's error is amplified by the cancellation in 1 - w_i
    to u w_i / (1 - w_i), the subtraction and the product add u each.
    """
    u = np.finfo(float).eps / 2
    w = [c / (i + c) for i in range(n)]
    return max((j > 0) + sum(w[i] / (1 - w[i]) + 2 for i in range(j + 1, n)) for j in range(n)) * u


@pytest.mark.parametrize("recency", [2.0, 3.0])
def test_fictitious_play_with_recency_c_decays_like_k_to_the_minus_c_one_minus_lambda(recency):
    # weights c/(k+c): the slowest mode decays like prod_j (1 - c(1-lam)/(j+c)) ~ k^-c(1-lam)
    pb = CONTRACTIVE["lq-1d"]
    lam = np.max(np.linalg.eigvals(pb.reference().M).real)
    fp = _run(pb, mfg.FictitiousPlay(recency), stop=mfg.Stop(iterations=400, tol=1e-14))
    assert fp.config["scheme"] == {"name": "fp", "recency": recency}
    gaps = np.array([h.gap for h in fp.history])
    k = np.arange(1, gaps.size + 1)
    slope = np.polyfit(np.log(k[100:]), np.log(gaps[100:]), 1)[0]
    # the 5% on measured rates; the product's finite-k correction over k = 100..400 is about 1% (measured
    # -1.046 vs -1.055 for c = 2, -1.572 vs -1.583 for c = 3)
    assert slope == pytest.approx(-recency * (1 - lam), rel=0.05)
    # the average weighs the j-th best response like (j+1)^(c-1): for c = 2, linearly (weights 2(j+1)/(k(k+1)))
    short = _run(pb, mfg.FictitiousPlay(recency), stop=mfg.Stop(iterations=6))
    w = np.asarray(short.policy.weights)
    bound = _fp_weight_rounding(recency, len(w))
    if recency == 2.0:  # the reference's own division rounds once more (measured: at most 1.3 eps)
        np.testing.assert_allclose(w, 2 * np.arange(1, 7) / (6 * 7), rtol=bound + np.finfo(float).eps / 2, atol=0)
    # the weights' exact values sum to 1; the sum adds its 5 additions of terms below 1
    assert np.all(np.diff(w) > 0) and w.sum() == pytest.approx(1.0, rel=bound + 5 * np.finfo(float).eps / 2)


def test_fictitious_play_rejects_recency_below_one():
    with pytest.raises(mfg.SpecError, match="recency"):
        mfg.FictitiousPlay(0.5)


def test_fp_policy_is_the_average_and_its_exploitability_decreases():
    res = _run(CONTRACTIVE["lq-1d"], mfg.FictitiousPlay(), stop=mfg.Stop(iterations=50))
    assert isinstance(res.policy, mfg.MixturePolicy) and len(res.policy.components) == 50
    np.testing.assert_allclose(res.policy.weights, 1 / 50)
    e = [h.exploitability for h in res.history]
    assert e[-1] < e[9] < e[0]


def test_particle_flows_with_exact_oracle_reach_monte_carlo_accuracy():
    pb = mfg.load_problem("lq-1d")
    ref = pb.reference()
    res = mfg.solve(pb, ORACLE, stop=mfg.Stop(iterations=15), flow=mfg.Particles(20_000), seed=3, progress=False)
    # the loop's flow is an empirical measure of 20000 particles: its mean errs by ~ sd / sqrt(n), sd <= 1
    err = np.abs(res.flow.means().numpy()[:, 0] - ref.mean[:, 0]).max()
    assert err < 5 * 1.0 / np.sqrt(20_000)
    again = mfg.solve(pb, ORACLE, stop=mfg.Stop(iterations=15), flow=mfg.Particles(20_000), seed=3, progress=False)
    assert [h.residual for h in again.history] == [h.residual for h in res.history]


def test_run_files_round_trip(tmp_path):
    res = _run(CONTRACTIVE["random-2d"], mfg.Damped(0.5), stop=mfg.Stop(iterations=30))
    res.save(tmp_path)
    run = mfg.load_run(tmp_path)
    assert run.summary["iterations"] == 30 and run.summary["diagnosis"] == res.summary.diagnosis
    assert [r["residual"] for r in run.history] == [h.residual for h in res.history]
    np.testing.assert_array_equal(run.flow["mean"], res.flow.means().numpy())
    assert run.config["scheme"] == {"name": "damped", "alpha": 0.5}
    assert run.config["environment"]["torch"]


def test_flow_size_defaults_to_the_problems_own():
    # LQ problems read only the flow's mean: many particles are cheap and keep its sampling error small;
    # kernel-sum problems pay per particle and ask for fewer; anything else gets DEFAULT_PARTICLES.
    from mfgsolve.problem import DEFAULT_PARTICLES, default_particles

    assert default_particles(mfg.load_problem("lq-1d")) == 131072
    assert default_particles(mfg.load_problem("crowd-navigation")) == 1000
    assert default_particles(object()) == DEFAULT_PARTICLES == 4096
    res = mfg.solve(mfg.load_problem("lq-1d"), ORACLE, stop=mfg.Stop(iterations=2), flow=mfg.Particles(), progress=False)
    assert res.config["particles"] == 131072 and res.flow.size == 131072


def test_stalled_advice_does_not_suggest_the_scheme_in_use():
    from mfgsolve.diagnosis import diagnose

    gaps = [0.05, 0.04, 0.05, 0.045, 0.05, 0.04, 0.05, 0.045]  # a flat noise floor
    cos = [float("nan")] + [0.1] * 7
    picard = diagnose(gaps, cos, converged=False, blew_up=False, decreasing_weights=False, scheme="picard")
    fp = diagnose(gaps, cos, converged=False, blew_up=False, decreasing_weights=True, scheme="fp")
    assert picard.diagnosis == fp.diagnosis == "stalled"
    assert "--scheme fp" in picard.advice and "--scheme fp" not in fp.advice and "--recency" in fp.advice
