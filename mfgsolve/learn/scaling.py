r"""Scales a learner fixes from data: the state standardisation of the first flow and the reward scale.

* States are standardised by one location and scale per coordinate for the whole horizon, those of the flow the
  networks are built on: :math:`\ell = \bar m` (the time average of the means :math:`m_t`) and
  :math:`s^2 = \overline{\operatorname{var}_t} + \operatorname{var}_t(m_t)` (law of total variance over a uniform
  ``t``), with a zero scale replaced by one.
* Rewards are multiplied by :math:`c = 1 / (T\,\overline{|r|})` over the first transitions, so that an episode's
  return is of order one.
"""

from __future__ import annotations

import torch

from mfgsolve.flows import Flow
from mfgsolve.learn.encoders import flow_moments

__all__ = ["flow_standardisation", "reward_scale"]


def flow_standardisation(m: Flow, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Location and scale ``(n,)`` (float64) of the flow ``m`` over ``t = 0..T`` (module docstring)."""
    mom = [flow_moments(m, t) for t in range(T + 1)]
    means = torch.stack([mu for mu, _ in mom])
    var = torch.stack([torch.diagonal(c) for _, c in mom]).clamp_min(0)
    scale = (var.mean(0) + means.var(0, unbiased=False)).sqrt()
    return means.mean(0), torch.where(scale > 0, scale, torch.ones_like(scale))


def reward_scale(r: torch.Tensor, T: int) -> float:
    r"""The reward scale :math:`1 / (T\,\overline{|r|})` of the rewards ``r`` (any shape), floored away from zero.

    >>> reward_scale(torch.tensor([-2.0, 2.0]), T=4)
    0.125
    """
    return 1.0 / max(T * float(r.abs().mean()), 1e-12)
