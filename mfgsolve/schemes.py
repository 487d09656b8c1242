r"""Outer schemes: one update, a weight schedule :math:`w_k` and a policy-averaging rule.

.. math:: m^{k+1} = (1 - w_k)\, m^k + w_k\, \mu(\pi^k)

* Picard: :math:`w_k = 1` (plain iteration), the policy is the last best response;
* Damped(:math:`\alpha`): :math:`w_k = \alpha`, the policy is the last best response;
* FictitiousPlay: :math:`w_k = 1/(k+1)`, so :math:`m^{k+1}` is the average of :math:`\mu(\pi^0..\pi^k)`, and the
  policy is the uniform mixture of :math:`\pi^0..\pi^k` (Cardaliaguet & Hadikhanloo 2017; Perrin et al. 2020).
  With ``recency`` :math:`c \ge 1` the weights are :math:`w_k = c/(k+c)`: the average then weighs the
  :math:`j`-th best response like :math:`(j+1)^{c-1}` (polynomial-decay averaging), still with
  :math:`w_k \to 0` and :math:`\sum_k w_k = \infty` (generalised weakened fictitious play, Leslie & Collins
  2006). On a linear map with largest real eigenvalue :math:`\lambda < 1` the error decays like
  :math:`k^{-c(1-\lambda)}` instead of :math:`k^{-(1-\lambda)}`; ``recency=1`` (the default) is classical FP.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from mfgsolve.errors import SpecError
from mfgsolve.flows import Flow
from mfgsolve.policies import MixturePolicy, Policy

__all__ = ["Scheme", "Picard", "Damped", "FictitiousPlay", "make_scheme", "SCHEMES"]


@dataclass(frozen=True)
class Scheme(ABC):
    """Base scheme: subclasses set :meth:`weight` and :attr:`average_policy`."""

    name: ClassVar[str] = "scheme"
    average_policy: ClassVar[bool] = False
    #: Whether the new flow replaces the old one (weights 1): the residual W(m^{k+1}, m^k) is then the
    #: fixed-point gap W(mu(pi^k), m^k) itself, which need not be measured twice.
    residual_is_gap: ClassVar[bool] = False

    @property
    def damping(self) -> float | None:
        """The constant weight of a damped scheme (``None`` for the others)."""
        return None

    @abstractmethod
    def weight(self, k: int) -> float:
        """Weight of the new flow at outer iteration ``k = 0, 1, ...``."""

    @property
    def decreasing(self) -> bool:
        """Whether the weights go to zero (rates are then sublinear, judged on a log-log scale)."""
        return False

    def update(
        self, k: int, m: Flow, mu: Flow, pi: Policy, policy: Policy | None, generator: torch.Generator | None = None
    ) -> tuple[Flow, Policy]:
        """``(m^{k+1}, policy^{k+1})`` from the frozen flow, the new flow, the best response and the old policy.

        ``generator``: particle flows are mixed by drawing each particle from one side (see
        :meth:`ParticleFlow.mix`), which keeps the size and the pairing of common random numbers.
        """
        w = self.weight(k)
        m_next = m.mix(mu, w, generator)
        if self.average_policy and policy is not None and w < 1.0:
            return m_next, MixturePolicy.combine(policy, pi, w)
        return m_next, pi

    def config(self) -> dict[str, object]:
        return {"name": self.name}

    def flags(self) -> str:
        """This scheme as the command line's options (``--scheme damped --alpha 0.31``)."""
        options = {"alpha": "--alpha", "recency": "--recency"}
        return " ".join([f"--scheme {self.name}"] + [f"{options[k]} {v:g}" for k, v in self.config().items()
                                                      if k in options and not (k == "recency" and v == 1.0)])


@dataclass(frozen=True)
class Picard(Scheme):
    """Plain fixed-point iteration: ``m^{k+1} = mu(pi^k)``."""

    name: ClassVar[str] = "picard"
    residual_is_gap: ClassVar[bool] = True

    def weight(self, k: int) -> float:
        return 1.0


@dataclass(frozen=True)
class Damped(Scheme):
    """Damped (Krasnosel'skii-Mann) iteration ``m^{k+1} = (1 - alpha) m^k + alpha mu(pi^k)``, alpha in (0, 1]."""

    alpha: float = 0.5
    name: ClassVar[str] = "damped"

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and 0.0 < self.alpha <= 1.0):
            raise SpecError("alpha", f"must lie in (0, 1], got {self.alpha!r}")

    def weight(self, k: int) -> float:
        return float(self.alpha)

    @property
    def damping(self) -> float | None:
        return float(self.alpha)

    def config(self) -> dict[str, object]:
        return {"name": self.name, "alpha": self.alpha}


@dataclass(frozen=True)
class FictitiousPlay(Scheme):
    """Fictitious play: weights ``recency/(k+recency)`` on flows and policies (the average policy is kept).

    ``recency=1`` is classical fictitious play (uniform averages); larger values weigh recent best responses
    more (``2``: linearly in their index) and converge faster on contractive games.
    """

    recency: float = 1.0
    name: ClassVar[str] = "fp"
    average_policy: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not (isinstance(self.recency, (int, float)) and 1.0 <= self.recency < math.inf):
            raise SpecError("recency", f"must be a finite number >= 1, got {self.recency!r}")

    def weight(self, k: int) -> float:
        return float(self.recency) / (k + self.recency)

    def config(self) -> dict[str, object]:
        return {"name": self.name, "recency": self.recency}

    @property
    def decreasing(self) -> bool:
        return True


SCHEMES = ("picard", "damped", "fp")


def make_scheme(name: str, alpha: float | None = None, recency: float | None = None) -> Scheme:
    """Scheme by CLI name; ``alpha`` only for ``damped`` (default 0.5), ``recency`` only for ``fp`` (default 1)."""
    if name not in SCHEMES:
        raise SpecError("--scheme", f"unknown scheme {name!r} (choose from {', '.join(SCHEMES)})")
    if alpha is not None and name != "damped":
        raise SpecError("--alpha", "applies only to --scheme damped")
    if recency is not None and name != "fp":
        raise SpecError("--recency", "applies only to --scheme fp")
    if name == "picard":
        return Picard()
    if name == "fp":
        return FictitiousPlay(1.0 if recency is None else recency)
    return Damped(0.5 if alpha is None else alpha)
