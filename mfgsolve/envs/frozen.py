r"""One agent (or a batch of agents) against a frozen population flow, as gymnasium environments.

The best-response problem of every oracle, handed to any agent: an episode is the problem's horizon, ``T``
steps from :math:`x_0 \sim` ``problem.sample_x0``, with

* observation: the agent's state, the time features :math:`(t/T, 1/(T - t + 1))` and, with
  ``population_features``, the mean and standard deviation of :math:`m_t` (:mod:`mfgsolve.envs.common`); float32;
* action: with ``bounded=True`` (the default) a unit action in :math:`[-1, 1]^p`, mapped to the problem's action
  by :class:`mfgsolve.learn.actions.ActionMap` (affine onto the problem's bounds; ``action_scale`` times the unit
  action for a problem without bounds); with ``bounded=False`` the problem's own action, in a ``Box`` of its bounds
  (unbounded when it has none);
* reward: ``reward_scale`` times the problem's ``reward(t, x, a, m)``, plus ``terminal_reward(x_T, m)`` at the
  last step, which *terminates* the episode (the time is observed, so the horizon is part of the state);
* dynamics: the problem's ``step(t, x, a, m, generator)`` with the environment's own ``torch.Generator``, seeded by
  ``reset(seed=...)`` (float64 tensors inside).

>>> import mfgsolve as mfg
>>> from mfgsolve.envs import FrozenFlowEnv
>>> pb = mfg.load_problem("lq-1d")
>>> env = FrozenFlowEnv(pb, mfg.static_flow(pb, kind="gaussian"))
>>> obs, info = env.reset(seed=0)
>>> obs.shape, obs.dtype.name, env.action_space.shape
((3,), 'float32', (1,))
>>> for _ in range(pb.T):
...     obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
>>> terminated, info["t"]
(True, 20)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from mfgsolve.envs.common import observation, observation_size, population_features, require

require("gymnasium")

import gymnasium as gym  # noqa: E402
from gymnasium import spaces  # noqa: E402
from gymnasium.vector import AutoresetMode, VectorEnv  # noqa: E402
from gymnasium.vector.utils import batch_space  # noqa: E402

from mfgsolve.flows import Flow  # noqa: E402
from mfgsolve.learn.actions import ActionMap  # noqa: E402
from mfgsolve.policies import Policy  # noqa: E402
from mfgsolve.problem import Problem  # noqa: E402

__all__ = ["FrozenFlowEnv", "FrozenFlowVectorEnv", "AgentPolicy", "spaces_of"]

_SEED_BOUND = 2**63 - 1


def spaces_of(problem: Problem, *, population: bool, bounded: bool) -> tuple[spaces.Box, spaces.Box]:
    """Observation and action spaces of one agent of ``problem`` (see the module docstring)."""
    obs = spaces.Box(-np.inf, np.inf, (observation_size(problem.n, population=population),), np.float32)
    p = problem.p
    low, high = getattr(problem, "action_low", None), getattr(problem, "action_high", None)
    if bounded:
        act = spaces.Box(-1.0, 1.0, (p,), np.float32)
    elif low is not None and high is not None:
        act = spaces.Box(np.asarray(low, np.float32).reshape(p), np.asarray(high, np.float32).reshape(p),
                         (p,), np.float32)
    else:
        act = spaces.Box(-np.inf, np.inf, (p,), np.float32)
    return obs, act


class _Agents:
    """The batched core of both environments: states, step counter, generator and the problem's callbacks."""

    def __init__(self, problem: Problem, m: Flow, *, population: bool, bounded: bool, action_scale: float,
                 reward_scale: float) -> None:
        if not (action_scale > 0 and np.isfinite(action_scale)):
            raise ValueError(f"action_scale must be a positive number, got {action_scale!r}")
        if not np.isfinite(reward_scale):
            raise ValueError(f"reward_scale must be a finite number, got {reward_scale!r}")
        self.problem, self.m, self.T = problem, m, problem.T
        self.actions = ActionMap.of(problem, action_scale)
        self.bounded = bounded
        self.reward_scale = float(reward_scale)
        self.features = population_features(m, problem.T) if population else None
        self.generator = torch.Generator()
        self.x = torch.zeros(0, problem.n, dtype=torch.float64)
        self.t = 0

    def observe(self) -> np.ndarray:
        f = None if self.features is None else self.features[self.t]
        return observation(self.x, self.t, self.T, f).numpy()

    def reset(self, rows: int) -> np.ndarray:
        self.x = self.problem.sample_x0(rows, self.generator).to(torch.float64).reshape(rows, self.problem.n)
        self.t = 0
        return self.observe()

    def problem_action(self, action: Any) -> torch.Tensor:
        return self.map_action(torch.as_tensor(np.asarray(action, dtype=np.float64)).reshape(self.x.shape[0], self.problem.p))

    def map_action(self, a: torch.Tensor) -> torch.Tensor:
        """The problem's actions (float64) of environment actions ``a`` ``(B, p)``: unit actions mapped, or the
        problem's own clipped to its bounds."""
        a = a.to(torch.float64)
        if self.bounded:
            return self.actions.to_action(a.clamp(-1.0, 1.0), torch.float64)
        if self.actions.bounded:  # the problem's own bounds
            lo, hi = self.actions.center - self.actions.half, self.actions.center + self.actions.half
            return torch.maximum(torch.minimum(a, hi), lo)
        return a

    def step(self, action: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        if self.t >= self.T:
            raise RuntimeError("the episode has ended: call reset()")
        pb, t, m = self.problem, self.t, self.m
        a = self.problem_action(action)
        with torch.no_grad():
            r = pb.reward(t, self.x, a, m).to(torch.float64)
            x1 = pb.step(t, self.x, a, m, self.generator).to(torch.float64)
            done = t + 1 == self.T
            if done:
                r = r + pb.terminal_reward(x1, m).to(torch.float64)
        self.x, self.t = x1, t + 1
        return self.observe(), (self.reward_scale * r).numpy(), done


class FrozenFlowEnv(gym.Env):
    """One agent of ``problem`` against the frozen flow ``m`` (module docstring).

    Parameters
    ----------
    problem : Problem
    m : Flow
        The frozen population flow (e.g. ``mfgsolve.static_flow(problem, kind="gaussian")``).
    population_features : bool
        Append the mean and standard deviation of :math:`m_t` to the observation.
    bounded : bool
        Unit actions in ``[-1, 1]`` (mapped by :class:`~mfgsolve.learn.actions.ActionMap`) rather than the
        problem's own actions.
    action_scale : float
        Problem action per unit action for a problem without bounds (``bounded=True`` only).
    reward_scale : float
        Rewards are multiplied by this.
    seed : int, optional
        Seed of the first ``reset()`` that is given none.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, problem: Problem, m: Flow, *, population_features: bool = False, bounded: bool = True,
                 action_scale: float = 1.0, reward_scale: float = 1.0, seed: int | None = None) -> None:
        self.problem, self.m = problem, m
        self.population_features = population_features
        self._core = _Agents(problem, m, population=population_features, bounded=bounded,
                             action_scale=action_scale, reward_scale=reward_scale)
        self.observation_space, self.action_space = spaces_of(problem, population=population_features,
                                                              bounded=bounded)
        self._first_seed = seed
        self._seeded = False

    @property
    def actions(self) -> ActionMap:
        """Unit to problem actions (``bounded=True``)."""
        return self._core.actions

    @property
    def t(self) -> int:
        """The current step."""
        return self._core.t

    @property
    def state(self) -> torch.Tensor:
        """The agent's state ``(1, n)`` float64."""
        return self._core.x

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is None and not self._seeded:
            seed = self._first_seed
        super().reset(seed=seed)
        if seed is not None:
            self._core.generator.manual_seed(int(seed))
        elif not self._seeded:  # gymnasium drew a random seed: the torch stream follows it
            self._core.generator.manual_seed(int(self.np_random.integers(_SEED_BOUND)))
        self._seeded = True
        obs = self._core.reset(1)
        return obs[0], {"t": 0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, r, done = self._core.step(action)
        return obs[0], float(r[0]), done, False, {"t": self._core.t}


class FrozenFlowVectorEnv(VectorEnv):
    """``num_envs`` agents of ``problem`` against the frozen flow ``m``, stepped by one batched call of the
    problem's callbacks (arguments as :class:`FrozenFlowEnv`).

    Every agent's episode ends at the horizon together; the step that ends them returns the observations of the
    next episode's first step (``autoreset_mode`` same-step: the last observations are in ``info["final_obs"]``).

    >>> import mfgsolve as mfg
    >>> from mfgsolve.envs import FrozenFlowVectorEnv
    >>> pb = mfg.load_problem("lq-1d")
    >>> envs = FrozenFlowVectorEnv(pb, mfg.static_flow(pb, kind="gaussian"), 8)
    >>> obs, info = envs.reset(seed=0)
    >>> obs, rewards, terminated, truncated, info = envs.step(envs.action_space.sample())
    >>> obs.shape, rewards.shape, bool(terminated.any())
    ((8, 3), (8,), False)
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, problem: Problem, m: Flow, num_envs: int, *, population_features: bool = False,
                 bounded: bool = True, action_scale: float = 1.0, reward_scale: float = 1.0,
                 seed: int | None = None) -> None:
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.problem, self.m = problem, m
        self.num_envs = int(num_envs)
        self._core = _Agents(problem, m, population=population_features, bounded=bounded,
                             action_scale=action_scale, reward_scale=reward_scale)
        self.single_observation_space, self.single_action_space = spaces_of(
            problem, population=population_features, bounded=bounded)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._first_seed = seed
        self._seeded = False

    @property
    def t(self) -> int:
        return self._core.t

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is None and not self._seeded:
            seed = self._first_seed
        if isinstance(seed, (list, tuple)):  # one seed per agent: one stream for the batch, from all of them
            if len(seed) != self.num_envs or any(s is None for s in seed):
                raise ValueError(f"reset(seed=...) takes an int or {self.num_envs} ints")
            seed = int(np.random.SeedSequence([int(s) for s in seed]).generate_state(1, np.uint64)[0] >> 1)
        super().reset(seed=seed)
        if seed is not None:
            self._core.generator.manual_seed(int(seed))
        elif not self._seeded:
            self._core.generator.manual_seed(int(self.np_random.integers(_SEED_BOUND)))
        self._seeded = True
        return self._core.reset(self.num_envs), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, r, done = self._core.step(actions)
        terminated = np.full(self.num_envs, done)
        truncated = np.zeros(self.num_envs, dtype=bool)
        info: dict[str, Any] = {}
        if done:  # same-step autoreset
            info = {"final_obs": obs, "_final_obs": terminated.copy(),
                    "final_info": {}, "_final_info": terminated.copy()}
            obs = self._core.reset(self.num_envs)
        return obs, r, terminated, truncated, info


class AgentPolicy(Policy):
    r"""An external agent as an mfgsolve :class:`~mfgsolve.Policy`: ``act`` maps a batch of observations of ``env``
    ``(B, d)`` (float32 numpy) to a batch of the environment's actions ``(B, p)``, e.g.
    ``lambda obs: model.predict(obs, deterministic=True)[0]`` for a Stable-Baselines3 model, or a CleanRL actor.

    The policy plays against the flow it is given the way the agent played in ``env``: the observations carry the
    population features of ``env``'s frozen flow when the environment has them, and actions go through the same
    map. It can then be measured like any other policy (:func:`mfgsolve.evaluation.rollout_costs`,
    :func:`mfgsolve.exploitability`, :func:`mfgsolve.affine_projection` and :func:`mfgsolve.lq_epsilon_nash`).

    >>> import numpy as np, mfgsolve as mfg
    >>> pb = mfg.load_problem("lq-1d")
    >>> env = FrozenFlowEnv(pb, mfg.static_flow(pb, kind="gaussian"))
    >>> pi = AgentPolicy(lambda obs: np.zeros((len(obs), 1)), env)
    >>> pi.act(0, torch.ones(3, 1, dtype=torch.float64), env.m).tolist()
    [[0.0], [0.0], [0.0]]
    """

    def __init__(self, act: Callable[[np.ndarray], Any], env: FrozenFlowEnv | FrozenFlowVectorEnv) -> None:
        self.agent = act
        self._core = env._core

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        core = self._core
        f = None if core.features is None else core.features[t]
        obs = observation(x, t, core.T, f).numpy()
        a = torch.as_tensor(np.asarray(self.agent(obs), dtype=np.float64)).reshape(x.shape[0], core.problem.p)
        return core.map_action(a).to(x.dtype)

    def bind(self, m: Flow) -> Policy:
        return self  # reads the environment's frozen flow only
