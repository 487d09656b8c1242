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

    def bind(self, m: Flow) -> Policy:
        r"""The Markov policy :math:`\pi(t, x) = \pi(t, x, m)` that this one plays against the frozen flow ``m``.

        A best response to ``m`` is a strategy for that flow: played against any other flow (its own flow in an
        exploitability, a later flow inside fictitious play's average), it keeps acting as it did against
        ``m``; a population-aware network read at a flow it was never trained on would act arbitrarily. The
        outer loop binds every best response to the flow it answered. Default: a wrapper holding ``m``;
        policies that read no flow return themselves, learned ones keep only what they read of ``m``.
        """
        return _Bound(self, m)


@dataclass(frozen=True, eq=False)
class _Bound(Policy):
    inner: Policy
    m: Flow

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        return self.inner.act(t, x, self.m)

    def bind(self, m: Flow) -> Policy:
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

    def bind(self, m: Flow) -> Policy:
        return self  # reads no flow


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

    def bind(self, m: Flow) -> Policy:
        return MixturePolicy(tuple(c.bind(m) for c in self.components), self.weights)

    def for_population(self, n: int, generator: torch.Generator) -> Policy:
        probs = torch.tensor(self.weights, dtype=torch.float64, device=generator.device)
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
