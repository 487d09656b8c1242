"""The best-response oracle protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mfgsolve.flows import Flow
from mfgsolve.policies import Policy
from mfgsolve.problem import Problem

__all__ = ["Oracle", "BestResponseInfo"]


@dataclass(frozen=True)
class BestResponseInfo:
    """What an oracle reports about one best response.

    Attributes
    ----------
    seconds : float
        Wall time of the best response.
    value : float or None
        The oracle's own estimate of the best-response cost ``J(BR(m) | m)`` (exact for the LQ oracle).
    extra : dict
        Oracle-specific figures (losses, update counts...), recorded in the history.
    """

    seconds: float
    value: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Oracle(Protocol):
    """Computes a best response to a frozen flow.

    An oracle whose responses are exact (no learning noise) may say so with a class attribute ``exact = True``;
    the outer loop then reads a stalled gap as a property of the map, not of the oracle.
    """

    name: str

    def best_response(
        self, problem: Problem, m: Flow, warm_start: Any | None = None
    ) -> tuple[Policy, BestResponseInfo]:
        """A best response to the frozen ``m`` and what it cost; ``warm_start`` is the previous call's policy."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings (recorded in ``config.json``)."""
        ...
