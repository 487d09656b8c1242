"""The command line: reference files against an independent solver, run files, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from lq_specs import MONOTONE, random_spec, to_toml
from lq_torch import equilibrium as torch_equilibrium

from mfgsolve.cli import main
from mfgsolve.lq.problem import LQProblem

SPECS = {
    "cross-terms-3d": random_spec(11, n=3, p=2, T=6, coupling=0.3),
    "drift-coupling": {**random_spec(12, n=2, p=1, T=8, coupling=0.4), "Abar": [[0.3, -0.1], [0.2, 0.1]]},
    "strong-coupling": random_spec(13, n=2, p=2, T=6, coupling=2.5),
    "monotone": {"family": "lq", **MONOTONE},
}


@pytest.mark.parametrize("name", SPECS)
def test_reference_matches_independent_solver(name, tmp_path):
    spec_path = tmp_path / f"{name}.toml"
    spec_path.write_text(to_toml(SPECS[name]))
    assert main(["reference", str(spec_path), "--out", str(tmp_path / "out")]) == 0
    ref = json.loads((tmp_path / "out" / "reference.json").read_text())
    coef = LQProblem.from_spec(SPECS[name]).coef
    K = np.array(ref["K"])
    ind = torch_equilibrium(coef, K)
    # K is the minimiser: the gradient of the expected cost in K vanishes at the reference (rounding-level)
    assert np.abs(ind["grad_K"]).max() < 1e-7
    # the acceptance tolerance: 1e-6 on J, mean, cov, K (through grad_K above), k; 1e-4 on rho
    assert ref["J"] == pytest.approx(ind["J"], abs=1e-6, rel=1e-9)
    np.testing.assert_allclose(np.array(ref["mean"]), ind["mean"], atol=1e-6)
    np.testing.assert_allclose(np.array(ref["cov"]), ind["cov"], atol=1e-6)
    np.testing.assert_allclose(np.array(ref["k"]), ind["k"], atol=1e-6)
    assert ref["rho"] == pytest.approx(ind["rho"], abs=1e-4)
    T, n, p = coef.T, coef.n, coef.p
    assert np.shape(ref["mean"]) == (T + 1, n) and np.shape(ref["cov"]) == (T + 1, n, n)
    assert np.shape(ref["K"]) == (T, p, n) and np.shape(ref["k"]) == (T, p)


def test_solve_writes_the_run_directory(tmp_path):
    out = tmp_path / "run"
    assert main(["solve", "lq-1d", "--oracle", "exact", "--scheme", "damped", "--alpha", "0.6", "--seed", "1",
                 "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("iterations", "converged", "diagnosis", "residuals", "contraction_rate", "mean_error",
                "exploitability", "relative_exploitability", "wall_seconds"):
        assert key in summary
    assert summary["converged"] and summary["mean_error"] < 1e-8
    lines = (out / "history.csv").read_text().splitlines()
    assert len(lines) == summary["iterations"] + 1
    flow = np.load(out / "flow.npz")
    assert flow["mean"].shape == (21, 1)
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 1 and config["scheme"]["alpha"] == 0.6


def test_console_script_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mfgsolve.cli", "reference", "lq-1d", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "reference.json").read_text())["J"] == pytest.approx(8.761918, abs=5e-7)


def _bad(args, capsys, tmp_path, needle):
    out = tmp_path / "never"
    argv = [a.replace("OUT", str(out)) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["solve", "no-such", "--out", "OUT"], "no-such"),
        (["solve", "lq-1d", "--scheme", "newton", "--out", "OUT"], "--scheme"),
        (["solve", "lq-1d", "--oracle", "magic", "--out", "OUT"], "--oracle"),
        (["solve", "lq-1d", "--scheme", "damped", "--alpha", "0", "--out", "OUT"], "--alpha"),
        (["solve", "lq-1d", "--scheme", "damped", "--alpha", "1.5", "--out", "OUT"], "--alpha"),
        (["solve", "lq-1d", "--scheme", "picard", "--alpha", "0.5", "--out", "OUT"], "--alpha"),
        (["solve", "lq-1d", "--scheme", "fp", "--recency", "0.5", "--out", "OUT"], "--recency"),
        (["solve", "lq-1d", "--scheme", "fp", "--recency", "inf", "--out", "OUT"], "--recency"),
        (["solve", "lq-1d", "--scheme", "damped", "--recency", "2", "--out", "OUT"], "--recency"),
        (["solve", "lq-1d", "--iterations", "0", "--out", "OUT"], "--iterations"),
        (["solve", "lq-1d", "--iterations", "ten", "--out", "OUT"], "--iterations"),
        (["solve", "lq-1d", "--tol", "-1", "--out", "OUT"], "--tol"),
        (["solve", "lq-1d", "--tol", "0", "--out", "OUT"], "--tol"),
        (["solve", "lq-1d", "--set", "R=-5", "--set", "QT=0", "--out", "OUT"], "R"),
        (["solve", "lq-1d", "--set", "Rr=1", "--out", "OUT"], "Rr"),
        (["reference", "missing.toml", "--out", "OUT"], "missing.toml"),
        (["solve", "lq-1d"], "--out"),
    ],
)
def test_bad_input_one_line_exit_2(args, needle, capsys, tmp_path):
    _bad(args, capsys, tmp_path, needle)


def test_bad_spec_file(capsys, tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('family = "lq"\nT = 3\nA = [[1.0, 2.0], [3.0]]\n')
    _bad(["solve", str(spec), "--out", "OUT"], capsys, tmp_path, "A: ragged")


def test_out_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["solve", "lq-1d", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err
    assert f.read_text() == "x"


def test_no_equilibrium_is_a_clean_error(capsys, tmp_path):
    # T = 1: m_1 -> -B^2 ST m_1 / (R + B^2 QT) + const, so ST = -(R + B^2 QT) / B^2 = -1 puts eigenvalue 1 in M
    spec = tmp_path / "degenerate.toml"
    spec.write_text('family = "lq"\nT = 1\nA = 1.0\nB = 1.0\nR = 1.0\nST = -1.0\nmu0 = 1.0\n')
    _bad(["reference", str(spec), "--out", "OUT"], capsys, tmp_path, "equilibrium")


LEARNED = ["--br-updates", "3", "--particles", "64"]


@pytest.mark.parametrize(("scheme", "oracle", "extra", "field", "value"), [
    ("fp", "exact", [], "recency", 1.0),  # classical FP: the rate the theory section measures
    ("fp", "ddpg", LEARNED, "recency", 6.0),  # the learned default (15 best responses)
    ("fp", "ddpg", [*LEARNED, "--recency", "2"], "recency", 2.0),  # an explicit choice wins
    ("damped", "exact", [], "alpha", 0.5),
    ("damped", "ddpg", LEARNED, "alpha", 0.6),  # the learned default: less truncation in 15 responses
    ("damped", "ddpg", [*LEARNED, "--alpha", "0.4"], "alpha", 0.4),
])
def test_scheme_default_depends_on_the_oracle(scheme, oracle, extra, field, value, tmp_path):
    args = ["solve", "lq-1d", "--oracle", oracle, "--scheme", scheme, "--iterations", "1", "--quiet",
            "--out", str(tmp_path / "run"), *extra]
    assert main(args) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["scheme"] == {"name": scheme, field: value}


def test_a_closed_standard_output_is_named_as_such_not_as_a_write_failure(tmp_path):
    # `mfgsolve br-check ... | head -1`: the reader goes away before the command prints; the results are written
    proc = subprocess.Popen([sys.executable, "-m", "mfgsolve.cli", "br-check", "lq-1d", "--oracle", "exact", "--set", "T=4",
                             "--out", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 1
    assert err.strip() == f"mfgsolve: standard output was closed (broken pipe); the results are in {tmp_path / 'out'}"
    assert (tmp_path / "out" / "br_check.json").is_file()
