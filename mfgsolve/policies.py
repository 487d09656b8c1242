r"""Policies :math:`\pi(t, x, m) \mapsto a`: affine (exact LQ), mixtures (fictitious play's average)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from mfgsolve.flows import Flow

__all__ = ["Policy", "AffinePolicy", "MixturePolicy"]


class Policy(ABC):
    """A (possibly population-aware) feedback policy. ``x`` is ``(batch, n)``; the result is ``(batch, p)``."""

    @abstractmethod
    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        """Action at time ``t`` for states ``x`` against the population flow ``m``."""

    def for_population(self, n: int, generator: torch.Generator) -> Policy:
        """The policy as played by a population of ``n`` particles (a mixture draws each particle's component)."""
        return self


@dataclass(frozen=True, eq=False)
class AffinePolicy(Policy):
    """``a_t = -K_t x - k_t`` with ``K`` ``(T, p, n)`` and ``k`` ``(T, p)`` (float64 arrays)."""

    K: np.ndarray
    k: np.ndarray

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        K = torch.as_tensor(self.K[t], dtype=x.dtype, device=x.device)
        k = torch.as_tensor(self.k[t], dtype=x.dtype, device=x.device)
        return -(x @ K.T) - k


@dataclass(frozen=True, eq=False)
class MixturePolicy(Policy):
    """Each agent draws component ``j`` with probability ``weights[j]`` once, at ``t = 0``, and keeps it.

    This is the average policy of fictitious play: its flow against a frozen population is the
    ``weights``-mixture of the components' flows.
    """

    components: tuple[Policy, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.components) != len(self.weights) or not self.components:
            raise ValueError("a mixture needs one weight per component and at least one component")
        if any(w < 0 for w in self.weights) or not np.isclose(sum(self.weights), 1.0):
            raise ValueError("mixture weights must be non-negative and sum to one")

    @classmethod
    def combine(cls, old: Policy, new: Policy, weight: float) -> MixturePolicy:
        """``(1 - weight) * old + weight * new``, flattening nested mixtures."""
        parts: list[tuple[Policy, float]] = []
        for pol, w in ((old, 1.0 - weight), (new, weight)):
            if isinstance(pol, MixturePolicy):
                parts.extend((c, w * cw) for c, cw in zip(pol.components, pol.weights))
            else:
                parts.append((pol, w))
        parts = [(c, w) for c, w in parts if w > 0.0]
        return cls(tuple(c for c, _ in parts), tuple(w for _, w in parts))

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        raise TypeError("a mixture acts per particle: call for_population(n, generator) first")

    def for_population(self, n: int, generator: torch.Generator) -> Policy:
        probs = torch.tensor(self.weights, dtype=torch.float64)
        assignment = torch.multinomial(probs, n, replacement=True, generator=generator)
        return _AssignedMixture(self.components, assignment)


@dataclass(frozen=True, eq=False)
class _AssignedMixture(Policy):
    components: Sequence[Policy]
    assignment: torch.Tensor  # (n,) component of each particle

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        out: torch.Tensor | None = None
        for j, comp in enumerate(self.components):
            idx = (self.assignment == j).nonzero(as_tuple=True)[0].to(x.device)
            if idx.numel() == 0:
                continue
            a = comp.act(t, x[idx], m)
            if out is None:
                out = x.new_zeros(x.shape[0], a.shape[1])
            out[idx] = a
        assert out is not None
        return out
