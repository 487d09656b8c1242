r"""Pathwise best response: minimise the Monte-Carlo cost of rollouts by gradients through the dynamics.

Every problem is written in differentiable torch and its noise enters by reparameterisation (drawn from a
generator, independent of the policy), so the cost of a batch of ``B`` rollouts of the actor :math:`\pi_\theta`
against the frozen flow ``m``

.. math::

    \hat J(\theta) = -\frac1B \sum_{i=1}^B \Big[\sum_{t<T} r\big(t, x^i_t, \pi_\theta(t, x^i_t, m_t), m\big)
    + g(x^i_T, m)\Big], \qquad x^i_{t+1} = f\big(t, x^i_t, \pi_\theta(t, x^i_t, m_t), m, \xi^i_t\big)

is a differentiable function of :math:`\theta` whose gradient (backpropagation through time through ``step``,
``reward`` and ``terminal_reward``) is an unbiased estimate of :math:`\nabla_\theta J(\pi_\theta \mid m)`: the
pathwise, or reparameterisation, policy gradient (analytic policy gradient; Mohamed et al. 2020, sec. 5). No
critic and no replay: each update is one batch of fresh rollouts and one Adam step. Its gradients have far less
variance than a critic's, so it reaches gaps DDPG does not (``bench/pathwise_oracle.py``), but only on problems
whose callbacks pass gradients: the oracle checks this on a probe rollout before training and refuses the
problem otherwise (:func:`check_gradients`).

The policy is the DDPG actor (:class:`mfgsolve.learn.networks.Actor`: time inputs, linear skip with time-varying
gains, the population encoder of :math:`m_t`, states standardised by the first flow's scale, actions through
:class:`mfgsolve.learn.actions.ActionMap`), and the oracle returns the same policy class,
:class:`mfgsolve.oracles.ddpg.DDPGPolicy`, so that the two oracles are comparable and their checkpoints load alike.
Every ``eval_every`` updates the actor is evaluated on fixed agents (common random numbers) and the best one is
returned; the learning rate decays linearly over the budget.

References
----------
.. [1] Mohamed, Rosca, Figurnov, Mnih (2020), "Monte Carlo Gradient Estimation in Machine Learning", JMLR 21.
.. [2] Carmona, Laurière (2021), "Convergence analysis of machine learning algorithms for the numerical solution
   of mean field control and games: II -- the finite horizon case" (direct policy optimisation by rollouts).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from mfgsolve.errors import SpecError
from mfgsolve.evaluation import rollout_costs
from mfgsolve.flows import Flow
from mfgsolve.learn.actions import ActionMap
from mfgsolve.learn.budget import Budget
from mfgsolve.learn.encoders import ENCODERS, make_encoder
from mfgsolve.learn.networks import ACTIVATIONS, Actor, init_parameters, time_features
from mfgsolve.learn.scaling import flow_standardisation
from mfgsolve.learn.seeding import named_generators
from mfgsolve.oracles.settings import check_fields
from mfgsolve.oracles.base import BestResponseInfo, LearnedOracle
from mfgsolve.oracles.ddpg import DDPGPolicy, FlowContext, flow_context
from mfgsolve.presets import PATHWISE
from mfgsolve.problem import Problem

__all__ = ["PathwiseConfig", "PathwiseOracle", "check_gradients", "differentiable", "GENERATORS"]

#: The oracle's random streams (:func:`mfgsolve.learn.seeding.named_generators`, in this order).
GENERATORS = ("init", "rollout", "eval")

#: Rollout dtypes (:attr:`PathwiseConfig.dtype`).
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class PathwiseConfig:
    """Settings of the pathwise best-response oracle (every field is validated on construction)."""

    seed: int | None = None
    """Seed of every generator of the oracle (network init, rollouts, evaluation); ``None``: the run's seed
    (:meth:`PathwiseOracle.for_run`), 0 when the oracle is used on its own."""
    updates: int | None = None
    """Adam steps per best response; with ``seconds`` set too, the budget ends at whichever comes first. With
    neither: the run's budget (:meth:`PathwiseOracle.for_run`), the oracle's preset
    (:data:`mfgsolve.presets.PATHWISE`, 200 per response of a run, 1000 for a ``br_check``) when the oracle is
    used on its own. Exact gradients need far fewer steps than DDPG's 1700: on ``lq-1d`` at the equilibrium
    flow, 200 steps of 512 rollouts with ``lr=3e-2`` leave a relative gap of 5.9e-5 (seed 0;
    ``bench/pathwise_oracle.py``). ``seconds`` alone is a pure wall-clock budget."""
    seconds: float | None = None
    """Wall-clock seconds per best response (``None``: no time limit)."""
    batch: int = 512
    """Rollouts per Adam step (each a whole episode against the frozen flow)."""
    lr: float = 3e-2
    """Adam learning rate at the start of the budget. Measured on ``lq-1d`` (200 steps, seed 0): 1e-2 leaves a
    relative gap of 2.6e-4, 3e-2 5.9e-5, 1e-1 diverges (the best evaluated actor is then the initial one)."""
    lr_final: float = 0.01
    """The learning rate decays linearly to this fraction of ``lr`` over the budget. The last updates' noise
    decides the returned actor: on ``lq-1d`` at the equilibrium flow (300 updates, seeds 0, 1, 2) 0.05 left
    relative gaps of 2.2e-4, 1.6e-4, 8.5e-5, 0.01 left 1.1e-4, 5.8e-5, 4.8e-5."""
    hidden: int = 64
    """Width of the actor's hidden layers (and of its population encoder)."""
    encoder_dim: int = 16
    """Dimension of the population features."""
    encoder: str = "moments"
    """Population encoder: moments, histogram, deepsets or attention."""
    activation: str = "silu"
    """Hidden activation: relu, silu, tanh or elu."""
    actor_skip: bool = True
    """Add a linear map of the (standardised) state with time-varying gains to the actor's output."""
    step_onehot: bool = True
    """The actor also reads a one-hot of the time step, so that gains and offsets can change from one step to the
    next (exact gradients resolve them; DDPG's default gives the one-hot to the critic only)."""
    action_scale: float = 1.0
    """Scale of unbounded actions: the actor's unit output times this (ignored when the problem has bounds)."""
    grad_clip: float | None = None
    """Clip the gradient norm to this (``None``: no clipping)."""
    average_from: float | None = 0.5
    """Average the actor's parameters over the iterates from this fraction of the budget on (Polyak-Ruppert
    averaging) and evaluate the average as one more candidate (``None``: no averaging). The averaged iterate is
    returned when it evaluates best (``best_update = -1``)."""
    eval_every: int = 100
    """Evaluate the actor every this many updates (and at the end)."""
    eval_agents: int = 4096
    """Agents of each evaluation (the same agents and noises every time: common random numbers)."""
    warm_start: bool = True
    """Start from the previous best response's actor (and Adam state) when ``best_response`` is given one."""
    warm_budget: float = 0.25
    """A warm-started response takes this fraction of the budget (updates and seconds; at least one update): the
    outer loop's later flows change little, and the previous actor is already close. Measured on ``lq-1d`` from a
    response to a flow whose mean was off by 5% (20%): 50 warm updates at ``warm_lr`` leave a relative gap of
    7e-5 (9e-5) at the equilibrium flow, as 200 cold updates do."""
    warm_lr: float = 1e-2
    """Adam learning rate at the start of a warm-started response (decaying as ``lr`` does). With 50 warm updates
    the gap measured as above was 1.3e-4 (1.6e-4) at 3e-2, 7e-5 (9e-5) at 1e-2, 1.5e-4 (1.2e-4) at 3e-3."""
    dtype: str = "float64"
    """Dtype of the training rollouts (the actor itself is float32, as DDPG's): float64 or float32."""
    progress: bool | None = None
    """Progress bar on stderr; ``None``: only when stderr is a terminal."""

    def __post_init__(self) -> None:
        check_fields(self)  # types, sizes and the budget fields (the same check as make_oracle)
        def need(ok: bool, field: str, what: str) -> None:
            if not ok:
                raise SpecError(field, f"{what}, got {getattr(self, field)!r}")

        for name in ("batch", "hidden", "encoder_dim", "eval_every"):
            need(getattr(self, name) >= 1, name, "must be a positive integer")
        need(self.eval_agents >= 2, "eval_agents", "must be at least 2")
        need(0 < self.warm_budget <= 1, "warm_budget", "must lie in (0, 1]")
        need(self.average_from is None or 0 <= self.average_from < 1, "average_from", "must lie in [0, 1) or be None")
        for name in ("lr", "warm_lr", "action_scale"):
            need(getattr(self, name) > 0, name, "must be positive")
        need(0 < self.lr_final <= 1, "lr_final", "must lie in (0, 1]")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "must be positive or None")
        need(self.activation in ACTIVATIONS, "activation", f"must be one of {', '.join(ACTIVATIONS)}")
        need(self.encoder in ENCODERS, "encoder", f"must be one of {', '.join(ENCODERS)}")
        need(self.dtype in DTYPES, "dtype", f"must be one of {', '.join(DTYPES)}")


def _inputs(x: torch.Tensor, c: FlowContext, t: int, T: int) -> torch.Tensor:
    """Actor input ``(B, n+2)``: the state standardised by the flow's moments at ``t`` (differentiable in ``x``)."""
    s = ((x - c.mean[t].to(x)) / c.std[t].to(x)).to(torch.float32)
    return torch.cat([s, time_features(t, T, x.shape[0], x.device)], dim=1)


def rollout_cost(actor: Actor, actions: ActionMap, problem: Problem, m: Flow, c: FlowContext, *, n: int,
                 generator: torch.Generator, dtype: torch.dtype, steps: int | None = None) -> torch.Tensor:
    r"""Costs ``(n,)`` of ``n`` rollouts of ``actor`` against ``m``, differentiable in the actor's parameters.

    ``steps`` (default: the horizon) cuts the rollout short, the terminal reward then read at ``x_steps``.
    """
    T = problem.T
    x = problem.sample_x0(n, generator).to(dtype)
    raw = c.raw.to(x.device)  # contexts are kept on the CPU; the actor reads them where it lives
    index = torch.zeros(n, dtype=torch.int64, device=x.device)
    cost = torch.zeros(n, dtype=dtype, device=x.device)
    for t in range(T if steps is None else steps):
        a = actions.to_action(actor(_inputs(x, c, t, T), raw[t][None], index), dtype)
        cost = cost - problem.reward(t, x, a, m)
        x = problem.step(t, x, a, m, generator).to(dtype)
    return cost - problem.terminal_reward(x, m)


def check_gradients(actor: Actor, actions: ActionMap, problem: Problem, m: Flow, c: FlowContext, *,
                    dtype: torch.dtype, generator: torch.Generator) -> None:
    """Refuse a problem whose callbacks do not pass gradients (a ``SpecError`` on ``oracle``), by a probe.

    A short rollout (4 agents, 2 steps) checks that (i) the cost's gradient reaches the actor's parameters and
    (ii) the cost after the first step depends on the first action *through the dynamics*: a ``step`` that
    detaches (or a non-differentiable reward) would otherwise leave only the myopic part of the gradient, and the
    oracle would return a wrong response without a sign. Detected by probing, whatever the problem is called.
    """
    name = getattr(problem, "name", type(problem).__name__)

    def refuse(why: str) -> SpecError:
        return SpecError("oracle", f"pathwise: {name}'s callbacks do not pass gradients to the actions ({why}); "
                                   "use --oracle ddpg")

    k, steps = 4, min(2, problem.T)
    params = [p for p in actor.parameters() if p.requires_grad]
    try:
        cost = rollout_cost(actor, actions, problem, m, c, n=k, generator=generator, dtype=dtype, steps=steps).sum()
        grads = torch.autograd.grad(cost, params, allow_unused=True)
    except RuntimeError as err:
        raise refuse(f"backward failed: {str(err).splitlines()[0]}") from None
    if all(g is None or not bool(torch.any(g != 0)) for g in grads):
        raise refuse("the cost's gradient does not reach the actor")
    # the future cost's dependence on a_0: through step (and the later callbacks' dependence on x)
    x = problem.sample_x0(k, generator).to(dtype)
    u = (torch.rand(k, problem.p, generator=generator, dtype=torch.float32, device=generator.device) - 0.5)
    a0 = actions.to_action(u, dtype).requires_grad_(True)
    try:
        x1 = problem.step(0, x, a0, m, generator).to(dtype)
        if problem.T >= 2:
            a1 = actions.to_action(torch.zeros(k, problem.p, device=x.device), dtype)
            future = -problem.reward(1, x1, a1, m) - problem.terminal_reward(problem.step(1, x1, a1, m, generator), m)
        else:
            future = -problem.terminal_reward(x1, m)
        if not future.requires_grad:
            raise refuse("step or the later rewards detach the next state from the action")
        (g0,) = torch.autograd.grad(future.sum(), a0, allow_unused=True)
    except RuntimeError as err:
        raise refuse(f"backward failed: {str(err).splitlines()[0]}") from None
    if g0 is None or not bool(torch.any(g0 != 0)) or not bool(torch.isfinite(g0).all()):
        raise refuse("step or the later rewards detach the next state from the action")


def differentiable(problem: Problem) -> bool:
    """Whether ``problem``'s callbacks pass gradients to the actions (the probe of :func:`check_gradients` on a small
    actor against the problem's static flow): where the pathwise oracle applies."""
    from mfgsolve.population import static_flow

    m = static_flow(problem, n=64, generator=torch.Generator().manual_seed(0))
    probe = PathwiseOracle(seed=0, updates=1, hidden=8, encoder_dim=2, progress=False)
    probe._build(problem, *flow_standardisation(m, problem.T))
    actor, actions = probe.actor, probe.actions
    assert actor is not None and actions is not None and probe.std_floor is not None
    c = flow_context(m, problem.T, actor.encoder, probe.std_floor)  # type: ignore[arg-type]
    try:
        check_gradients(actor, actions, problem, m, c, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    except SpecError:
        return False
    return True


class PathwiseOracle(LearnedOracle):
    """The pathwise best-response oracle (``--oracle pathwise``): Adam on the rollout cost, gradients through the
    problem's callbacks (module docstring).

    Parameters
    ----------
    config : PathwiseConfig, optional
        Settings; keyword arguments override single fields (``PathwiseOracle(seconds=30)``).

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> pb = mfg.load_problem("lq-1d")
    >>> ref = pb.reference()
    >>> m = mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)
    >>> oracle = PathwiseOracle(updates=10, batch=32, eval_every=5, eval_agents=64, progress=False)
    >>> pi, info = oracle.best_response(pb, m)
    >>> info.extra["updates"], type(pi).__name__
    (10, 'DDPGPolicy')
    """

    name = "pathwise"
    preset = PATHWISE  #: the run settings when none are given (nearly exact responses: little averaging)
    settings_type = PathwiseConfig  #: the settings ``make_oracle(name, **settings)`` takes

    def __init__(self, config: PathwiseConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else PathwiseConfig()
        self.cfg = PathwiseConfig(**{**asdict(base), **overrides}) if overrides else base
        self.calls = 0
        self.actor: Actor | None = None
        self.optimiser: torch.optim.Optimizer | None = None
        self.dims: tuple[int, int, int] | None = None
        self.actions: ActionMap | None = None
        self.std_floor: torch.Tensor | None = None
        self.bounds: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        self._generators: dict[str, torch.Generator] | None = None  # made at first use, from the resolved seed

    @property
    def generators(self) -> dict[str, torch.Generator]:
        """The random streams (:data:`GENERATORS`) of the seed of :attr:`settings`, made at first use."""
        if self._generators is None:
            self._generators = named_generators(self.settings.seed, GENERATORS, self.device)
        return self._generators

    @property
    def trained(self) -> bool:
        return self._generators is not None

    def config(self) -> dict[str, Any]:
        """The settings (seed and budget resolved), without ``progress`` (display only: it changes no result)."""
        cfg = asdict(self.settings)
        cfg.pop("progress")
        return {"name": self.name, **cfg}

    # ------------------------------------------------------------------ networks
    def _build(self, problem: Problem, loc: torch.Tensor, scale: torch.Tensor) -> None:
        """A fresh actor (from the ``init`` stream) for states standardised by ``loc``, ``scale``; its Adam."""
        cfg, g = self.settings, self.generators["init"]
        n, p, T = problem.n, problem.p, problem.T
        self._make(cfg, (n, p, T), loc, scale, (getattr(problem, "action_low", None), getattr(problem, "action_high", None)), g)

    def _make(self, cfg: PathwiseConfig, dims: tuple[int, int, int], loc: torch.Tensor, scale: torch.Tensor,
              bounds: tuple[torch.Tensor | None, torch.Tensor | None], g: torch.Generator) -> None:
        n, p, T = dims
        bounded = bounds[0] is not None and bounds[1] is not None
        encoder = make_encoder(cfg.encoder, n, loc=loc, scale=scale, out_dim=cfg.encoder_dim, hidden=cfg.hidden,
                               activation=cfg.activation, bins=16, particles=32, heads=2, generator=g)
        actor = Actor(n, p, encoder, hidden=cfg.hidden, activation=cfg.activation, bounded=bounded,
                      skip=cfg.actor_skip, steps=T if cfg.step_onehot else None).to(g.device)
        init_parameters(actor, g, final=actor.head[-1])  # type: ignore[arg-type]
        if actor.skip is not None:  # start from (nearly) zero actions: a random linear feedback can destabilise
            torch.nn.init.zeros_(actor.skip.weight)
        self.actor, self.dims, self.bounds = actor, dims, bounds
        self.optimiser = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
        self.actions = ActionMap(bounds[0], bounds[1], cfg.action_scale)
        self.std_floor = (0.1 * scale).to("cpu", torch.float64)  # beside the flow contexts, on the CPU

    def _policy(self, actor: Actor) -> DDPGPolicy:
        assert self.actions is not None and self.std_floor is not None and self.dims is not None
        return DDPGPolicy(actor, T=self.dims[2], std_floor=self.std_floor, actions=self.actions)

    # ------------------------------------------------------------------ best response
    def best_response(self, problem: Problem, m: Flow, warm_start: Any | None = None) -> tuple[DDPGPolicy, BestResponseInfo]:
        """Train against the frozen ``m`` for the configured budget; return the best evaluated actor as a policy.

        Raises
        ------
        SpecError
            (``oracle``) when the problem's callbacks do not pass gradients (:func:`check_gradients`).
        FloatingPointError
            When a loss or the parameters become non-finite (the update is named).
        """
        cfg = self.settings
        start = time.perf_counter()
        self.calls += 1
        call = self.calls
        dims = (problem.n, problem.p, problem.T)
        warm = cfg.warm_start and isinstance(warm_start, DDPGPolicy) and self.actor is not None and self.dims == dims
        if warm:
            self.actor.load_state_dict(warm_start.actor.state_dict())  # type: ignore[union-attr]
        else:
            self._build(problem, *flow_standardisation(m, problem.T))
        actor, opt, acts, g = self.actor, self.optimiser, self.actions, self.generators
        assert actor is not None and opt is not None and acts is not None and self.std_floor is not None
        dtype = DTYPES[cfg.dtype]
        c = flow_context(m, problem.T, actor.encoder, self.std_floor)  # type: ignore[arg-type]
        if call == 1 or not warm:
            check_gradients(actor, acts, problem, m, c, dtype=dtype,
                            generator=torch.Generator(device=self.device).manual_seed(0))
        params = list(actor.parameters())
        share = cfg.warm_budget if warm else 1.0
        budget = Budget(None if cfg.updates is None else max(1, math.ceil(share * cfg.updates)),
                        None if cfg.seconds is None else share * cfg.seconds, start)
        lr0 = cfg.warm_lr if warm else cfg.lr
        eval_seed = int(torch.randint(2**62, (1,), generator=g["eval"], device=self.device))  # CRN within a response

        def evaluate() -> float:
            gen = torch.Generator(device=self.device).manual_seed(eval_seed)
            live = DDPGPolicy(actor, T=problem.T, std_floor=self.std_floor, actions=acts)  # type: ignore[arg-type]
            return float(rollout_costs(problem, live.bind(m), m, n=cfg.eval_agents, generator=gen).mean())

        best_J, best_state, best_update = math.inf, None, 0
        evals: list[list[float]] = []

        def checkpoint(update: int) -> None:
            nonlocal best_J, best_state, best_update
            for prm in params:
                if not bool(torch.isfinite(prm.detach()).all()):
                    raise FloatingPointError(f"pathwise: non-finite actor parameters at update {update} of best "
                                             f"response {call} (try a smaller lr or grad_clip)")
            J = evaluate()
            evals.append([update, budget.elapsed(), J])
            if J < best_J:
                best_J, best_update, best_state = J, update, copy.deepcopy(actor.state_dict())

        by_updates = cfg.updates is not None
        bar = tqdm(total=budget.updates if by_updates else budget.seconds, desc=f"pathwise br {call}",
                   disable=None if cfg.progress is None else not cfg.progress, leave=False,
                   unit="upd" if by_updates else "s")
        updates, loss_value, last_eval = 0, math.nan, -1
        average: list[torch.Tensor] | None = None
        averaged = 0
        checkpoint(0)  # the starting actor (the warm start) is a candidate too
        last_eval = 0
        while not budget.over(updates):
            for group in opt.param_groups:
                group["lr"] = lr0 * (1.0 - (1.0 - cfg.lr_final) * budget.fraction(updates))
            loss = rollout_cost(actor, acts, problem, m, c, n=cfg.batch, generator=g["rollout"], dtype=dtype).mean()
            if not bool(torch.isfinite(loss.detach())):
                raise FloatingPointError(f"pathwise: non-finite loss at update {updates} of best response {call} "
                                         "(try a smaller lr or grad_clip: from the CLI --br-set lr=1e-4 "
                                         "--br-set grad_clip=1)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            loss_value = float(loss.detach())
            updates += 1
            if cfg.average_from is not None and budget.fraction(updates) >= cfg.average_from:
                with torch.no_grad():  # the running mean of the iterates since average_from
                    averaged += 1
                    if average is None:
                        average = [prm.detach().clone() for prm in params]
                    else:
                        torch._foreach_lerp_(average, [prm.detach() for prm in params], 1.0 / averaged)
            if by_updates:
                bar.update(1)
            if updates % cfg.eval_every == 0:
                checkpoint(updates)
                last_eval = updates
                bar.set_postfix(J=f"{evals[-1][2]:.4g}")
        if not by_updates:
            bar.n = round(min(budget.elapsed(), budget.seconds), 1)  # type: ignore[type-var]
            bar.refresh()
        bar.close()
        if last_eval != updates:
            checkpoint(updates)
        final_J = evals[-1][2]
        average_J = math.nan
        if average is not None and averaged > 1:  # the averaged iterate is one more candidate
            with torch.no_grad():
                for prm, mean in zip(params, average):
                    prm.copy_(mean)
            average_J = evaluate()
            if average_J < best_J:
                best_J, best_update, best_state = average_J, -1, copy.deepcopy(actor.state_dict())
        if best_state is not None:
            actor.load_state_dict(best_state)
        policy = self._policy(copy.deepcopy(actor).eval().requires_grad_(False))
        seconds = time.perf_counter() - start
        extra = {"updates": updates, "rollouts": updates * cfg.batch, "eval_J": best_J, "final_eval_J": final_J,
                 "best_update": best_update, "average_J": average_J, "averaged": averaged, "loss": loss_value, "eval_seed": eval_seed, "evals": evals,
                 "seconds": seconds}
        return policy, BestResponseInfo(seconds=seconds, value=best_J, extra=extra)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything that reproduces the oracle's next best responses exactly: tensors and plain Python only."""
        gens = self._generators
        out: dict[str, Any] = {
            "config": asdict(self.settings),
            "calls": self.calls,
            "generators": None if gens is None else {k: gg.get_state() for k, gg in gens.items()},
            "built": self.actor is not None,
        }
        if self.actor is not None:
            assert self.dims is not None and self.optimiser is not None
            enc = self.actor.encoder
            out.update(dims=list(self.dims), low=self.bounds[0], high=self.bounds[1],
                       loc=enc.loc.clone(), scale=enc.scale.clone(),  # type: ignore[union-attr]
                       actor=self.actor.state_dict(), optimiser=self.optimiser.state_dict())
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the configuration must be the one it was saved with)."""
        cfg = self.settings
        if state["config"] != asdict(cfg):
            raise ValueError("pathwise state was saved with another configuration")
        self.calls = int(state["calls"])
        self.actor = self.optimiser = None
        self.dims = None
        if state["generators"] is None:
            self._generators = None
            return
        for k, gg in self.generators.items():
            gg.set_state(state["generators"][k].cpu())  # a generator's state is a CPU tensor, whatever its device
        if state["built"]:
            dims = tuple(int(v) for v in state["dims"])
            self._make(cfg, dims, state["loc"].double(), state["scale"].double(),  # type: ignore[arg-type]
                       (state["low"], state["high"]), torch.Generator(device=self.device).manual_seed(0))
            assert self.actor is not None and self.optimiser is not None
            self.actor.load_state_dict(state["actor"])
            self.optimiser.load_state_dict(state["optimiser"])
