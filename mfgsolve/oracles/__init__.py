"""Best-response oracles: exact LQ (Riccati), MF-MADDPG (DDPG), pathwise (gradients through the dynamics) and the baselines (DDPG without m, MF-Q, MF-AC)."""

from mfgsolve.oracles.base import BestResponseInfo, LearnedOracle, Oracle
from mfgsolve.oracles.ddpg import DDPGConfig, DDPGOracle, DDPGPolicy
from mfgsolve.oracles.exact import ExactLQOracle
from mfgsolve.oracles.mfrl import MFACConfig, MFACOracle, MFQConfig, MFQOracle
from mfgsolve.oracles.nopop import NoPopDDPGOracle
from mfgsolve.oracles.pathwise import PathwiseConfig, PathwiseOracle

__all__ = ["BestResponseInfo", "Oracle", "LearnedOracle", "ExactLQOracle", "DDPGConfig", "DDPGOracle", "DDPGPolicy",
           "NoPopDDPGOracle", "MFQConfig", "MFQOracle", "MFACConfig", "MFACOracle",
           "PathwiseConfig", "PathwiseOracle"]
