r"""Mean-field RL baselines against a frozen flow: MF Q-learning (``--oracle mf-q``) and MF actor-critic (``mf-ac``).

Both learn a best response to the frozen flow ``m`` from a batch of representative agents, like the DDPG oracle,
and read the population through the same encoders (:mod:`mfgsolve.learn.encoders`; moments by default) with the state
standardised by a fixed location and scale (set from the first flow) and the time features of
:mod:`mfgsolve.learn.networks`:

* **MF-Q** (Yang et al. 2018; Guo et al. 2019): :math:`Q(t, x, a_j, m_t)` over a discretised action set
  :math:`\{a_1, \dots, a_J\}` (``actions`` points evenly on the action bounds, or on
  ``+- action_bound`` for unbounded problems), :math:`\epsilon`-greedy exploration, replay, a Polyak target and
  the double-Q target :math:`y = c\,r + (1 - \text{done})\,Q'(t+1, x', \arg\max_j Q(t+1, x', a_j, m_{t+1}), m_{t+1})`
  (Huber loss). The policy is greedy.
* **MF-AC** (advantage actor-critic): a Gaussian policy :math:`a \sim N(\mu_\theta(t, x, m_t),
  \operatorname{diag}\sigma^2)` with a learned state-independent :math:`\log\sigma`, a value
  :math:`V_\phi(t, x, m_t)` fitted to the Monte-Carlo return to go, and the policy gradient
  :math:`E[\nabla \log \pi(a \mid t, x, m_t)\,(G_t - V_\phi)]` with an entropy bonus; one update per batch of
  ``n_agents`` episodes. The returned policy is the Gaussian's mean (its deterministic part).

Nash Q-learning (Hu and Wellman 2003) keeps its row in the comparison without an oracle of its own: its stage
game is the N-player matrix game of Q-values :math:`Q^i(s, a^1..a^N)` and its update uses a Nash equilibrium of
it. In a symmetric MFG every agent's Q is the same function of its own state and action and of the population
(one agent's action moves :math:`m` by :math:`O(1/N)`), so the stage game's Nash equilibrium decouples into each
agent's :math:`\arg\max_a Q(s, a, m)` against the frozen :math:`m`: Nash-Q reduces to MF-Q (Yang et al. 2018,
sec. 3, the mean-field approximation of Nash-Q), while its exact form costs :math:`|A|^N` per stage game.

References
----------
.. [1] Yang, Luo, Li, Zhou, Zhang, Wang (2018), "Mean Field Multi-Agent Reinforcement Learning", ICML.
.. [2] Guo, Hu, Xu, Zhang (2019), "Learning Mean-Field Games", NeurIPS.
.. [3] Hu, Wellman (2003), "Nash Q-Learning for General-Sum Stochastic Games", JMLR 4.
.. [4] Mnih et al. (2016), "Asynchronous Methods for Deep Reinforcement Learning" (advantage actor-critic).
.. [5] van Hasselt, Guez, Silver (2016), "Deep Reinforcement Learning with Double Q-learning".
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mfgsolve.errors import SpecError
from mfgsolve.evaluation import rollout_costs
from mfgsolve.flows import Flow
from mfgsolve.learn.actions import ActionMap
from mfgsolve.learn.budget import Budget
from mfgsolve.learn.encoders import ENCODERS, PopulationEncoder, make_encoder
from mfgsolve.learn.networks import ACTIVATIONS, TIME_FEATURES, init_parameters, mlp, polyak_update, time_features
from mfgsolve.learn.replay import RingBuffer
from mfgsolve.learn.scaling import flow_standardisation, reward_scale
from mfgsolve.learn.seeding import named_generators
from mfgsolve.oracles.settings import check_fields
from mfgsolve.oracles.base import BestResponseInfo, LearnedOracle
from mfgsolve.policies import Policy
from mfgsolve.problem import Problem

__all__ = ["MFQConfig", "MFQOracle", "MFACConfig", "MFACOracle", "MFNetPolicy"]


class _MFNet(nn.Module):
    r""":math:`f(t, x, m_t)`: standardised state and time features beside the population features, into an MLP."""

    def __init__(self, n: int, out: int, encoder: PopulationEncoder, *, hidden: int, activation: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.body = mlp([n + TIME_FEATURES + encoder.out_dim, hidden, hidden, out], activation, final_activation=False)

    def forward(self, s: torch.Tensor, raw: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([s, self.encoder(raw)[index]], dim=-1))


class _Inputs:
    """Network inputs: the state standardised by a fixed ``loc``, ``scale`` and time; the encoder's descriptions."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, T: int) -> None:
        self.loc, self.scale, self.T = loc, scale, T

    @classmethod
    def from_flow(cls, m: Flow, T: int) -> _Inputs:
        return cls(*flow_standardisation(m, T), T)

    def state(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        s = ((x.to(torch.float64) - self.loc.to(x.device)) / self.scale.to(x.device)).to(torch.float32)
        return torch.cat([s, time_features(t, self.T, x.shape[0], x.device)], dim=1)


class MFNetPolicy(Policy):
    r"""A learned mean-field policy :math:`\pi(t, x, m_t)`: greedy over a Q-network's action grid (``grid`` given)
    or the mean of a Gaussian policy (``grid=None``, unit actions clipped to ``[-1, 1]`` when bounded)."""

    def __init__(self, net: _MFNet, inputs: _Inputs, actions: ActionMap, grid: torch.Tensor | None) -> None:
        self.net, self.inputs, self.actions, self.grid = net, inputs, actions, grid

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        s = self.inputs.state(x, t)
        raw = self.net.encoder.raw(m, t)[None].to(x.device)
        with torch.no_grad():
            out = self.net(s, raw, torch.zeros(x.shape[0], dtype=torch.int64, device=x.device))
        if self.grid is not None:
            u = self.grid[out.argmax(dim=1)]
        else:
            u = self.actions.clip(out)
        return self.actions.to_action(u).to(x.dtype)


def _check(cfg: Any, positive_int: tuple[str, ...], positive: tuple[str, ...], unit: tuple[str, ...]) -> None:
    for name in positive_int:
        if getattr(cfg, name) < 1:
            raise SpecError(name, f"must be a positive integer, got {getattr(cfg, name)!r}")
    for name in positive:
        if not getattr(cfg, name) > 0:
            raise SpecError(name, f"must be positive, got {getattr(cfg, name)!r}")
    for name in unit:
        if not 0 <= getattr(cfg, name) <= 1:
            raise SpecError(name, f"must lie in [0, 1], got {getattr(cfg, name)!r}")
    if cfg.activation not in ACTIVATIONS:
        raise SpecError("activation", f"must be one of {', '.join(ACTIVATIONS)}, got {cfg.activation!r}")
    if cfg.encoder not in ENCODERS:
        raise SpecError("encoder", f"must be one of {', '.join(ENCODERS)}, got {cfg.encoder!r}")


class _MFOracle(LearnedOracle):
    """What MF-Q and MF-AC share: generators, the first flow's standardisation, encoders, evaluation."""

    name = "mf"
    _GENERATORS = ("init", "rollout", "train", "eval")

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self._generators: dict[str, torch.Generator] | None = None  # made at first use, from the resolved seed
        self.calls = 0
        self._inputs: _Inputs | None = None

    @property
    def generators(self) -> dict[str, torch.Generator]:
        """The random streams of the seed of :attr:`settings`, made at first use."""
        if self._generators is None:
            self._generators = named_generators(self.settings.seed, self._GENERATORS, self.device)
        return self._generators

    @property
    def trained(self) -> bool:
        return self._generators is not None

    def config(self) -> dict[str, Any]:
        """The settings, seed and budget resolved."""
        return {"name": self.name, **asdict(self.settings)}

    def _encoder(self, problem: Problem) -> PopulationEncoder:
        cfg, inp = self.cfg, self._inputs
        assert inp is not None
        return make_encoder(cfg.encoder, problem.n, loc=inp.loc, scale=inp.scale, out_dim=cfg.encoder_dim,
                            hidden=cfg.hidden, activation=cfg.activation, bins=16, particles=32, heads=2,
                            generator=self.generators["init"])

    def _net(self, problem: Problem, out: int) -> _MFNet:
        net = _MFNet(problem.n, out, self._encoder(problem), hidden=self.cfg.hidden,
                     activation=self.cfg.activation).to(self.device)
        init_parameters(net, self.generators["init"], final=net.body[-1])  # type: ignore[arg-type]
        return net

    def _evaluate(self, problem: Problem, policy: Policy, m: Flow) -> float:
        seed = int(torch.randint(2**62, (1,), generator=self.generators["eval"], device=self.device))
        gen = torch.Generator(device=self.device).manual_seed(seed)
        return float(rollout_costs(problem, policy, m, n=self.cfg.eval_agents, generator=gen).mean())

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers and generator states (a checkpoint of the run, loaded as data: mfgsolve.checkpoint)."""
        rest = {k: v for k, v in self.__dict__.items() if k not in ("cfg", "_generators", "device")}
        gens = self._generators
        return {"config": asdict(self.settings),
                "generators": None if gens is None else {k: g.get_state() for k, g in gens.items()},
                "state": rest}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config"] != asdict(self.settings):
            raise ValueError(f"{self.name} state was saved with another configuration")
        self._generators = None
        if state["generators"] is not None:
            for k, g in self.generators.items():
                g.set_state(state["generators"][k].cpu())  # a generator's state is a CPU tensor, whatever its device
        self.__dict__.update(state["state"])


# ------------------------------------------------------------------------------------------------ MF-Q
def _index_replay(capacity: int, n: int, device: torch.device) -> RingBuffer:
    """Replay of ``(t, x, j, r, x', done)`` with ``j`` the index of the action on the grid (one flow: no flow
    index, no n-step bookkeeping), on ``device``."""
    f32 = torch.get_default_dtype()
    return RingBuffer(capacity, {"t": ((), torch.int64), "x": ((n,), f32), "j": ((), torch.int64), "r": ((), f32),
                                 "x1": ((n,), f32), "done": ((), f32)}, device)


@dataclass(frozen=True)
class MFQConfig:
    """Settings of the mean-field Q-learning oracle."""

    seed: int | None = None
    """Seed of every generator (initialisation, rollouts, replay and exploration, evaluation); ``None``: the run's
    (:meth:`LearnedOracle.for_run`), 0 on its own."""
    updates: int | None = None
    """Gradient updates per best response (the budget ends at updates or seconds, whichever comes first); with
    neither: the run's budget, ``mfgsolve.presets.LEARNED.br_updates`` on its own."""
    seconds: float | None = None
    """Wall-clock seconds per best response (``None``: no time limit)."""
    n_agents: int = 256
    """Agents rolled out in parallel against the frozen flow."""
    batch_size: int = 256
    """Transitions per update."""
    replay_size: int = 100_000
    """Replay capacity in transitions."""
    actions: int = 41
    """Points of the discretised action set (per action coordinate; the grid is their product)."""
    action_bound: float = 5.0
    """Half-width of the action grid for problems without action bounds."""
    hidden: int = 64
    """Width of the hidden layers."""
    encoder_dim: int = 16
    """Dimension of the population features."""
    activation: str = "silu"
    """Hidden activation."""
    encoder: str = "moments"
    """Population encoder (as for the DDPG oracle)."""
    lr: float = 1e-3
    """Adam learning rate."""
    tau: float = 0.01
    """Polyak rate of the target network."""
    epsilon: float = 0.5
    """Initial probability of a uniformly random action; decays linearly to ``epsilon_final``."""
    epsilon_final: float = 0.02
    """Exploration probability at the end of the budget."""
    eval_agents: int = 2048
    """Agents of the final evaluation (the value reported in the history)."""

    def __post_init__(self) -> None:
        check_fields(self)  # types and sizes, by annotation (the same check as make_oracle)
        _check(self, ("n_agents", "batch_size", "replay_size", "hidden", "encoder_dim", "eval_agents"),
               ("action_bound", "lr"), ("tau", "epsilon", "epsilon_final"))
        if self.actions < 2:
            raise SpecError("actions", f"must be at least 2, got {self.actions!r}")


class MFQOracle(_MFOracle):
    """Mean-field Q-learning best responses over a discretised action set (module docstring).

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> pb = mfg.load_problem("lq-1d")
    >>> oracle = MFQOracle(updates=20, n_agents=16, batch_size=32, eval_agents=64)
    >>> pi, info = oracle.best_response(pb, mfg.static_flow(pb, kind="gaussian"))
    >>> info.extra["updates"], pi.act(0, torch.zeros(3, 1, dtype=torch.float64), mfg.static_flow(pb, kind="gaussian")).shape
    (20, torch.Size([3, 1]))
    """

    name = "mf-q"
    settings_type = MFQConfig  #: the settings ``make_oracle(name, **settings)`` takes

    def __init__(self, config: MFQConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else MFQConfig()
        super().__init__(MFQConfig(**{**asdict(base), **overrides}) if overrides else base)
        self._q: _MFNet | None = None

    def best_response(self, problem: Problem, m: Flow, warm_start: Any | None = None) -> tuple[MFNetPolicy, BestResponseInfo]:
        cfg, g = self.settings, self.generators
        budget = Budget(cfg.updates, cfg.seconds)
        self.calls += 1
        T, p = problem.T, problem.p
        if self._q is None:  # built once; later best responses start from the last Q (warm start)
            self._inputs = _Inputs.from_flow(m, T)
            self._q = self._net(problem, cfg.actions**p)
            self._target = copy.deepcopy(self._q).requires_grad_(False)
            self._opt = torch.optim.Adam(self._q.parameters(), lr=cfg.lr)
            self._actions = ActionMap.of(problem, cfg.action_bound)
            axis = torch.linspace(-1.0, 1.0, cfg.actions, device=self.device)
            self._grid = torch.cartesian_prod(*([axis] * p)).reshape(-1, p)
        q, target, inp, grid = self._q, self._target, self._inputs, self._grid
        assert inp is not None
        raw = q.encoder.raw_flow(m).to(self.device)  # (T+1, ...): the frozen flow's description per t
        replay = _index_replay(cfg.replay_size, problem.n, self.device)
        scale: float | None = None
        updates = env_steps = 0
        loss_v = math.nan
        x = problem.sample_x0(cfg.n_agents, g["rollout"]).to(torch.float64)
        t = 0
        while not budget.over(updates):
            eps = cfg.epsilon + (cfg.epsilon_final - cfg.epsilon) * budget.fraction(updates)
            with torch.no_grad():
                greedy = q(inp.state(x, t), raw[t][None], torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)).argmax(1)
            rand = torch.randint(grid.shape[0], greedy.shape, generator=g["train"], device=x.device)
            idx = torch.where(torch.rand(greedy.shape, generator=g["train"], device=x.device) < eps, rand, greedy)
            a = self._actions.to_action(grid[idx])
            r = problem.reward(t, x, a, m)
            x1 = problem.step(t, x, a, m, g["rollout"])
            done = t == T - 1
            if done:
                r = r + problem.terminal_reward(x1, m)
            replay.add({"t": torch.full((x.shape[0],), t, device=x.device), "x": x, "j": idx, "r": r, "x1": x1,
                        "done": torch.full(r.shape, float(done), device=x.device)})
            env_steps += 1
            x, t = (problem.sample_x0(cfg.n_agents, g["rollout"]).to(torch.float64), 0) if done else (x1, t + 1)
            if len(replay) < max(cfg.batch_size, cfg.n_agents * T):  # one warmup episode first
                continue
            if scale is None:
                scale = reward_scale(replay.stored("r"), T)
            b = replay.sample_rows(cfg.batch_size, g["train"])
            t1 = (b["t"] + 1).clamp_max(T)
            s, s1 = inp.state(b["x"], b["t"]), inp.state(b["x1"], t1)
            with torch.no_grad():
                best = q(s1, raw, t1).argmax(1, keepdim=True)
                y = b["r"] * scale + (1.0 - b["done"]) * target(s1, raw, t1).gather(1, best).squeeze(1)
            pred = q(s, raw, b["t"]).gather(1, b["j"][:, None]).squeeze(1)
            loss = F.smooth_l1_loss(pred, y)
            self._opt.zero_grad(set_to_none=True)
            loss.backward()
            self._opt.step()
            polyak_update(q.parameters(), target.parameters(), cfg.tau)
            updates += 1
            loss_v = float(loss.detach())
        policy = MFNetPolicy(copy.deepcopy(q).eval().requires_grad_(False), inp, self._actions, grid)
        J = self._evaluate(problem, policy, m)
        seconds = budget.elapsed()
        return policy, BestResponseInfo(seconds=seconds, value=J, extra={
            "updates": updates, "env_steps": env_steps, "loss": loss_v, "eval_J": J, "seconds": seconds})


# ------------------------------------------------------------------------------------------------ MF-AC
@dataclass(frozen=True)
class MFACConfig:
    """Settings of the mean-field actor-critic oracle."""

    seed: int | None = None
    """Seed of every generator (initialisation, rollouts, policy noise, evaluation); ``None``: the run's
    (:meth:`LearnedOracle.for_run`), 0 on its own."""
    updates: int | None = None
    """Updates per best response; one update is one batch of ``n_agents`` episodes. With neither this nor
    ``seconds``: the run's budget, ``mfgsolve.presets.LEARNED.br_updates`` on its own."""
    seconds: float | None = None
    """Wall-clock seconds per best response (``None``: no time limit)."""
    n_agents: int = 256
    """Episodes per update, played in parallel against the frozen flow."""
    action_bound: float = 5.0
    """Unit action scale for problems without action bounds."""
    hidden: int = 64
    """Width of the hidden layers."""
    encoder_dim: int = 16
    """Dimension of the population features."""
    activation: str = "silu"
    """Hidden activation."""
    encoder: str = "moments"
    """Population encoder (as for the DDPG oracle)."""
    actor_lr: float = 3e-3
    """Adam learning rate of the policy mean and log standard deviation."""
    critic_lr: float = 3e-3
    """Adam learning rate of the value."""
    init_std: float = 0.3
    """Initial standard deviation of the Gaussian policy, unit action scale."""
    entropy: float = 1e-3
    """Weight of the entropy bonus."""
    eval_agents: int = 2048
    """Agents of the final evaluation (the value reported in the history)."""

    def __post_init__(self) -> None:
        check_fields(self)  # types and sizes, by annotation (the same check as make_oracle)
        _check(self, ("n_agents", "hidden", "encoder_dim", "eval_agents"),
               ("action_bound", "actor_lr", "critic_lr", "init_std"), ())
        if self.entropy < 0:
            raise SpecError("entropy", f"must be non-negative, got {self.entropy!r}")


class MFACOracle(_MFOracle):
    r"""Mean-field advantage actor-critic best responses with a Gaussian policy (module docstring).

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> pb = mfg.load_problem("lq-1d")
    >>> oracle = MFACOracle(updates=3, n_agents=16, eval_agents=64)
    >>> pi, info = oracle.best_response(pb, mfg.static_flow(pb, kind="gaussian"))
    >>> info.extra["updates"], info.extra["env_steps"]
    (3, 60)
    """

    name = "mf-ac"
    settings_type = MFACConfig  #: the settings ``make_oracle(name, **settings)`` takes

    def __init__(self, config: MFACConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else MFACConfig()
        super().__init__(MFACConfig(**{**asdict(base), **overrides}) if overrides else base)
        self._mu: _MFNet | None = None

    def best_response(self, problem: Problem, m: Flow, warm_start: Any | None = None) -> tuple[MFNetPolicy, BestResponseInfo]:
        cfg, g = self.settings, self.generators
        budget = Budget(cfg.updates, cfg.seconds)
        self.calls += 1
        T, p, B = problem.T, problem.p, cfg.n_agents
        if self._mu is None:  # built once; later best responses continue from the last networks (warm start)
            self._inputs = _Inputs.from_flow(m, T)
            self._mu, self._v = self._net(problem, p), self._net(problem, 1)
            self._log_std = nn.Parameter(torch.full((p,), math.log(cfg.init_std), device=self.device))
            self._opt_pi = torch.optim.Adam([*self._mu.parameters(), self._log_std], lr=cfg.actor_lr)
            self._opt_v = torch.optim.Adam(self._v.parameters(), lr=cfg.critic_lr)
            self._actions = ActionMap.of(problem, cfg.action_bound)
        mu, v, inp, acts = self._mu, self._v, self._inputs, self._actions
        assert inp is not None
        raw = mu.encoder.raw_flow(m).to(self.device)
        raw_v = v.encoder.raw_flow(m).to(self.device)
        updates = 0
        scale: float | None = None
        stats: dict[str, float] = {}
        while not budget.over(updates):
            x = problem.sample_x0(B, g["rollout"]).to(torch.float64)
            S, U, R = [], [], []
            with torch.no_grad():
                for t in range(T):
                    s = inp.state(x, t)
                    u = mu(s, raw[t][None], torch.zeros(B, dtype=torch.int64, device=x.device))
                    u = u + self._log_std.exp() * torch.randn(u.shape, generator=g["train"], device=u.device)
                    a = acts.to_action(acts.clip(u))
                    r = problem.reward(t, x, a, m)
                    x = problem.step(t, x, a, m, g["rollout"])
                    if t == T - 1:
                        r = r + problem.terminal_reward(x, m)
                    S.append(s), U.append(u), R.append(r)
            if scale is None:
                scale = reward_scale(torch.stack(R), T)
            s_all, u_all = torch.cat(S), torch.cat(U)
            t_all = torch.arange(T, device=self.device).repeat_interleave(B)
            ret = (torch.stack(R).flip(0).cumsum(0).flip(0) * scale).reshape(-1).float()  # return to go (T*B,)
            value = v(s_all, raw_v, t_all).squeeze(-1)
            v_loss = F.mse_loss(value, ret)
            self._opt_v.zero_grad(set_to_none=True)
            v_loss.backward()
            self._opt_v.step()
            adv = ret - value.detach()
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            dist = torch.distributions.Normal(mu(s_all, raw, t_all), self._log_std.exp())
            pi_loss = -(dist.log_prob(u_all).sum(-1) * adv).mean() - cfg.entropy * dist.entropy().sum(-1).mean()
            self._opt_pi.zero_grad(set_to_none=True)
            pi_loss.backward()
            self._opt_pi.step()
            updates += 1
            stats = {"value_loss": float(v_loss.detach()), "policy_loss": float(pi_loss.detach()),
                     "std": float(self._log_std.detach().exp().mean())}
        policy = MFNetPolicy(copy.deepcopy(mu).eval().requires_grad_(False), inp, acts, None)
        J = self._evaluate(problem, policy, m)
        seconds = budget.elapsed()
        return policy, BestResponseInfo(seconds=seconds, value=J, extra={
            "updates": updates, "env_steps": updates * T, "eval_J": J, "seconds": seconds, **stats})
