r"""Exploration for the DDPG oracle: action noise, parameter noise and a population-aware bonus.

Every noise works in unit action scale (``[-1, 1]`` for bounded actions, ``a / action_scale`` otherwise), takes a
``scale`` in ``[0, 1]`` from the trainer's annealing schedule and draws only from the generator it is given.

=============  =====================================================================================
kind           exploratory action
=============  =====================================================================================
gaussian       :math:`a = \pi(s) + \sigma\varepsilon`, :math:`\varepsilon \sim N(0, I)` i.i.d. per step
ou             :math:`a = \pi(s) + X_t`, :math:`X_{t+1} = (1-\theta) X_t + \sigma\sqrt{1-(1-\theta)^2}\,
               \varepsilon_t`, :math:`X_0 = 0` (Ornstein-Uhlenbeck, Lillicrap et al. 2015; stationary
               standard deviation :math:`\sigma`)
parameter      :math:`a = \pi(s; \theta + \epsilon)`, :math:`\epsilon \sim N(0, \sigma_\theta^2 I)` drawn per
               episode; :math:`\sigma_\theta` adapts so that the action-space distance
               :math:`\sqrt{E|\pi(s;\theta) - \pi(s;\theta+\epsilon)|^2}` tracks :math:`\sigma`
               (Plappert et al. 2018, sec. 3: multiply or divide by 1.01)
population     Gaussian action noise plus the reward bonus :math:`\beta\,(1 - e^{-|\tilde x'|^2/2})`, where
               :math:`\tilde x'` is the next state standardised by the frozen flow's moments: agents are
               paid to reach regions the population rarely visits. The trainer weights the bonus at
               sampling time by a factor falling linearly to zero, so it vanishes by the end of the budget.
=============  =====================================================================================

References
----------
.. [1] Lillicrap et al. (2015), "Continuous control with deep reinforcement learning".
.. [2] Plappert et al. (2018), "Parameter Space Noise for Exploration", ICLR.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import Any, Callable

import torch
from torch import nn

__all__ = [
    "Exploration",
    "GaussianNoise",
    "OrnsteinUhlenbeckNoise",
    "ParameterNoise",
    "PopulationBonus",
    "NOISES",
    "make_exploration",
]

NOISES: tuple[str, ...] = ("gaussian", "ou", "parameter", "population")

class Exploration(ABC):
    """Base class: per-episode :meth:`reset`, per-step :meth:`explore`, optional :meth:`bonus` and :meth:`adapt`."""

    kind = "none"

    def __init__(self, sigma: float) -> None:
        if not sigma >= 0:
            raise ValueError(f"exploration sigma must be non-negative, got {sigma}")
        self.sigma = sigma

    def reset(self, n_agents: int, p: int, actor: nn.Module, generator: torch.Generator) -> None:
        """Start of an episode of ``n_agents`` agents."""

    @abstractmethod
    def explore(self, a: torch.Tensor, *, actor_fn: Callable[[nn.Module], torch.Tensor], scale: float,
                generator: torch.Generator) -> torch.Tensor:
        """Exploratory unit actions for the deterministic unit actions ``a`` ``(B, p)``.

        ``actor_fn(module)`` evaluates another actor (a perturbed copy) on the same inputs.
        """

    def bonus(self, x_next_std: torch.Tensor) -> torch.Tensor | None:
        """Reward bonus per transition from the standardised next states ``(B, n)``; ``None`` when there is none."""
        return None

    def adapt(self, actor: nn.Module, actor_fn: Callable[[nn.Module], torch.Tensor], scale: float) -> None:
        """Adapt to a batch of replayed states after an episode (``actor_fn`` evaluates an actor on them)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class GaussianNoise(Exploration):
    r"""I.i.d. :math:`N(0, (\text{scale}\,\sigma)^2)` added to every action."""

    kind = "gaussian"

    def explore(self, a, *, actor_fn, scale, generator):
        return a + (scale * self.sigma) * torch.randn(a.shape, generator=generator, dtype=a.dtype, device=a.device)


class OrnsteinUhlenbeckNoise(Exploration):
    r"""Temporally correlated noise, reset to zero at the start of every episode (stationary std :math:`\sigma`)."""

    kind = "ou"

    def __init__(self, sigma: float, theta: float) -> None:
        super().__init__(sigma)
        if not 0 < theta <= 1:
            raise ValueError(f"ou_theta must lie in (0, 1], got {theta}")
        self.theta = theta
        self.state = torch.zeros(0, 0)

    def reset(self, n_agents, p, actor, generator):
        self.state = torch.zeros(n_agents, p, device=generator.device)

    def explore(self, a, *, actor_fn, scale, generator):
        innov = math.sqrt(1.0 - (1.0 - self.theta) ** 2)
        eps = torch.randn(a.shape, generator=generator, dtype=a.dtype, device=a.device)
        self.state = (1.0 - self.theta) * self.state.to(a) + self.sigma * innov * eps
        return a + scale * self.state

    def state_dict(self):
        return {"state": self.state.clone()}

    def load_state_dict(self, state):
        self.state = state["state"].clone()


class ParameterNoise(Exploration):
    r"""A perturbed copy of the actor per episode, with Plappert's adaptive :math:`\sigma_\theta`.

    Parameters
    ----------
    sigma : float
        Target action-space distance :math:`\delta` (unit action scale), times the annealing scale.
    initial : float
        Initial parameter standard deviation :math:`\sigma_\theta`.
    factor : float
        Adaptation factor :math:`\alpha` (1.01 in the paper).
    """

    kind = "parameter"

    def __init__(self, sigma: float, initial: float = 0.05, factor: float = 1.01) -> None:
        super().__init__(sigma)
        self.param_sigma = initial
        self.factor = factor
        self.perturbed: nn.Module | None = None
        self.distance = math.nan

    def _perturb(self, actor: nn.Module, generator: torch.Generator) -> nn.Module:
        out = copy.deepcopy(actor)
        with torch.no_grad():
            for p in out.parameters():
                p.add_(self.param_sigma * torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device))
                p.requires_grad_(False)
        return out

    def reset(self, n_agents, p, actor, generator):
        self.perturbed = self._perturb(actor, generator)

    def explore(self, a, *, actor_fn, scale, generator):
        assert self.perturbed is not None, "reset() draws the perturbed actor"
        with torch.no_grad():
            return actor_fn(self.perturbed)

    def adapt(self, actor, actor_fn, scale):
        if self.perturbed is None:
            return
        with torch.no_grad():
            d = float((actor_fn(actor) - actor_fn(self.perturbed)).pow(2).mean().sqrt())
        self.distance = d
        self.param_sigma = self.param_sigma * self.factor if d < scale * self.sigma else self.param_sigma / self.factor

    def state_dict(self):
        return {"param_sigma": self.param_sigma, "distance": self.distance}

    def load_state_dict(self, state):
        self.param_sigma = float(state["param_sigma"])
        self.distance = float(state["distance"])


class PopulationBonus(GaussianNoise):
    r"""Gaussian action noise and a bonus :math:`1 - e^{-|\tilde x'|^2/2}` for reaching thinly populated states."""

    kind = "population"

    def __init__(self, sigma: float, beta: float) -> None:
        super().__init__(sigma)
        if not beta >= 0:
            raise ValueError(f"population_beta must be non-negative, got {beta}")
        self.beta = beta

    def bonus(self, x_next_std):
        return self.beta * (1.0 - torch.exp(-0.5 * x_next_std.pow(2).sum(-1)))


def make_exploration(kind: str, *, sigma: float, ou_theta: float, param_initial: float,
                     population_beta: float) -> Exploration:
    """Build the exploration of ``kind`` (one of :data:`NOISES`)."""
    if kind == "gaussian":
        return GaussianNoise(sigma)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(sigma, ou_theta)
    if kind == "parameter":
        return ParameterNoise(sigma, param_initial)
    if kind == "population":
        return PopulationBonus(sigma, population_beta)
    raise ValueError(f"unknown exploration {kind!r} (choose from {', '.join(NOISES)})")
