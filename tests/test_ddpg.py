"""The DDPG (MF-MADDPG) oracle: tiny-budget runs of every option, reproducibility, warm starts, checkpoints.

Accuracy at real budgets is measured by ``bench/ddpg_oracle.py`` and the slow test at the end, not here.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

import mfgsolve as mfg
from mfgsolve.learn.encoders import ENCODERS
from mfgsolve.learn.exploration import NOISES
from mfgsolve.oracles import Oracle
from mfgsolve.oracles.ddpg import DDPGConfig, DDPGOracle, DDPGPolicy
from mfgsolve.oracles.mfrl import MFACOracle, MFQOracle
from mfgsolve.oracles.nopop import NoPopDDPGOracle, NoPopPolicy

#: A few updates on a handful of agents: exercises every code path in well under a second.
TINY = dict(updates=6, n_agents=8, batch_size=16, eval_every=3, eval_agents=16, hidden=16, encoder_dim=4,
            particles=8, hist_bins=4, progress=False)


def lq_2d() -> mfg.LQProblem:
    return mfg.LQProblem.from_spec({
        "T": 3, "A": [[1.0, 0.1], [0.0, 0.9]], "B": [[0.2, 0.0], [0.1, 0.3]], "Abar": [[0.1, 0.0], [0.0, 0.1]],
        "Q": [[1.0, 0.1], [0.1, 0.5]], "R": [[0.3, 0.0], [0.0, 0.3]], "N": [[0.05, 0.0], [0.0, 0.05]],
        "S": [[-0.2, 0.0], [0.0, -0.2]], "U": [[0.1, 0.0], [0.0, 0.1]], "QT": [[1.0, 0.0], [0.0, 1.0]],
        "Sigma_w": [[0.02, 0.0], [0.0, 0.02]], "mu0": [1.0, -0.5], "Sigma0": [[0.1, 0.0], [0.0, 0.1]],
    }, name="lq-2d-test")


def equilibrium_flow(pb: mfg.LQProblem) -> mfg.GaussianFlow:
    ref = pb.reference()
    return mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)


def particle_flow(pb: mfg.LQProblem, n: int = 64) -> mfg.ParticleFlow:
    ref = pb.reference()
    return mfg.propagate(pb, mfg.AffinePolicy(ref.K, ref.k), equilibrium_flow(pb), n=n,
                         generator=torch.Generator().manual_seed(3))


def actor_params(policy: DDPGPolicy) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in policy.actor.parameters()])


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("dim", [1, 2])
def test_every_encoder_runs(encoder: str, dim: int) -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3}) if dim == 1 else lq_2d()
    oracle = DDPGOracle(encoder=encoder, **TINY)
    pi, info = oracle.best_response(pb, equilibrium_flow(pb))
    assert info.extra["updates"] == TINY["updates"]
    assert math.isfinite(info.value)
    for m in (equilibrium_flow(pb), particle_flow(pb)):  # the policy reads either kind of flow
        a = pi.act(1, torch.zeros(5, pb.n, dtype=torch.float64), m)
        assert a.shape == (5, pb.p) and a.dtype == torch.float64 and torch.isfinite(a).all()


@pytest.mark.parametrize("noise", NOISES)
def test_every_noise_runs(noise: str) -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    oracle = DDPGOracle(noise=noise, **TINY)
    pi, info = oracle.best_response(pb, equilibrium_flow(pb))
    assert info.extra["updates"] == TINY["updates"] and math.isfinite(info.value)
    if noise == "parameter":  # adapted once per episode after the warmup
        assert oracle.exploration.param_sigma != DDPGConfig().param_noise_initial


def test_td3_off_and_seed_architecture_run() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    oracle = DDPGOracle(td3=False, critic_bilinear=False, critic_split=True, actor_skip=False,
                        activation="relu", grad_clip=1.0, **TINY)
    assert len([k for k in oracle.config()]) > 10
    _, info = oracle.best_response(pb, equilibrium_flow(pb))
    assert info.extra["updates"] == TINY["updates"]
    assert oracle.learner is not None and "critic1" not in oracle.learner.nets


@pytest.mark.parametrize("where", ["critic", "all"])
def test_step_onehot_runs_with_twin_critics_and_bound_policy(where: str) -> None:
    """The one-hot step inputs reach the twin critics and their targets (and the actor with "all"); the returned
    policy reads what its actor was trained on."""
    pb = lq_2d()
    m = equilibrium_flow(pb)
    oracle = DDPGOracle(step_onehot=where, twin_critics=True, **TINY)
    pi, info = oracle.best_response(pb, m)
    assert info.extra["updates"] == TINY["updates"]
    assert oracle.learner is not None
    nets = oracle.learner.nets
    for name in ("critic0", "critic1", "target_critic1"):
        assert nets[name].state[0].in_features == pb.n + 2 + pb.T + 1  # type: ignore[index]
    assert nets["actor"].state[0].in_features == pb.n + 2 + (pb.T + 1 if where == "all" else 0)  # type: ignore[index]
    x = torch.zeros(5, pb.n, dtype=torch.float64)
    assert pi.bind(m).act(pb.T - 1, x, m).shape == (5, pb.p)


def test_same_seed_same_result_twice() -> None:
    pb = lq_2d()
    m = equilibrium_flow(pb)
    runs = []
    for _ in range(2):
        pi, info = DDPGOracle(seed=7, noise="ou", **TINY).best_response(pb, m)
        runs.append((actor_params(pi), [(e[0], e[2:]) for e in info.extra["evals"]], info.value))
    assert torch.equal(runs[0][0], runs[1][0])  # bit-identical
    assert runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2]
    pi2, _ = DDPGOracle(seed=8, noise="ou", **TINY).best_response(pb, m)
    assert not torch.equal(runs[0][0], actor_params(pi2))


def test_one_and_two_threads_give_the_same_networks() -> None:
    """The CLI runs two torch threads where two cores are free (``cli.default_threads``): the default-size updates
    (batch 1024, hidden 64) and a 2-D actor acting on 20000 particles must not depend on it, to the last bit."""
    pb = lq_2d()
    m = equilibrium_flow(pb)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            pi, info = DDPGOracle(seed=3, updates=40, eval_every=20, eval_agents=20000, progress=False).best_response(pb, m)
            x = torch.randn(20000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
            runs.append((actor_params(pi), info.value, pi.act(1, x, m)))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2])


def test_state_dict_resumes_exactly() -> None:
    """Save after one best response, restore into a fresh oracle: the next warm-started response is identical."""
    pb = mfg.load_problem("lq-1d", {"T": 3})
    m1 = equilibrium_flow(pb)
    m2 = mfg.static_flow(pb, kind="gaussian")
    kw = dict(TINY, keep_replay=True, noise="parameter", encoder="deepsets")
    a = DDPGOracle(seed=1, **kw)
    pi1, _ = a.best_response(pb, m1)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)  # tensors and plain Python only
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    pi2, info2 = a.best_response(pb, m2, warm_start=pi1)
    b = DDPGOracle(seed=1, **kw)
    b.load_state_dict(state)
    pi2b, info2b = b.best_response(pb, m2, warm_start=pi1)
    assert torch.equal(actor_params(pi2), actor_params(pi2b))
    assert [e[2] for e in info2.extra["evals"]] == [e[2] for e in info2b.extra["evals"]]
    assert a.learner is not None and b.learner is not None
    assert len(b.learner.replay) == len(a.learner.replay) and a.learner.replay.flows() == {0, 1}


def test_warm_start_starts_from_previous_actor() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    m = equilibrium_flow(pb)
    oracle = DDPGOracle(**{**TINY, "updates": 1, "eval_every": 1, "keep_best": False})
    pi1, _ = oracle.best_response(pb, m)
    before = actor_params(pi1)
    pi2, _ = oracle.best_response(pb, m, warm_start=pi1)
    # One update with lr 2e-3 moves the actor by little; a fresh network would be a new random draw.
    assert (actor_params(pi2) - before).abs().max() < 0.05
    cold = DDPGOracle(**{**TINY, "updates": 1, "eval_every": 1, "keep_best": False, "warm_start": False})
    cold.best_response(pb, m)
    pi3, _ = cold.best_response(pb, m, warm_start=pi1)
    assert (actor_params(pi3) - before).abs().max() > 0.05


class _NaNAfter(mfg.LQProblem):
    """lq-1d whose rewards turn NaN: the oracle must stop with a clear error, not return garbage."""

    def reward(self, t, x, a, m):  # type: ignore[override]
        return super().reward(t, x, a, m) * float("nan")


def test_non_finite_reward_is_a_clear_error() -> None:
    base = mfg.load_problem("lq-1d", {"T": 3})
    pb = _NaNAfter(base.coef, name="nan")
    with pytest.raises(FloatingPointError, match=r"non-finite .* at environment step 0"):
        DDPGOracle(**TINY).best_response(pb, equilibrium_flow(base))


def test_non_finite_loss_names_the_update() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    with pytest.raises(FloatingPointError, match=r"non-finite critic loss at update 0 of best response 1"):
        DDPGOracle(reward_scale=1e308, **TINY).best_response(pb, equilibrium_flow(pb))


def test_config_validation_names_the_field() -> None:
    with pytest.raises(mfg.SpecError, match="encoder"):
        DDPGConfig(encoder="fourier")
    with pytest.raises(mfg.SpecError, match="updates"):
        DDPGConfig(updates=0)
    with pytest.raises(mfg.SpecError, match="seed"):
        DDPGConfig(seed=-1)
    with pytest.raises(mfg.SpecError, match="tau"):
        DDPGConfig(tau=0.0)
    with pytest.raises(mfg.SpecError, match="step_onehot"):
        DDPGConfig(step_onehot=True)  # type: ignore[arg-type]
    help_lines = DDPGConfig.help()
    assert set(help_lines) == set(DDPGConfig.__dataclass_fields__)  # one docstring per field


def test_seconds_budget_stops() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    _, info = DDPGOracle(**{**TINY, "updates": None, "seconds": 0.5}).best_response(pb, equilibrium_flow(pb))
    assert info.seconds < 5.0 and info.extra["updates"] >= 1


class _Bounded(mfg.LQProblem):
    """``lq-1d`` with actions bounded to ``[-0.5, 0.25]``."""

    action_low = torch.tensor([-0.5], dtype=torch.float64)
    action_high = torch.tensor([0.25], dtype=torch.float64)


def test_bounded_actions_stay_in_bounds() -> None:
    base = mfg.load_problem("lq-1d", {"T": 3})
    pb = _Bounded(base.coef, name="bounded")
    pi, _ = DDPGOracle(**TINY).best_response(pb, equilibrium_flow(base))
    a = pi.act(0, torch.linspace(-50, 50, 101, dtype=torch.float64)[:, None], equilibrium_flow(base))
    assert a.min() >= -0.5 and a.max() <= 0.25


@pytest.mark.parametrize("noise", NOISES)
def test_exploration_scale_defaults_to_the_action_bounds(noise: str) -> None:
    """0.3 of the half-range for bounded actions, 1.0 action unit for unbounded ones; an explicit value wins."""
    base = mfg.load_problem("lq-1d", {"T": 3})
    bounded = _Bounded(base.coef, name="bounded")
    m = equilibrium_flow(base)
    for pb, sigma in ((base, 1.0), (bounded, 0.3)):
        oracle = DDPGOracle(noise=noise, **TINY)
        assert oracle.exploration is None  # made with the networks, once the bounds are known
        oracle.best_response(pb, m)
        assert oracle.exploration is not None and oracle.exploration.sigma == sigma
        explicit = DDPGOracle(noise=noise, noise_sigma=0.5, **TINY)
        explicit.best_response(pb, m)
        assert explicit.exploration is not None and explicit.exploration.sigma == 0.5
    with pytest.raises(mfg.SpecError, match="noise_sigma"):
        DDPGConfig(noise_sigma=-0.1)


def test_solve_with_ddpg_oracle_runs_and_warm_starts() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    res = mfg.solve(pb, DDPGOracle(**TINY), stop=mfg.Stop(iterations=2), flow=mfg.Particles(128), progress=False)
    assert len(res.history) == 2 and res.summary.oracle == "ddpg"
    assert all(np.isfinite(h.residual) for h in res.history)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_bound_policy_acts_as_against_its_flow(encoder: str) -> None:
    # a best response is a strategy against the flow it answered: bound to m, it ignores the flow it is shown
    pb = lq_2d()
    m, other = particle_flow(pb), mfg.static_flow(pb, kind="particles", n=64, generator=torch.Generator().manual_seed(1))
    pi, _ = DDPGOracle(**{**TINY, "encoder": encoder}).best_response(pb, m)
    bound = pi.bind(m)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for t in range(pb.T):
        assert torch.equal(bound.act(t, x, other), pi.act(t, x, m))
    assert not torch.equal(pi.act(1, x, other), pi.act(1, x, m))  # the unbound actor does read the flow
    assert bound.bind(other) is bound


def test_large_populations_act_in_blocks_with_the_same_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    # a population larger than ACT_CHUNK goes through the actor in blocks: the actions must not change
    import mfgsolve.oracles.ddpg as ddpg

    pb = lq_2d()
    m = particle_flow(pb)
    pi, _ = DDPGOracle(**TINY).best_response(pb, m)
    x = torch.randn(103, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    whole = [pi.act(t, x, m) for t in range(pb.T)], [pi.bind(m).act(t, x, m) for t in range(pb.T)]
    monkeypatch.setattr(ddpg, "ACT_CHUNK", 10)
    blocks = [pi.act(t, x, m) for t in range(pb.T)], [pi.bind(m).act(t, x, m) for t in range(pb.T)]
    for a, b in zip(whole[0] + whole[1], blocks[0] + blocks[1]):
        assert a.shape == (103, 2)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_fictitious_play_mixes_bound_responses() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    res = mfg.solve(pb, DDPGOracle(**TINY), scheme=mfg.FictitiousPlay(2.0), stop=mfg.Stop(iterations=3, tol=1e-10), flow=mfg.Particles(128),
                    progress=False)
    assert isinstance(res.policy, mfg.MixturePolicy) and len(res.policy.components) == 3
    assert all(type(c).__name__ == "MarkovDDPGPolicy" for c in res.policy.components)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lq_1d_within_two_percent_in_20000_updates(seed: int) -> None:
    """Real budget (minutes): the acceptance figure is the benchmark's 1% median in 60 s; this is a looser guard."""
    pb = mfg.load_problem("lq-1d")
    res = mfg.br_check(pb, DDPGOracle(seed=seed, progress=False), seed=seed)
    assert res.relative_gap <= 0.02 + 3 * res.gap_se / abs(res.J_best)


# ------------------------------------------------------------------------------------------ the run's seed and budget
@pytest.mark.parametrize("make", [DDPGOracle, NoPopDDPGOracle, MFQOracle, MFACOracle])
def test_for_run_fills_only_what_the_oracle_leaves_open(make) -> None:
    from mfgsolve.presets import LEARNED

    given = make(seed=3, updates=5)
    assert given.for_run(seed=9, updates=99) is given
    timed = make(seed=3, seconds=2.0)
    assert timed.for_run(seed=9, updates=99) is timed  # a budget in seconds is a budget
    open_ = make()
    run = open_.for_run(seed=9, updates=99)
    assert type(run) is type(open_) and run is not open_
    assert (run.cfg.seed, run.cfg.updates, run.cfg.seconds) == (9, 99, None)
    assert run.config() == {**open_.config(), "seed": 9, "updates": 99}
    only_seconds = make(seconds=2.0).for_run(seed=9, updates=99)
    assert (only_seconds.cfg.seed, only_seconds.cfg.updates, only_seconds.cfg.seconds) == (9, None, 2.0)
    # used on its own: seed 0 and the learned preset's budget, reported as such
    assert (open_.config()["seed"], open_.config()["updates"]) == (0, LEARNED.br_updates)


def test_for_run_refuses_after_training_and_the_exact_oracle_is_itself() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    tiny = {k: v for k, v in TINY.items() if k != "seed"}
    oracle = DDPGOracle(**tiny)
    oracle.best_response(pb, equilibrium_flow(pb))
    assert oracle.config()["seed"] == 0
    with pytest.raises(ValueError, match="trained"):
        oracle.for_run(seed=1, updates=10)
    exact = mfg.ExactLQOracle()
    assert exact.for_run(seed=1, updates=10) is exact
    assert isinstance(exact, Oracle) and isinstance(oracle, Oracle)


def test_open_seed_plays_seed_zero_bit_for_bit() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    tiny = {k: v for k, v in TINY.items() if k != "seed"}
    pi_open, _ = DDPGOracle(**tiny).best_response(pb, equilibrium_flow(pb))
    pi_zero, _ = DDPGOracle(seed=0, **tiny).best_response(pb, equilibrium_flow(pb))
    pi_run, _ = DDPGOracle(**tiny).for_run(seed=0, updates=tiny["updates"]).best_response(pb, equilibrium_flow(pb))
    assert torch.equal(actor_params(pi_open), actor_params(pi_zero))
    assert torch.equal(actor_params(pi_run), actor_params(pi_zero))


def test_population_blind_is_a_setting_of_the_ddpg_oracle() -> None:
    pb = mfg.load_problem("lq-1d", {"T": 3})
    m1, m2 = equilibrium_flow(pb), mfg.static_flow(pb, kind="gaussian")
    setting = DDPGOracle(population_input=False, **TINY)
    subclass = NoPopDDPGOracle(**TINY)
    assert {**setting.config(), "name": "ddpg-nopop"} == subclass.config()
    for oracle in (setting, subclass):
        pi, _ = oracle.best_response(pb, m1)
        pi, _ = oracle.best_response(pb, m2, warm_start=pi)
        assert isinstance(pi, NoPopPolicy)
    x = torch.linspace(-1, 1, 7, dtype=torch.float64)[:, None]
    assert torch.equal(pi.act(1, x, m1), pi.act(1, x, m2))  # reads nothing of the flow it plays
