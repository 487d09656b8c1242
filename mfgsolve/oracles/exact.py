"""The exact LQ best response (backward Riccati), the reference every learned oracle is measured against."""

from __future__ import annotations

import time
from typing import Any

from mfgsolve.errors import SpecError
from mfgsolve.flows import Flow
from mfgsolve.lq.problem import LQProblem
from mfgsolve.oracles.base import BestResponseInfo
from mfgsolve.policies import AffinePolicy
from mfgsolve.problem import Problem
from mfgsolve.lq import reference as lqref

__all__ = ["ExactLQOracle"]


class ExactLQOracle:
    """Best response ``a_t = -K_t x - k_t`` to the frozen mean flow, by :func:`mfgsolve.lq.reference.best_response`.

    It reads only the mean of the flow, which is all an LQ best response depends on.
    """

    name = "exact"
    exact = True  #: best responses without learning noise (the outer loop's diagnosis reads it)

    def best_response(
        self, problem: Problem, m: Flow, warm_start: Any | None = None
    ) -> tuple[AffinePolicy, BestResponseInfo]:
        if not isinstance(problem, LQProblem):
            raise SpecError("--oracle", "exact needs an LQ problem")
        start = time.perf_counter()
        means = m.means().detach().cpu().double().numpy()
        br = lqref.best_response(problem.coef, means, problem.riccati)
        return AffinePolicy(br.K, br.k), BestResponseInfo(seconds=time.perf_counter() - start, value=br.cost)

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def for_run(self, *, seed: int, updates: int, device: Any = None) -> ExactLQOracle:
        """This oracle: it draws nothing at random, has no budget, and computes in numpy (its affine policies act
        on states wherever they are; see :meth:`Oracle.for_run`)."""
        return self
