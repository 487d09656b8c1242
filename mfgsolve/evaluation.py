r"""Monte-Carlo cost of a policy against a frozen flow, alone or against a baseline with common random numbers.

.. math::

    J(\pi \mid m) = -E\Big[\sum_{t<T} r(t, x_t, \pi(t, x_t, m), m) + g(x_T, m)\Big], \qquad x_0 \sim m_0^{\text{init}},
    \quad x_{t+1} = f(t, x_t, a_t, m, \xi_t)

estimated by :math:`n` independent agents, with the standard error :math:`s/\sqrt n`. The difference of two
policies is estimated on common random numbers (the same initial states and noises), whose variance vanishes as
the policies meet: this is how a best response within 1% of optimal is told apart from one within 2%.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from mfgsolve.flows import Flow
from mfgsolve.policies import Policy
from mfgsolve.problem import Problem

__all__ = ["CostEstimate", "rollout_costs", "policy_cost", "cost_difference"]


class CostEstimate(NamedTuple):
    """A Monte-Carlo estimate: ``mean``, its standard error ``se`` and the number of agents ``n``."""

    mean: float
    se: float
    n: int


def rollout_costs(
    problem: Problem, policy: Policy, m: Flow, *, n: int, generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Total cost (minus total reward) of each of ``n`` agents playing ``policy`` against the frozen ``m``, ``(n,)``."""
    x = problem.sample_x0(n, generator).to(dtype)
    actor = policy.for_population(n, generator)
    cost = torch.zeros(n, dtype=dtype, device=x.device)
    with torch.no_grad():
        for t in range(problem.T):
            a = actor.act(t, x, m).to(dtype)
            cost -= problem.reward(t, x, a, m)
            x = problem.step(t, x, a, m, generator)
        cost -= problem.terminal_reward(x, m)
    return cost


class _Moments:
    """Running mean and sum of squared deviations over chunks (Chan et al. 1979: no cancellation)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, c: torch.Tensor) -> None:
        k = c.numel()
        mean_k = float(c.mean())
        m2_k = float((c - mean_k).pow(2).sum())
        delta = mean_k - self.mean
        total = self.n + k
        self.mean += delta * k / total
        self.m2 += m2_k + delta * delta * self.n * k / total
        self.n = total

    def estimate(self) -> CostEstimate:
        var = self.m2 / max(self.n - 1, 1)
        return CostEstimate(self.mean, math.sqrt(var / self.n), self.n)


def policy_cost(
    problem: Problem, policy: Policy, m: Flow, *, n: int, generator: torch.Generator, chunk: int = 65536,
    dtype: torch.dtype = torch.float64,
) -> CostEstimate:
    r"""Monte-Carlo :math:`J(\pi \mid m)` with ``n`` agents (in chunks of ``chunk``) and its standard error.

    Parameters
    ----------
    problem : Problem
    policy : Policy
    m : Flow
        The frozen population flow read by the dynamics and rewards.
    n : int
        Number of agents.
    generator : torch.Generator
        The only source of randomness.
    """
    if n < 2:
        raise ValueError("policy_cost needs at least two agents for a standard error")
    acc = _Moments()
    while acc.n < n:
        acc.add(rollout_costs(problem, policy, m, n=min(chunk, n - acc.n), generator=generator, dtype=dtype))
    return acc.estimate()


def cost_difference(
    problem: Problem, policy: Policy, baseline: Policy, m: Flow, *, n: int, generator: torch.Generator,
    chunk: int = 65536, dtype: torch.dtype = torch.float64,
) -> CostEstimate:
    r""":math:`J(\pi \mid m) - J(\pi_0 \mid m)` on common random numbers, and its standard error.

    Both rollouts of a chunk start from the same generator state; they share initial states and noises as long
    as both policies draw the same randomness (deterministic policies draw none).

    Raises
    ------
    RuntimeError
        When the two rollouts consumed different amounts of randomness (common random numbers broke).
    """
    if n < 2:
        raise ValueError("cost_difference needs at least two agents for a standard error")
    acc = _Moments()
    while acc.n < n:
        k = min(chunk, n - acc.n)
        start = generator.get_state()
        c0 = rollout_costs(problem, baseline, m, n=k, generator=generator, dtype=dtype)
        end = generator.get_state()
        generator.set_state(start)
        c1 = rollout_costs(problem, policy, m, n=k, generator=generator, dtype=dtype)
        if not torch.equal(end, generator.get_state()):
            raise RuntimeError("the two policies drew different randomness: common random numbers are impossible")
        acc.add(c1 - c0)
    return acc.estimate()
