"""The Python API refuses bad arguments at the call, naming them, and probes a user's problem once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mfgsolve as mfg

PB = mfg.load_problem("lq-1d")


@pytest.mark.parametrize(
    "kw, field",
    [  # each case builds its arguments when it runs: the option objects refuse a bad field as they are made
        (lambda: {"problem": "lq-1d"}, "problem"),
        (lambda: {"oracle": None}, "oracle"),
        (lambda: {"scheme": "damped"}, "scheme"),
        (lambda: {"flow": mfg.Particles(0)}, "particles"),
        (lambda: {"flow": mfg.Particles(10**12)}, "particles"),  # refused up front with the memory estimate
        (lambda: {"seed": 1.5}, "seed"),
        (lambda: {"seed": -1}, "seed"),
        (lambda: {"seed": 2**64}, "seed"),
        (lambda: {"stop": mfg.Stop(iterations=2.5)}, "iterations"),
        (lambda: {"stop": mfg.Stop(iterations=0)}, "iterations"),
        (lambda: {"stop": mfg.Stop(tol=float("nan"))}, "tol"),
        (lambda: {"flow": "bogus"}, "flow"),
        (lambda: {"flow": mfg.Particles(metric="bogus")}, "metric"),
        (lambda: {"stop": 10}, "stop"),
        (lambda: {"evaluation": mfg.Evaluation(particles=-1)}, "eval_particles"),
        (lambda: {"run_dir": mfg.RunDir("")}, "run_dir"),
        (lambda: {"initial_flow": mfg.GaussianFlow.from_numpy(np.zeros((3, 1)), np.ones((3, 1, 1)))}, "initial_flow"),
    ],
)
def test_solve_names_the_bad_argument(kw, field):
    with pytest.raises(mfg.SpecError) as info:
        args = {"problem": PB, "oracle": mfg.ExactLQOracle(), **kw()}
        mfg.solve(args.pop("problem"), args.pop("oracle"), progress=False, **args)
    assert info.value.field == field


class _Game:
    """A 1-D game whose callbacks can be broken one at a time."""

    name, n, p, T, action_low, action_high = "probe", 1, 1, 3, None, None

    def __init__(self, broken: str = "") -> None:
        self.broken = broken

    def sample_x0(self, k, g):
        return torch.randn(k, 1, generator=g, dtype=torch.float64)

    def step(self, t, x, a, m, g):
        return (x + a)[:, :1] if self.broken != "step" else torch.cat([x, a], dim=1)

    def reward(self, t, x, a, m):
        r = -(x[:, 0] ** 2) - a[:, 0] ** 2
        return r[:, None] if self.broken == "reward" else r

    def terminal_reward(self, x, m):
        return -x[:, 0] * (float("nan") if self.broken == "terminal_reward" else 1.0)

    def config(self):
        return {"name": self.name}


@pytest.mark.parametrize("broken", ["step", "reward", "terminal_reward"])
def test_a_users_problem_is_probed_and_the_callback_named(broken):
    with pytest.raises(mfg.SpecError) as info:
        mfg.solve(_Game(broken), mfg.DDPGOracle(updates=3), stop=mfg.Stop(iterations=1), progress=False)
    assert info.value.field == broken


def test_load_problem_takes_paths_and_refuses_other_types(tmp_path):
    from pathlib import Path

    spec = tmp_path / "g.toml"
    spec.write_text('family = "lq"\nT = 3\nA = 1.0\nB = 1.0\nR = 1.0\nmu0 = 1.0\nSigma0 = 0.1\n')
    assert mfg.load_problem(Path(spec)).T == 3
    with pytest.raises(mfg.SpecError):
        mfg.load_problem(3)  # type: ignore[arg-type]


def test_cli_boundaries_found_by_trying_bad_input(tmp_path, capsys):
    from mfgsolve.cli import main

    spec = tmp_path / "bin.toml"
    spec.write_bytes(b'family = "lq"\nT = \xff\n')
    assert main(["solve", str(spec), "--oracle", "exact", "--out", str(tmp_path / "a")]) == 2
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["solve", str(deep), "--oracle", "exact", "--out", str(tmp_path / "b")]) == 2
    assert main(["solve", "lq-1d", "--oracle", "exact", "--seed", str(2**64), "--out", str(tmp_path / "c")]) == 2
    assert main(["solve", "lq-1d", "--oracle", "exact", "--threads", "100000000000", "--out", str(tmp_path / "d")]) == 2
    # a learned oracle with Gaussian flows is refused before any training
    assert main(["solve", "lq-1d", "--oracle", "ddpg", "--flow", "gaussian", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("mfgsolve: error:") for line in err)
    assert not any((tmp_path / d).exists() for d in "abcde")
    # a name with terminal escapes is printed escaped
    ansi = tmp_path / "ansi.toml"
    ansi.write_text('family = "lq"\nname = "\\u001b[2J\\u001b[31mFAKE"\nT = 3\nA = 1.0\nB = 1.0\nR = 1.0\nQ = 1.0\n'
                    "mu0 = 1.0\nSigma0 = 0.1\n")
    assert main(["solve", str(ansi), "--oracle", "exact", "--quiet", "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mFAKE" in out


def test_a_tiny_damping_weight_is_named_not_the_scheme():
    res = mfg.solve(PB, mfg.ExactLQOracle(), scheme=mfg.Damped(1e-12), stop=mfg.Stop(iterations=8), progress=False)
    assert not res.summary.converged and "--alpha" in res.summary.advice
