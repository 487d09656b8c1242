r"""Actor and critic networks of MF-MADDPG, initialised from an explicit generator.

.. math::

    \pi(t, x, m_t) = \text{head}\big(\text{state}(\tilde x, t/T) \,\|\, \text{pop}(m_t)\big), \qquad
    Q(t, x, a, m_t) = \text{head}\big(\text{state}(\tilde x, t/T) \,\|\, \text{act}(\tilde a) \,\|\,
    \text{pop}(m_t)\big)

where :math:`\tilde x` is the state standardised by the frozen flow's moments at ``t`` and :math:`\tilde a` the
action in unit scale (``[-1, 1]`` for bounded actions). The population encoder ``pop`` is one of
:mod:`mfgsolve.learn.encoders`. This is the architecture of the seed formulation (``mf-maddpg-formulation.md``): the
centralised critic of MADDPG (Lowe et al. 2017) sees the population state instead of all agents.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import torch
from torch import nn

if TYPE_CHECKING:
    from mfgsolve.learn.encoders import PopulationEncoder

__all__ = ["Actor", "Critic", "mlp", "init_parameters", "polyak_update", "time_features", "with_step_onehot", "ACTIVATIONS", "TIME_FEATURES"]

#: Number of time features (:func:`time_features`).
TIME_FEATURES = 2


def time_features(t: torch.Tensor | int, T: int, rows: int, device: torch.device | None = None) -> torch.Tensor:
    r"""Time inputs ``(rows, 2)``: :math:`t/T` and the inverse time to go :math:`1/(T - t + 1)`, on ``device``
    (default: ``t``'s, the CPU for a number).

    The second resolves the last steps of the horizon, where finite-horizon values and policies change fastest
    (for LQ, the Riccati gains move most over the final steps).
    """
    t = torch.as_tensor(t, dtype=torch.float32, device=device).expand(rows).reshape(-1, 1)
    return torch.cat([t / T, 1.0 / (T - t + 1.0)], dim=1)


def time_inputs(steps: int | None) -> int:
    """Width of the time inputs: :data:`TIME_FEATURES`, plus ``T + 1`` with the step one-hot (``steps = T``)."""
    return TIME_FEATURES + (steps + 1 if steps is not None else 0)


def with_step_onehot(s: torch.Tensor, n: int, steps: int | None) -> torch.Tensor:
    r"""``s`` ``(B, n + 2)`` (state and :func:`time_features`) with a one-hot of the step :math:`t \in \{0..T\}`
    appended when ``steps`` is the horizon ``T`` (``None``: ``s`` unchanged).

    The step is read back from the feature :math:`t/T` (exact for any practical ``T``). With it, per-step gains
    and offsets are single weights of a linear layer: the smooth features alone make every quantity a smooth
    function of ``t``, which under-resolves the last steps of LQ problems (there the Riccati gain drops within a
    few steps, and a smooth actor leaves a same-sign drift in the mean flow over the final steps).
    """
    if steps is None:
        return s
    t = torch.round(s[:, n] * steps).to(torch.int64)
    return torch.cat([s, torch.nn.functional.one_hot(t, steps + 1).to(s.dtype)], dim=1)

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}


def mlp(sizes: Iterable[int], activation: str, *, final_activation: bool = True) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (and after the last when asked)."""
    sizes = list(sizes)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@torch.no_grad()
def init_parameters(module: nn.Module, generator: torch.Generator, *, final: nn.Linear | None = None,
                    final_bound: float = 3e-3) -> None:
    r"""Initialise every parameter of ``module`` from ``generator`` (never the global RNG).

    Matrices: :math:`U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})` (PyTorch's ``nn.Linear`` default
    scale); vectors: zero; ``final`` (the output layer): :math:`U(-b, b)` with ``b = final_bound``
    (Lillicrap et al. 2015, sec. 7), so that initial actions and values are close to zero.
    """
    for p in module.parameters():
        if p.dim() >= 2:
            bound = 1.0 / math.sqrt(p.shape[-1])
            p.uniform_(-bound, bound, generator=generator)
        else:
            p.zero_()
    if final is not None:
        final.weight.uniform_(-final_bound, final_bound, generator=generator)
        final.bias.zero_()


@torch.no_grad()
def polyak_update(params: Iterable[torch.Tensor], target_params: Iterable[torch.Tensor], tau: float) -> None:
    r"""Soft target update :math:`\theta' \leftarrow (1 - \tau)\theta' + \tau\theta`."""
    torch._foreach_lerp_(list(target_params), list(params), tau)


class Actor(nn.Module):
    """Deterministic actor :math:`\\pi(t, x, m_t)` in unit action scale.

    Parameters
    ----------
    n, p : int
        State and action dimensions.
    encoder : PopulationEncoder
        The actor's own population encoder (trained by the policy gradient).
    hidden : int
        Width of the hidden layers.
    activation : str
        One of :data:`ACTIVATIONS`.
    bounded : bool
        ``tanh`` output in ``[-1, 1]`` (bounded actions) or a linear output (unbounded).
    skip : bool
        Add a linear map of the state input to the output (a "linear-ish" head: the exact LQ best response is
        affine in ``x`` at each ``t``).
    steps : int, optional
        The horizon ``T``: time inputs gain a one-hot of the step (:func:`with_step_onehot`).
    """

    def __init__(self, n: int, p: int, encoder: PopulationEncoder, *, hidden: int, activation: str,
                 bounded: bool, skip: bool, steps: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.steps = steps
        tf = time_inputs(steps)
        self.state = mlp([n + tf, hidden, hidden], activation)
        self.head = mlp([hidden + encoder.out_dim, hidden, p], activation, final_activation=False)
        self.n = n
        # The skip is linear in x with time-varying gains: x (x) [1, time features] -> a, as a_t = -K_t x - k_t.
        self.skip = nn.Linear(n + tf + n * tf, p, bias=False) if skip else None
        self.bounded = bounded

    def forward(self, s: torch.Tensor, raw: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Unit actions ``(B, p)``.

        ``s`` ``(B, n+2)``: standardised state and :func:`time_features`; ``raw`` ``(U, ...)``: distinct population
        descriptions (:meth:`PopulationEncoder.raw`); ``index`` ``(B,)``: the description of each row.
        """
        s = with_step_onehot(s, self.n, self.steps)
        pop = self.encoder(raw)[index]
        h = self.head(torch.cat([self.state(s), pop], dim=-1))
        if self.skip is not None:
            x, tf = s[:, : self.n], s[:, self.n :]
            h = h + self.skip(torch.cat([s, (x[:, :, None] * tf[:, None, :]).flatten(1)], dim=-1))
        return torch.tanh(h) if self.bounded else h


class Critic(nn.Module):
    r"""Centralised critic :math:`Q(t, x, a, m_t)` (state, action and population encoders into a Q head).

    With ``bilinear`` the action encoder reads :math:`(\tilde a, \tilde a \otimes s)` rather than :math:`\tilde a`
    alone: the state-action interaction, which decides :math:`\arg\max_a Q`, is then available to the first
    layer instead of being formed deep in the head (for LQ it is exactly the cross term of the quadratic Q).
    With ``split`` a value head :math:`V(t, x, m_t)` is added to the Q head. With ``steps`` (the horizon ``T``)
    the time inputs gain a one-hot of the step (:func:`with_step_onehot`), in the bilinear products too.
    """

    def __init__(self, n: int, p: int, encoder: PopulationEncoder, *, hidden: int, activation: str,
                 bilinear: bool = True, split: bool = False, steps: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.n = n
        self.steps = steps
        d = n + time_inputs(steps)
        self.state = mlp([d, hidden], activation)
        self.bilinear = bilinear
        self.action = mlp([p + d * p if bilinear else p, hidden], activation)
        self.head = mlp([2 * hidden + encoder.out_dim, hidden, hidden, 1], activation, final_activation=False)
        # Optional value head V(t, x, m_t): the Q head then only carries the (small) dependence on the action.
        self.value = mlp([hidden + encoder.out_dim, hidden, hidden, 1], activation, final_activation=False) if split else None

    def forward(self, s: torch.Tensor, a: torch.Tensor, raw: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``(B,)`` values for standardised ``s`` ``(B, n+2)`` and unit actions ``a`` ``(B, p)`` (``raw``,
        ``index`` as in :meth:`Actor.forward`)."""
        s = with_step_onehot(s, self.n, self.steps)
        pop = self.encoder(raw)[index]
        hs = self.state(s)
        if self.bilinear:
            a = torch.cat([a, (a[:, :, None] * s[:, None, :]).flatten(1)], dim=-1)
        q = self.head(torch.cat([hs, self.action(a), pop], dim=-1))
        if self.value is not None:
            q = q + self.value(torch.cat([hs, pop], dim=-1))
        return q.squeeze(-1)
