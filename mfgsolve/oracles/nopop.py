r"""DDPG without the population input (``--oracle ddpg-nopop``): actor :math:`\pi(t, x)`, critic :math:`Q(t, x, a)`.

The baseline the seed formulation compares MF-MADDPG with ("standard DDPG (single agent)"). It is the DDPG oracle
of :mod:`mfgsolve.oracles.ddpg` with one switch: the networks' population inputs (the encoder's description of
:math:`m_t` and the standardisation of states by :math:`m_t`'s moments) are frozen at those of the **first** flow
the oracle is built on, so that they are fixed functions of ``t`` and the policy reads nothing of the flow it is
played against. Within one best response this changes nothing (the flow is frozen anyway); across the outer
iterations and when the policy is played on its own flow :math:`\mu(\pi)` (exploitability) it does: the
MF-MADDPG actor adapts to the population it sees, this one does not.
"""

from __future__ import annotations

from typing import Any

import torch

from mfgsolve.flows import Flow
from mfgsolve.evaluation import rollout_costs
from mfgsolve.oracles.ddpg import DDPGOracle, MarkovDDPGPolicy, _FlowContext, _Training
from mfgsolve.problem import Problem

__all__ = ["NoPopDDPGOracle", "NoPopPolicy"]


class NoPopPolicy(MarkovDDPGPolicy):
    r"""The population-blind actor :math:`\pi(t, x)`: its population inputs are the frozen ``context``."""


class _NoPopTraining(_Training):
    """The DDPG loop, its evaluations played by the population-blind policy (as the returned one will be)."""

    def _evaluate(self, name: str = "actor") -> float:
        o = self.o
        assert isinstance(o, NoPopDDPGOracle) and o._frozen is not None
        policy = NoPopPolicy(self.nets[name], T=self.T, std_floor=o._std_floor, actions=self.actions,  # type: ignore[arg-type]
                             context=o._frozen)
        gen = torch.Generator().manual_seed(int(self.eval_seed))
        return float(rollout_costs(self.problem, policy, self.m, n=self.cfg.eval_agents, generator=gen).mean())


class NoPopDDPGOracle(DDPGOracle):
    """DDPG best responses with state and time only (module docstring); settings as :class:`DDPGOracle`.

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> from mfgsolve.oracles.nopop import NoPopDDPGOracle
    >>> pb = mfg.load_problem("lq-1d")
    >>> oracle = NoPopDDPGOracle(updates=20, eval_every=10, n_agents=16, batch_size=32, progress=False)
    >>> pi, info = oracle.best_response(pb, mfg.static_flow(pb, kind="gaussian"))
    >>> type(pi).__name__, info.extra["updates"]
    ('NoPopPolicy', 20)
    """

    name = "ddpg-nopop"
    _training = _NoPopTraining

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._frozen: _FlowContext | None = None

    def _build(self, problem: Problem, m: Flow) -> None:
        super()._build(problem, m)
        self._frozen = None  # fresh networks: the first flow they see is this one

    def _context(self, m: Flow, T: int) -> _FlowContext:
        if self._frozen is None:
            self._frozen = super()._context(m, T)
        return self._frozen

    def _policy(self) -> NoPopPolicy:
        base = super()._policy()
        assert self._frozen is not None
        return NoPopPolicy(base.actor, T=base.T, std_floor=base.std_floor, actions=base.actions,
                           context=self._frozen)

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["frozen_context"] = None if self._frozen is None else self._frozen.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        frozen = state.get("frozen_context")
        self._frozen = None if frozen is None else _FlowContext(**frozen)
