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

The module reads top-down: :class:`DDPGConfig` (settings), the policies (:class:`DDPGPolicy`, its Markov
binding :class:`MarkovDDPGPolicy` and the population-blind :class:`NoPopPolicy`), the learner state
:class:`DDPGLearner` (networks, targets, optimisers, replay, noise, generators, scales, flow contexts), the
training loop :func:`train` (the state, the problem and the frozen flow: in the order of CleanRL's
``ddpg_continuous_action.py``) and the oracle :class:`DDPGOracle`, which only builds or warm-starts the state and
calls the loop. Population-blind DDPG (``ddpg-nopop``, :mod:`mfgsolve.oracles.nopop`) is the setting
``population_input=False``. Action map, generators, budget, replay and scales are the shared parts of
:mod:`mfgsolve.learn`.

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
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mfgsolve.errors import SpecError
from mfgsolve.evaluation import rollout_costs
from mfgsolve.flows import Flow
from mfgsolve.learn.actions import ActionMap
from mfgsolve.learn.budget import Budget
from mfgsolve.learn.encoders import ENCODERS, PopulationEncoder, flow_moments, make_encoder
from mfgsolve.learn.exploration import NOISES, Exploration, make_exploration
from mfgsolve.learn.networks import ACTIVATIONS, Actor, Critic, init_parameters, polyak_update, time_features
from mfgsolve.learn.replay import ReplayBuffer, ReplaySample
from mfgsolve.learn.scaling import flow_standardisation, reward_scale
from mfgsolve.learn.seeding import named_generators
from mfgsolve.oracles.settings import check_fields
from mfgsolve.oracles.base import BestResponseInfo, LearnedOracle
from mfgsolve.policies import Policy
from mfgsolve.problem import Problem

__all__ = ["DDPGConfig", "DDPGOracle", "DDPGPolicy", "MarkovDDPGPolicy", "NoPopPolicy", "DDPGLearner",
           "FlowContext", "flow_context", "train", "GENERATORS"]

#: The oracle's random streams (:func:`mfgsolve.learn.seeding.named_generators`, in this order).
GENERATORS = ("init", "rollout", "replay", "noise", "eval")

#: Values of :attr:`DDPGConfig.step_onehot`: which networks read the time step as a one-hot.
STEP_ONEHOT = ("off", "critic", "all")


@dataclass(frozen=True)
class DDPGConfig:
    """Settings of the DDPG best-response oracle (every field is validated on construction)."""

    seed: int | None = None
    """Seed of every generator of the oracle (network init, rollouts, replay sampling, noise, evaluation);
    ``None``: the run's seed (:meth:`DDPGOracle.for_run`), 0 when the oracle is used on its own."""
    updates: int | None = None
    """Gradient updates per best response; with ``seconds`` set too, the budget ends at whichever comes first.
    With neither: the run's budget (:meth:`DDPGOracle.for_run`), ``mfgsolve.presets.LEARNED.br_updates`` when the
    oracle is used on its own."""
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
    population_input: bool = True
    """Actor and critics read the flow they play against (MF-MADDPG). ``False``: population-blind DDPG
    (``ddpg-nopop``): their population inputs stay those of the first flow the networks were built on, so the
    policy is a function of ``(t, x)`` only (:class:`NoPopPolicy`)."""
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
        check_fields(self)  # types and sizes, by annotation (the same check as make_oracle)
        def need(ok: bool, field: str, what: str) -> None:
            if not ok:
                raise SpecError(field, f"{what}, got {getattr(self, field)!r}")

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
    return torch.cat([s, time_features(t, T, x.shape[0], x.device)], dim=1)


# ================================================================================================ policies
@dataclass
class FlowContext:
    """What the networks read of one frozen flow: standardisation per ``t`` and encoder descriptions."""

    mean: torch.Tensor  # (T+1, n) float64
    std: torch.Tensor  # (T+1, n) float64, floored
    raw: torch.Tensor  # (T+1, ...) float32

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std, "raw": self.raw}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> FlowContext:
        """The context of :meth:`state_dict`, on the CPU (where contexts live; a checkpoint loads onto the run's
        device)."""
        return cls(**{k: v.cpu() for k, v in state.items()})


def flow_context(m: Flow, T: int, encoder: PopulationEncoder, std_floor: torch.Tensor) -> FlowContext:
    """What an actor reads of the flow ``m`` at every ``t``: its moments (floored standard deviations) and ``raw``."""
    mom = [flow_moments(m, t) for t in range(T + 1)]
    mean = torch.stack([mu for mu, _ in mom])
    std = torch.stack([torch.diagonal(c).clamp_min(0).sqrt() for _, c in mom])
    return FlowContext(mean=mean, std=torch.maximum(std, std_floor.to(std)), raw=encoder.raw_flow(m))


#: Rows per actor call when a policy acts on a population: a large population goes through in blocks whose
#: activations stay in cache (131072 particles: about 3x faster than one call, and the same actions).
ACT_CHUNK = 8192


def _act_rows(actor: Actor, s: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """Unit actions of ``actor`` for the inputs ``s`` ``(B, n+2)``, all reading the one description ``raw`` (moved
    to the device of ``s``, the actor's)."""
    raw = raw.to(s.device)
    with torch.no_grad():
        blocks = [actor(c, raw, torch.zeros(c.shape[0], dtype=torch.int64, device=s.device)) for c in s.split(ACT_CHUNK)]
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
    actions : ActionMap
        Unit to problem actions.
    """

    def __init__(self, actor: Actor, *, T: int, std_floor: torch.Tensor, actions: ActionMap) -> None:
        self.actor = actor
        self.T = T
        self.std_floor = std_floor
        self.actions = actions

    def unit_act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        mean, cov = flow_moments(m, t)
        std = torch.maximum(torch.diagonal(cov).clamp_min(0).sqrt(), self.std_floor.to(cov))
        s = _standardise(x, mean, std, t, self.T)
        return _act_rows(self.actor, s, self.actor.encoder.raw(m, t)[None])

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        return self.actions.to_action(self.unit_act(t, x, m), x.dtype)

    def bind(self, m: Flow) -> MarkovDDPGPolicy:
        """The actor with its population inputs read once from ``m`` (see :meth:`Policy.bind`)."""
        context = flow_context(m, self.T, self.actor.encoder, self.std_floor)  # type: ignore[arg-type]
        return MarkovDDPGPolicy(self.actor, T=self.T, std_floor=self.std_floor, actions=self.actions, context=context)


class MarkovDDPGPolicy(DDPGPolicy):
    r"""The actor as :math:`\pi(t, x)`: its population inputs are the frozen ``context``, whatever ``m`` is."""

    def __init__(self, actor: Actor, *, T: int, std_floor: torch.Tensor, actions: ActionMap,
                 context: FlowContext) -> None:
        super().__init__(actor, T=T, std_floor=std_floor, actions=actions)
        self.context = context

    def unit_act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        c = self.context
        return _act_rows(self.actor, _standardise(x, c.mean[t], c.std[t], t, self.T), c.raw[t][None])

    def bind(self, m: Flow) -> MarkovDDPGPolicy:
        return self


class NoPopPolicy(MarkovDDPGPolicy):
    r"""The population-blind actor :math:`\pi(t, x)` (``population_input=False``): its population inputs are those
    of the first flow its networks were built on (``context``), whatever flow it plays."""


# ================================================================================================ learner state
@dataclass
class DDPGLearner:
    """Everything a DDPG best response trains and carries to the next one (state only; :func:`train` runs it).

    Built on a problem and the first flow of a response (:meth:`build`); the oracle keeps it across warm-started
    responses and writes it to checkpoints (:meth:`state_dict`, plain tensors and numbers).
    """

    nets: dict[str, torch.nn.Module]
    """``actor``, ``critic0`` (``critic1`` with twin critics) and a ``target_`` copy of each."""
    optimisers: dict[str, torch.optim.Optimizer]
    """``actor`` and ``critic`` (all critics') Adam optimisers."""
    replay: ReplayBuffer
    """Transitions of this response (and of earlier ones with ``keep_replay``)."""
    noise: Exploration
    """Exploration, made with the networks (its scale depends on the action bounds)."""
    generators: dict[str, torch.Generator]
    """The oracle's random streams (:data:`GENERATORS`), shared with every learner it builds."""
    dims: tuple[int, int, int]
    """``(n, p, T)`` of the problem the networks were built for."""
    bounds: tuple[torch.Tensor | None, torch.Tensor | None]
    """The problem's action bounds (``None``: unbounded)."""
    actions: ActionMap
    """Unit to problem actions."""
    std_floor: torch.Tensor
    """Floor ``(n,)`` of the standard deviations that standardise states: a tenth of the first flow's scale."""
    population_input: bool
    """Whether the networks read each flow (``False``: the first flow's context for every flow)."""
    reward_scale: float | None
    """Scale of rewards in the critic targets (``None`` until the first warmup measures it)."""
    contexts: dict[int, FlowContext] = field(default_factory=dict)
    """The context of each flow that stored transitions refer to, by flow index."""
    next_flow: int = 0
    """Index of the next flow trained against."""
    frozen: FlowContext | None = None
    """Population-blind learners: the context of the first flow, read for every flow."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, cfg: DDPGConfig, problem: Problem, m: Flow, generators: dict[str, torch.Generator]) -> DDPGLearner:
        """Fresh networks, optimisers and replay; the state standardisation is fixed from ``m``."""
        loc, scale = flow_standardisation(m, problem.T)
        return cls.create(cfg, (problem.n, problem.p, problem.T), loc, scale,
                          (getattr(problem, "action_low", None), getattr(problem, "action_high", None)), generators, reward_scale=cfg.reward_scale)

    @classmethod
    def create(cls, cfg: DDPGConfig, dims: tuple[int, int, int], loc: torch.Tensor, scale: torch.Tensor,
               bounds: tuple[torch.Tensor | None, torch.Tensor | None], generators: dict[str, torch.Generator],
               reward_scale: float | None) -> DDPGLearner:
        """Networks (initialised from ``generators["init"]``) for states standardised by ``loc`` and ``scale``."""
        n, p, T = dims
        g = generators["init"]
        device = g.device  # the networks and the replay live with the oracle's random streams
        bounded = bounds[0] is not None and bounds[1] is not None
        template = make_encoder(cfg.encoder, n, loc=loc, scale=scale, out_dim=cfg.encoder_dim, hidden=cfg.hidden,
                                activation=cfg.activation, bins=cfg.hist_bins, particles=cfg.particles,
                                heads=cfg.attention_heads, generator=g).to(device)
        # base points drawn once: actor and critics read identical descriptions
        actor = Actor(n, p, copy.deepcopy(template), hidden=cfg.hidden, activation=cfg.activation, bounded=bounded,
                      skip=cfg.actor_skip, steps=T if cfg.step_onehot == "all" else None).to(device)
        init_parameters(actor, g, final=actor.head[-1])  # type: ignore[arg-type]
        if actor.skip is not None:  # start from (nearly) zero actions: a random linear feedback can destabilise
            torch.nn.init.zeros_(actor.skip.weight)
        nets: dict[str, torch.nn.Module] = {"actor": actor}
        for j in range(2 if cfg.twin else 1):
            critic = Critic(n, p, copy.deepcopy(template), hidden=cfg.hidden, activation=cfg.activation,
                            bilinear=cfg.critic_bilinear, split=cfg.critic_split,
                            steps=T if cfg.step_onehot != "off" else None).to(device)
            init_parameters(critic, g, final=critic.head[-1])  # type: ignore[arg-type]
            if critic.value is not None:
                init_parameters(critic.value, g, final=critic.value[-1])  # type: ignore[arg-type]
            nets[f"critic{j}"] = critic
        for name in list(nets):
            nets[f"target_{name}"] = copy.deepcopy(nets[name]).requires_grad_(False)
        critic_params = [prm for k, v in nets.items() if k.startswith("critic") for prm in v.parameters()]
        return cls(
            nets=nets,
            optimisers={"actor": torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr, fused=True),
                        "critic": torch.optim.Adam(critic_params, lr=cfg.critic_lr, fused=True)},
            replay=ReplayBuffer(cfg.replay_size, n, p, device=device),
            noise=make_exploration(cfg.noise, sigma=cfg.exploration_sigma(bounded), ou_theta=cfg.ou_theta,
                                   param_initial=cfg.param_noise_initial, population_beta=cfg.population_beta),
            generators=generators,
            dims=(n, p, T),
            bounds=bounds,
            actions=ActionMap(bounds[0], bounds[1], cfg.action_scale),
            std_floor=(0.1 * scale).to("cpu", torch.float64),  # beside the flow contexts, which stay on the CPU
            population_input=cfg.population_input,
            reward_scale=reward_scale,
        )

    def add_flow(self, m: Flow, *, keep_replay: bool, replay_size: int) -> int:
        """Register the frozen flow of a new response and return its index; a fresh replay unless ``keep_replay``
        (then only the contexts of flows that stored transitions refer to are kept)."""
        if keep_replay:
            live = self.replay.flows()
            self.contexts = {k: v for k, v in self.contexts.items() if k in live}
        else:
            self.replay = ReplayBuffer(replay_size, self.dims[0], self.dims[1], device=self.replay.device)
            self.contexts = {}
        flow_id = self.next_flow
        self.next_flow += 1
        if self.population_input:
            self.contexts[flow_id] = flow_context(m, self.dims[2], self.nets["actor"].encoder,  # type: ignore[arg-type]
                                                  self.std_floor)
        else:
            if self.frozen is None:  # the first flow these networks see
                self.frozen = flow_context(m, self.dims[2], self.nets["actor"].encoder,  # type: ignore[arg-type]
                                           self.std_floor)
            self.contexts[flow_id] = self.frozen
        return flow_id

    def policy(self, name: str = "actor", *, frozen: bool = True) -> DDPGPolicy:
        """The network ``name`` (``actor`` or ``target_actor``) as a policy: a frozen copy, or the live network
        (``frozen=False``, for evaluations during training). Population-blind learners give a :class:`NoPopPolicy`."""
        actor = self.nets[name]
        std_floor = self.std_floor
        if frozen:
            actor = copy.deepcopy(actor).eval().requires_grad_(False)
            std_floor = std_floor.clone()
        if self.population_input:
            return DDPGPolicy(actor, T=self.dims[2], std_floor=std_floor, actions=self.actions)  # type: ignore[arg-type]
        assert self.frozen is not None
        return NoPopPolicy(actor, T=self.dims[2], std_floor=std_floor, actions=self.actions,  # type: ignore[arg-type]
                           context=self.frozen)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain Python only (a checkpoint loads them as data: :mod:`mfgsolve.checkpoint`)."""
        enc = self.nets["actor"].encoder
        return dict(
            dims=list(self.dims),
            low=self.bounds[0], high=self.bounds[1],
            loc=enc.loc.clone(), scale=enc.scale.clone(),  # type: ignore[union-attr]
            reward_scale=self.reward_scale,
            networks={k: v.state_dict() for k, v in self.nets.items()},
            optimisers={k: v.state_dict() for k, v in self.optimisers.items()},
            replay=self.replay.state_dict(),
            exploration=self.noise.state_dict(),
            contexts={int(k): v.state_dict() for k, v in self.contexts.items()},
            next_flow=self.next_flow,
            frozen_context=None if self.frozen is None else self.frozen.state_dict(),
        )

    @classmethod
    def from_state_dict(cls, cfg: DDPGConfig, state: dict[str, Any], generators: dict[str, torch.Generator]) -> DDPGLearner:
        """The learner of :meth:`state_dict` (``cfg``: the settings it was saved with)."""
        dims = tuple(int(v) for v in state["dims"])
        learner = cls.create(cfg, dims, state["loc"].double(), state["scale"].double(),  # type: ignore[arg-type]
                             (state["low"], state["high"]), generators, reward_scale=state["reward_scale"])
        learner.noise.load_state_dict(state["exploration"])
        for k, v in state["networks"].items():
            learner.nets[k].load_state_dict(v)
        for k, v in state["optimisers"].items():
            learner.optimisers[k].load_state_dict(v)
        learner.replay.load_state_dict(state["replay"])
        learner.contexts = {int(k): FlowContext.from_state_dict(v) for k, v in state["contexts"].items()}
        learner.next_flow = int(state["next_flow"])
        frozen = state.get("frozen_context")
        learner.frozen = None if frozen is None else FlowContext.from_state_dict(frozen)
        return learner


# ================================================================================================ training
def _check_finite(value: torch.Tensor, what: str, update: int, call: int) -> None:
    if not torch.isfinite(value).all():
        raise FloatingPointError(
            f"ddpg: non-finite {what} at update {update} of best response {call} "
            "(try smaller learning rates, a reward_scale or grad_clip: from the CLI --br-set actor_lr=1e-4 "
            "--br-set critic_lr=1e-4, --br-set reward_scale=0.01, --br-set grad_clip=1)"
        )


class _Contexts:
    """The contexts of a response's flows stacked for batched look-ups by ``(flow index, t)``, on ``device`` (the
    networks' and the replay's)."""

    def __init__(self, contexts: dict[int, FlowContext], T: int, device: torch.device) -> None:
        ids = sorted(contexts)
        self.T = T
        lut = torch.full((max(ids) + 1,), -1, dtype=torch.int64)
        lut[torch.tensor(ids)] = torch.arange(len(ids))
        self.lut = lut.to(device)
        ctx = [contexts[i] for i in ids]
        self.mean = torch.stack([c.mean for c in ctx]).to(device)  # (F, T+1, n)
        self.std = torch.stack([c.std for c in ctx]).to(device)
        raw = torch.stack([c.raw for c in ctx]).to(device)  # (F, T+1, ...)
        self.raw = raw.reshape(-1, *raw.shape[2:])  # row f * (T+1) + t: the encoders read each once per batch

    def inputs(self, x: torch.Tensor, pos: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Network inputs of states ``x`` of flows at positions ``pos`` at times ``t``: ``(s, raw, row)``."""
        s = _standardise(x.double(), self.mean[pos, t], self.std[pos, t], t, self.T)
        return s, self.raw, pos * (self.T + 1) + t


class _Agents:
    """The batch of representative agents playing the frozen flow, with the n-step window of pending transitions."""

    def __init__(self, learner: DDPGLearner, cfg: DDPGConfig, problem: Problem, m: Flow, table: _Contexts,
                 flow_id: int, call: int) -> None:
        self.learner, self.cfg, self.problem, self.m, self.flow_id, self.call = learner, cfg, problem, m, flow_id, call
        self.T = problem.T
        self.pos = int(table.lut[flow_id])
        self.mean, self.std = table.mean[self.pos], table.std[self.pos]
        self.raw = table.raw[self.pos * (self.T + 1): (self.pos + 1) * (self.T + 1)]
        self.steps = 0

    def reset(self) -> None:
        g = self.learner.generators
        self.x = self.problem.sample_x0(self.cfg.n_agents, g["rollout"]).to(torch.float64)
        self.t = 0
        self.window: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.learner.noise.reset(self.cfg.n_agents, self.problem.p, self.learner.nets["actor"], g["noise"])

    def step(self, noise_scale: float) -> bool:
        """Act with exploration, step the environment, store what is complete; ``True`` at the horizon's end."""
        cfg, pb, t, lr = self.cfg, self.problem, self.t, self.learner
        actor = lr.nets["actor"]
        s = _standardise(self.x, self.mean[t], self.std[t], t, self.T)
        raw = self.raw[t][None]
        idx = torch.zeros(self.x.shape[0], dtype=torch.int64, device=self.x.device)
        with torch.no_grad():
            u = lr.noise.explore(actor(s, raw, idx), actor_fn=lambda net: net(s, raw, idx), scale=noise_scale,
                                 generator=lr.generators["noise"])
        u = lr.actions.clip(u)
        a = lr.actions.to_action(u, torch.float64)
        r = pb.reward(t, self.x, a, self.m)
        x_next = pb.step(t, self.x, a, self.m, lr.generators["rollout"])
        done = t == self.T - 1
        if done:
            r = r + pb.terminal_reward(x_next, self.m)
        if not (torch.isfinite(r).all() and torch.isfinite(x_next).all()):
            raise FloatingPointError(
                f"ddpg: non-finite reward or state at environment step {self.steps} (t={t}) of best response "
                f"{self.call}: actions out of the problem's range?"
            )
        bonus = lr.noise.bonus((x_next - self.mean[t + 1]) / self.std[t + 1])
        self.window.append((t, self.x, u, r, bonus if bonus is not None else r.new_zeros(r.shape[0])))
        if done:  # the horizon ends: every pending transition is complete (no bootstrap)
            while self.window:
                self._store(x_next, True)
        elif len(self.window) == cfg.n_step:
            self._store(x_next, False)
        self.steps += 1
        self.x = x_next
        self.t += 1
        return done

    def _store(self, x_last: torch.Tensor, done: bool) -> None:
        """Store the oldest pending transition with its discounted return up to now and ``x_last`` as next state."""
        t0, x0, u0, _, _ = self.window[0]
        ret = sum((self.cfg.gamma**j) * w[3] for j, w in enumerate(self.window))
        bonus = sum((self.cfg.gamma**j) * w[4] for j, w in enumerate(self.window))
        steps, k, on = len(self.window), x0.shape[0], x0.device
        self.learner.replay.add(ReplaySample(
            t=torch.full((k,), t0, dtype=torch.int64, device=on), x=x0, a=u0, r=ret, x_next=x_last,  # type: ignore[arg-type]
            done=torch.full((k,), float(done), device=on), bonus=bonus,  # type: ignore[arg-type]
            flow=torch.full((k,), self.flow_id, dtype=torch.int64, device=on),
            k=torch.full((k,), steps, dtype=torch.int64, device=on),
        ))
        self.window.pop(0)


def train(learner: DDPGLearner, cfg: DDPGConfig, problem: Problem, m: Flow, flow_id: int, *, budget: Budget,
          call: int = 1) -> dict[str, Any]:
    """Train ``learner`` against the frozen flow ``m`` (registered as ``flow_id``) until ``budget`` is spent.

    The loop of CleanRL's ``ddpg_continuous_action.py``: act with noise, step the environment, store; then per
    update sample a batch, compute the critic target, take the critic step, every ``delay`` updates the actor step
    and the soft target updates. Every ``eval_every`` updates (and at the end) the actor and the target actor are
    evaluated on fixed agents; the best is left in ``nets["actor"]`` (``keep_best``). Returns the statistics of
    the response (``info.extra``); ``call`` numbers the response in error messages and the progress bar.
    """
    nets, replay, noise, g, acts = learner.nets, learner.replay, learner.noise, learner.generators, learner.actions
    T = problem.T
    table = _Contexts(learner.contexts, T, replay.device)
    agents = _Agents(learner, cfg, problem, m, table, flow_id, call)
    actor, critics = nets["actor"], [nets[f"critic{j}"] for j in range(2 if cfg.twin else 1)]
    target_critics = [nets[f"target_critic{j}"] for j in range(len(critics))]
    actor_params = list(actor.parameters())
    updates, fraction = 0, 0.0

    def anneal(final: float) -> float:
        return 1.0 - (1.0 - final) * fraction

    def env_step() -> None:
        if agents.step(anneal(cfg.noise_final)):
            if len(replay) >= cfg.batch_size:  # parameter noise adapts its scale once an episode
                b = replay.sample(cfg.batch_size, g["noise"])
                s, raw, row = table.inputs(b.x, table.lut[b.flow], b.t)
                noise.adapt(actor, lambda net: net(s, raw, row), anneal(cfg.noise_final))
            agents.reset()

    # One draw per best response: evaluations within it share their agents (common random numbers).
    eval_seed = int(torch.randint(2**62, (1,), generator=g["eval"], device=g["eval"].device))

    def evaluate(name: str) -> float:
        """Mean cost of the deterministic ``name`` (actor or target actor) on this response's fixed agents."""
        gen = torch.Generator(device=g["eval"].device).manual_seed(eval_seed)
        policy = learner.policy(name, frozen=False)
        return float(rollout_costs(problem, policy, m, n=cfg.eval_agents, generator=gen).mean())

    best_J, best_state, best_update = math.inf, None, 0
    evals: list[list[float]] = []

    def checkpoint() -> None:
        """Evaluate the candidates (actor, and the Polyak-averaged target actor) and keep the best actor."""
        nonlocal best_J, best_state, best_update
        for name, net in nets.items():
            for prm in net.parameters():
                _check_finite(prm.detach(), f"{name} parameters", updates, call)
        row: list[float] = [updates, budget.elapsed()]
        for name in ("actor", "target_actor") if cfg.eval_target else ("actor",):
            J = evaluate(name)
            row.append(J)
            if J < best_J:
                best_J, best_update = J, updates
                best_state = copy.deepcopy(nets[name].state_dict())
        evals.append(row)

    # warmup: episodes of the initial actor (with noise) fill the replay and measure the reward scale
    agents.reset()
    while len(replay) < max(cfg.warmup_episodes * cfg.n_agents * T, cfg.batch_size) or agents.steps < cfg.warmup_episodes * T:
        env_step()
    if learner.reward_scale is None:
        learner.reward_scale = reward_scale(replay.stored("r"), T)
    scale = learner.reward_scale

    by_updates = cfg.updates is not None
    bar = tqdm(total=cfg.updates if by_updates else cfg.seconds, desc=f"ddpg br {call}",
               disable=None if cfg.progress is None else not cfg.progress, leave=False,
               unit="upd" if by_updates else "s")
    critic_loss, actor_loss = math.nan, math.nan
    last_eval = -1
    while not budget.over(updates):
        # act with exploration noise, step the environment, store the transitions
        env_step()
        for _ in range(cfg.updates_per_step):
            fraction = budget.fraction(updates)
            for name, lr in (("actor", cfg.actor_lr), ("critic", cfg.critic_lr)):
                for group in learner.optimisers[name].param_groups:
                    group["lr"] = lr * anneal(cfg.lr_final)
            # sample a batch
            b = replay.sample(cfg.batch_size, g["replay"])
            pos = table.lut[b.flow]
            t1 = (b.t + b.k).clamp_max(T)
            s, raw, row = table.inputs(b.x, pos, b.t)
            s1, raw1, row1 = table.inputs(b.x_next, pos, t1)
            weight = 1.0 - fraction if noise.kind == "population" else 0.0
            r = b.r * scale + (weight / T) * b.bonus
            # critic target: the target actor's (smoothed) action at the next state, bootstrapped k steps ahead
            with torch.no_grad():
                a1 = nets["target_actor"](s1, raw1, row1)
                if cfg.smoothing > 0:
                    eps = torch.randn(a1.shape, generator=g["replay"], device=a1.device) * cfg.smoothing
                    a1 = acts.clip(a1 + eps.clamp(-cfg.target_noise_clip, cfg.target_noise_clip))
                q1 = torch.stack([c(s1, a1, raw1, row1) for c in target_critics]).min(0).values
                y = r + cfg.gamma ** b.k.to(r.dtype) * (1.0 - b.done) * q1
            # critic loss and step
            loss = sum(F.mse_loss(c(s, b.a, raw, row), y) for c in critics)
            _check_finite(loss.detach(), "critic loss", updates, call)  # type: ignore[union-attr]
            opt = learner.optimisers["critic"]
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_([p for c in critics for p in c.parameters()], cfg.grad_clip)
            opt.step()
            critic_loss = float(loss.detach())  # type: ignore[union-attr]
            # delayed actor step, then the soft target updates
            if updates % cfg.delay == 0:
                aloss = -critics[0](s, actor(s, raw, row), raw, row).mean()
                _check_finite(aloss.detach(), "actor loss", updates, call)
                aopt = learner.optimisers["actor"]
                aopt.zero_grad(set_to_none=True)
                aloss.backward(inputs=actor_params)  # the critic's own gradients are neither needed nor kept
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(actor.parameters(), cfg.grad_clip)
                aopt.step()
                actor_loss = float(aloss.detach())
                for name in ["actor"] + [f"critic{j}" for j in range(len(critics))]:
                    polyak_update(nets[name].parameters(), nets[f"target_{name}"].parameters(), cfg.tau)
            updates += 1
            if by_updates:
                bar.update(1)
            if updates % cfg.eval_every == 0:
                checkpoint()
                last_eval = updates
                bar.set_postfix(J=f"{evals[-1][2]:.4g}")
            if budget.over(updates):
                break
        if not by_updates:
            bar.n = round(min(budget.elapsed(), cfg.seconds), 1)  # type: ignore[type-var]
            bar.refresh()
    bar.close()
    if last_eval != updates:
        checkpoint()
    final_J = evals[-1][2]
    if cfg.keep_best and best_state is not None:
        actor.load_state_dict(best_state)
    return {
        "updates": updates,
        "env_steps": agents.steps,
        "eval_J": best_J if cfg.keep_best else final_J,
        "final_eval_J": final_J,
        "best_update": best_update if cfg.keep_best else updates,
        "critic_loss": critic_loss,
        "actor_loss": actor_loss,
        "reward_scale": learner.reward_scale,
        "eval_seed": eval_seed,
        "evals": evals,
    }


# ================================================================================================ oracle
class DDPGOracle(LearnedOracle):
    """The MF-MADDPG best-response oracle (``--oracle ddpg``): builds or warm-starts a :class:`DDPGLearner` and
    runs :func:`train` on it.

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

    def __init__(self, config: DDPGConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else DDPGConfig()
        self.cfg = DDPGConfig(**{**asdict(base), **overrides}) if overrides else base
        self.calls = 0
        self.learner: DDPGLearner | None = None
        self._generators: dict[str, torch.Generator] | None = None  # made at first use, from the resolved seed

    @property
    def generators(self) -> dict[str, torch.Generator]:
        """The random streams (:data:`GENERATORS`) of the seed of :attr:`settings`, made at first use."""
        if self._generators is None:
            self._generators = named_generators(self.settings.seed, GENERATORS, self.device)
        return self._generators

    @property
    def exploration(self) -> Exploration | None:
        """The learner's exploration (``None`` before the networks are built: its scale depends on the bounds)."""
        return None if self.learner is None else self.learner.noise

    @property
    def trained(self) -> bool:
        return self._generators is not None

    # ------------------------------------------------------------------ public protocol

    def config(self) -> dict[str, Any]:
        """The settings (seed and budget resolved), without ``progress`` (display only: it changes no result)."""
        cfg = asdict(self.settings)
        cfg.pop("progress")
        return {"name": self.name, **cfg}

    def best_response(self, problem: Problem, m: Flow, warm_start: Any | None = None) -> tuple[DDPGPolicy, BestResponseInfo]:
        """Train against the frozen ``m`` for the configured budget; return the (best) actor as a policy."""
        cfg = self.settings
        start = time.perf_counter()
        self.calls += 1
        learner = self.learner
        warm = (cfg.warm_start and isinstance(warm_start, DDPGPolicy) and learner is not None
                and learner.dims == (problem.n, problem.p, problem.T))
        if warm:
            learner.nets["actor"].load_state_dict(warm_start.actor.state_dict())  # type: ignore[union-attr]
        else:
            learner = self.learner = DDPGLearner.build(cfg, problem, m, self.generators)
        assert learner is not None
        flow_id = learner.add_flow(m, keep_replay=warm and cfg.keep_replay, replay_size=cfg.replay_size)
        stats = train(learner, cfg, problem, m, flow_id, budget=Budget(cfg.updates, cfg.seconds, start),
                      call=self.calls)
        policy = learner.policy()
        stats["seconds"] = time.perf_counter() - start
        return policy, BestResponseInfo(seconds=stats["seconds"], value=stats["eval_J"], extra=stats)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything that reproduces the oracle's next best responses exactly: tensors and plain Python only."""
        gens = self._generators
        out: dict[str, Any] = {
            "config": asdict(self.settings),
            "calls": self.calls,
            "generators": None if gens is None else {k: g.get_state() for k, g in gens.items()},
            "built": self.learner is not None,
        }
        if self.learner is not None:
            out.update(self.learner.state_dict())
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the configuration must be the one it was saved with)."""
        cfg = self.settings
        if state["config"] != asdict(cfg):
            raise ValueError("ddpg state was saved with another configuration")
        self.calls = int(state["calls"])
        self.learner = None
        if state["generators"] is None:
            self._generators = None
            return
        for k, g in self.generators.items():
            g.set_state(state["generators"][k].cpu())  # a generator's state is a CPU tensor, whatever its device
        if state["built"]:
            self.learner = DDPGLearner.from_state_dict(cfg, state, self.generators)
