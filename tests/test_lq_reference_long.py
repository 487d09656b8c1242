"""The structured LQ reference (linear in T) against the dense Picard matrix it replaced (issue 18)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from lq_specs import MONOTONE, random_spec

import mfgsolve as mfg
from mfgsolve.cli import main
from mfgsolve.lq import reference as lqref


def _dense(coef):
    """The former dense route: M by one batched pass over the identity, (I - M) m = b by LU, eigvals(M)."""
    ric = lqref.riccati(coef)
    M, b = lqref.picard_map(coef, ric)
    mean = np.linalg.solve(np.eye(M.shape[0]) - M, b).reshape(coef.T + 1, coef.n)
    return mean, lqref.best_response(coef, mean, ric).cost, b, M, float(np.max(np.abs(np.linalg.eigvals(M))))


SPECS = [random_spec(0, n=1, p=1, T=6), random_spec(1, n=2, p=2, T=8), random_spec(2, n=3, p=2, T=5),
         random_spec(3, n=2, p=1, T=10, coupling=1.5), MONOTONE, {**random_spec(4, n=2, p=2, T=150)}]


@pytest.mark.parametrize("spec", SPECS)
def test_structured_equilibrium_matches_dense(spec):
    coef = mfg.LQProblem.from_spec(spec).coef
    ref = lqref.equilibrium(coef)
    mean, J, b, M, rho = _dense(coef)
    scale = max(1.0, float(np.abs(mean).max()))
    assert np.abs(ref.mean - mean).max() < 1e-9 * scale
    assert ref.J == pytest.approx(J, rel=1e-9, abs=1e-9)
    assert np.abs(ref.b - b).max() < 1e-12 * max(1.0, float(np.abs(b).max()))
    assert np.abs(ref.M - M).max() < 1e-12 * max(1.0, float(np.abs(M).max()))
    assert ref.rho == pytest.approx(rho, rel=1e-9)


@pytest.mark.parametrize("name", ["lq-1d", "bench/lq_2d_cross.toml"])
def test_structured_equilibrium_matches_dense_at_moderate_T(name):
    coef = mfg.load_problem(name, {"T": 300}).coef
    ref = lqref.equilibrium(coef)
    mean, J, _, _, _ = _dense(coef)
    assert np.abs(ref.mean - mean).max() < 1e-9
    assert ref.J == pytest.approx(J, rel=1e-9)


def test_long_horizon_is_linear_in_T():
    coef = mfg.load_problem("lq-1d", {"T": 20000}).coef
    t0 = time.perf_counter()
    ref = lqref.equilibrium(coef)
    assert time.perf_counter() - t0 < 20.0  # the dense route needed > 10 GB here
    assert ref.mean.shape == (20001, 1) and np.all(np.isfinite(ref.mean))
    # The fixed point itself: m = M m + b to rounding, through the operator.
    m = ref.mean.ravel()
    assert np.abs(ref.operator.matvec(m) + ref.b - m).max() < 1e-12


def test_singular_game_raises():
    spec = {"T": 1, "A": 1.0, "B": 1.0, "R": 1.0, "QbarT": 1.0, "HT": 2.0, "Sigma_w": 0.01, "mu0": 1.0,
            "Sigma0": 0.1}  # I - M singular (bad-inputs case 110)
    with pytest.raises(mfg.NoEquilibriumError):
        lqref.equilibrium(mfg.LQProblem.from_spec(spec).coef)


def test_absurd_size_refused_up_front(tmp_path, capsys):
    t0 = time.perf_counter()
    assert main(["reference", "lq-1d", "--set", "T=100000000000", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "GiB" in err and "\n" not in err and time.perf_counter() - t0 < 5.0
    assert not (tmp_path / "r").exists()
