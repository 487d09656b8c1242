r"""DDPG without the population input (``--oracle ddpg-nopop``): actor :math:`\pi(t, x)`, critic :math:`Q(t, x, a)`.

The baseline the seed formulation compares MF-MADDPG with ("standard DDPG (single agent)"). It is the DDPG oracle
of :mod:`mfgsolve.oracles.ddpg` with one setting, ``population_input=False``: the networks' population inputs (the
encoder's description of :math:`m_t` and the standardisation of states by :math:`m_t`'s moments) are frozen at
those of the **first** flow the oracle is built on, so that they are fixed functions of ``t`` and the policy reads
nothing of the flow it is played against. Within one best response this changes nothing (the flow is frozen
anyway); across the outer iterations and when the policy is played on its own flow :math:`\mu(\pi)`
(exploitability) it does: the MF-MADDPG actor adapts to the population it sees, this one does not.
"""

from __future__ import annotations

from typing import Any

from mfgsolve.oracles.ddpg import DDPGConfig, DDPGOracle, NoPopPolicy

__all__ = ["NoPopDDPGOracle", "NoPopPolicy"]


class NoPopDDPGOracle(DDPGOracle):
    """The DDPG oracle with ``population_input=False`` (module docstring); settings as :class:`DDPGOracle`.

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> from mfgsolve.oracles.nopop import NoPopDDPGOracle
    >>> pb = mfg.load_problem("lq-1d")
    >>> oracle = NoPopDDPGOracle(updates=20, eval_every=10, n_agents=16, batch_size=32, progress=False)
    >>> pi, info = oracle.best_response(pb, mfg.static_flow(pb, kind="gaussian"))
    >>> type(pi).__name__, info.extra["updates"], oracle.config()["population_input"]
    ('NoPopPolicy', 20, False)
    """

    name = "ddpg-nopop"

    def __init__(self, config: DDPGConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **{**overrides, "population_input": False})
