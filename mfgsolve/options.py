"""The strategies of a run, as small typed objects that :func:`mfgsolve.solve` takes (the way a differential
equation solver takes a step-size controller and a save-at rule): how the flow is carried, when the run stops,
how policies are evaluated, and where the run is written.

>>> import mfgsolve as mfg
>>> mfg.Particles(4096), mfg.Stop(iterations=30)
(Particles(n=4096, metric='auto'), Stop(iterations=30, tol=None))

Every field is checked when the object is made: a bad value is a :class:`~mfgsolve.SpecError` naming it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from mfgsolve.errors import RunDirError, SpecError
from mfgsolve.metrics import METHODS, Method
from mfgsolve.presets import RESPONSES

__all__ = ["Particles", "Gaussian", "FlowOption", "Stop", "Evaluation", "RunDir"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _count(field: str, value: Any, minimum: int) -> None:
    if not _is_int(value) or value < minimum:
        raise SpecError(field, f"must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Particles:
    """Carry the flow as ``n`` particles (``None``: the problem's own size, 131072 for LQ problems, else 4096),
    compared between iterations by the estimator ``metric`` (see :func:`mfgsolve.wasserstein`): ``"auto"`` is
    the exact sorted distance in 1-D and the coupling bound of paired particles in several dimensions."""

    n: int | None = None
    metric: Method = "auto"
    kind: Literal["particles"] = field(default="particles", init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n is not None:
            _count("particles", self.n, 2)
        if self.metric not in METHODS:
            raise SpecError("metric", f"unknown estimator {self.metric!r} (choose from {', '.join(METHODS)})")


@dataclass(frozen=True)
class Gaussian:
    """Carry the flow as Gaussian marginals (mean and covariance per time): exact for an LQ problem with the
    exact oracle's affine policies, compared in closed form."""

    kind: Literal["gaussian"] = field(default="gaussian", init=False, repr=False)


FlowOption = Union[Particles, Gaussian]


@dataclass(frozen=True)
class Stop:
    r"""When the run ends: after ``iterations`` best responses, or once the fixed-point gap
    :math:`\max_t W_2(\mu(\pi^k)_t, m^k_t)` is at most ``tol`` (for Picard the residual
    :math:`W_2(m^{k+1}, m^k)`, which is the gap; damping shrinks the residual, not the gap). ``None``: the
    preset of the oracle's kind (:mod:`mfgsolve.presets`)."""

    iterations: int | None = None
    tol: float | None = None

    def __post_init__(self) -> None:
        if self.iterations is not None:
            _count("iterations", self.iterations, 1)
        tol = self.tol
        if tol is not None and (not isinstance(tol, (int, float)) or isinstance(tol, bool) or not math.isfinite(tol)
                                or not tol > 0):
            raise SpecError("tol", f"must be a positive number, got {tol!r}")


@dataclass(frozen=True)
class Evaluation:
    """Agents of the Monte-Carlo exploitability of learned policies on LQ problems (:func:`mfgsolve.exploitability`):
    a cheap estimate every iteration (``particles``), an accurate one for the summary (``final_particles``).
    Exact policies are evaluated exactly and ignore both. The estimates draw from their own generator (seeded
    ``seed + 1``), so evaluating does not change the run."""

    particles: int = 2000
    final_particles: int = 100_000
    response: Literal["auto", "pathwise", "ddpg", "none"] = "auto"
    """Where mfgsolve has no exploitability of the problem (neither LQ nor a problem with its own, such as a grid
    DP), the summary's is a **lower bound** by a best response trained to the final policy's flow: ``auto`` the
    pathwise oracle on a problem whose callbacks pass gradients, DDPG elsewhere; ``none``: no bound. The oracle,
    its budget and seed are recorded in ``config.json`` and ``summary.json`` (``exploitability_bound``)."""
    response_updates: int | None = None
    """Updates of that response (``None``: :data:`mfgsolve.presets.FINAL_RESPONSE_UPDATES` of its oracle)."""
    response_agents: int = 20_000
    """Agents of the bound's Monte-Carlo cost difference (common random numbers)."""

    def __post_init__(self) -> None:
        _count("eval_particles", self.particles, 0)
        _count("final_eval_particles", self.final_particles, 0)
        if self.response not in RESPONSES:
            raise SpecError("final_response", f"must be one of {', '.join(RESPONSES)}, got {self.response!r}")
        if self.response_updates is not None:
            _count("final_response_updates", self.response_updates, 1)
        _count("final_response_agents", self.response_agents, 2)


@dataclass(frozen=True)
class RunDir:
    """Write the run into ``path`` as it goes (:mod:`mfgsolve.rundir`): a new or empty directory, locked while
    the run writes; ``resume`` continues the run recorded there (refused, naming the setting, when it is another
    run); ``overwrite`` replaces what the directory holds."""

    path: str | os.PathLike[str]
    resume: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise SpecError("run_dir", f"expected a directory path, got {self.path!r}")
        if not str(self.path).strip():
            raise RunDirError("run_dir", "an empty path (give a directory)")
        for name in ("resume", "overwrite"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(name, f"must be True or False, got {getattr(self, name)!r}")
        if self.resume and self.overwrite:
            raise SpecError("overwrite", "resume continues the run in the directory; overwrite would replace it")

    @property
    def directory(self) -> Path:
        return Path(self.path)
