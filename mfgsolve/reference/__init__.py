"""Exact reference solvers: the discrete-time LQ mean field game (:mod:`mfgsolve.reference.lq`)."""

from mfgsolve.reference.lq import LQBestResponse, LQCoefficients, LQExploitability, LQReference, Riccati

__all__ = ["LQBestResponse", "LQCoefficients", "LQExploitability", "LQReference", "Riccati"]
