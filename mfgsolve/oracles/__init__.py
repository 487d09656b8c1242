"""Best-response oracles: exact LQ (Riccati) and MF-MADDPG (DDPG)."""

from mfgsolve.oracles.base import BestResponseInfo, Oracle
from mfgsolve.oracles.ddpg import DDPGConfig, DDPGOracle, DDPGPolicy
from mfgsolve.oracles.exact import ExactLQOracle

__all__ = ["BestResponseInfo", "Oracle", "ExactLQOracle", "DDPGConfig", "DDPGOracle", "DDPGPolicy"]
