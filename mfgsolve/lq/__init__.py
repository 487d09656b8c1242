"""The linear-quadratic family: the problem (spec files, torch callbacks) and its exact reference (Riccati
equations, the equilibrium of the Picard map, exact exploitability)."""

from mfgsolve.lq.problem import LQProblem, load_toml
from mfgsolve.lq.reference import LQBestResponse, LQCoefficients, LQReference, Riccati

__all__ = ["LQProblem", "load_toml", "LQBestResponse", "LQCoefficients", "LQReference", "Riccati"]
