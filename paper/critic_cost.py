r"""The per-update cost of MADDPG's centralised critic against the mean-field critic of MF-MADDPG, on transitions
of the same N-player game (the paper's comparison, E4). A measurement harness, not part of the library: it
times updates and reads the torch profiler's memory timeline.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mfgsolve.flows import ParticleFlow
from mfgsolve.learn.encoders import make_encoder
from mfgsolve.learn.networks import TIME_FEATURES, Critic, init_parameters, mlp, time_features
from mfgsolve.nplayer import MADDPG, NPlayerGame
from mfgsolve.problem import Problem


# --------------------------------------------------------------------------------------- cost of a critic update
@dataclass(frozen=True)
class CriticCost:
    """Per-update cost of one critic on the N-player game.

    ``seconds`` is the median over repeats of one critic update (target, loss, backward, Adam step);
    ``params`` the critic's parameter count; ``input_floats`` the critic's input size per sample;
    ``replay_floats`` what one stored transition holds (MADDPG: all N agents; mean field: one agent and two
    descriptions of :math:`m`); ``memory_bytes`` the peak of the update's live tensors (:func:`_memory_bytes`).
    """

    kind: str
    N: int
    seconds: float
    params: int
    input_floats: int
    replay_floats: int
    memory_bytes: int


#: Agent-transitions held by the replay of either critic when its update is measured (the same for every N).
_STORED = 8192


class _MFCriticUpdate:
    """The MF-MADDPG critic update on N-player transitions: agents' own ``(t, x, a, r, x')`` with the empirical
    measure's moment description at ``t`` and ``t + 1``, networks of :mod:`mfgsolve.learn.networks`."""

    def __init__(self, problem: Problem, N: int, *, batch: int, hidden: int, generator: torch.Generator) -> None:
        n, p, T = problem.n, problem.p, problem.T
        self.T, self.batch, self.g = T, batch, generator
        game = NPlayerGame(problem, N, games=-(-_STORED // (N * T)))
        x = game.reset(generator)
        rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("t", "x", "a", "r", "x1", "raw", "raw1")}
        loc, scale = x.reshape(-1, n).mean(0), x.reshape(-1, n).std(0).clamp_min(1e-6)
        enc = make_encoder("moments", n, loc=loc, scale=scale, out_dim=16, hidden=hidden, activation="silu",
                           bins=16, particles=32, heads=2, generator=generator)
        G = game.games
        for t in range(T):
            a = torch.randn(G, N, p, generator=generator, dtype=torch.float64)
            x_prev = x.clone()
            x, r, _ = game.step(a, generator)
            for g in range(G):  # the empirical measure's description, once per game and time (O(N), per step)
                m = ParticleFlow.uniform(game.xs[g])
                rows["raw"].append(enc.raw(m, t).expand(N, -1))
                rows["raw1"].append(enc.raw(m, t + 1).expand(N, -1))
            rows["t"].append(torch.full((G * N,), t))
            rows["x"].append(x_prev.reshape(-1, n)), rows["a"].append(a.reshape(-1, p))
            rows["r"].append(r.reshape(-1)), rows["x1"].append(x.reshape(-1, n))
        keep = torch.randperm(G * N * T, generator=generator)[:_STORED]  # the same replay size for every N
        self.data = {k: (torch.cat(v).float() if k != "t" else torch.cat(v))[keep] for k, v in rows.items()}
        self.loc, self.scale = loc.float(), scale.float()
        self.critic = Critic(n, p, enc, hidden=hidden, activation="silu")
        init_parameters(self.critic, generator)
        self.actor = mlp([n + TIME_FEATURES + 2 * n, hidden, hidden, p], "silu", final_activation=False)
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.opt = torch.optim.Adam(self.critic.parameters(), lr=1e-3)
        self.input_floats = n + TIME_FEATURES + p + 2 * n
        self.replay_floats = 1 + 2 * n + p + 1 + 2 * 2 * n

    def _s(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.cat([(x - self.loc) / self.scale, time_features(t, self.T, x.shape[0])], dim=1)

    def __call__(self) -> None:
        d = self.data
        idx = torch.randint(d["t"].shape[0], (self.batch,), generator=self.g)
        b = {k: v[idx] for k, v in d.items()}
        rows = torch.arange(self.batch)
        t1 = (b["t"] + 1).clamp_max(self.T)
        s, s1 = self._s(b["x"], b["t"]), self._s(b["x1"], t1)
        with torch.no_grad():
            a1 = self.actor(torch.cat([s1, b["raw1"]], dim=1))  # the target actor, for the sampled agent only
            y = b["r"] + self.target(s1, a1, b["raw1"], rows)
        loss = F.mse_loss(self.critic(s, b["a"], b["raw"], rows), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def _memory_bytes(step: Any, params: int) -> int:
    """Peak bytes of the tensors alive during one update.

    Measured by the torch profiler's memory timeline (every allocation and free of the update, parameters,
    gradients and optimiser state included as the update touches them). Where that (private) torch API is
    unavailable: tensors saved for backward (autograd's saved-tensor hooks) plus 4 float32 per parameter
    (parameter, gradient, Adam's two moments), which leaves out no-grad intermediates.
    """
    try:
        from torch.profiler import ProfilerActivity, profile
        from torch.profiler._memory_profiler import MemoryProfileTimeline

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                     with_stack=True) as prof:
            step()
        _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(torch.device("cpu"))
        return int(np.asarray(sizes).sum(axis=1).max())
    except Exception:  # pragma: no cover - private API moved: the saved-tensor account
        saved = 0

        def pack(x: torch.Tensor) -> torch.Tensor:
            nonlocal saved
            saved += x.numel() * x.element_size()
            return x

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            step()
        return saved + 16 * params


class CriticBench:
    """One critic of ``kind`` (``"maddpg"`` or ``"mean-field"``) on transitions of the N-player game of
    ``problem``, ready to be timed update by update (:meth:`time_update`); :func:`critic_update_cost` times one.

    Transitions come from one episode of the N-player game under random actions (the cost of an update does
    not depend on what the actions were); two updates are run at construction to warm up.
    """

    def __init__(self, kind: str, problem: Problem, N: int, *, batch: int = 256, hidden: int = 64,
                 seed: int = 0) -> None:
        self.kind, self.N = kind, N
        if kind == "maddpg":
            joint = max(8, _STORED // N)  # joint transitions holding _STORED agent-transitions
            learner = MADDPG(problem, N, batch_size=batch, hidden=hidden, games=-(-joint // problem.T),
                             replay_size=joint, seed=seed)
            learner.collect_episode()
            learner.reward_scale = 1.0
            self.step: Any = learner.critic_update
            self.params = learner.parameters()
            d, p = learner.d, problem.p
            self.input_floats, self.replay_floats = (N + 1) * (d + p), 1 + N * (2 * problem.n + p + 1) + 1
        elif kind == "mean-field":
            upd = _MFCriticUpdate(problem, N, batch=batch, hidden=hidden, generator=torch.Generator().manual_seed(seed))
            self.step, self.params = upd, sum(q.numel() for q in upd.critic.parameters())
            self.input_floats, self.replay_floats = upd.input_floats, upd.replay_floats
        else:
            raise ValueError(f"unknown critic kind {kind!r} (maddpg or mean-field)")
        self.step(), self.step()
        self.times: list[float] = []

    def time_update(self) -> float:
        """Run and time one update (recorded in ``times``)."""
        t0 = time.perf_counter()
        self.step()
        self.times.append(time.perf_counter() - t0)
        return self.times[-1]

    def cost(self) -> CriticCost:
        """The median of the recorded times, and the sizes and memory of an update."""
        return CriticCost(kind=self.kind, N=self.N, seconds=float(np.median(self.times)), params=self.params,
                          input_floats=self.input_floats, replay_floats=self.replay_floats,
                          memory_bytes=_memory_bytes(self.step, self.params))


def critic_update_cost(kind: str, problem: Problem, N: int, *, batch: int = 256, hidden: int = 64,
                       repeats: int = 20, seed: int = 0) -> CriticCost:
    """Median wall time of ``repeats`` critic updates of ``kind`` on the N-player game (:class:`CriticBench`)."""
    bench = CriticBench(kind, problem, N, batch=batch, hidden=hidden, seed=seed)
    for _ in range(repeats):
        bench.time_update()
    return bench.cost()
