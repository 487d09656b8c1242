r"""MF-MADDPG: a DDPG best response to a frozen population flow (the seed formulation's oracle).

A batch of representative agents plays against the frozen flow ``m`` (the problem reads :math:`m_t` in its
dynamics and rewards), finite horizon ``T`` with :math:`t/T` as an input. Transitions
:math:`(t, x, a, r, x', \text{done})` go to a replay buffer, and each update is the DDPG step (Lillicrap et al.
2015) with the TD3 options (Fujimoto et al. 2018):

.. math::

    y &= c\,r + \beta_k b + (1 - \text{done})\,\gamma \min_{j} Q'_j\big(t+1, x', \tilde a', m_{t+1}\big),
    \quad \tilde a' = \pi'(t+1, x', m_{t+1}) + \operatorname{clip}(\epsilon, -\bar c, \bar c) \\
    L(\phi_j) &= E\big[(Q_j(t, x, a, m_t) - y)^2\big], \qquad
    \nabla_\theta J = E\big[\nabla_\theta \pi(t, x, m_t)\,\nabla_a Q_1(t, x, a, m_t)|_{a=\pi}\big]

with the reward scale ``c``, the exploration bonus ``b`` (population-aware exploration only) weighted by
:math:`\beta_k`, which falls linearly to zero over the budget (so the bonus does not bias the response), the
terminal reward folded into the last step's ``r`` (``done`` there) and soft target
updates :math:`\theta' \leftarrow (1-\tau)\theta' + \tau\theta`. The actor sees :math:`\pi(t, x, m_t)` and the
centralised critic :math:`Q(t, x, a, m_t)`: the MADDPG critic over all N agents replaced by the population state
(``mf-maddpg-formulation.md``). With ``n_step > 1`` the reward is the sum over ``n`` steps and the bootstrap
is ``n`` steps ahead (truncated at the horizon). Networks in :mod:`mfgsolve.learn.networks`, population encoders in
:mod:`mfgsolve.learn.encoders`, exploration in :mod:`mfgsolve.learn.exploration`.

Accuracy at the end of the budget, not only at its best moment: every ``eval_every`` updates the deterministic
actor and the Polyak-averaged target actor are evaluated on a fixed set of agents (common random numbers across
evaluations) and the best actor is what the oracle returns (``keep_best``); learning rates decay linearly over
the budget. Exploration is *not* annealed by default (``noise_final = 1``): on ``bench/ddpg_oracle.py`` annealing
it to a tenth starved the critic of action diversity, and the actor drifted away from the best response as the
noise shrank (its "noise annealed" row).

Defaults tuned on ``bench/ddpg_oracle.py`` (lq-1d and a 2-D LQ game with cross terms, 60 s and 120 s on CPU):
one critic (twin critics cost twice the updates and did not pay back in wall time), target smoothing and delayed
actor updates on, a bilinear action input to the critic (:class:`mfgsolve.learn.networks.Critic`), an actor with a
linear skip whose gains vary with time, inputs standardised by the frozen flow's moments at ``t``, and rewards
scaled so that a whole episode's return is of order one. Exploration: 0.3 of the half-range for bounded actions,
1.0 action unit for unbounded ones (:meth:`DDPGConfig.exploration_sigma`, measured by
``bench/exploration_scale.py``).

References
----------
.. [1] Lillicrap et al. (2015), "Continuous control with deep reinforcement learning".
.. [2] Fujimoto, van Hoof, Meger (2018), "Addressing Function Approximation Error in Actor-Critic Methods".
.. [3] Lowe et al. (2017), "Multi-Agent Actor-Critic for Mixed Cooperative-Competitive Environments".
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mfgsolve.learn.encoders import ENCODERS, PopulationEncoder, flow_moments, make_encoder
from mfgsolve.errors import SpecError
from mfgsolve.evaluation import rollout_costs
from mfgsolve.learn.exploration import NOISES, Exploration, make_exploration
from mfgsolve.flows import Flow
from mfgsolve.learn.networks import ACTIVATIONS, Actor, Critic, init_parameters, polyak_update, time_features
from mfgsolve.oracles.base import BestResponseInfo
from mfgsolve.policies import Policy
from mfgsolve.problem import Problem
from mfgsolve.learn.replay import ReplayBuffer, ReplaySample

__all__ = ["DDPGConfig", "DDPGOracle", "DDPGPolicy", "MarkovDDPGPolicy"]

_GENERATORS = ("init", "rollout", "replay", "noise", "eval")

#: Values of :attr:`DDPGConfig.step_onehot`: which networks read the time step as a one-hot.
STEP_ONEHOT = ("off", "critic", "all")


@dataclass(frozen=True)
class DDPGConfig:
    """Settings of the DDPG best-response oracle (every field is validated on construction)."""

    seed: int = 0
    """Seed of every generator of the oracle (network init, rollouts, replay sampling, noise, evaluation)."""
    updates: int | None = 20_000
    """Gradient updates per best response; with ``seconds`` set too, the budget ends at whichever comes first."""
    seconds: float | None = None
    """Wall-clock seconds per best response (``None``: no time limit)."""
    n_agents: int = 256
    """Agents rolled out in parallel against the frozen flow (one batched step per environment step)."""
    batch_size: int = 1024
    """Transitions per gradient update. A response's error at the end of its budget is SGD noise that larger
    batches shrink: at ``lq-1d``'s equilibrium, 2000 updates leave a mean-flow error of 1.81% with 512,
    1.51% with 1024 and 1.28% with 2048 (mean over seeds 0-5), at about 4.3, 6.2 and 11 ms an update on one
    CPU thread (``paper/main.tex``, "Batch, particles and damping")."""
    replay_size: int = 200_000
    """Replay capacity in transitions."""
    updates_per_step: int = 1
    """Gradient updates after each batched environment step."""
    warmup_episodes: int = 1
    """Episodes of the initial actor (with noise) played before the first update."""
    hidden: int = 64
    """Width of the hidden layers of actor, critics and encoders."""
    encoder_dim: int = 16
    """Dimension of the population features."""
    activation: str = "silu"
    """Hidden activation: relu, silu, tanh or elu."""
    critic_bilinear: bool = True
    """The critic's action encoder also reads the products of the action with the state and time inputs."""
    critic_split: bool = False
    """Critic as V(t, x, m) + A(t, x, a, m): a value head beside the Q head, which then carries the action."""
    actor_skip: bool = True
    """Add a linear map of the (standardised) state to the actor's output: a linear-ish head."""
    step_onehot: str = "critic"
    """Which networks also read a one-hot of the time step (T + 1 inputs beside t/T and 1/(T - t + 1)), so that
    gains and offsets can change from one step to the next (see ``with_step_onehot``): off, critic (the critics)
    or all (actor and critics). ``critic`` lowers the final mean error of learned runs on ``lq-1d`` and evens it
    out on a 2-D game; ``all`` helps ``lq-1d`` less and hurts the 2-D game (``paper/main.tex``, "Step inputs";
    ``bench/outer_loop.py``)."""
    action_scale: float = 1.0
    """Scale of unbounded actions: the actor's unit output times this (ignored when the problem has bounds)."""
    actor_lr: float = 2e-3
    """Adam learning rate of the actor at the start of the budget."""
    critic_lr: float = 2e-3
    """Adam learning rate of the critics at the start of the budget."""
    lr_final: float = 0.05
    """Learning rates decay linearly to this fraction of their start over the budget."""
    tau: float = 0.02
    """Soft target update rate."""
    gamma: float = 1.0
    """Discount per step (1: the finite-horizon objective itself)."""
    n_step: int = 1
    """Critic targets from n-step returns (bootstrapping n steps ahead; truncated at the horizon)."""
    grad_clip: float | None = None
    """Clip gradient norms to this (``None``: no clipping)."""
    reward_scale: float | None = None
    """Rewards are multiplied by this in the critic's targets; ``None``: 1 / (T * mean |r|) of the warmup."""
    encoder: str = "moments"
    """Population encoder: moments, histogram, deepsets or attention."""
    hist_bins: int = 16
    """Histogram bins per coordinate (histogram encoder)."""
    particles: int = 32
    """Particle subsample size (deepsets and attention encoders)."""
    attention_heads: int = 2
    """Attention heads (attention encoder); must divide ``hidden``."""
    noise: str = "gaussian"
    """Exploration: gaussian, ou, parameter or population."""
    noise_sigma: float | None = None
    """Exploration scale in unit action scale (parameter noise: its target action-space distance); ``None``: 0.3
    of the half-range for bounded actions, 1.0 in action units for unbounded ones (see :meth:`exploration_sigma`)."""
    noise_final: float = 1.0
    """Exploration decays linearly to this fraction of ``noise_sigma`` over the budget (1: constant)."""
    ou_theta: float = 0.15
    """Mean reversion per step of Ornstein-Uhlenbeck noise."""
    param_noise_initial: float = 0.05
    """Initial parameter-space standard deviation (parameter noise; adapted after every episode)."""
    population_beta: float = 0.5
    """Weight of the population-aware bonus, per step, in units of the mean scaled reward per step."""
    td3: bool = True
    """TD3 master switch: with ``False`` twin critics, target smoothing and delayed updates are all off."""
    twin_critics: bool = False
    """Clipped double Q: the target takes the minimum of two critics (TD3)."""
    target_noise: float = 0.2
    """Target policy smoothing: standard deviation of the noise on target actions, unit scale (TD3; 0: off)."""
    target_noise_clip: float = 0.5
    """Target policy smoothing noise is clipped to +- this."""
    policy_delay: int = 2
    """Actor and target updates every this many critic updates (TD3)."""
    eval_every: int = 500
    """Evaluate the deterministic actor every this many updates (and at the end)."""
    eval_agents: int = 4096
    """Agents of each evaluation (the same agents and noises every time: common random numbers)."""
    keep_best: bool = True
    """Return the actor with the best evaluation, not merely the last one."""
    eval_target: bool = True
    """Evaluate the Polyak-averaged target actor too, as a candidate for the best actor."""
    warm_start: bool = True
    """Start from the previous best response's actor and critic when ``best_response`` is given one."""
    keep_replay: bool = False
    """On a warm start, keep the replay of earlier flows (their transitions keep their own flow)."""
    progress: bool | None = None
    """Progress bar on stderr; ``None``: only when stderr is a terminal."""

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, what: str) -> None:
            if not ok:
                raise SpecError(field, f"{what}, got {getattr(self, field)!r}")

        need(isinstance(self.seed, int) and self.seed >= 0, "seed", "must be a non-negative integer")
        need(self.updates is None or self.updates >= 1, "updates", "must be a positive integer or None")
        need(self.seconds is None or (self.seconds > 0 and math.isfinite(self.seconds)), "seconds",
             "must be a positive number or None")
        if self.updates is None and self.seconds is None:
            raise SpecError("updates", "a budget is needed: set updates, seconds or both")
        for name in ("n_agents", "batch_size", "replay_size", "updates_per_step", "warmup_episodes", "hidden",
                     "encoder_dim", "hist_bins", "particles", "attention_heads", "policy_delay", "eval_every", "n_step"):
            need(getattr(self, name) >= 1, name, "must be a positive integer")
        need(self.eval_agents >= 2, "eval_agents", "must be at least 2")
        for name in ("action_scale", "actor_lr", "critic_lr"):
            need(getattr(self, name) > 0, name, "must be positive")
        for name in ("lr_final", "noise_final", "tau", "gamma", "ou_theta"):
            need(0 < getattr(self, name) <= 1, name, "must lie in (0, 1]")
        need(self.noise_sigma is None or self.noise_sigma >= 0, "noise_sigma", "must be non-negative or None")
        for name in ("target_noise", "target_noise_clip", "population_beta", "param_noise_initial"):
            need(getattr(self, name) >= 0, name, "must be non-negative")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "must be positive or None")
        need(self.reward_scale is None or self.reward_scale > 0, "reward_scale", "must be positive or None")
        need(self.activation in ACTIVATIONS, "activation", f"must be one of {', '.join(ACTIVATIONS)}")
        need(self.encoder in ENCODERS, "encoder", f"must be one of {', '.join(ENCODERS)}")
        need(self.noise in NOISES, "noise", f"must be one of {', '.join(NOISES)}")
        need(self.step_onehot in STEP_ONEHOT, "step_onehot", f"must be one of {', '.join(STEP_ONEHOT)}")
        need(self.hidden % self.attention_heads == 0, "attention_heads", "must divide hidden")

    def exploration_sigma(self, bounded: bool) -> float:
        """The exploration scale for a problem with bounded (``[-1, 1]`` unit actions) or unbounded actions.

        Unbounded actions have no natural unit, and 0.3 (the usual choice for actions in ``[-1, 1]``) starves the
        critic of the action-value differences that set the response's offset: on ``lq-1d`` a best response at
        the exact equilibrium flow (3000 + 2000 updates, seeds 0-3, ``bench/exploration_scale.py``) has relative
        gap 0.84% and mean-flow error 2.26% with 0.3 against 0.26% and 1.60% with 1.0.
        """
        if self.noise_sigma is not None:
            return self.noise_sigma
        return 0.3 if bounded else 1.0

    @property
    def twin(self) -> bool:
        return self.td3 and self.twin_critics

    @property
    def smoothing(self) -> float:
        return self.target_noise if self.td3 else 0.0

    @property
    def delay(self) -> int:
        return self.policy_delay if self.td3 else 1

    @classmethod
    def help(cls) -> dict[str, str]:
        """One line of help per field (the field docstrings)."""
        import ast
        import inspect
        import textwrap

        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        out: dict[str, str] = {}
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                out[node.target.id] = str(nxt.value.value)  # type: ignore[attr-defined]
        return out


def _standardise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, t: torch.Tensor | int, T: int) -> torch.Tensor:
    """Network state input ``(B, n+2)``: the state standardised by the flow's moments at ``t``, and the time."""
    s = ((x - mean.to(x)) / std.to(x)).to(torch.float32)
    return torch.cat([s, time_features(t, T, x.shape[0])], dim=1)


class _ActionMap:
    """Unit actions (``[-1, 1]`` or unbounded) to problem actions and back."""

    def __init__(self, low: torch.Tensor | None, high: torch.Tensor | None, scale: float) -> None:
        self.bounded = low is not None and high is not None
        if self.bounded:
            self.center = (0.5 * (low + high)).to(torch.float64)  # type: ignore[operator]
            self.half = (0.5 * (high - low)).to(torch.float64)  # type: ignore[operator]
        else:
            self.center = torch.zeros(())
            self.half = torch.tensor(float(scale), dtype=torch.float64)

    def to_action(self, u: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return (self.center.to(dtype) + self.half.to(dtype) * u.to(dtype))

    def to_unit(self, a: torch.Tensor) -> torch.Tensor:
        return ((a - self.center.to(a)) / self.half.to(a)).to(torch.float32)

    def clip(self, u: torch.Tensor) -> torch.Tensor:
        return u.clamp(-1.0, 1.0) if self.bounded else u


@dataclass
class _FlowContext:
    """What the trainer reads of one frozen flow: standardisation per ``t`` and encoder descriptions."""

    mean: torch.Tensor  # (T+1, n) float64
    std: torch.Tensor  # (T+1, n) float64, floored
    raw: torch.Tensor  # (T+1, ...) float32

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std, "raw": self.raw}


def _flow_context(m: Flow, T: int, encoder: PopulationEncoder, std_floor: torch.Tensor) -> _FlowContext:
    """What an actor reads of the flow ``m`` at every ``t``: its moments (floored standard deviations) and ``raw``."""
    mom = [flow_moments(m, t) for t in range(T + 1)]
    mean = torch.stack([mu for mu, _ in mom])
    std = torch.stack([torch.diagonal(c).clamp_min(0).sqrt() for _, c in mom])
    return _FlowContext(mean=mean, std=torch.maximum(std, std_floor), raw=encoder.raw_flow(m))


#: Rows per actor call when a policy acts on a population: a large population goes through in blocks whose
#: activations stay in cache (131072 particles: about 3x faster than one call, and the same actions).
ACT_CHUNK = 8192


def _act_rows(actor: Actor, s: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """Unit actions of ``actor`` for the inputs ``s`` ``(B, n+2)``, all reading the one description ``raw``."""
    with torch.no_grad():
        blocks = [actor(c, raw, torch.zeros(c.shape[0], dtype=torch.int64)) for c in s.split(ACT_CHUNK)]
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks)


class DDPGPolicy(Policy):
    r"""The DDPG actor as a policy :math:`\pi(t, x, m_t)`: reads :math:`m_t`'s moments (standardisation) and the
    encoder's description of :math:`m_t`, for any flow ``m``.

    Parameters
    ----------
    actor : Actor
        A frozen copy of the trained actor (unit actions).
    T : int
        Horizon (the time input is ``t / T``).
    std_floor : torch.Tensor
        Lower bound ``(n,)`` of the per-coordinate standard deviation used to standardise states.
    actions : _ActionMap
        Unit to problem actions.
    """

    def __init__(self, actor: Actor, *, T: int, std_floor: torch.Tensor, actions: _ActionMap) -> None:
        self.actor = actor
        self.T = T
        self.std_floor = std_floor
        self.actions = actions

    def unit_act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        mean, cov = flow_moments(m, t)
        std = torch.maximum(torch.diagonal(cov).clamp_min(0).sqrt(), self.std_floor)
        s = _standardise(x, mean, std, t, self.T)
        return _act_rows(self.actor, s, self.actor.encoder.raw(m, t)[None])

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        return self.actions.to_action(self.unit_act(t, x, m), x.dtype)

    def bind(self, m: Flow) -> MarkovDDPGPolicy:
        """The actor with its population inputs read once from ``m`` (see :meth:`Policy.bind`)."""
        context = _flow_context(m, self.T, self.actor.encoder, self.std_floor)  # type: ignore[arg-type]
        return MarkovDDPGPolicy(self.actor, T=self.T, std_floor=self.std_floor, actions=self.actions, context=context)


class MarkovDDPGPolicy(DDPGPolicy):
    r"""The actor as :math:`\pi(t, x)`: its population inputs are the frozen ``context``, whatever ``m`` is."""

    def __init__(self, actor: Actor, *, T: int, std_floor: torch.Tensor, actions: _ActionMap,
                 context: _FlowContext) -> None:
        super().__init__(actor, T=T, std_floor=std_floor, actions=actions)
        self.context = context

    def unit_act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        c = self.context
        return _act_rows(self.actor, _standardise(x, c.mean[t], c.std[t], t, self.T), c.raw[t][None])

    def bind(self, m: Flow) -> MarkovDDPGPolicy:
        return self


def _check_finite(value: torch.Tensor, what: str, update: int, call: int) -> None:
    if not torch.isfinite(value).all():
        raise FloatingPointError(
            f"ddpg: non-finite {what} at update {update} of best response {call} "
            "(try smaller learning rates, a reward_scale or grad_clip: from the CLI --br-set actor_lr=1e-4 "
            "--br-set critic_lr=1e-4, --br-set reward_scale=0.01, --br-set grad_clip=1)"
        )


class DDPGOracle:
    """The MF-MADDPG best-response oracle (``--oracle ddpg``).

    Parameters
    ----------
    config : DDPGConfig, optional
        Settings; keyword arguments override single fields (``DDPGOracle(seconds=60)``).

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> pb = mfg.load_problem("lq-1d")
    >>> ref = pb.reference()
    >>> m = mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)
    >>> oracle = mfg.DDPGOracle(updates=20, eval_every=10, n_agents=16, batch_size=32, progress=False)
    >>> pi, info = oracle.best_response(pb, m)
    >>> info.extra["updates"]
    20
    """

    name = "ddpg"
    settings_type = DDPGConfig  #: the settings ``make_oracle(name, **settings)`` takes
    #: The training loop of one best response (a subclass may swap it, e.g. ``ddpg-nopop``'s evaluations).
    _training: type[_Training]

    def __init__(self, config: DDPGConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else DDPGConfig()
        self.cfg = DDPGConfig(**{**asdict(base), **overrides}) if overrides else base
        seeds = np.random.SeedSequence(self.cfg.seed).spawn(len(_GENERATORS))
        self.generators = {
            name: torch.Generator().manual_seed(int(s.generate_state(1, dtype=np.uint64)[0] >> 1))
            for name, s in zip(_GENERATORS, seeds)
        }
        self.exploration: Exploration | None = None  # made with the networks: its scale depends on the action bounds
        self.calls = 0
        self._nets: dict[str, torch.nn.Module] | None = None
        self._dims: tuple[int, int, int] | None = None
        self._bounds: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        self._std_floor: torch.Tensor | None = None
        self._reward_scale: float | None = None
        self._opt: dict[str, torch.optim.Optimizer] = {}
        self._replay: ReplayBuffer | None = None
        self._contexts: dict[int, _FlowContext] = {}
        self._next_flow = 0

    # ------------------------------------------------------------------ public protocol

    def config(self) -> dict[str, Any]:
        """The settings, without ``progress`` (display only: it changes no result)."""
        cfg = asdict(self.cfg)
        cfg.pop("progress")
        return {"name": self.name, **cfg}

    def best_response(self, problem: Problem, m: Flow, warm_start: Any | None = None) -> tuple[DDPGPolicy, BestResponseInfo]:
        """Train against the frozen ``m`` for the configured budget; return the (best) actor as a policy."""
        cfg = self.cfg
        start = time.perf_counter()
        self.calls += 1
        dims = (problem.n, problem.p, problem.T)
        warm = (
            cfg.warm_start and isinstance(warm_start, DDPGPolicy) and self._nets is not None and self._dims == dims
        )
        if warm:
            self._nets["actor"].load_state_dict(warm_start.actor.state_dict())  # type: ignore[union-attr]
        else:
            self._build(problem, m)
        assert self._nets is not None and self._replay is not None
        if not (warm and cfg.keep_replay):
            self._replay = ReplayBuffer(cfg.replay_size, problem.n, problem.p)
            self._contexts = {}
        else:
            live = self._replay.flows()
            self._contexts = {k: v for k, v in self._contexts.items() if k in live}
        flow_id = self._next_flow
        self._next_flow += 1
        self._contexts[flow_id] = self._context(m, problem.T)
        trainer = self._training(self, problem, m, flow_id, start)
        stats = trainer.run()
        policy = self._policy()
        stats["seconds"] = time.perf_counter() - start
        return policy, BestResponseInfo(seconds=stats["seconds"], value=stats["eval_J"], extra=stats)

    # ------------------------------------------------------------------ construction

    def _build(self, problem: Problem, m: Flow) -> None:
        """Fresh networks, optimisers and replay; the state standardisation is fixed from ``m``."""
        n, p, T = problem.n, problem.p, problem.T
        means = torch.stack([flow_moments(m, t)[0] for t in range(T + 1)])
        var = torch.stack([torch.diagonal(flow_moments(m, t)[1]) for t in range(T + 1)]).clamp_min(0)
        loc = means.mean(0)
        scale = (var.mean(0) + means.var(0, unbiased=False)).sqrt()
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        self._make_networks(n, p, T, loc, scale, problem.action_low, problem.action_high)
        self._reward_scale = self.cfg.reward_scale

    def _make_networks(self, n: int, p: int, T: int, loc: torch.Tensor, scale: torch.Tensor,
                       low: torch.Tensor | None, high: torch.Tensor | None) -> None:
        cfg = self.cfg
        g = self.generators["init"]
        bounded = low is not None and high is not None

        def encoder() -> PopulationEncoder:
            return make_encoder(cfg.encoder, n, loc=loc, scale=scale, out_dim=cfg.encoder_dim, hidden=cfg.hidden,
                                activation=cfg.activation, bins=cfg.hist_bins, particles=cfg.particles,
                                heads=cfg.attention_heads, generator=g)

        template = encoder()  # base points drawn once: actor and critics read identical descriptions

        def fresh_encoder() -> PopulationEncoder:
            return copy.deepcopy(template)

        actor = Actor(n, p, fresh_encoder(), hidden=cfg.hidden, activation=cfg.activation, bounded=bounded,
                      skip=cfg.actor_skip, steps=T if cfg.step_onehot == "all" else None)
        init_parameters(actor, g, final=actor.head[-1])  # type: ignore[arg-type]
        if actor.skip is not None:  # start from (nearly) zero actions: a random linear feedback can destabilise
            torch.nn.init.zeros_(actor.skip.weight)
        nets: dict[str, torch.nn.Module] = {"actor": actor}
        for j in range(2 if cfg.twin else 1):
            critic = Critic(n, p, fresh_encoder(), hidden=cfg.hidden, activation=cfg.activation,
                            bilinear=cfg.critic_bilinear, split=cfg.critic_split,
                            steps=T if cfg.step_onehot != "off" else None)
            init_parameters(critic, g, final=critic.head[-1])  # type: ignore[arg-type]
            if critic.value is not None:
                init_parameters(critic.value, g, final=critic.value[-1])  # type: ignore[arg-type]
            nets[f"critic{j}"] = critic
        for name in list(nets):
            target = copy.deepcopy(nets[name])
            for prm in target.parameters():
                prm.requires_grad_(False)
            nets[f"target_{name}"] = target
        self._nets = nets
        self.exploration = make_exploration(
            cfg.noise, sigma=cfg.exploration_sigma(bounded), ou_theta=cfg.ou_theta,
            param_initial=cfg.param_noise_initial, population_beta=cfg.population_beta,
        )
        self._dims = (n, p, T)
        self._bounds = (low, high)
        self._std_floor = (0.1 * scale).to(torch.float64)
        critic_params = [prm for k, v in nets.items() if k.startswith("critic") for prm in v.parameters()]
        self._opt = {
            "actor": torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr, fused=True),
            "critic": torch.optim.Adam(critic_params, lr=cfg.critic_lr, fused=True),
        }
        self._replay = ReplayBuffer(cfg.replay_size, n, p)

    def _context(self, m: Flow, T: int) -> _FlowContext:
        assert self._nets is not None and self._std_floor is not None
        return _flow_context(m, T, self._nets["actor"].encoder, self._std_floor)  # type: ignore[arg-type]

    def _actions(self) -> _ActionMap:
        return _ActionMap(self._bounds[0], self._bounds[1], self.cfg.action_scale)

    def _policy(self) -> DDPGPolicy:
        assert self._nets is not None and self._dims is not None and self._std_floor is not None
        actor = copy.deepcopy(self._nets["actor"]).eval()
        for prm in actor.parameters():
            prm.requires_grad_(False)
        return DDPGPolicy(actor, T=self._dims[2], std_floor=self._std_floor.clone(), actions=self._actions())  # type: ignore[arg-type]

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything that reproduces the oracle's next best responses exactly: tensors and plain Python only."""
        out: dict[str, Any] = {
            "config": asdict(self.cfg),
            "calls": self.calls,
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "built": self._nets is not None,
        }
        if self._nets is None:
            return out
        assert self._replay is not None and self._std_floor is not None and self.exploration is not None
        enc = self._nets["actor"].encoder  # type: ignore[union-attr]
        out.update(
            dims=list(self._dims),  # type: ignore[arg-type]
            low=self._bounds[0], high=self._bounds[1],
            loc=enc.loc.clone(), scale=enc.scale.clone(),  # type: ignore[union-attr]
            reward_scale=self._reward_scale,
            networks={k: v.state_dict() for k, v in self._nets.items()},
            optimisers={k: v.state_dict() for k, v in self._opt.items()},
            replay=self._replay.state_dict(),
            exploration=self.exploration.state_dict(),
            contexts={int(k): v.state_dict() for k, v in self._contexts.items()},
            next_flow=self._next_flow,
        )
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the configuration must be the one it was saved with)."""
        if state["config"] != asdict(self.cfg):
            raise ValueError("ddpg state was saved with another configuration")
        self.calls = int(state["calls"])
        for k, g in self.generators.items():
            g.set_state(state["generators"][k])
        if not state["built"]:
            self._nets = None
            self.exploration = None
            return
        n, p, T = (int(v) for v in state["dims"])
        self._make_networks(n, p, T, state["loc"].double(), state["scale"].double(), state["low"], state["high"])
        assert self._nets is not None and self._replay is not None and self.exploration is not None
        self.exploration.load_state_dict(state["exploration"])
        for k, v in state["networks"].items():
            self._nets[k].load_state_dict(v)
        for k, v in state["optimisers"].items():
            self._opt[k].load_state_dict(v)
        self._replay.load_state_dict(state["replay"])
        self._contexts = {int(k): _FlowContext(**v) for k, v in state["contexts"].items()}
        self._next_flow = int(state["next_flow"])
        self._reward_scale = state["reward_scale"]


class _Training:
    """One best response: the rollout/update loop of :class:`DDPGOracle` against one frozen flow."""

    def __init__(self, oracle: DDPGOracle, problem: Problem, m: Flow, flow_id: int, start: float) -> None:
        self.o, self.cfg, self.problem, self.m, self.start = oracle, oracle.cfg, problem, m, start
        assert oracle._nets is not None and oracle._replay is not None and oracle.exploration is not None
        self.nets, self.replay, self.noise = oracle._nets, oracle._replay, oracle.exploration
        self.actions = oracle._actions()
        self.T = problem.T
        self.flow_id = flow_id
        ids = sorted(oracle._contexts)
        self.lut = torch.full((max(ids) + 1,), -1, dtype=torch.int64)
        self.lut[torch.tensor(ids)] = torch.arange(len(ids))
        ctx = [oracle._contexts[i] for i in ids]
        self.mean = torch.stack([c.mean for c in ctx])  # (F, T+1, n)
        self.std = torch.stack([c.std for c in ctx])
        raw = torch.stack([c.raw for c in ctx])  # (F, T+1, ...)
        self.raw = raw.reshape(-1, *raw.shape[2:])  # row f * (T+1) + t
        self.cur = int(self.lut[flow_id])
        self.g = oracle.generators
        self.actor_params = list(self.nets["actor"].parameters())
        self.updates = 0
        self.env_steps = 0
        self.fraction = 0.0

    # ------------------------------------------------------------------ schedule

    def _progress(self) -> float:
        cfg = self.cfg
        f = 0.0
        if cfg.updates is not None:
            f = max(f, self.updates / cfg.updates)
        if cfg.seconds is not None:
            f = max(f, (time.perf_counter() - self.start) / cfg.seconds)
        return min(f, 1.0)

    def _anneal(self, final: float) -> float:
        return 1.0 - (1.0 - final) * self.fraction

    # ------------------------------------------------------------------ environment

    def _rows(self, flow_pos: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Population descriptions for a batch (all of this response's flows, ``F * (T+1)`` rows: the encoders read
        each once) and the row of each transition."""
        return self.raw, flow_pos * (self.T + 1) + t

    def _env_reset(self) -> None:
        self.x = self.problem.sample_x0(self.cfg.n_agents, self.g["rollout"]).to(torch.float64)
        self.t = 0
        self.window: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.noise.reset(self.cfg.n_agents, self.problem.p, self.nets["actor"], self.g["noise"])

    def _env_step(self) -> None:
        cfg, pb, t = self.cfg, self.problem, self.t
        actor = self.nets["actor"]
        s = _standardise(self.x, self.mean[self.cur, t], self.std[self.cur, t], t, self.T)
        raw = self.raw[self.cur * (self.T + 1) + t][None]
        idx = torch.zeros(self.x.shape[0], dtype=torch.int64)
        with torch.no_grad():
            u_det = actor(s, raw, idx)
            u = self.noise.explore(u_det, actor_fn=lambda net: net(s, raw, idx), scale=self._anneal(cfg.noise_final),
                                   generator=self.g["noise"])
        u = self.actions.clip(u)
        a = self.actions.to_action(u, torch.float64)
        r = pb.reward(t, self.x, a, self.m)
        x_next = pb.step(t, self.x, a, self.m, self.g["rollout"])
        done = t == self.T - 1
        if done:
            r = r + pb.terminal_reward(x_next, self.m)
        if not (torch.isfinite(r).all() and torch.isfinite(x_next).all()):
            raise FloatingPointError(
                f"ddpg: non-finite reward or state at environment step {self.env_steps} (t={t}) of best response "
                f"{self.o.calls}: actions out of the problem's range?"
            )
        x_next_std = (x_next - self.mean[self.cur, t + 1]) / self.std[self.cur, t + 1]
        bonus = self.noise.bonus(x_next_std)
        k = self.x.shape[0]
        self.window.append((t, self.x, u, r, bonus if bonus is not None else torch.zeros(k, dtype=r.dtype)))
        if done:  # the horizon ends: every pending transition is complete (no bootstrap)
            while self.window:
                self._emit(x_next, True)
        elif len(self.window) == cfg.n_step:
            self._emit(x_next, False)
        self.env_steps += 1
        self.x = x_next
        self.t += 1
        if done:
            if len(self.replay) >= cfg.batch_size:
                self._adapt_noise()
            self._env_reset()

    def _emit(self, x_last: torch.Tensor, done: bool) -> None:
        """Store the oldest pending transition with its discounted return up to now and ``x_last`` as next state."""
        t0, x0, u0, _, _ = self.window[0]
        ret = sum((self.cfg.gamma**j) * w[3] for j, w in enumerate(self.window))
        bonus = sum((self.cfg.gamma**j) * w[4] for j, w in enumerate(self.window))
        steps, k = len(self.window), x0.shape[0]
        self.replay.add(ReplaySample(
            t=torch.full((k,), t0, dtype=torch.int64), x=x0, a=u0, r=ret, x_next=x_last,  # type: ignore[arg-type]
            done=torch.full((k,), float(done)), bonus=bonus,  # type: ignore[arg-type]
            flow=torch.full((k,), self.flow_id, dtype=torch.int64), k=torch.full((k,), steps, dtype=torch.int64),
        ))
        self.window.pop(0)

    def _adapt_noise(self) -> None:
        b = self.replay.sample(self.cfg.batch_size, self.g["noise"])
        pos = self.lut[b.flow]
        s = _standardise(b.x.double(), self.mean[pos, b.t], self.std[pos, b.t], b.t, self.T)
        raw, inv = self._rows(pos, b.t)
        self.noise.adapt(self.nets["actor"], lambda net: net(s, raw, inv), self._anneal(self.cfg.noise_final))

    # ------------------------------------------------------------------ learning

    def _critics(self, prefix: str = "") -> list[torch.nn.Module]:
        return [self.nets[f"{prefix}critic{j}"] for j in range(2 if self.cfg.twin else 1)]

    def _update(self) -> tuple[float, float | None]:
        cfg, g = self.cfg, self.g["replay"]
        b = self.replay.sample(cfg.batch_size, g)
        pos = self.lut[b.flow]
        t1 = (b.t + b.k).clamp_max(self.T)
        s = _standardise(b.x.double(), self.mean[pos, b.t], self.std[pos, b.t], b.t, self.T)
        s1 = _standardise(b.x_next.double(), self.mean[pos, t1], self.std[pos, t1], t1, self.T)
        raw, inv = self._rows(pos, b.t)
        raw1, inv1 = self._rows(pos, t1)
        weight = 1.0 - self.fraction if self.noise.kind == "population" else 0.0
        assert self.o._reward_scale is not None
        r = b.r * self.o._reward_scale + (weight / self.T) * b.bonus
        with torch.no_grad():
            a1 = self.nets["target_actor"](s1, raw1, inv1)
            if cfg.smoothing > 0:
                eps = torch.randn(a1.shape, generator=g) * cfg.smoothing
                a1 = self.actions.clip(a1 + eps.clamp(-cfg.target_noise_clip, cfg.target_noise_clip))
            q1 = torch.stack([c(s1, a1, raw1, inv1) for c in self._critics("target_")]).min(0).values
            y = r + cfg.gamma ** b.k.to(r.dtype) * (1.0 - b.done) * q1
        critics = self._critics()
        critic_loss = sum(F.mse_loss(c(s, b.a, raw, inv), y) for c in critics)
        _check_finite(critic_loss.detach(), "critic loss", self.updates, self.o.calls)  # type: ignore[union-attr]
        opt = self.o._opt["critic"]
        opt.zero_grad(set_to_none=True)
        critic_loss.backward()  # type: ignore[union-attr]
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_([p for c in critics for p in c.parameters()], cfg.grad_clip)
        opt.step()
        actor_loss: float | None = None
        if self.updates % cfg.delay == 0:
            actor, critic = self.nets["actor"], critics[0]
            loss = -critic(s, actor(s, raw, inv), raw, inv).mean()
            _check_finite(loss.detach(), "actor loss", self.updates, self.o.calls)
            aopt = self.o._opt["actor"]
            aopt.zero_grad(set_to_none=True)
            loss.backward(inputs=self.actor_params)  # the critic's own gradients are neither needed nor kept
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(actor.parameters(), cfg.grad_clip)
            aopt.step()
            actor_loss = float(loss.detach())
            for name in ["actor"] + [f"critic{j}" for j in range(len(critics))]:
                polyak_update(self.nets[name].parameters(), self.nets[f"target_{name}"].parameters(), cfg.tau)
        return float(critic_loss.detach()), actor_loss

    def _set_lr(self) -> None:
        f = self._anneal(self.cfg.lr_final)
        for name, lr in (("actor", self.cfg.actor_lr), ("critic", self.cfg.critic_lr)):
            for group in self.o._opt[name].param_groups:
                group["lr"] = lr * f

    # ------------------------------------------------------------------ evaluation

    def _evaluate(self, name: str = "actor") -> float:
        """Mean cost of the deterministic ``name`` (actor or target actor) on this response's fixed agents."""
        policy = DDPGPolicy(self.nets[name], T=self.T, std_floor=self.o._std_floor,  # type: ignore[arg-type]
                            actions=self.actions)
        gen = torch.Generator().manual_seed(int(self.eval_seed))
        costs = rollout_costs(self.problem, policy, self.m, n=self.cfg.eval_agents, generator=gen)
        return float(costs.mean())

    def _checkpoint(self, evals: list[list[float]]) -> None:
        """Evaluate the candidates (actor, and the Polyak-averaged target actor) and keep the best actor."""
        for name, net in self.nets.items():
            for prm in net.parameters():
                _check_finite(prm.detach(), f"{name} parameters", self.updates, self.o.calls)
        row: list[float] = [self.updates, time.perf_counter() - self.start]
        for name in ("actor", "target_actor") if self.cfg.eval_target else ("actor",):
            J = self._evaluate(name)
            row.append(J)
            if J < self.best_J:
                self.best_J, self.best_update = J, self.updates
                self.best_state = copy.deepcopy(self.nets[name].state_dict())
        evals.append(row)

    # ------------------------------------------------------------------ loop

    def _done(self) -> bool:
        cfg = self.cfg
        if cfg.updates is not None and self.updates >= cfg.updates:
            return True
        return cfg.seconds is not None and time.perf_counter() - self.start >= cfg.seconds

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        # One draw per best response: evaluations within it share their agents (common random numbers).
        self.eval_seed = int(torch.randint(2**62, (1,), generator=self.g["eval"]))
        self._env_reset()
        warmup = cfg.warmup_episodes * cfg.n_agents * self.T
        while len(self.replay) < max(warmup, cfg.batch_size) or self.env_steps < cfg.warmup_episodes * self.T:
            self._env_step()
        if self.o._reward_scale is None:
            r = self.replay._data["r"][: len(self.replay)]
            self.o._reward_scale = 1.0 / max(self.T * float(r.abs().mean()), 1e-12)
        by_updates = cfg.updates is not None
        bar = tqdm(total=cfg.updates if by_updates else cfg.seconds, desc=f"ddpg br {self.o.calls}",
                   disable=None if cfg.progress is None else not cfg.progress, leave=False,
                   unit="upd" if by_updates else "s")
        self.best_J, self.best_state, self.best_update = math.inf, None, 0
        evals: list[list[float]] = []
        critic_loss, actor_loss = math.nan, math.nan
        last_eval = -1
        while not self._done():
            self._env_step()
            for _ in range(cfg.updates_per_step):
                self.fraction = self._progress()
                self._set_lr()
                cl, al = self._update()
                critic_loss = cl
                actor_loss = al if al is not None else actor_loss
                self.updates += 1
                if by_updates:
                    bar.update(1)
                if self.updates % cfg.eval_every == 0:
                    self._checkpoint(evals)
                    last_eval = self.updates
                    bar.set_postfix(J=f"{evals[-1][2]:.4g}")
                if self._done():
                    break
            if not by_updates:
                bar.n = round(min(time.perf_counter() - self.start, cfg.seconds), 1)  # type: ignore[type-var]
                bar.refresh()
        bar.close()
        if last_eval != self.updates:
            self._checkpoint(evals)
        final_J = evals[-1][2]
        if cfg.keep_best and self.best_state is not None:
            self.nets["actor"].load_state_dict(self.best_state)
        J_out = self.best_J if cfg.keep_best else final_J
        return {
            "updates": self.updates,
            "env_steps": self.env_steps,
            "eval_J": J_out,
            "final_eval_J": final_J,
            "best_update": self.best_update if cfg.keep_best else self.updates,
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "reward_scale": self.o._reward_scale,
            "eval_seed": self.eval_seed,
            "evals": evals,
        }


DDPGOracle._training = _Training
