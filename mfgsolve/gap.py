r"""The gap :math:`J(\pi \mid m) - J(\mathrm{BR}(m) \mid m)` of a policy against a best response to a flow.

One quantity under several names: the exploitability of a policy on its own flow (:math:`m = m^\pi`,
:func:`mfgsolve.exploitability`), the gap of a learned best response on the exact equilibrium flow
(:func:`mfgsolve.br_check`), and the epsilon-Nash of a policy in the N-player game
(:func:`mfgsolve.lq_epsilon_nash`, where the flow is the N - 1 other players). Each is a :class:`Gap`; the
latter two add what they know beyond the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Gap"]

#: Below this ``|J_best|`` a game's best response costs nothing to rounding, and a relative gap has no scale.
_NO_SCALE = 1e-12


@dataclass(frozen=True)
class Gap:
    r""":math:`J(\pi \mid m) - J(\mathrm{BR}(m) \mid m)`, with its two terms.

    ``J`` are costs (lower is better), so ``value`` is >= 0 up to the accuracy of its two terms.
    """

    value: float
    """``J_policy - J_best`` (estimated directly, on common random numbers, where it is a Monte-Carlo figure)."""
    J_policy: float
    """Cost of the policy against the flow."""
    J_best: float
    """Cost of the best response against the flow."""
    se: float = 0.0
    """Monte-Carlo standard error of ``value`` (0 when both terms are exact)."""

    @property
    def relative(self) -> float:
        """``value / |J_best|``; ``nan`` when ``|J_best| <= 1e-12`` (no scale to be relative to)."""
        return self.value / abs(self.J_best) if abs(self.J_best) > _NO_SCALE else float("nan")
