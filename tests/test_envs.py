"""Bring your own agent: the gymnasium / PettingZoo environments and the Stable-Baselines3 oracle (tiny budgets)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import mfgsolve as mfg
from mfgsolve.errors import SpecError
from mfgsolve.oracles import registry

gym = pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")
pytest.importorskip("pettingzoo")

from gymnasium.utils.env_checker import check_env as gym_check_env  # noqa: E402
from pettingzoo.test import parallel_api_test  # noqa: E402
from stable_baselines3.common.env_checker import check_env as sb3_check_env  # noqa: E402

from mfgsolve.envs import AgentPolicy, FrozenFlowEnv, FrozenFlowVectorEnv, NPlayerParallelEnv  # noqa: E402
from mfgsolve.oracles.sb3 import SB3Config, SB3Oracle, SB3Policy  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")


def _flow(pb, n=128):
    return mfg.static_flow(pb, n=n, generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------------------ envs
@pytest.mark.parametrize("name", mfg.available_problems())
@pytest.mark.parametrize("population", [False, True])
def test_single_env_passes_both_checkers(name, population):
    pb = mfg.load_problem(name)
    env = FrozenFlowEnv(pb, _flow(pb), population_features=population)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice only (infinite observation bounds)
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env)


def test_single_env_episode_and_rewards():
    pb = mfg.load_problem("lq-1d")
    m = mfg.static_flow(pb, kind="gaussian")
    env = FrozenFlowEnv(pb, m, population_features=True, action_scale=5.0)
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.float32 and obs.shape == (1 + 2 + 2,)
    x0 = env.state.clone()
    total, steps, done = 0.0, 0, False
    while not done:
        obs, r, done, truncated, info = env.step(np.array([0.2], np.float32))
        assert not truncated
        total += r
        steps += 1
    assert steps == pb.T and info["t"] == pb.T and math.isfinite(total)
    # the same episode by hand: reward then step, with the generator seeded as reset(seed=1) seeds it
    g = torch.Generator().manual_seed(1)
    x = pb.sample_x0(1, g).double()
    assert torch.equal(x, x0)
    a = torch.tensor([[1.0]], dtype=torch.float64)  # 0.2 unit action times action_scale 5
    expected = 0.0
    for t in range(pb.T):
        expected += float(pb.reward(t, x, a, m))
        x = pb.step(t, x, a, m, g)
    expected += float(pb.terminal_reward(x, m))
    assert total == pytest.approx(expected, rel=1e-6)


def test_unbounded_actions_option():
    pb = mfg.load_problem("crowd-navigation")
    env = FrozenFlowEnv(pb, _flow(pb), bounded=False)
    assert np.array_equal(env.action_space.high, np.full(2, 2.0, np.float32))
    env = FrozenFlowEnv(mfg.load_problem("lq-1d"), mfg.static_flow(mfg.load_problem("lq-1d"), kind="gaussian"),
                        bounded=False)
    assert np.isinf(env.action_space.high).all()


@pytest.mark.parametrize("name", ["lq-1d", "crowd-navigation"])
def test_vector_env_shapes_autoreset_and_seeding(name):
    pb = mfg.load_problem(name)
    envs = FrozenFlowVectorEnv(pb, _flow(pb), 6, population_features=True)
    assert isinstance(envs, gym.vector.VectorEnv) and envs.num_envs == 6
    d = pb.n + 2 + 2 * pb.n
    obs, _ = envs.reset(seed=5)
    assert obs.shape == (6, d) and obs.dtype == np.float32 and envs.observation_space.contains(obs)
    envs.action_space.seed(0)
    actions = [envs.action_space.sample() for _ in range(pb.T)]
    assert actions[0].shape == (6, pb.p)
    trace = []
    for t, a in enumerate(actions):
        obs, r, term, trunc, info = envs.step(a)
        assert r.shape == (6,) and term.shape == (6,) and trunc.shape == (6,) and not trunc.any()
        assert term.all() == (t == pb.T - 1) and term.any() == term.all()
        trace.append((obs.copy(), r.copy()))
    # same-step autoreset at the horizon: the final observations in info, the next episode's first returned
    assert info["final_obs"].shape == (6, d) and info["_final_obs"].all()
    assert np.allclose(info["final_obs"][:, pb.n:pb.n + 2], [1.0, 1.0]) and np.allclose(obs[:, pb.n], 0.0)
    assert envs.t == 0
    envs.step(actions[0])  # the new episode goes on
    # seeding: the same seed, the same trajectories; another seed, others
    obs2, _ = envs.reset(seed=5)
    assert np.array_equal(obs2, FrozenFlowVectorEnv(pb, _flow(pb), 6, population_features=True).reset(seed=5)[0])
    for a, (o, r) in zip(actions, trace):
        o2, r2, *_ = envs.step(a)
        assert np.array_equal(o, o2) and np.array_equal(r, r2)
    assert not np.array_equal(envs.reset(seed=6)[0], obs2)
    # the batch is one agent each: a single env with the same generator stream starts like agent 0
    single, _ = FrozenFlowEnv(pb, _flow(pb), population_features=True).reset(seed=5)
    assert np.array_equal(single, obs2[0])


@pytest.mark.parametrize("name", mfg.available_problems())
@pytest.mark.parametrize("population", [False, True])
def test_vector_env_conforms_to_gymnasiums_own_vectoriser(name, population):
    # Gymnasium's and SB3's check_env take a gymnasium.Env only (both refuse a VectorEnv): the batched environment
    # is checked against gymnasium's reference vectoriser of the checked single environment, SyncVectorEnv in the
    # same autoreset mode: the same spaces, the same return types, shapes, dtypes and info keys at every step.
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    pb = mfg.load_problem(name)
    k = 3
    ours = FrozenFlowVectorEnv(pb, _flow(pb), k, population_features=population)
    ref = SyncVectorEnv([lambda: FrozenFlowEnv(pb, _flow(pb), population_features=population)] * k,
                        autoreset_mode=AutoresetMode.SAME_STEP)
    assert ours.metadata["autoreset_mode"] == ref.metadata["autoreset_mode"]
    for attr in ("single_observation_space", "single_action_space", "observation_space", "action_space"):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    (o1, i1), (o2, _) = ours.reset(seed=1), ref.reset(seed=1)
    assert o1.shape == o2.shape and o1.dtype == o2.dtype and ours.observation_space.contains(o1) and i1 == {}
    ours.action_space.seed(0)
    for t in range(pb.T):
        a = ours.action_space.sample()
        got, want = ours.step(a), ref.step(a)
        for x, y in zip(got[:4], want[:4]):
            assert type(x) is type(y) and x.shape == y.shape and x.dtype == y.dtype
        assert ours.observation_space.contains(got[0])
        assert np.array_equal(got[2], want[2]) and np.array_equal(got[3], want[3])  # episodes end together
        final = {key for key in want[4] if "final" in key}
        assert final <= set(got[4]), (t, final, set(got[4]))
    assert got[2].all() and np.array_equal(got[4]["final_obs"].shape, np.stack(want[4]["final_obs"]).shape)
    ref.close()


def test_an_external_agent_is_measured_like_any_policy():
    # AgentPolicy: any function of observations. The exact best response, written as such an agent (in the
    # problem's own actions), costs the exact J* against the equilibrium flow; an SB3 model's predict() gives the
    # same actions as the oracle's copied network.
    pb = mfg.load_problem("lq-1d")
    ref = pb.reference()
    m = mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)
    env = FrozenFlowEnv(pb, m, bounded=False)

    def exact_agent(obs):
        t = int(round(float(obs[0, pb.n]) * pb.T))
        return -(obs[:, : pb.n].astype(np.float64) @ ref.K[t].T) - ref.k[t]

    pi = AgentPolicy(exact_agent, env)
    costs = mfg.evaluation.rollout_costs(pb, pi, m, n=20_000, generator=torch.Generator().manual_seed(0))
    se = float(costs.std()) / math.sqrt(costs.numel())
    assert abs(float(costs.mean()) - ref.J) < 4 * se, (float(costs.mean()), ref.J, se)

    oracle = SB3Oracle("TD3", updates=150, learning_starts=50, batch_size=32, eval_agents=64, progress=False)
    policy, _ = oracle.best_response(pb, m)
    unit_env = FrozenFlowEnv(pb, m, action_scale=oracle.cfg.action_scale)  # the oracle's environment
    agent = AgentPolicy(lambda obs: oracle.model.predict(obs, deterministic=True)[0], unit_env)
    x = pb.sample_x0(16, torch.Generator().manual_seed(1)).to(torch.float64)
    for t in (0, pb.T - 1):
        assert torch.allclose(agent.act(t, x, m), policy.act(t, x, m), atol=1e-5)


@pytest.mark.parametrize("name", ["lq-1d", "crowd-navigation"])
def test_nplayer_parallel_api(name):
    env = NPlayerParallelEnv(mfg.load_problem(name), 4)
    parallel_api_test(env, num_cycles=60)
    obs, _ = env.reset(seed=0)
    x = np.array([o[: env.problem.n] for o in obs.values()])
    # the empirical measure's features: mean and std of the four states
    assert np.allclose(obs["agent_0"][-2 * env.problem.n:], np.concatenate([x.mean(0), x.std(0)]), atol=1e-6)


# ------------------------------------------------------------------------------------------------ oracle
def test_sb3_sac_best_response_on_lq_1d():
    pb = mfg.load_problem("lq-1d")
    ref = pb.reference()
    m = mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)
    oracle = SB3Oracle("SAC", updates=200, eval_agents=256, progress=False)
    pi, info = oracle.best_response(pb, m)
    assert isinstance(pi, SB3Policy) and math.isfinite(info.value) and info.extra["env_steps"] == 200
    a = pi.act(0, torch.zeros(5, 1, dtype=torch.float64), m)
    assert a.shape == (5, 1) and torch.isfinite(a).all()
    # the network is SB3's deterministic policy
    obs = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    expected, _ = oracle.model.predict(obs, deterministic=True)
    assert np.allclose(pi.net(torch.as_tensor(obs)).numpy(), expected, atol=1e-6)


def test_sb3_seconds_budget_and_warm_start():
    pb = mfg.load_problem("crowd-navigation")
    m = _flow(pb)
    oracle = SB3Oracle("TD3", seconds=0.5, learning_starts=20, batch_size=16, eval_agents=32, progress=False)
    pi, info = oracle.best_response(pb, m)
    assert info.extra["env_steps"] >= 1 and info.seconds < 30
    pi2, info2 = oracle.best_response(pb, m, warm_start=pi)
    assert info2.extra["warm"] and math.isfinite(info2.value)


def test_sb3_solve_runs():
    pb = mfg.load_problem("lq-1d")
    res = mfg.solve(pb, SB3Oracle("TD3", updates=100, learning_starts=20, batch_size=32, eval_agents=64),
                    stop=mfg.Stop(iterations=2), flow=mfg.Particles(256), seed=0, progress=False)
    assert len(res.history) == 2


def test_sb3_checkpoint_round_trip_is_data_and_resumes(tmp_path):
    from mfgsolve.checkpoint import load_checkpoint, save_checkpoint

    pb = mfg.load_problem("lq-1d")
    m = mfg.static_flow(pb, kind="gaussian")
    kw = dict(updates=60, learning_starts=20, batch_size=16, eval_agents=32, progress=False)
    oracle = SB3Oracle("TD3", population_features=True, **kw)
    pi, _ = oracle.best_response(pb, m)
    (tmp_path / "c.pt").write_bytes(save_checkpoint({"state": pi, "oracle": oracle.state_dict()}))
    blob = load_checkpoint(tmp_path / "c.pt")  # weights only
    resumed = SB3Oracle("TD3", population_features=True, **kw)
    resumed.load_state_dict(blob["oracle"])
    _, a = oracle.best_response(pb, m, warm_start=pi)
    _, b = resumed.best_response(pb, m, warm_start=blob["state"])
    assert a.value == b.value


def test_sb3_config_validation_and_for_run():
    with pytest.raises(SpecError, match="algo"):
        SB3Config(algo="A2C")
    with pytest.raises(SpecError, match="batch_size"):
        SB3Config(batch_size=2.5)
    with pytest.raises(SpecError, match="gamma"):
        SB3Oracle("SAC", gamma=0.0)
    run = SB3Oracle("PPO").for_run(seed=3, updates=500)
    assert (run.cfg.algo, run.cfg.seed, run.cfg.updates) == ("PPO", 3, 500)
    assert run.config()["algo"] == "PPO" and "progress" not in run.config()


def test_sb3_does_not_disturb_global_generators():
    pb = mfg.load_problem("lq-1d")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    SB3Oracle("PPO", updates=10, n_steps=16, batch_size=8, n_epochs=1, eval_agents=8,
              progress=False).best_response(pb, mfg.static_flow(pb, kind="gaussian"))
    assert torch.equal(torch.get_rng_state(), before)


# ------------------------------------------------------------------------------------------------ registry
def test_parse_oracle_name():
    assert registry.parse_oracle_name("sb3:SAC") == ("sb3", "SAC")
    assert registry.parse_oracle_name("ddpg") == ("ddpg", None)
    for bad in ("sb3:", ":SAC", "sb3:SAC:x"):
        with pytest.raises(SpecError, match="oracle"):
            registry.parse_oracle_name(bad)


def test_make_oracle_with_an_argument():
    oracle = registry.make_oracle("sb3:SAC", updates=50)
    assert isinstance(oracle, SB3Oracle) and oracle.cfg.algo == "SAC" and oracle.cfg.updates == 50
    assert registry.make_oracle("sb3:TD3").cfg.algo == "TD3"
    assert "algo" not in registry.oracle_settings("sb3:SAC") and "algo" in registry.oracle_settings("sb3")
    with pytest.raises(SpecError, match="algo: must be one of"):
        registry.make_oracle("sb3:A2C")
    with pytest.raises(SpecError, match="no setting 'algo'"):
        registry.make_oracle("sb3:SAC", algo="TD3")
    with pytest.raises(SpecError, match="unknown oracle 'nope'"):
        registry.make_oracle("nope:SAC")


def test_cli_takes_a_parametrised_oracle(tmp_path):
    import json

    from mfgsolve.cli import main

    out = tmp_path / "run"
    assert main(["solve", "lq-1d", "--oracle", "sb3:TD3", "--iterations", "1", "--br-updates", "60", "--quiet", "--particles", "256", "--threads", "1",
                 "--br-set", "learning_starts=20", "--br-set", "batch_size=16", "--br-set", "eval_agents=32",
                 "--out", str(out)]) == 0
    oracle = json.loads((out / "config.json").read_text())["oracle"]
    assert oracle["name"] == "sb3:TD3" and oracle["algo"] == "TD3" and oracle["updates"] == 60


def test_sb3_is_registered_by_the_install():
    # pyproject.toml's mfgsolve.oracles entry point, as `pip install -e .` registers it
    assert registry.available_oracles()["sb3"].value == "mfgsolve.oracles.sb3:SB3Oracle"
    assert registry.make_oracle("sb3:PPO", updates=10).cfg.algo == "PPO"


def test_episodes_with_the_exact_best_response_return_the_exact_cost():
    # the environment is the game itself: the exact LQ best response to the equilibrium flow, played as an agent,
    # earns minus the exact equilibrium cost J* within its Monte-Carlo standard error
    from mfgsolve.envs import FrozenFlowVectorEnv

    pb = mfg.load_problem("lq-1d")
    ref = pb.reference()
    agents = 20_000
    env = FrozenFlowVectorEnv(pb, mfg.GaussianFlow.from_numpy(ref.mean, ref.cov), agents, bounded=False)
    obs, _ = env.reset(seed=0)
    ret = np.zeros(agents)
    for t in range(pb.T):
        x = obs[:, : pb.n].astype(np.float64)
        obs, reward, terminated, truncated, _ = env.step((-(x @ ref.K[t].T) - ref.k[t]).astype(np.float32))
        ret += reward
    assert terminated.all() and not truncated.any()
    cost = -ret
    se = cost.std(ddof=1) / np.sqrt(agents)
    assert abs(cost.mean() - ref.J) < 4 * se, (cost.mean(), ref.J, se)
