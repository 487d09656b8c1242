r"""Experience replay for finite-horizon best responses against frozen flows.

A transition is :math:`(t, x, a, r, x', \text{done}, b, f, k)`: time, state, action, reward (with the terminal
reward folded into the last step), next state, end-of-horizon flag, exploration bonus, the index ``f`` of the
frozen flow it was played against and the number ``k`` of steps it spans (``k > 1`` for n-step returns: ``r`` and
``b`` are then discounted sums over the ``k`` steps and ``x'`` is the state at ``t + k``). The flow is frozen, so :math:`m_t` and :math:`m_{t+1}` are looked up from
``(f, t)`` rather than stored per transition; ``f`` keeps transitions from earlier flows meaningful when replay is
kept across warm-started best responses.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["ReplayBuffer", "ReplaySample"]


class ReplaySample(NamedTuple):
    """A batch of transitions (shapes for batch size ``B``)."""

    t: torch.Tensor  # (B,) int64
    x: torch.Tensor  # (B, n)
    a: torch.Tensor  # (B, p) unit-scale actions
    r: torch.Tensor  # (B,)
    x_next: torch.Tensor  # (B, n)
    done: torch.Tensor  # (B,) 1.0 at the last step of the horizon
    bonus: torch.Tensor  # (B,) exploration bonus (added with the current weight at sampling time)
    flow: torch.Tensor  # (B,) int64 index of the frozen flow
    k: torch.Tensor  # (B,) int64 steps spanned (x_next is the state at t + k)


_FIELDS = ReplaySample._fields


class ReplayBuffer:
    """A ring buffer of transitions in preallocated tensors.

    Parameters
    ----------
    capacity : int
        Number of transitions kept; the oldest are overwritten.
    n, p : int
        State and action dimensions.
    """

    def __init__(self, capacity: int, n: int, p: int, dtype: torch.dtype = torch.float32) -> None:
        if capacity < 1:
            raise ValueError("replay capacity must be positive")
        self.capacity, self.n, self.p = capacity, n, p
        self._data: dict[str, torch.Tensor] = {
            "t": torch.zeros(capacity, dtype=torch.int64),
            "x": torch.zeros(capacity, n, dtype=dtype),
            "a": torch.zeros(capacity, p, dtype=dtype),
            "r": torch.zeros(capacity, dtype=dtype),
            "x_next": torch.zeros(capacity, n, dtype=dtype),
            "done": torch.zeros(capacity, dtype=dtype),
            "bonus": torch.zeros(capacity, dtype=dtype),
            "flow": torch.zeros(capacity, dtype=torch.int64),
            "k": torch.ones(capacity, dtype=torch.int64),
        }
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: ReplaySample) -> None:
        """Append a batch of transitions (wrapping around when full)."""
        k = batch.x.shape[0]
        idx = (self.ptr + torch.arange(k)) % self.capacity
        for name in _FIELDS:
            self._data[name][idx] = getattr(batch, name).to(self._data[name].dtype)
        self.ptr = (self.ptr + k) % self.capacity
        self.size = min(self.size + k, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> ReplaySample:
        """``batch_size`` transitions drawn uniformly with replacement."""
        idx = torch.randint(self.size, (batch_size,), generator=generator)
        return ReplaySample(*(self._data[name][idx] for name in _FIELDS))

    def flows(self) -> set[int]:
        """Indices of the flows still referenced by stored transitions."""
        return set(self._data["flow"][: self.size].unique().tolist())

    def state_dict(self) -> dict[str, object]:
        return {"ptr": self.ptr, "size": self.size, **{k: v[: self.size].clone() for k, v in self._data.items()}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        size = int(state["size"])  # type: ignore[arg-type]
        if size > self.capacity:
            raise ValueError(f"replay state holds {size} transitions, more than the capacity {self.capacity}")
        for k in _FIELDS:
            self._data[k][:size] = state[k]  # type: ignore[index]
        self.ptr, self.size = int(state["ptr"]), size  # type: ignore[arg-type]
