"""The best-response oracle protocol."""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

from mfgsolve.flows import Flow
from mfgsolve.policies import Policy
from mfgsolve.presets import preset_for
from mfgsolve.problem import Problem

__all__ = ["Oracle", "BestResponseInfo", "LearnedOracle"]

_Self = TypeVar("_Self", bound="LearnedOracle")


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

    def for_run(self, *, seed: int, updates: int, device: torch.device) -> Oracle:
        """The oracle a run uses: this one with the run's ``seed`` and budget where it leaves them open, on the
        run's ``device``.

        A learned oracle whose settings give no seed takes ``seed``, and one that gives no budget (neither updates
        nor seconds) takes ``updates``; an oracle that gives both, or has neither (exact), is returned as it is
        (moved to ``device``). Called once, before the first best response (a learned oracle that has trained
        refuses to change its seed, budget or device: ``ValueError``). Its policies act on states on ``device``.
        """
        ...


class LearnedOracle(abc.ABC):
    """What the learned oracles share: settings (a frozen dataclass ``cfg``) whose seed and budget a run supplies.

    ``cfg.seed`` and ``cfg.updates`` may be ``None``: :meth:`for_run` fills them from the run; an oracle used
    directly plays seed 0 and its preset's ``br_updates`` (:func:`mfgsolve.presets.preset_for`; :attr:`settings`) on
    the CPU. A subclass says whether it holds training state (:attr:`trained`) and takes its config as first
    constructor argument. The device is the run's, not a setting: it is no part of :attr:`cfg` (nor of ``config()``).
    """

    cfg: Any
    device: torch.device = torch.device("cpu")
    """Where the networks, replay, rollouts and random streams live (set by :meth:`for_run`)."""

    @property
    def settings(self) -> Any:
        """``cfg`` with the defaults of a direct use where it leaves the seed or the budget open."""
        cfg = self.cfg
        seed = 0 if cfg.seed is None else cfg.seed
        updates = preset_for(self).br_updates if cfg.updates is None and cfg.seconds is None else cfg.updates
        if seed == cfg.seed and updates == cfg.updates:
            return cfg
        return dataclasses.replace(cfg, seed=seed, updates=updates)

    @property
    @abc.abstractmethod
    def trained(self) -> bool:
        """Whether the oracle holds state from training (its seed and budget are then fixed)."""

    def for_run(self: _Self, *, seed: int, updates: int, device: torch.device = torch.device("cpu")) -> _Self:
        """See :meth:`Oracle.for_run`: ``self`` when seed, budget and device are set, else a new oracle of this
        class.

        Examples
        --------
        >>> from mfgsolve.oracles import DDPGOracle
        >>> oracle = DDPGOracle(seconds=30.0)
        >>> run = oracle.for_run(seed=7, updates=1700)
        >>> run.cfg.seed, run.cfg.updates, run.cfg.seconds
        (7, None, 30.0)
        >>> run.for_run(seed=8, updates=10) is run
        True
        """
        cfg = self.cfg
        budget = cfg.updates is not None or cfg.seconds is not None
        device = torch.device(device)
        if cfg.seed is not None and budget and device == self.device:
            return self
        if self.trained:
            raise ValueError(f"{type(self).__name__}.for_run: the oracle has trained already; give it a seed, a "
                             "budget and a device before its first best response")
        new = dataclasses.replace(cfg, seed=seed if cfg.seed is None else cfg.seed,
                                  updates=cfg.updates if budget else updates)
        out = type(self)(new)  # type: ignore[call-arg]
        out.device = device
        return out
