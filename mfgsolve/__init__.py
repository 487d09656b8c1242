"""mfgsolve: mean field game equilibria by an explicit fixed-point search.

Data flows one way: problem -> flow -> oracle -> scheme -> result.

>>> import mfgsolve as mfg
>>> pb = mfg.load_problem("lq-1d")
>>> res = mfg.solve(pb, mfg.ExactLQOracle(), scheme=mfg.Picard(), progress=False)
>>> res.summary.diagnosis, res.summary.mean_error < 1e-8
('contracting', True)
"""

from mfgsolve._version import __version__

from mfgsolve.brcheck import BRCheck, br_check
from mfgsolve.devices import resolve_device
from mfgsolve.diagnosis import Verdict, diagnose
from mfgsolve.errors import NoEquilibriumError, ResponseFailedError, SpecError, UncertifiedReferenceError
from mfgsolve.evaluation import CostEstimate, cost_difference, policy_cost, rollout_costs
from mfgsolve.flows import Flow, GaussianFlow, ParticleFlow
from mfgsolve.lq import LQProblem, LQReference, load_toml
from mfgsolve.gap import Gap
from mfgsolve.metrics import exploitability, flow_distance, gaussian_w2, mean_error, resolution, wasserstein
from mfgsolve.options import Evaluation, Gaussian, Particles, RunDir, Stop
from mfgsolve.nplayer import MADDPG, MADDPGConfig, NashGap, NPlayerGame, lq_epsilon_nash
from mfgsolve.oracles import BestResponseInfo, DDPGConfig, DDPGOracle, DDPGPolicy, ExactLQOracle, Oracle
from mfgsolve.oracles import MFACConfig, MFACOracle, MFQConfig, MFQOracle, NoPopDDPGOracle
from mfgsolve.oracles import PathwiseConfig, PathwiseOracle
from mfgsolve.policies import AffinePolicy, MixturePolicy, Policy
from mfgsolve.population import propagate, static_flow
from mfgsolve.problem import Problem, Reference
from mfgsolve.oracles.registry import available_oracles, make_oracle
from mfgsolve import presets
from mfgsolve.reference.potential import GridPotentialMFG, PotentialReference, solve_potential
from mfgsolve.registry import available_problems, load_problem
from mfgsolve.results import IterationRecord, RunFiles, SolveResult, Summary, load_run, save_run
from mfgsolve.schemes import Damped, FictitiousPlay, Picard, Scheme, make_scheme
from mfgsolve.solve import solve

__all__ = [
    "__version__",
    "AffinePolicy",
    "Evaluation",
    "Gaussian",
    "Particles",
    "RunDir",
    "Stop",
    "make_oracle",
    "resolve_device",
    "available_oracles",
    "Reference",
    "presets",
    "BRCheck",
    "BestResponseInfo",
    "CostEstimate",
    "DDPGConfig",
    "DDPGOracle",
    "DDPGPolicy",
    "Damped",
    "ExactLQOracle",
    "FictitiousPlay",
    "Flow",
    "GaussianFlow",
    "Gap",
    "GridPotentialMFG",
    "IterationRecord",
    "LQProblem",
    "LQReference",
    "MADDPG",
    "MADDPGConfig",
    "MFACConfig",
    "MFACOracle",
    "MFQConfig",
    "MFQOracle",
    "MixturePolicy",
    "NPlayerGame",
    "NashGap",
    "NoEquilibriumError",
    "NoPopDDPGOracle",
    "Oracle",
    "ParticleFlow",
    "PathwiseConfig",
    "PathwiseOracle",
    "Picard",
    "Policy",
    "PotentialReference",
    "Problem",
    "RunFiles",
    "Scheme",
    "SolveResult",
    "SpecError",
    "UncertifiedReferenceError",
    "Summary",
    "Verdict",
    "available_problems",
    "br_check",
    "cost_difference",
    "diagnose",
    "exploitability",
    "flow_distance",
    "gaussian_w2",
    "load_problem",
    "load_run",
    "load_toml",
    "lq_epsilon_nash",
    "make_scheme",
    "mean_error",
    "policy_cost",
    "propagate",
    "rollout_costs",
    "save_run",
    "solve",
    "solve_potential",
    "static_flow",
    "wasserstein",
    "resolution",
    "ResponseFailedError",
]
