r"""Experience replay: one ring buffer of named fields, and the transitions of a best response against frozen flows.

:class:`RingBuffer` keeps the last ``capacity`` rows of any set of named tensor fields and samples rows uniformly
with replacement; every learner's replay is one (MF-Q stores action indices, MADDPG joint transitions of all N
agents, each with its own fields).

:class:`ReplayBuffer` is the ring buffer of the DDPG oracle's transitions :math:`(t, x, a, r, x', \text{done}, b, f,
k)`: time, state, action, reward (with the terminal reward folded into the last step), next state,
end-of-horizon flag, exploration bonus, the index ``f`` of the frozen flow it was played against and the number
``k`` of steps it spans (``k > 1`` for n-step returns: ``r`` and ``b`` are then discounted sums over the ``k``
steps and ``x'`` is the state at ``t + k``). The flow is frozen, so :math:`m_t` and :math:`m_{t+1}` are looked up
from ``(f, t)`` rather than stored per transition; ``f`` keeps transitions from earlier flows meaningful when
replay is kept across warm-started best responses.

>>> buf = RingBuffer(3, {"x": ((2,), torch.float32), "j": ((), torch.int64)})
>>> buf.add({"x": torch.ones(4, 2), "j": torch.arange(4)})
>>> len(buf), buf.stored("j").tolist()
(3, [3, 1, 2])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch

__all__ = ["RingBuffer", "ReplayBuffer", "ReplaySample"]


class RingBuffer:
    """A ring buffer of rows of named fields in preallocated tensors.

    Parameters
    ----------
    capacity : int
        Number of rows kept; the oldest are overwritten.
    fields : mapping
        ``name -> (shape, dtype)``: each row of field ``name`` is a tensor of that shape and dtype.
    """

    def __init__(self, capacity: int, fields: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
                 device: torch.device | str = "cpu") -> None:
        if capacity < 1:
            raise ValueError("replay capacity must be positive")
        self.capacity = capacity
        self.device = torch.device(device)
        self._data = {name: torch.zeros(capacity, *shape, dtype=dtype, device=self.device)
                      for name, (shape, dtype) in fields.items()}
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Mapping[str, torch.Tensor]) -> None:
        """Append the rows of ``batch`` (a tensor per field, same first dimension), wrapping around when full."""
        k = next(iter(batch.values())).shape[0]
        idx = (self.ptr + torch.arange(k, device=self.device)) % self.capacity
        for name, v in batch.items():
            self._data[name][idx] = v.to(self.device, self._data[name].dtype)
        self.ptr = (self.ptr + k) % self.capacity
        self.size = min(self.size + k, self.capacity)

    def sample_rows(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``batch_size`` rows drawn uniformly with replacement (one ``randint`` draw from ``generator``, which
        lives on the buffer's device)."""
        idx = torch.randint(self.size, (batch_size,), generator=generator, device=self.device)
        return {name: v[idx] for name, v in self._data.items()}

    def stored(self, name: str) -> torch.Tensor:
        """The stored rows of field ``name`` (a view, in storage order)."""
        return self._data[name][: self.size]

    def state_dict(self) -> dict[str, object]:
        return {"ptr": self.ptr, "size": self.size, **{k: v[: self.size].clone() for k, v in self._data.items()}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        size = int(state["size"])  # type: ignore[arg-type]
        if size > self.capacity:
            raise ValueError(f"replay state holds {size} transitions, more than the capacity {self.capacity}")
        for k in self._data:
            self._data[k][:size] = state[k].to(self.device)  # type: ignore[index,union-attr]
        self.ptr, self.size = int(state["ptr"]), size  # type: ignore[arg-type]


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


class ReplayBuffer(RingBuffer):
    """The ring buffer of best-response transitions (module docstring), added and sampled as :class:`ReplaySample`.

    Parameters
    ----------
    capacity : int
        Number of transitions kept; the oldest are overwritten.
    n, p : int
        State and action dimensions.
    """

    def __init__(self, capacity: int, n: int, p: int, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(capacity, {
            "t": ((), torch.int64), "x": ((n,), dtype), "a": ((p,), dtype), "r": ((), dtype),
            "x_next": ((n,), dtype), "done": ((), dtype), "bonus": ((), dtype), "flow": ((), torch.int64),
            "k": ((), torch.int64),
        }, device)
        self.n, self.p = n, p

    def add(self, batch: ReplaySample | Mapping[str, torch.Tensor]) -> None:  # type: ignore[override]
        """Append a batch of transitions (wrapping around when full)."""
        super().add(batch._asdict() if isinstance(batch, ReplaySample) else batch)

    def sample(self, batch_size: int, generator: torch.Generator) -> ReplaySample:
        """``batch_size`` transitions drawn uniformly with replacement."""
        return ReplaySample(**self.sample_rows(batch_size, generator))

    def flows(self) -> set[int]:
        """Indices of the flows still referenced by stored transitions."""
        return set(self.stored("flow").unique().tolist())
