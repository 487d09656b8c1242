"""One set of defaults: the Python API, the command line, the benchmarks and the paper make the same runs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

import mfgsolve as mfg
from mfgsolve import presets
from mfgsolve.cli import main

TINY = {"eval_every": 20, "n_agents": 16, "batch_size": 32}


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(directory):
    config = json.loads((directory / "config.json").read_text())
    config.pop("environment")
    return config


def _history(directory):
    with open(directory / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in rows]  # timing columns aside


def test_python_and_cli_make_the_same_learned_run(tmp_path):
    flags = [f"--br-set={k}={v}" for k, v in TINY.items()]
    assert main(["solve", "lq-1d", "--seed", "3", "--quiet", "--threads", "1", "--br-updates", "40",
                 "--iterations", "2", "--particles", "256", "--out", str(tmp_path / "cli"), *flags]) == 0
    oracle = mfg.DDPGOracle(updates=40, progress=False, **TINY)  # no seed: the run's
    mfg.solve(mfg.load_problem("lq-1d"), oracle, stop=mfg.Stop(iterations=2), flow=mfg.Particles(256), seed=3,
              run_dir=tmp_path / "py", progress=False)
    assert _config(tmp_path / "py") == _config(tmp_path / "cli")
    assert _history(tmp_path / "py") == _history(tmp_path / "cli")
    config = _config(tmp_path / "py")
    assert config["scheme"] == {"name": "fp", "recency": presets.LEARNED.recency}  # the learned default scheme
    assert config["tol"] == presets.LEARNED.tol and config["oracle"]["seed"] == 3
    assert config["source"] == {"problem": "lq-1d", "overrides": {}}


def test_a_learned_oracle_made_without_settings_takes_the_presets():
    oracle = mfg.DDPGOracle()
    assert presets.preset_for(oracle) is presets.LEARNED
    assert presets.preset_for(mfg.ExactLQOracle()) is presets.EXACT
    run = oracle.for_run(seed=7, updates=presets.LEARNED.br_updates)
    assert run.config()["seed"] == 7 and run.config()["updates"] == presets.LEARNED.br_updates
    assert run.config()["seconds"] is None
    # explicit settings are kept: the run's seed and the preset budget fill only what was left out
    mine = mfg.DDPGOracle(seed=2, seconds=30.0)
    assert mine.for_run(seed=7, updates=1700) is mine
    assert mine.config()["updates"] is None
    assert mfg.ExactLQOracle().for_run(seed=7, updates=1700).name == "exact"


def test_learned_defaults_are_the_ones_that_meet_the_accuracy_targets():
    assert presets.LEARNED.scheme() == mfg.FictitiousPlay(6.0)
    assert presets.LEARNED.scheme("damped") == mfg.Damped(0.6)
    assert presets.EXACT.scheme() == mfg.Picard() and presets.EXACT.scheme("fp") == mfg.FictitiousPlay(1.0)
    assert (presets.LEARNED.iterations, presets.LEARNED.br_updates) == (15, 1700)


def test_every_registered_oracle_is_made_by_name():
    names = set(mfg.available_oracles())
    assert {"exact", "ddpg", "ddpg-nopop", "mf-q", "mf-ac"} <= names
    for name in names:  # a parametrised oracle adds its argument (sb3 -> "sb3:SAC", its default algorithm)
        assert mfg.make_oracle(name).name.split(":")[0] == name
    with pytest.raises(mfg.SpecError, match="unknown oracle"):
        mfg.make_oracle("nope")
    with pytest.raises(mfg.SpecError, match="no setting 'bogus'"):
        mfg.make_oracle("ddpg", bogus=1)


def test_nothing_but_the_command_line_imports_the_cli():
    # the library, bench, paper and problems make runs through mfgsolve.solve and the registries, never the CLI.
    # The command line is cli.py and the sweep command it runs (mfgsolve/sweeps: each cell of a sweep is checked
    # and run as the `mfgsolve solve` command itself, which is what makes its runs those of the command); the
    # sweeps package in turn is used by cli.py alone.
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    command_line = root / "mfgsolve" / "sweeps"
    files = [p for d in ("mfgsolve", "bench", "paper", "problems") for p in (root / d).rglob("*.py")]
    users = [p for p in files if "mfgsolve.cli" in p.read_text() and p.name != "cli.py" and command_line not in p.parents]
    assert users == []
    sweep_users = [p for p in files if "mfgsolve.sweeps" in p.read_text() and p.name != "cli.py"
                   and command_line not in p.parents]
    assert sweep_users == []


def test_problems_are_not_installed_as_a_top_level_problems_package(tmp_path):
    code = ("import importlib.util, mfgsolve as mfg\n"
            "assert importlib.util.find_spec('problems') is None\n"
            "print(len([mfg.load_problem(n) for n in mfg.available_problems()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 7


def test_the_advice_carries_a_typed_suggestion():
    v = mfg.diagnose([1.0, 1.2, 1.5, 1.9, 2.4, 3.0], [-0.9] * 6, converged=False, blew_up=False,
                     decreasing_weights=False, scheme="picard", alpha=None, tol=1e-10, learned=False)
    assert v.diagnosis == "diverging" and isinstance(v.suggestion, mfg.Damped)
    assert v.suggestion.flags() in v.advice
