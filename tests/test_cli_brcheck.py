"""``mfgsolve br-check``: the JSON it writes, and clean errors that write nothing."""

from __future__ import annotations

import json

import pytest

import mfgsolve as mfg
from mfgsolve.cli import main


def test_br_check_exact_oracle_has_zero_gap(tmp_path):
    assert main(["br-check", "lq-1d", "--set", "T=4", "--oracle", "exact", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "br_check.json").read_text())
    # the exact oracle returns the equilibrium policy itself: zero gap on common random numbers
    assert res["relative_gap"] == 0.0 and res["gap"] == 0.0 and res["gap_se"] == 0.0
    assert res["J_best"] == pytest.approx(mfg.load_problem("lq-1d", {"T": 4}).reference().J, rel=1e-12)
    assert {"relative_gap", "gap", "J_policy", "J_best", "seconds", "gap_se"} <= set(res)


def test_br_check_ddpg_tiny_budget(tmp_path, capsys):
    argv = ["br-check", "lq-1d", "--set", "T=4", "--oracle", "ddpg", "--updates", "5", "--seed", "3", "--quiet",
            "--br-set", "batch_size=64", "--out", str(tmp_path)]
    assert main(argv) == 0
    res = json.loads((tmp_path / "br_check.json").read_text())
    assert res["oracle"] == "ddpg" and res["seed"] == 3 and res["oracle_info"]["updates"] == 5
    # the settings it trained with, traceable: --br-set, the budget and the run's seed
    assert res["oracle_config"]["batch_size"] == 64 and res["oracle_config"]["updates"] == 5
    assert res["oracle_config"]["seed"] == 3 and res["problem_config"]["spec"]["T"] == 4
    assert res["J_policy"] == pytest.approx(res["J_best"] + res["gap"])
    # 5 updates are far from optimal, so the doubling stops at once: s.e. within a tenth of the gap
    assert res["gap_se"] <= 0.1 * abs(res["gap"])
    assert "relative_gap" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["br-check", "lq-1d", "--oracle", "magic", "--out", "OUT"], "--oracle"),
        (["br-check", "lq-1d", "--seconds", "0", "--out", "OUT"], "--seconds"),
        (["br-check", "lq-1d", "--updates", "-3", "--out", "OUT"], "--updates"),
        (["br-check", "lq-1d", "--seed", "-1", "--out", "OUT"], "--seed"),
        (["br-check", "lq-1d"], "--out"),
        (["br-check", "no-such", "--out", "OUT"], "no-such"),
        (["br-check", "lq-1d", "--br-set", "batch_size=0", "--out", "OUT"], "--br-set"),
        (["br-check", "lq-1d", "--oracle", "exact", "--br-set", "batch=2", "--out", "OUT"], "--br-set"),
    ],
)
def test_br_check_bad_input(args, needle, capsys, tmp_path):
    out = tmp_path / "never"
    assert main([a.replace("OUT", str(out)) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err, err
    assert not out.exists()
