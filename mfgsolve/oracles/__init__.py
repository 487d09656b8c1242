"""Best-response oracles: exact LQ (Riccati)."""

from mfgsolve.oracles.base import BestResponseInfo, Oracle
from mfgsolve.oracles.exact import ExactLQOracle

__all__ = ["BestResponseInfo", "Oracle", "ExactLQOracle"]
