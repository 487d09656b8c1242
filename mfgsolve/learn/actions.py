r"""Unit actions to problem actions and back: the one map every learned oracle's networks act through.

Networks put out *unit* actions :math:`u`. For a problem with action bounds :math:`[\ell, h]` the map is affine
onto the box, :math:`a = c + w\,u` with centre :math:`c = (\ell + h)/2` and half-width :math:`w = (h - \ell)/2`,
and unit actions are clipped to :math:`[-1, 1]`; for an unbounded problem :math:`a = s\,u` with a fixed scale
:math:`s` and no clipping.

>>> import torch
>>> amap = ActionMap(torch.tensor([0.0]), torch.tensor([2.0]), scale=5.0)
>>> amap.to_action(amap.clip(torch.tensor([[1.5], [-0.5]])), torch.float64).flatten().tolist()
[2.0, 0.5]
>>> ActionMap(None, None, scale=5.0).to_unit(torch.tensor([[2.5]])).item()
0.5
"""

from __future__ import annotations

import torch

from mfgsolve.problem import Problem

__all__ = ["ActionMap"]


class ActionMap:
    """Unit actions (``[-1, 1]`` when the problem has bounds, unbounded otherwise) to problem actions and back.

    Parameters
    ----------
    low, high : torch.Tensor or None
        Action bounds ``(p,)``; both ``None`` for an unbounded problem.
    scale : float
        Problem action per unit action when unbounded (ignored when bounded).
    """

    def __init__(self, low: torch.Tensor | None, high: torch.Tensor | None, scale: float) -> None:
        self.bounded = low is not None and high is not None
        if self.bounded:
            self.center = (0.5 * (low + high)).to(torch.float64)  # type: ignore[operator]
            self.half = (0.5 * (high - low)).to(torch.float64)  # type: ignore[operator]
        else:
            self.center = torch.zeros(())
            self.half = torch.tensor(float(scale), dtype=torch.float64)

    @classmethod
    def of(cls, problem: Problem, scale: float) -> ActionMap:
        """The map of ``problem``'s action bounds, with ``scale`` for an unbounded problem."""
        return cls(getattr(problem, "action_low", None), getattr(problem, "action_high", None), scale)

    def to_action(self, u: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Problem actions, in ``dtype``, of the unit actions ``u`` ``(B, p)``."""
        return self.center.to(u.device, dtype) + self.half.to(u.device, dtype) * u.to(dtype)

    def to_unit(self, a: torch.Tensor) -> torch.Tensor:
        """Unit actions (float32) of the problem actions ``a`` ``(B, p)``."""
        return ((a - self.center.to(a)) / self.half.to(a)).to(torch.float32)

    def clip(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` clipped to ``[-1, 1]`` when the problem has bounds, else ``u`` itself."""
        return u.clamp(-1.0, 1.0) if self.bounded else u
