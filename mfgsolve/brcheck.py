r"""How close a learned best response is to the exact one, on a problem with a known equilibrium.

The oracle is trained against the exact equilibrium flow :math:`m^*` and its policy :math:`\pi` is scored by

.. math::

    \text{relative gap} = \frac{J(\pi \mid m^*) - J^*(m^*)}{|J^*(m^*)|},

where :math:`J^*(m^*)` is exact (for LQ: the Riccati best-response cost, equal to the equilibrium cost) and
:math:`J(\pi \mid m^*) = J^*(m^*) + E[C_\pi - C_{\pi^*}]` is estimated by Monte Carlo on common random numbers
against the exact best response :math:`\pi^*`: the difference has a small variance when :math:`\pi` is close to
:math:`\pi^*`. Agents are doubled until the standard error is below a tenth of the gap, or a cap is reached (the
standard error is reported beside the gap either way).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from mfgsolve.devices import resolve_device
from mfgsolve.errors import SpecError
from mfgsolve.evaluation import cost_difference
from mfgsolve.flows import GaussianFlow
from mfgsolve.lq.problem import LQProblem
from mfgsolve.gap import Gap
from mfgsolve.oracles.base import Oracle
from mfgsolve.policies import AffinePolicy
from mfgsolve.presets import BR_CHECK_UPDATES, preset_for
from mfgsolve.problem import Problem

__all__ = ["BRCheck", "br_check"]


@dataclass(frozen=True, kw_only=True)
class BRCheck(Gap):
    r"""The outcome of :func:`br_check`: the :class:`~mfgsolve.Gap` :math:`J(\pi \mid m^*) - J^*(m^*)` of the
    trained policy (costs: lower is better; ``J_best`` exact, ``value`` and ``J_policy`` by Monte Carlo with the
    one standard error ``se``), and how it was obtained.
    """

    seconds: float
    """Wall time of the oracle's training."""
    eval_agents: int
    """Agents of the final Monte-Carlo evaluation."""
    problem: str
    oracle: str
    seed: int
    device: str
    """Where the oracle trained and the evaluation ran (``cpu``, ``cuda:0``...)."""
    oracle_info: dict[str, Any]
    oracle_config: dict[str, Any] | None = None
    """The oracle's settings as it trained (seed and budget resolved; :meth:`Oracle.config`)."""
    problem_config: dict[str, Any] | None = None
    """The problem's parameters (:meth:`Problem.config`)."""

    @property
    def relative_gap(self) -> float:
        """:attr:`relative` under the name of ``br_check.json``."""
        return self.relative

    @property
    def gap(self) -> float:
        """:attr:`value` under the name of ``br_check.json``."""
        return self.value

    @property
    def gap_se(self) -> float:
        """:attr:`se` under the name of ``br_check.json``."""
        return self.se

    def to_json(self) -> dict[str, Any]:
        """The fields of ``br_check.json``."""
        plain = asdict(self)  # oracle_info as plain data, nested dataclasses included
        return {
            "relative_gap": self.relative,
            "gap": self.value,
            "gap_se": self.se,
            "J_policy": self.J_policy,
            "J_policy_se": self.se,  # J_best is exact: J_policy errs as much as the gap
            "J_best": self.J_best,
            "seconds": self.seconds,
            "eval_agents": self.eval_agents,
            "problem": self.problem,
            "oracle": self.oracle,
            "seed": self.seed,
            "device": self.device,
            "oracle_info": plain["oracle_info"],
            "oracle_config": plain["oracle_config"],
            "problem_config": plain["problem_config"],
        }


def br_check(
    problem: Problem,
    oracle: Oracle,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    min_agents: int = 65536,
    max_agents: int = 1 << 21,
    se_fraction: float = 0.1,
) -> BRCheck:
    r"""Train ``oracle`` against the exact equilibrium flow of ``problem`` and measure its relative gap.

    Parameters
    ----------
    problem : Problem
        A problem whose ``reference()`` gives the exact equilibrium (mean, covariance and the affine
        equilibrium policy ``K``, ``k``), e.g. an :class:`~mfgsolve.LQProblem`.
    oracle : Oracle
        A learned oracle made without a seed or a budget takes ``seed`` and
        its preset's ``br_check_updates`` (:func:`mfgsolve.presets.preset_for`; 20000 for DDPG) (:meth:`Oracle.for_run`).
    seed : int
        Seeds the Monte-Carlo evaluation, and the oracle when it was made without a seed.
    device : str or torch.device
        Where the oracle trains and the evaluation's agents live (:func:`mfgsolve.devices.resolve_device`).
    min_agents, max_agents : int
        The evaluation starts with ``min_agents`` and doubles until the standard error of the gap is at most
        ``se_fraction`` times the gap, or ``max_agents`` is reached.

    Raises
    ------
    SpecError
        When the problem has no exact reference to check against.
    """
    if not callable(getattr(oracle, "best_response", None)):
        raise SpecError("oracle", f"expected an oracle (e.g. mfgsolve.make_oracle('ddpg')), got {oracle!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise SpecError("seed", f"must be an integer in [0, 2^63), got {seed!r}")
    device = resolve_device(device)
    if not isinstance(problem, LQProblem):  # before any reference is computed: only LQ references have the policy
        raise SpecError("PROBLEM", f"{getattr(problem, 'name', problem)} has no exact LQ equilibrium to check a "
                                   "best response against")
    ref = problem.reference()
    if ref is None or not all(hasattr(ref, k) for k in ("mean", "cov", "K", "k", "J")):
        raise SpecError("PROBLEM", f"{getattr(problem, 'name', problem)} has no exact equilibrium to check a best response against")
    m = GaussianFlow.from_numpy(ref.mean, ref.cov)
    if callable(getattr(oracle, "for_run", None)):
        oracle = oracle.for_run(seed=seed, updates=preset_for(oracle).br_check_updates or BR_CHECK_UPDATES,
                                device=device)
    start = time.perf_counter()
    policy, info = oracle.best_response(problem, m)
    seconds = time.perf_counter() - start
    exact = AffinePolicy(ref.K, ref.k)
    J_best = float(ref.J)
    generator = torch.Generator(device=device).manual_seed(seed)
    n = min_agents
    while True:
        d = cost_difference(problem, policy, exact, m, n=n, generator=generator)
        if d.se <= se_fraction * abs(d.mean) or n >= max_agents:
            break
        n = min(2 * n, max_agents)
    return BRCheck(
        value=d.mean,
        J_policy=J_best + d.mean,
        J_best=J_best,
        se=d.se,
        seconds=seconds,
        eval_agents=d.n,
        problem=str(getattr(problem, "name", type(problem).__name__)),
        oracle=oracle.name,
        seed=seed,
        device=str(device),
        oracle_info={"value": info.value, **info.extra},
        oracle_config=oracle.config(),
        problem_config=problem.config(),
    )
