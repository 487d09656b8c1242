"""Gymnasium and PettingZoo environments of mfgsolve's problems: bring your own agent.

* :class:`FrozenFlowEnv`: one agent against a frozen population flow ``m`` (the best-response problem every
  oracle solves), a ``gymnasium.Env``;
* :class:`FrozenFlowVectorEnv`: a batch of such agents stepped by one batched torch call, a
  ``gymnasium.vector.VectorEnv``;
* :class:`AgentPolicy`: any external agent (a function of observations) as an mfgsolve policy, to be measured
  by the project's exact references;
* :class:`NPlayerParallelEnv`: the N-player game of a problem (:class:`mfgsolve.NPlayerGame`), a PettingZoo
  ``ParallelEnv``.

They need the optional packages of the ``rl`` extra (``pip install -e ".[rl]"``); without them, importing a
class raises one ``ImportError`` line that says so.
"""

from __future__ import annotations

from typing import Any

from mfgsolve.envs.common import INSTALL_HINT, observation, observation_size, population_features

__all__ = ["FrozenFlowEnv", "FrozenFlowVectorEnv", "AgentPolicy", "NPlayerParallelEnv", "INSTALL_HINT", "observation",
           "observation_size", "population_features"]


def __getattr__(name: str) -> Any:  # the classes import gymnasium / pettingzoo only when asked for
    if name in ("FrozenFlowEnv", "FrozenFlowVectorEnv", "AgentPolicy"):
        from mfgsolve.envs import frozen

        return getattr(frozen, name)
    if name == "NPlayerParallelEnv":
        from mfgsolve.envs.nplayer import NPlayerParallelEnv

        return NPlayerParallelEnv
    raise AttributeError(f"module 'mfgsolve.envs' has no attribute {name!r}")
