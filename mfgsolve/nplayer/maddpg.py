r"""Original MADDPG (Lowe et al. 2017) on the N-player game of a problem,.

MADDPG learns in the N-player game itself (:class:`mfgsolve.nplayer.NPlayerGame`), not against a frozen flow:

* decentralised actors :math:`a^i = \pi(o^i)` on the local observation :math:`o^i = (\tilde x^i, \text{time
  features})`, parameters shared by the N agents (the game is symmetric);
* a centralised critic over all observations and actions, shared too, with the agent's own observation and
  action first so that one network serves every agent:
  :math:`Q(o^i, a^i, o^1..o^N, a^1..a^N)` -- its input grows like :math:`N (n + 2 + p)`;
* the updates of the paper: :math:`y^i = c\,r^i + (1 - \text{done})\,Q'(o'^i, \pi'(o'^i), o'^{1..N},
  \pi'(o'^1)..\pi'(o'^N))` (the target actor plays **every** agent's next action: :math:`O(N)` per sample),
  :math:`L = E[(Q - y)^2]`, and the actor gradient through the agent's own action with the others' actions
  from the replay; soft target updates; Gaussian exploration (:mod:`mfgsolve.learn.exploration`'s
  :class:`~mfgsolve.learn.exploration.GaussianNoise`).

The mean-field critic :math:`Q(t, x^i, a^i, m_t)` of MF-MADDPG (:class:`mfgsolve.learn.networks.Critic`, population by
:mod:`mfgsolve.learn.encoders`) reads the empirical measure through a fixed-size description, so its update does not
depend on N (``paper/critic_cost.py`` measures both updates on transitions of the same N-player game).

References
----------
.. [1] Lowe, Wu, Tamar, Harb, Abbeel, Mordatch (2017), "Multi-Agent Actor-Critic for Mixed
       Cooperative-Competitive Environments", NeurIPS.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mfgsolve.flows import Flow
from mfgsolve.learn.actions import ActionMap
from mfgsolve.learn.budget import Budget
from mfgsolve.learn.exploration import GaussianNoise
from mfgsolve.learn.networks import TIME_FEATURES, init_parameters, mlp, polyak_update, time_features
from mfgsolve.learn.replay import RingBuffer
from mfgsolve.learn.scaling import reward_scale
from mfgsolve.learn.seeding import named_generators
from mfgsolve.nplayer.game import NPlayerGame
from mfgsolve.policies import Policy
from mfgsolve.problem import Problem

__all__ = ["MADDPGConfig", "MADDPG", "MADDPGCritic", "LocalPolicy"]


@dataclass(frozen=True)
class MADDPGConfig:
    """Settings of MADDPG on an N-player game."""

    seed: int = 0
    """Seed of every generator (initialisation, game, replay, noise)."""
    updates: int | None = 5_000
    """Gradient updates (the budget ends at updates or seconds, whichever comes first)."""
    seconds: float | None = None
    """Wall-clock seconds of training (``None``: no time limit)."""
    games: int = 4
    """Copies of the N-player game played side by side (joint transitions per environment step)."""
    batch_size: int = 256
    """Joint transitions per update (one agent drawn per transition for the critic and actor losses)."""
    replay_size: int = 50_000
    """Replay capacity in joint transitions (each stores all N observations and actions)."""
    hidden: int = 64
    """Width of the hidden layers."""
    activation: str = "silu"
    """Hidden activation."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor (1e-3 diverged on lq-1d at N = 2 and 8 within 600 updates; 3e-4 did not)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critic."""
    tau: float = 0.02
    """Soft target update rate."""
    noise_sigma: float = 0.3
    """Gaussian exploration, unit action scale."""
    action_scale: float = 5.0
    """Unit action scale of problems without action bounds."""

    def __post_init__(self) -> None:
        for name in ("games", "batch_size", "replay_size", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.updates is None and self.seconds is None:
            raise ValueError("a budget is needed: set updates, seconds or both")


class MADDPGCritic(nn.Module):
    r"""Centralised critic :math:`Q(o^i, a^i, o^1..o^N, a^1..a^N)` shared by the agents; input ``N (d + p) + d + p``."""

    def __init__(self, N: int, d: int, p: int, *, hidden: int, activation: str) -> None:
        super().__init__()
        self.net = mlp([(N + 1) * (d + p), hidden, hidden, 1], activation, final_activation=False)

    def forward(self, o_i: torch.Tensor, a_i: torch.Tensor, o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``o_i`` ``(B, d)``, ``a_i`` ``(B, p)``, ``o`` ``(B, N, d)``, ``a`` ``(B, N, p)`` -> ``(B,)``."""
        return self.net(torch.cat([o_i, a_i, o.flatten(1), a.flatten(1)], dim=1)).squeeze(-1)


class LocalPolicy(Policy):
    r"""The decentralised MADDPG actor as a policy :math:`\pi(t, x)` (it reads nothing of ``m``)."""

    def __init__(self, actor: nn.Module, loc: torch.Tensor, scale: torch.Tensor, T: int, actions: ActionMap) -> None:
        self.actor, self.loc, self.scale, self.T, self.actions = actor, loc, scale, T, actions

    def obs(self, t: int | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        s = ((x.to(torch.float64) - self.loc) / self.scale).to(torch.float32)
        return torch.cat([s, time_features(t, self.T, x.shape[0])], dim=1)

    def unit(self, u: torch.Tensor) -> torch.Tensor:
        return u.tanh() if self.actions.bounded else u

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        with torch.no_grad():
            return self.actions.to_action(self.unit(self.actor(self.obs(t, x)))).to(x.dtype)


class MADDPG:
    """MADDPG trainer on the N-player game of ``problem`` (module docstring).

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> pb = mfg.load_problem("lq-1d")
    >>> learner = MADDPG(pb, N=4, updates=10, batch_size=16, games=2)
    >>> info = learner.train()
    >>> info["updates"], learner.policy().act(0, torch.zeros(2, 1, dtype=torch.float64), None).shape
    (10, torch.Size([2, 1]))
    """

    name = "maddpg"

    def __init__(self, problem: Problem, N: int, config: MADDPGConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else MADDPGConfig()
        self.cfg = cfg = MADDPGConfig(**{**asdict(base), **overrides}) if overrides else base
        self.g = named_generators(cfg.seed, ("init", "game", "replay", "noise"))
        self.problem, self.N, self.T = problem, N, problem.T
        n, p = problem.n, problem.p
        self.d = n + TIME_FEATURES
        x0 = problem.sample_x0(4096, self.g["init"]).to(torch.float64)
        loc, scale = x0.mean(0), x0.std(0).clamp_min(1e-6)
        self.actions = ActionMap.of(problem, cfg.action_scale)
        self.actor = mlp([self.d, cfg.hidden, cfg.hidden, p], cfg.activation, final_activation=False)
        self.critic = MADDPGCritic(N, self.d, p, hidden=cfg.hidden, activation=cfg.activation)
        init_parameters(self.actor, self.g["init"], final=self.actor[-1])  # type: ignore[arg-type]
        init_parameters(self.critic, self.g["init"], final=self.critic.net[-1])  # type: ignore[arg-type]
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.opt_critic = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self._pol = LocalPolicy(self.actor, loc, scale, self.T, self.actions)
        self.noise = GaussianNoise(cfg.noise_sigma)
        f32 = torch.get_default_dtype()
        #: joint transitions: every agent's state, unit action, reward and next state
        self.replay = RingBuffer(cfg.replay_size, {"t": ((), torch.int64), "x": ((N, n), f32), "u": ((N, p), f32),
                                                   "r": ((N,), f32), "x1": ((N, n), f32), "done": ((), f32)})
        self.reward_scale: float | None = None
        self.updates = 0

    # ----------------------------------------------------------------------------------------- data
    def _obs(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Observations ``(B, N, d)`` of states ``(B, N, n)`` at times ``t`` ``(B,)``."""
        B, N, n = x.shape
        return self._pol.obs(t.repeat_interleave(N), x.reshape(B * N, n)).reshape(B, N, -1)

    def collect_episode(self) -> None:
        """One episode of ``games`` N-player games with the exploring actor, stored in the replay."""
        game = NPlayerGame(self.problem, self.N, self.cfg.games)
        x = game.reset(self.g["game"])
        G, N = self.cfg.games, self.N
        self.noise.reset(G * N, self.problem.p, self.actor, self.g["noise"])
        for t in range(self.T):
            with torch.no_grad():
                obs = self._obs(torch.full((G,), t), x).reshape(G * N, -1)
                u = self.noise.explore(self.actor(obs), actor_fn=lambda net: net(obs), scale=1.0,
                                       generator=self.g["noise"])
                u = u.reshape(G, N, -1)
            x_prev = x.clone()
            x, r, done = game.step(self.actions.to_action(self._pol.unit(u)), self.g["game"])
            k = x.shape[0]
            self.replay.add({"t": torch.full((k,), t), "x": x_prev, "u": u, "r": r, "x1": x,
                             "done": torch.full((k,), float(done))})

    # ----------------------------------------------------------------------------------------- update
    def critic_update(self) -> float:
        """One critic step: target (the target actor plays all N next actions), loss, backward, Adam."""
        b = self.replay.sample_rows(self.cfg.batch_size, self.g["replay"])
        B, N = self.cfg.batch_size, self.N
        i = torch.randint(N, (B,), generator=self.g["replay"])
        rows = torch.arange(B)
        t1 = (b["t"] + 1).clamp_max(self.T)
        o, o1 = self._obs(b["t"], b["x"]), self._obs(t1, b["x1"])
        with torch.no_grad():
            u1 = self.target_actor(o1.reshape(B * N, -1)).reshape(B, N, -1)
            q1 = self.target_critic(o1[rows, i], u1[rows, i], o1, u1)
            y = b["r"][rows, i] * (self.reward_scale or 1.0) + (1.0 - b["done"]) * q1
        loss = F.mse_loss(self.critic(o[rows, i], b["u"][rows, i], o, b["u"]), y)
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_critic.step()
        self._last = (b, o, i)
        return float(loss.detach())

    def actor_update(self) -> float:
        """The policy gradient through agent ``i``'s own action, the others' actions from the replay."""
        b, o, i = self._last
        rows = torch.arange(o.shape[0])
        a_i = self.actor(o[rows, i])
        u = b["u"].clone()
        u[rows, i] = a_i
        self.critic.requires_grad_(False)
        loss = -self.critic(o[rows, i], a_i, o, u).mean()
        self.critic.requires_grad_(True)
        self.opt_actor.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_actor.step()
        polyak_update(self.actor.parameters(), self.target_actor.parameters(), self.cfg.tau)
        polyak_update(self.critic.parameters(), self.target_critic.parameters(), self.cfg.tau)
        return float(loss.detach())

    def train(self) -> dict[str, Any]:
        """Alternate episodes and updates until the budget ends (one update per joint environment step)."""
        cfg = self.cfg
        budget = Budget(cfg.updates, cfg.seconds)
        while len(self.replay) < cfg.batch_size:
            self.collect_episode()
        if self.reward_scale is None:
            self.reward_scale = reward_scale(self.replay.stored("r"), self.T)
        closs = aloss = math.nan
        while not budget.over(self.updates):
            self.collect_episode()
            for _ in range(self.T):
                closs = self.critic_update()
                aloss = self.actor_update()
                self.updates += 1
                if budget.over(self.updates):
                    break
        return {"updates": self.updates, "seconds": budget.elapsed(), "critic_loss": closs,
                "actor_loss": aloss, "N": self.N}

    def policy(self) -> LocalPolicy:
        """A frozen copy of the actor as a :class:`~mfgsolve.policies.Policy`."""
        p = self._pol
        return LocalPolicy(copy.deepcopy(self.actor).eval().requires_grad_(False), p.loc, p.scale, self.T, p.actions)

    def parameters(self) -> int:
        return sum(q.numel() for q in self.critic.parameters())
