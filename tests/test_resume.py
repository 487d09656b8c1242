"""Checkpoints and resume: a run killed with SIGKILL and resumed ends with the uninterrupted run's history."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from mfgsolve.cli import main

TIMING = {"br_seconds", "seconds"}
ARGS = ["solve", "lq-1d", "--oracle", "exact", "--scheme", "damped", "--alpha", "0.5", "--flow", "particles",
        "--particles", "3000", "--iterations", "12", "--seed", "5", "--quiet"]

KILLER = """
import os, signal, sys
import mfgsolve
s = sys.modules["mfgsolve.solve"]  # the module (mfgsolve.solve the attribute is the function)
calls = {"n": 0}
original = s._save_checkpoint
def save_then_maybe_die(run_dir, state, oracle):
    calls["n"] += 1
    if calls["n"] == %d:  # history.csv of iteration k is written, its checkpoint is not: the worst moment
        os.kill(os.getpid(), signal.SIGKILL)
    original(run_dir, state, oracle)
s._save_checkpoint = save_then_maybe_die
from mfgsolve.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _rows(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(fh)]


@pytest.mark.parametrize("kill_at", [1, 7])
def test_kill_and_resume_gives_the_same_history(tmp_path, kill_at):
    full = tmp_path / "full"
    assert main(ARGS + ["--out", str(full)]) == 0
    cut = tmp_path / "cut"
    proc = subprocess.run([sys.executable, "-c", KILLER % kill_at, *ARGS, "--out", str(cut)], capture_output=True)
    assert proc.returncode == -9  # really killed
    assert not (cut / "summary.json").exists()
    assert main(ARGS + ["--resume", str(cut)]) == 0
    # the whole history, value for value (floats as written by repr): same seed, same generator states
    assert _rows(cut / "history.csv") == _rows(full / "history.csv")
    assert len(_rows(full / "history.csv")) == 12


def test_resume_refuses_different_settings(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(ARGS + ["--out", str(run)]) == 0
    assert main([a if a != "5" else "6" for a in ARGS] + ["--resume", str(run)]) == 2
    assert "seed" in capsys.readouterr().err


def test_resume_without_checkpoint(tmp_path, capsys):
    assert main(ARGS + ["--resume", str(tmp_path)]) == 2
    assert "no run to resume" in capsys.readouterr().err


def test_plot_writes_png_and_pdf(tmp_path):
    run = tmp_path / "run"
    assert main(ARGS + ["--out", str(run)]) == 0
    assert main(["plot", str(run)]) == 0
    for name in ("convergence", "flow"):
        for ext in ("png", "pdf"):
            assert (run / f"{name}.{ext}").stat().st_size > 1000
