"""Regression tests for the defects found by ``bench/bad_inputs.py`` (issue 18): one test per class of defect.

Every bad input ends as one line naming the field or option (exit code 2 from the command line, a
:class:`~mfgsolve.SpecError` from Python), before any long work, and leaves no lock file behind.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import mfgsolve as mfg
from mfgsolve.cli import main
from mfgsolve.errors import RunDirError, SpecError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout_problems(tmp_path_factory):
    """``mfgsolve_problems`` as this checkout's ``problems/`` (the installed one may be another checkout's)."""
    shim = tmp_path_factory.mktemp("shim")
    (shim / "mfgsolve_problems").symlink_to(ROOT / "problems")

    def ours(name: str) -> bool:
        return name == "mfgsolve_problems" or name.startswith("mfgsolve_problems.")

    saved = {name: mod for name, mod in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(shim))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(shim))
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


def _one_error(capsys, argv: list[str]) -> str:
    """Run the CLI on ``argv``; it must exit 2 with exactly one stderr line; return that line."""
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("mfgsolve: error: ")
    return err[0]


# ------------------------------------------------------------------ --set / --br-set values (#11)
def test_multiline_set_value_is_refused(capsys, tmp_path):
    line = _one_error(capsys, ["solve", "lq-1d", "--oracle", "exact", "--out", str(tmp_path / "r"),
                               "--set", "T=5\nA=100"])
    assert "T:" in line and "line break" in line
    assert not (tmp_path / "r").exists()


def test_set_value_with_two_keys_on_one_line_is_refused(capsys, tmp_path):
    line = _one_error(capsys, ["solve", "lq-1d", "--oracle", "exact", "--out", str(tmp_path / "r"),
                               "--set", "T=5 A=3"])
    assert "T: cannot read value" in line


@pytest.fixture
def ddpg_settings(monkeypatch):
    """The DDPG oracle with its settings dataclass declared (what the oracle registry reads)."""
    from mfgsolve.oracles.ddpg import DDPGConfig, DDPGOracle

    monkeypatch.setattr(DDPGOracle, "settings_type", DDPGConfig, raising=False)


@pytest.mark.parametrize("item, words", [
    ("batch_size=2.5", "batch_size: expected an integer"),
    ("hidden=64.0", "hidden: expected an integer"),
    ("batch_size=1e20", "batch_size: expected an integer"),
    ("batch_size=100000000000000", "batch_size: 100000000000000 is too large"),
    ("hidden=1000000", "hidden: 1000000 is too large"),
    ('actor_lr="fast"', "actor_lr: expected a finite number"),
    ("actor_lr=nan", "actor_lr: expected a finite number"),
    ("td3=1", "td3: expected true or false"),
    ('batch_size="64"', "batch_size: expected an integer"),
    ("batch_size=true", "batch_size: expected an integer"),
    ("batch_size=64\nhidden=32", "line break"),
])
def test_br_set_values_are_checked_by_type_and_size(capsys, tmp_path, ddpg_settings, item, words):
    start = time.perf_counter()
    line = _one_error(capsys, ["solve", "lq-1d", "--oracle", "ddpg", "--out", str(tmp_path / "r"), "--quiet",
                               "--br-updates", "5", "--br-set", item])
    assert "--br-set" in line and words in line, line
    assert time.perf_counter() - start < 5  # refused before any work
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ overflow of the exact solve (#39/#40)
@pytest.mark.parametrize("item, field", [("A=1e200", "A"), ("mu0=1e300", "mu0"), ("Qbar=1e308", "Qbar"),
                                         ("A=-1e308", "A")])
def test_huge_lq_coefficients_are_refused_by_field(capsys, tmp_path, item, field):
    line = _one_error(capsys, ["solve", "lq-1d", "--oracle", "exact", "--quiet", "--out", str(tmp_path / "r"),
                               "--set", item])
    assert line.startswith(f"mfgsolve: error: {field}: ") and "double precision" in line


def test_riccati_overflow_is_one_spec_error():
    with pytest.raises(SpecError) as info:  # no control: P_t grows like A^(2(T-t)), past 1e308
        mfg.LQProblem.from_spec({"T": 20, "A": 1e40, "B": 0.0, "R": 1.0, "QT": 1.0})
    assert info.value.field == "spec" and "overflows double precision" in info.value.message


@pytest.mark.parametrize("name, key", [("systemic-risk", "a"), ("price-impact", "sigma"), ("flocking", "sigma"),
                                       ("crowd-aversion", "kappa")])
def test_huge_problem_parameters_are_refused_by_field(checkout_problems, name, key):
    with pytest.raises(SpecError) as info:
        mfg.load_problem(name, {key: 1e300})
    assert info.value.field == key and "double precision" in info.value.message


# ------------------------------------------------------------------ sizes far too large (#198/#221) and #212
def test_crowd_aversion_refuses_a_huge_grid_reference_up_front(checkout_problems):
    problem = mfg.load_problem("crowd-aversion", {"points": 400})
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        problem.reference()
    assert time.perf_counter() - start < 1
    assert info.value.field == "points" and "1,600,000" in info.value.message and "GiB" in info.value.message


def test_br_check_refuses_a_non_lq_problem_before_its_reference(capsys, tmp_path, checkout_problems, monkeypatch):
    module = importlib.import_module("mfgsolve_problems.crowd_aversion")

    def never(self):
        raise AssertionError("the grid reference was computed")

    monkeypatch.setattr(module.CrowdAversion, "reference", never)
    line = _one_error(capsys, ["br-check", "crowd-aversion", "--out", str(tmp_path / "r"), "--updates", "5"])
    assert "PROBLEM: crowd-aversion is not an LQ problem" in line
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ paths and run directories
def test_out_name_too_long_is_one_line(capsys, tmp_path):
    line = _one_error(capsys, ["solve", "lq-1d", "--oracle", "exact", "--out", str(tmp_path / ("x" * 300))])
    assert "File name too long" in line


def test_lock_is_removed_when_a_cli_run_fails(tmp_path, monkeypatch):
    from mfgsolve.oracles.exact import ExactLQOracle

    def boom(self, *args, **kwargs):
        raise RuntimeError("a failing best response")

    monkeypatch.setattr(ExactLQOracle, "best_response", boom)
    out = tmp_path / "r"
    with pytest.raises(RuntimeError):
        main(["solve", "lq-1d", "--oracle", "exact", "--quiet", "--iterations", "2", "--out", str(out)])
    assert (out / "config.json").is_file()  # the run had claimed its directory
    assert not (out / ".mfgsolve.lock").exists()


def test_user_config_that_is_not_json_is_one_error(tmp_path):
    problem = mfg.load_problem("lq-1d")
    problem.config = lambda: {"x": object()}
    with pytest.raises(RunDirError) as info:
        mfg.solve(problem, mfg.make_oracle("exact"), stop=mfg.Stop(iterations=1), run_dir=str(tmp_path / "r"),
                  progress=False)
    assert info.value.field == "problem" and "config.json" in info.value.message


# ------------------------------------------------------------------ damaged run directories (plot, load_run)
def _good_run(tmp_path: Path) -> Path:
    out = tmp_path / "r"
    assert main(["solve", "lq-1d", "--oracle", "exact", "--quiet", "--iterations", "2", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("damage, words", [
    (lambda d: np.savez(d / "flow.npz", mean=np.zeros((2, 2, 2))), "flow.npz: mean"),
    (lambda d: np.savez(d / "flow.npz", mean=np.zeros((0,))), "flow.npz: mean"),
    (lambda d: np.savez(d / "flow.npz", mean=np.zeros((3, 1)), cov=np.zeros((3, 2))), "flow.npz: cov"),
    (lambda d: (d / "summary.json").write_text((d / "summary.json").read_text().replace(
        '"problem": "lq-1d"', '"problem": [1]')), "summary.json"),
])
def test_plot_of_a_damaged_run_is_one_line(capsys, tmp_path, damage, words):
    out = _good_run(tmp_path)
    capsys.readouterr()
    damage(out)
    line = _one_error(capsys, ["plot", str(out)])
    assert words in line


def test_load_run_names_a_missing_or_damaged_file(tmp_path):
    with pytest.raises(RunDirError, match="not a finished run directory"):
        mfg.load_run(tmp_path / "nowhere")
    out = _good_run(tmp_path)
    (out / "history.csv").write_bytes(b"\xff\x00\x01")
    with pytest.raises(RunDirError, match="history.csv is damaged"):
        mfg.load_run(out)


# ------------------------------------------------------------------ a user's Problem object
class _User:
    n, p, T = 1, 1, 3
    action_low = action_high = None

    def sample_x0(self, n, generator, dtype=torch.float64):
        return torch.zeros(n, 1, dtype=dtype)

    def step(self, t, x, a, m, generator):
        return x + a

    def reward(self, t, x, a, m):
        return -(a ** 2).sum(1)

    def terminal_reward(self, x, m):
        return -(x ** 2).sum(1)

    def config(self):
        return {"family": "user"}


@pytest.mark.parametrize("attr, value, words", [("T", 0, "T must be a positive integer"),
                                                ("T", 2.5, "T must be a positive integer"),
                                                ("n", 0, "n must be a positive integer"),
                                                ("p", -1, "p must be a positive integer"),
                                                ("config", None, "no config() method")])
def test_user_problem_with_bad_attributes_is_named(attr, value, words):
    problem = _User()
    setattr(problem, attr, value)
    with pytest.raises(SpecError) as info:
        mfg.solve(problem, mfg.make_oracle("exact"), stop=mfg.Stop(iterations=1), flow=mfg.Particles(64),
                  progress=False)
    assert info.value.field == "problem" and words in info.value.message


@pytest.mark.parametrize("name, overrides", [("systemic-risk", {"dt": 1e-7}), ("flocking", {"horizon": 100000.0})])
def test_too_many_euler_steps_are_refused_up_front(checkout_problems, name, overrides):
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        mfg.load_problem(name, overrides)
    assert time.perf_counter() - start < 1
    assert info.value.field == "dt" and "at most 100,000" in info.value.message


def test_an_empty_run_dir_is_a_run_dir_error():
    with pytest.raises(RunDirError, match="empty path"):
        mfg.RunDir("  ")
