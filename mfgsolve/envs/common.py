r"""What the environments share, without gymnasium: observations and the action map.

An observation is the agent's state, the time features the project's own networks read
(:func:`mfgsolve.learn.networks.time_features`: :math:`t/T` and :math:`1/(T - t + 1)`) and, optionally, features
of the population at ``t``: the mean and the per-coordinate standard deviation of :math:`m_t`.

>>> import torch
>>> obs = observation(torch.tensor([[0.5]], dtype=torch.float64), 0, 20)
>>> obs.dtype, [round(v, 4) for v in obs[0].tolist()]
(torch.float32, [0.5, 0.0, 0.0476])
>>> observation_size(2, population=True)
8
"""

from __future__ import annotations

import torch

from mfgsolve.flows import Flow
from mfgsolve.learn.encoders import flow_moments
from mfgsolve.learn.networks import TIME_FEATURES, time_features

__all__ = ["INSTALL_HINT", "observation", "observation_size", "population_features", "require"]

#: The one line that says how to get the optional packages.
INSTALL_HINT = ('needs the optional packages gymnasium, stable-baselines3 and pettingzoo: '
                'pip install -e ".[rl]" (or pip install gymnasium stable-baselines3 pettingzoo)')


def require(*modules: str) -> None:
    """Import ``modules`` or raise one ``ImportError`` line naming the extra to install."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ImportError(f"mfgsolve.envs {INSTALL_HINT} ({name} is missing)") from None


def observation_size(n: int, *, population: bool) -> int:
    """Width of an observation for states of dimension ``n``."""
    return n + TIME_FEATURES + (2 * n if population else 0)


def population_features(m: Flow, T: int) -> torch.Tensor:
    """Mean and standard deviation of :math:`m_t` for every ``t``: ``(T + 1, 2n)`` float64."""
    rows = []
    for t in range(T + 1):
        mean, cov = flow_moments(m, t)
        rows.append(torch.cat([mean, torch.diagonal(cov).clamp_min(0).sqrt()]))
    return torch.stack(rows)


def observation(x: torch.Tensor, t: int, T: int, features: torch.Tensor | None = None) -> torch.Tensor:
    """Observations ``(B, observation_size)`` float32 of states ``x`` ``(B, n)`` at step ``t``; ``features``: the
    population's at ``t`` ``(2n,)`` (or one row per agent ``(B, 2n)``), ``None`` for none."""
    parts = [x.to(torch.float32), time_features(t, T, x.shape[0], x.device)]
    if features is not None:
        parts.append(features.to(x.device, torch.float32).expand(x.shape[0], -1))
    return torch.cat(parts, dim=1)
