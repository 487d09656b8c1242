"""The pathwise best-response oracle (issue 19): tiny-budget smoke tests; accuracy lives in
``bench/pathwise_oracle.py``."""

from __future__ import annotations

import csv
import math

import pytest
import torch

import mfgsolve as mfg
from mfgsolve import presets
from mfgsolve.errors import SpecError
from mfgsolve.evaluation import policy_cost
from mfgsolve.oracles.pathwise import PathwiseConfig, PathwiseOracle

TINY = dict(batch=32, eval_every=5, eval_agents=256, hidden=16, encoder_dim=4, progress=False)
TIMING = {"br_seconds", "seconds"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _equilibrium(pb):
    ref = pb.reference()
    return mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)


def test_a_tiny_best_response_improves_on_the_initial_policy():
    pb = mfg.load_problem("lq-1d")
    m = _equilibrium(pb)
    pi, info = PathwiseOracle(seed=0, updates=30, **TINY).best_response(pb, m)
    evals = info.extra["evals"]
    assert evals[0][0] == 0 and info.extra["updates"] == 30
    # the best of the periodic evaluations and of the averaged iterate (one more candidate, on the same agents)
    assert math.isfinite(info.value) and info.value == min(min(row[2] for row in evals), info.extra["average_J"])
    assert info.value < evals[0][2]  # better than the initial actor on the same agents (common random numbers)
    # and on fresh agents: the returned policy beats the initial (near-zero) actions of the start
    g = torch.Generator().manual_seed(11)
    start_pi, _ = PathwiseOracle(seed=0, updates=1, **{**TINY, "eval_every": 1}).best_response(pb, m)
    J = policy_cost(pb, pi, m, n=2048, generator=g)
    J0 = policy_cost(pb, start_pi, m, n=2048, generator=torch.Generator().manual_seed(11))
    assert J.mean < J0.mean - 3 * (J.se + J0.se)
    assert isinstance(pi, mfg.DDPGPolicy)


def test_same_seed_gives_the_same_actor_bit_for_bit():
    pb = mfg.load_problem("lq-1d")
    m = _equilibrium(pb)
    a, _ = PathwiseOracle(seed=3, updates=8, **TINY).best_response(pb, m)
    b, _ = PathwiseOracle(seed=3, updates=8, **TINY).best_response(pb, m)
    c, _ = PathwiseOracle(seed=4, updates=8, **TINY).best_response(pb, m)
    sa, sb, sc = a.actor.state_dict(), b.actor.state_dict(), c.actor.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


class _Detaching:
    """lq-1d whose ``step`` cuts the graph: the pathwise gradient would be the myopic one only."""

    def __init__(self, pb):
        self.pb = pb
        self.name, self.n, self.p, self.T = "detaching-lq", pb.n, pb.p, pb.T
        self.action_low, self.action_high = pb.action_low, pb.action_high

    def sample_x0(self, n, generator):
        return self.pb.sample_x0(n, generator)

    def step(self, t, x, a, m, generator):
        return self.pb.step(t, x, a.detach(), m, generator)

    def reward(self, t, x, a, m):
        return self.pb.reward(t, x, a, m)

    def terminal_reward(self, x, m):
        return self.pb.terminal_reward(x, m)

    def reference(self):
        return None

    def config(self):
        return {"name": self.name}


def test_a_problem_that_does_not_pass_gradients_is_refused_by_the_probe():
    pb = mfg.load_problem("lq-1d")
    with pytest.raises(SpecError) as err:
        PathwiseOracle(seed=0, updates=5, **TINY).best_response(_Detaching(pb), _equilibrium(pb))
    assert err.value.field == "oracle"
    msg = str(err.value)
    assert "detaching-lq" in msg and "--oracle ddpg" in msg and "\n" not in msg


def test_config_is_validated_at_the_boundary():
    with pytest.raises(SpecError) as err:
        PathwiseConfig(batch=0)
    assert err.value.field == "batch"
    with pytest.raises(SpecError) as err:
        PathwiseOracle(dtype="float16")
    assert err.value.field == "dtype"


def test_for_run_fills_the_seed_and_the_budget_left_open():
    run = PathwiseOracle(updates=None, **TINY).for_run(seed=9, updates=99)
    assert (run.cfg.seed, run.cfg.updates) == (9, 99)
    # no budget of its own: the run's, which solve() and br_check() take from the oracle's preset
    assert PathwiseConfig().updates is None and PathwiseConfig().seconds is None
    assert presets.preset_for(PathwiseOracle()) is presets.PATHWISE
    assert PathwiseOracle(**TINY).settings.updates == presets.PATHWISE.br_updates  # used on its own
    given = PathwiseOracle(seed=1, updates=5, **TINY)
    assert given.for_run(seed=9, updates=99) is given
    timed = PathwiseOracle(seed=None, updates=None, seconds=2.0, **TINY).for_run(seed=9, updates=99)
    assert (timed.cfg.seed, timed.cfg.updates, timed.cfg.seconds) == (9, None, 2.0)
    assert run.config()["name"] == "pathwise" and "progress" not in run.config()


def test_br_check_runs():
    pb = mfg.load_problem("lq-1d")
    check = mfg.br_check(pb, PathwiseOracle(updates=20, **TINY), seed=0, min_agents=4096, max_agents=4096)
    assert math.isfinite(check.relative_gap)


def _rows(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(fh)]


def test_solve_runs_and_a_resumed_run_is_the_uninterrupted_one(tmp_path):
    pb = mfg.load_problem("lq-1d")
    kw = dict(flow=mfg.Particles(512), evaluation=mfg.Evaluation(particles=256, final_particles=512), seed=0,
              progress=False)
    tiny = dict(updates=20, **TINY)
    full = mfg.solve(pb, PathwiseOracle(**tiny), stop=mfg.Stop(iterations=2), run_dir=tmp_path / "full", **kw)
    assert len(full.history) == 2
    mfg.solve(pb, PathwiseOracle(**tiny), stop=mfg.Stop(iterations=1), run_dir=tmp_path / "cut", **kw)
    resumed = mfg.solve(pb, PathwiseOracle(**tiny), stop=mfg.Stop(iterations=2),
                        run_dir=mfg.RunDir(tmp_path / "cut", resume=True), **kw)
    assert _rows(tmp_path / "cut" / "history.csv") == _rows(tmp_path / "full" / "history.csv")
    assert resumed.summary.residuals == full.summary.residuals


def test_a_warm_started_response_takes_its_share_of_the_budget():
    pb = mfg.load_problem("lq-1d")
    m = _equilibrium(pb)
    oracle = PathwiseOracle(seed=0, updates=20, **TINY)
    first, info = oracle.best_response(pb, m)
    _, warm = oracle.best_response(pb, m, warm_start=first)
    assert info.extra["updates"] == 20 and warm.extra["updates"] == math.ceil(0.25 * 20)
    cold = PathwiseOracle(seed=0, updates=20, warm_start=False, **TINY)
    cold.best_response(pb, m)
    assert cold.best_response(pb, m, warm_start=first)[1].extra["updates"] == 20


def test_the_strongest_response_is_pathwise_where_gradients_pass_and_ddpg_elsewhere():
    from mfgsolve.metrics import bounding_response

    pb = mfg.load_problem("lq-1d")
    oracle, record = bounding_response(pb)
    assert isinstance(oracle, PathwiseOracle) and record == {"oracle": "pathwise", "updates": 1000, "seed": 0}
    oracle, record = bounding_response(_Detaching(pb), updates=7, seed=3)
    assert isinstance(oracle, mfg.DDPGOracle) and record == {"oracle": "ddpg", "updates": 7, "seed": 3}
    with pytest.raises(SpecError) as err:
        bounding_response(_Detaching(pb), "pathwise")
    assert err.value.field == "final_response"


def test_a_problem_with_no_exact_exploitability_reports_a_stated_lower_bound(tmp_path):
    pb = mfg.load_problem("crowd-navigation")
    kw = dict(stop=mfg.Stop(iterations=1), flow=mfg.Particles(256), seed=0, progress=False)
    oracle = mfg.DDPGOracle(updates=10, batch_size=32, progress=False)
    ev = mfg.Evaluation(particles=64, final_particles=64, response_updates=3, response_agents=128)
    run = mfg.solve(pb, oracle, evaluation=ev, run_dir=tmp_path / "bound", **kw)
    record = {"oracle": "pathwise", "updates": 3, "seed": 2, "agents": 128}
    assert run.summary.exploitability_bound == record and run.config["final_response"] == record
    assert run.summary.exploitability is not None and math.isfinite(run.summary.exploitability)
    assert mfg.load_run(tmp_path / "bound").summary["exploitability_bound"] == record
    off = mfg.solve(pb, mfg.DDPGOracle(updates=10, batch_size=32, progress=False),
                    evaluation=mfg.Evaluation(particles=64, final_particles=64, response="none"), **kw)
    assert off.summary.exploitability is None and off.summary.exploitability_bound is None
    assert "final_response" not in off.config
    # an LQ run's exploitability is exact: no bound, and its config (and fingerprint) as before
    lq = mfg.solve(mfg.load_problem("lq-1d"), mfg.ExactLQOracle(), stop=mfg.Stop(iterations=1), progress=False)
    assert lq.summary.exploitability_bound is None and "final_response" not in lq.config
