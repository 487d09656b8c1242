"""Exact reference solvers beyond LQ: discrete potential mean field games on a grid
(:mod:`mfgsolve.reference.potential`). The LQ reference lives with its family in :mod:`mfgsolve.lq`."""

from mfgsolve.reference.potential import GridPotentialMFG, PotentialReference, solve_potential

__all__ = ["GridPotentialMFG", "PotentialReference", "solve_potential"]
