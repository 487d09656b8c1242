"""The N-player game behind a mean field game (empirical measures, exact LQ epsilon-Nash) and the original
MADDPG (a centralised critic over all N agents) on it."""

from mfgsolve.nplayer.game import NashGap, NPlayerGame, lq_epsilon_nash
from mfgsolve.nplayer.maddpg import MADDPG, MADDPGConfig

__all__ = ["NashGap", "NPlayerGame", "lq_epsilon_nash", "MADDPG", "MADDPGConfig"]
