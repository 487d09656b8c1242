r"""The N-player game of a problem as a PettingZoo ``ParallelEnv``.

Agents ``agent_0 .. agent_{N-1}`` play :class:`mfgsolve.NPlayerGame` (one copy): each moves by the problem's
``step`` and earns its ``reward`` against the empirical measure of the N states. Agent ``i`` observes its own
state, the time features :math:`(t/T, 1/(T - t + 1))` and the empirical measure's mean and standard deviation
at ``t`` (float32); actions as in :class:`mfgsolve.envs.FrozenFlowEnv` (unit actions in ``[-1, 1]`` mapped to the
problem's with ``bounded=True``). Every agent's episode ends at the horizon, the terminal reward folded into the
last step.

>>> import mfgsolve as mfg
>>> from mfgsolve.envs import NPlayerParallelEnv
>>> env = NPlayerParallelEnv(mfg.load_problem("lq-1d"), 3)
>>> obs, infos = env.reset(seed=0)
>>> sorted(obs), obs["agent_0"].shape
(['agent_0', 'agent_1', 'agent_2'], (5,))
>>> obs, rewards, terms, truncs, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
>>> len(rewards), any(terms.values())
(3, False)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mfgsolve.envs.common import observation, require

require("gymnasium", "pettingzoo")

from gymnasium import spaces  # noqa: E402
from pettingzoo import ParallelEnv  # noqa: E402

from mfgsolve.envs.frozen import spaces_of  # noqa: E402
from mfgsolve.learn.actions import ActionMap  # noqa: E402
from mfgsolve.nplayer.game import NPlayerGame  # noqa: E402
from mfgsolve.problem import Problem  # noqa: E402

__all__ = ["NPlayerParallelEnv"]


class NPlayerParallelEnv(ParallelEnv):
    """The ``N``-player game of ``problem`` (module docstring).

    Parameters
    ----------
    problem : Problem
    N : int
        Number of players (at least 2).
    bounded : bool
        Unit actions in ``[-1, 1]`` (mapped by :class:`~mfgsolve.learn.actions.ActionMap`) rather than the
        problem's own.
    action_scale : float
        Problem action per unit action for a problem without bounds (``bounded=True`` only).
    """

    metadata: dict[str, Any] = {"name": "mfgsolve_nplayer_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, problem: Problem, N: int, *, bounded: bool = True, action_scale: float = 1.0) -> None:
        self.problem, self.N = problem, int(N)
        self.game = NPlayerGame(problem, self.N, games=1)
        self.T = problem.T
        self.bounded = bounded
        self.actions = ActionMap.of(problem, action_scale)
        self.possible_agents = [f"agent_{i}" for i in range(self.N)]
        self.agents: list[str] = []
        obs, act = spaces_of(problem, population=True, bounded=bounded)
        self._obs_spaces: dict[str, spaces.Box] = {a: obs for a in self.possible_agents}
        self._act_spaces: dict[str, spaces.Box] = {a: act for a in self.possible_agents}
        self.generator = torch.Generator()
        self._seeded = False

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_spaces[agent]

    def _observe(self) -> dict[str, np.ndarray]:
        t = self.game.t
        x = self.game.xs[0, t]  # (N, n)
        features = torch.cat([x.mean(0), x.std(0, unbiased=False)])
        obs = observation(x, t, self.T, features).numpy()
        return {a: obs[i] for i, a in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.generator.manual_seed(int(seed))
        elif not self._seeded:
            self.generator.manual_seed(int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1))
        self._seeded = True
        self.game.reset(self.generator)
        self.agents = list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def _problem_actions(self, actions: dict[str, Any]) -> torch.Tensor:
        p = self.problem.p
        rows = [torch.as_tensor(np.asarray(actions[a], dtype=np.float64)).reshape(p) if a in actions
                else torch.zeros(p, dtype=torch.float64) for a in self.possible_agents]
        a = torch.stack(rows)
        if self.bounded:
            return self.actions.to_action(a.clamp(-1.0, 1.0), torch.float64)
        if self.actions.bounded:
            lo, hi = self.actions.center - self.actions.half, self.actions.center + self.actions.half
            return torch.maximum(torch.minimum(a, hi), lo)
        return a

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("the episode has ended: call reset()")
        a = self._problem_actions(actions)
        with torch.no_grad():
            _, r, done = self.game.step(a[None], self.generator)
        obs = self._observe()
        rewards = {ag: float(r[0, i]) for i, ag in enumerate(self.possible_agents)}
        terms = {ag: done for ag in self.possible_agents}
        truncs = {ag: False for ag in self.possible_agents}
        infos: dict[str, dict] = {ag: {"t": self.game.t} for ag in self.possible_agents}
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos
