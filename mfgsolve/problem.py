r"""The problem protocol: a finite-horizon mean field game as batched torch callbacks.

A representative agent with state :math:`x_t \in \mathbb{R}^n` picks :math:`a_t \in \mathbb{R}^p`,
moves by :math:`x_{t+1} = f(t, x_t, a_t, m_t, \xi_t)` and earns :math:`r(t, x_t, a_t, m)` for
:math:`t = 0, \dots, T-1` plus :math:`g(x_T, m_T)` at the end. ``m`` is the whole population flow
(:class:`mfgsolve.flows.Flow`); a problem reads what it needs of it (``m.mean(t)``, ``m.mean(t + 1)``,
``m.density(t, points)``...). Rewards are maximised; the LQ family's costs enter with a minus sign.

Optional members, looked up with ``getattr`` (a problem without them works):

* ``exploitability(policy, m)``: the problem's own exact exploitability, a :class:`mfgsolve.Gap` (see
  :func:`mfgsolve.exploitability`);
* ``particles``: the flow size its particle flows need by default (:data:`DEFAULT_PARTICLES` otherwise). A
  problem that reads only a few moments of ``m`` can afford many particles, and needs them for accurate
  moments; one that sums kernels over all particles pays for each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

if TYPE_CHECKING:
    from mfgsolve.flows import Flow

__all__ = ["Reference", "Problem", "DEFAULT_PARTICLES", "default_particles"]

#: Particles per flow for a problem that does not say (its ``particles`` attribute).
DEFAULT_PARTICLES = 4096


def default_particles(problem: object) -> int:
    """The problem's own default flow size (its ``particles`` attribute), else :data:`DEFAULT_PARTICLES`."""
    n = getattr(problem, "particles", None)
    return int(n) if isinstance(n, int) and n > 0 else DEFAULT_PARTICLES


@runtime_checkable
class Reference(Protocol):
    """An exact equilibrium, as :func:`mfgsolve.solve` measures runs against it.

    ``J`` the equilibrium cost, ``mean`` the mean flow ``(T+1, n)``; ``cov`` the covariance flow
    ``(T+1, n, n)`` and ``rho`` the Picard map's contraction rate where the reference has them, else ``None``.
    """

    J: float
    mean: np.ndarray
    cov: np.ndarray | None
    rho: float | None


@runtime_checkable
class Problem(Protocol):
    """What mfgsolve needs of a mean field game. All tensors are batched: ``x`` is ``(batch, n)``.

    Attributes
    ----------
    name : str
        Registered name or spec path, recorded in run files.
    n, p, T : int
        State dimension, action dimension and horizon (number of decision steps).
    action_low, action_high : torch.Tensor or None
        Optional action bounds, shape ``(p,)``; ``None`` means unbounded.
    """

    name: str
    n: int
    p: int
    T: int
    action_low: torch.Tensor | None
    action_high: torch.Tensor | None

    def sample_x0(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``n`` initial states, shape ``(n, self.n)``, on ``generator``'s device (the run's: draw with
        ``device=generator.device``; :meth:`step` draws its noise on ``x.device``, which is the same)."""
        ...

    def step(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow, generator: torch.Generator) -> torch.Tensor:
        """Next states ``x_{t+1}``, shape ``(batch, n)``, for states ``x`` and actions ``a`` at time ``t``."""
        ...

    def reward(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow) -> torch.Tensor:
        """Running reward at time ``t``, shape ``(batch,)``."""
        ...

    def terminal_reward(self, x: torch.Tensor, m: Flow) -> torch.Tensor:
        """Terminal reward at time ``T``, shape ``(batch,)``."""
        ...

    def reference(self) -> Reference | None:
        """The exact equilibrium when one is known (e.g. :class:`mfgsolve.lq.LQReference`), else ``None``."""
        ...

    def config(self) -> dict[str, Any]:
        """A JSON-serialisable description that rebuilds the problem (recorded in ``config.json``)."""
        ...


def probe_problem(problem: Any, device: torch.device = torch.device("cpu")) -> None:
    """Call a problem's callbacks once on a small batch and check what they return: shapes, dtypes, finiteness.

    Run by :func:`mfgsolve.solve` before any work, so that a user's problem that returns ``(batch, 1)`` rewards,
    a state of the wrong width or a NaN is named at once, with the callback, instead of failing deep inside an
    oracle. The probe runs on the run's ``device``: a callback that returns its tensors elsewhere is named too.
    Raises :class:`mfgsolve.SpecError` (``field`` is the callback's name).
    """
    from mfgsolve.errors import SpecError
    from mfgsolve.flows import ParticleFlow

    k, T, n, p = 4, problem.T, problem.n, problem.p
    g = torch.Generator(device=device).manual_seed(0)

    def tensor(name: str, value: Any, shape: tuple[int, ...]) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise SpecError(name, f"returned {type(value).__name__}, expected a torch.Tensor of shape {shape}")
        if tuple(value.shape) != shape:
            raise SpecError(name, f"returned shape {tuple(value.shape)}, expected {shape} (a batch of {k})")
        if not value.is_floating_point():
            raise SpecError(name, f"returned dtype {value.dtype}, expected a floating-point tensor")
        if value.device != device:
            raise SpecError(name, f"returned a tensor on {value.device}, expected the run's device {device} (make "
                                  "tensors with device=x.device, and draw with device=generator.device)")
        if not torch.isfinite(value).all():
            raise SpecError(name, "returned a non-finite value on a probe batch")
        return value

    x = tensor("sample_x0", problem.sample_x0(k, g), (k, n)).double()
    m = ParticleFlow.uniform(x.expand(T + 1, -1, -1).clone())
    low, high = getattr(problem, "action_low", None), getattr(problem, "action_high", None)
    a = torch.zeros(k, p, dtype=x.dtype, device=device)
    if low is not None and high is not None:
        a = a + 0.5 * (torch.as_tensor(low, dtype=x.dtype) + torch.as_tensor(high, dtype=x.dtype)).to(device)
    tensor("step", problem.step(0, x, a, m, g), (k, n))
    tensor("reward", problem.reward(0, x, a, m), (k,))
    tensor("terminal_reward", problem.terminal_reward(x, m), (k,))
