"""Spec validation: every bad input is a SpecError naming its field; shorthand folds into the convention."""

from __future__ import annotations

import numpy as np
import pytest
from lq_specs import random_spec, to_toml

import mfgsolve as mfg

BASE = {"family": "lq", "T": 3, "A": 1.0, "B": 1.0, "R": 1.0, "Q": 1.0, "mu0": 0.5, "Sigma0": 0.1, "Sigma_w": 0.1}
I2 = np.eye(2).tolist()
BASE2 = {"family": "lq", "T": 3, "A": I2, "B": I2, "R": I2, "Q": I2, "mu0": [0.5, 0.0], "Sigma0": I2, "Sigma_w": I2}


def _error(spec) -> mfg.SpecError:
    with pytest.raises(mfg.SpecError) as info:
        mfg.LQProblem.from_spec(spec)
    return info.value


@pytest.mark.parametrize(
    "change, field",
    [
        ({"Qq": 1.0}, "Qq"),  # unknown key
        ({"B": [[1.0, 2.0], [3.0, 4.0]], "A": [[1.0]]}, "B"),  # shapes disagree on n
        ({"A": [[1.0, 0.0], [0.0]]}, "A"),  # ragged
        ({"Q": [[1.0, "x"], [0.0, 1.0]]}, "Q"),  # non-numeric
        ({"R": "big"}, "R"),  # non-numeric scalar
        ({"c": float("nan")}, "c"),  # non-finite
        ({"Q": [[1.0, float("inf")], [0.0, 1.0]]}, "Q"),
        ({"T": 0}, "T"),
        ({"T": 2.5}, "T"),
        ({"T": True}, "T"),
        ({"Sigma_w": -0.1}, "Sigma_w"),  # not PSD
        ({"R": -1.0}, "R"),  # R + B'P B not positive definite
        ({"mu0": [[1.0]]}, "mu0"),  # a matrix where a vector is due
        ({"A": [1.0, 2.0]}, "A"),  # a vector where a matrix is due
        ({"family": "other"}, "family"),
    ],
)
def test_bad_field_is_named(change, field):
    spec = {**BASE, **change}
    err = _error(spec)
    assert err.field == field, str(err)
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"Sigma0": [[1.0, 0.5], [0.0, 1.0]]}, "Sigma0"),  # not symmetric
        ({"Sigma_w": [[1.0, 2.0], [2.0, 1.0]]}, "Sigma_w"),  # symmetric, eigenvalue -1
        ({"Q": 1.0}, "Q"),  # a number stands only for a 1 x 1 term
        ({"mu0": [1.0, 2.0, 3.0]}, "mu0"),  # n = 2 from A
        ({"U": [[1.0, 0.0]]}, "U"),  # (p, n) = (2, 2) expected
    ],
)
def test_bad_field_is_named_2d(change, field):
    err = _error({**BASE2, **change})
    assert err.field == field, str(err)


def test_missing_T():
    spec = dict(BASE)
    del spec["T"]
    assert _error(spec).field == "T"


def test_R_indefinite_names_time():
    # R + B'P_{t+1}B = -1 + P_{t+1}: P_T = QT = 0 makes the last step indefinite.
    err = _error({**BASE, "R": -0.5, "QT": 0.0})
    assert err.field == "R" and "t=2" in str(err)


def test_negative_R_is_fine_when_B_P_B_dominates():
    # G = R + B'P_{t+1}B > 0 at every t is what matters, not R > 0.
    pb = mfg.LQProblem.from_spec({**BASE, "R": -0.5, "QT": 2.0, "Q": 2.0})
    assert np.all(np.linalg.eigvalsh(pb.riccati.G) > 0)


def test_shorthand_folds_into_the_convention():
    spec = random_spec(4)
    full = mfg.LQProblem.from_spec(spec).coef
    Qbar, H = np.array(spec["Qbar"]), np.array(spec["H"])
    # (x - Hm)'Qbar(x - Hm) = x'Qbar x - 2x'Qbar H m + m'H'Qbar H m
    np.testing.assert_allclose(full.Q, np.array(spec["Q"]) + Qbar)
    np.testing.assert_allclose(full.S, np.array(spec["S"]) - Qbar @ H)
    np.testing.assert_allclose(full.W, np.array(spec["W"]) + H.T @ Qbar @ H)


def test_absent_terms_are_zero_and_scalars_are_1x1():
    pb = mfg.LQProblem.from_spec({"T": 2, "B": 1, "R": 1})
    assert (pb.n, pb.p) == (1, 1)
    assert np.all(pb.coef.A == 0) and np.all(pb.coef.Sigma_w == 0) and np.all(pb.coef.mu0 == 0)


def test_toml_round_trip(tmp_path):
    spec = random_spec(1)
    path = tmp_path / "spec.toml"
    path.write_text(to_toml(spec))
    a = mfg.load_problem(str(path)).reference()
    b = mfg.LQProblem.from_spec(spec).reference()
    assert a.J == b.J and np.array_equal(a.mean, b.mean)


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("T = [1,\n")
    with pytest.raises(mfg.SpecError) as info:
        mfg.load_problem(str(path))
    assert str(path) in str(info.value)


def test_unknown_problem_name():
    with pytest.raises(mfg.SpecError) as info:
        mfg.load_problem("no-such-problem")
    assert "no-such-problem" in str(info.value)


def test_registered_problem_override_is_validated():
    with pytest.raises(mfg.SpecError) as info:
        mfg.load_problem("lq-1d", {"Sigma_w": -1.0})
    assert info.value.field == "Sigma_w"
    assert mfg.load_problem("lq-1d", {"T": 5}).T == 5
