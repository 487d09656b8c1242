"""Exact reference solvers: the discrete-time LQ mean field game (:mod:`mfgsolve.reference.lq`) and discrete
potential mean field games on a grid (:mod:`mfgsolve.reference.potential`)."""

from mfgsolve.reference.lq import LQBestResponse, LQCoefficients, LQExploitability, LQReference, Riccati
from mfgsolve.reference.potential import GridExploitability, GridPotentialMFG, PotentialReference, solve_potential

__all__ = ["LQBestResponse", "LQCoefficients", "LQExploitability", "LQReference", "Riccati"]
__all__ += ["GridExploitability", "GridPotentialMFG", "PotentialReference", "solve_potential"]
