r"""Stable-Baselines3 agents as best-response oracles (``--oracle sb3:SAC``, ``sb3:TD3``, ``sb3:DDPG``, ``sb3:PPO``).

Each best response trains an SB3 agent on :class:`mfgsolve.envs.FrozenFlowEnv` (one agent against the frozen
flow ``m``, unit actions in ``[-1, 1]``) and returns its *deterministic* policy as a :class:`SB3Policy`: a plain
``torch.nn.Sequential`` copied out of the SB3 policy (SAC: the mean through ``tanh``; TD3/DDPG: the actor;
PPO: the Gaussian mean clipped to ``[-1, 1]``), so that a checkpoint holds data only. The budget is counted in
**environment steps** (``updates``: SB3's ``learn(total_timesteps=...)``; one gradient step per environment step
for the off-policy algorithms after ``learning_starts``), or in wall seconds (a callback stops training). A warm
start continues the previous response's model on the new flow (``set_env``), with an emptied replay unless
``keep_replay``.

SB3 seeds Python's, numpy's and torch's global generators; the oracle reseeds them before each response from its
seed and the call count, and restores the caller's states afterwards, so runs are reproducible and the rest of a
run does not see the oracle's draws.

The module imports without the optional packages; making the oracle without them raises one
:class:`mfgsolve.SpecError` line saying how to install them (``pip install -e ".[rl]"``).

>>> from mfgsolve.oracles.sb3 import SB3Config
>>> SB3Config(algo="TD3", updates=300).algo
'TD3'
>>> SB3Config(algo="A2C")
Traceback (most recent call last):
...
mfgsolve.errors.SpecError: algo: must be one of SAC, TD3, DDPG, PPO, got 'A2C'
"""

from __future__ import annotations

import copy
import io
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import numpy as np
import torch

from mfgsolve.envs.common import INSTALL_HINT, observation, population_features
from mfgsolve.errors import SpecError
from mfgsolve.evaluation import rollout_costs
from mfgsolve.flows import Flow
from mfgsolve.learn.actions import ActionMap
from mfgsolve.oracles.base import BestResponseInfo, LearnedOracle
from mfgsolve.oracles.settings import check_fields
from mfgsolve.policies import Policy
from mfgsolve.problem import Problem

__all__ = ["SB3Config", "SB3Oracle", "SB3Policy", "ALGOS"]

#: The SB3 algorithms the oracle runs.
ALGOS = ("SAC", "TD3", "DDPG", "PPO")
_OFF_POLICY = ("SAC", "TD3", "DDPG")


@dataclass(frozen=True)
class SB3Config:
    """Settings of the SB3 best-response oracle (validated on construction)."""

    algo: str = "SAC"
    """The SB3 algorithm: SAC, TD3, DDPG or PPO."""
    seed: int | None = None
    """Seed of the agent and its environment; ``None``: the run's seed, 0 when the oracle is used on its own."""
    updates: int | None = None
    """**Environment steps** per best response (SB3's ``total_timesteps``; not gradient updates: the off-policy
    algorithms take one gradient step per environment step after ``learning_starts``, PPO ``n_epochs`` passes
    over each rollout). With ``seconds`` too, training ends at whichever comes first (PPO completes its rollout).
    With neither: the run's budget, ``mfgsolve.presets.LEARNED.br_updates`` when used on its own."""
    seconds: float | None = None
    """Wall-clock seconds per best response (``None``: no time limit)."""
    learning_rate: float = 3e-4
    """Adam learning rate (constant)."""
    gamma: float = 1.0
    """Discount per step (1: the finite-horizon objective itself; the time is observed)."""
    batch_size: int = 256
    """Transitions per gradient step (PPO: per minibatch)."""
    buffer_size: int = 100_000
    """Replay capacity (off-policy algorithms)."""
    learning_starts: int = 100
    """Random-action steps before the first gradient step (off-policy algorithms; first response only)."""
    tau: float = 0.005
    """Soft target update rate (off-policy algorithms)."""
    noise_sigma: float = 0.3
    """Gaussian exploration noise of TD3 and DDPG, in unit actions."""
    n_steps: int = 256
    """Rollout length of PPO."""
    n_epochs: int = 10
    """Passes of PPO over each rollout."""
    hidden: int = 64
    """Width of the hidden layers of the policy and value networks."""
    layers: int = 2
    """Hidden layers of the policy and value networks."""
    action_scale: float = 5.0
    """Problem action per unit action for a problem without bounds (``lq-1d``'s equilibrium actions lie within
    +-5 for all but the farthest agents); ignored for a problem with bounds."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this during training."""
    population_features: bool = False
    """The agent also observes the mean and std of :math:`m_t` (constant within a response; it lets a
    warm-started agent tell flows apart)."""
    eval_agents: int = 1024
    """Agents of the evaluation of the returned policy (its ``value``)."""
    warm_start: bool = True
    """Continue the previous response's model when ``best_response`` is given its policy."""
    keep_replay: bool = False
    """On a warm start keep the transitions of the earlier flows (off-policy algorithms; not in checkpoints)."""
    progress: bool | None = None
    """Progress bar on stderr; ``None``: only when stderr is a terminal."""

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise SpecError("algo", f"must be one of {', '.join(ALGOS)}, got {self.algo!r}")
        check_fields(self)

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise SpecError(name, f"{what}, got {getattr(self, name)!r}")

        for name in ("buffer_size", "n_steps", "n_epochs", "hidden", "layers", "eval_agents"):
            need(getattr(self, name) >= 1, name, "must be a positive integer")
        need(self.batch_size >= 2, "batch_size", "must be at least 2")
        need(self.learning_starts >= 0, "learning_starts", "must be a non-negative integer")
        for name in ("learning_rate", "action_scale", "reward_scale"):
            need(getattr(self, name) > 0, name, "must be positive")
        for name in ("gamma", "tau"):
            need(0 < getattr(self, name) <= 1, name, "must lie in (0, 1]")
        need(self.noise_sigma >= 0, "noise_sigma", "must be non-negative")


def _sb3() -> Any:
    """The ``stable_baselines3`` module, or a :class:`SpecError` line saying how to install it."""
    try:
        import gymnasium  # noqa: F401
        import stable_baselines3
    except ImportError:
        raise SpecError("oracle", f"sb3 {INSTALL_HINT}") from None
    return stable_baselines3


# ================================================================================================ policy
class SB3Policy(Policy):
    r"""The deterministic policy of an SB3 agent, :math:`\pi(t, x[, m_t])`: a plain network on the observations of
    :class:`mfgsolve.envs.FrozenFlowEnv`, unit actions mapped by ``actions``.

    With ``features`` ``(T + 1, 2n)`` fixed (a bound policy) it reads no flow; without them it reads the mean
    and std of the flow it plays when ``population`` is set (and no flow otherwise).
    """

    def __init__(self, net: torch.nn.Sequential, *, T: int, actions: ActionMap, population: bool,
                 features: torch.Tensor | None = None) -> None:
        self.net = net
        self.T = T
        self.actions = actions
        self.population = population
        self.features = features

    def unit_act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        f = None
        if self.population:
            f = self.features[t] if self.features is not None else population_features(m, self.T)[t]
        with torch.no_grad():
            return self.net(observation(x, t, self.T, f))

    def act(self, t: int, x: torch.Tensor, m: Flow) -> torch.Tensor:
        return self.actions.to_action(self.unit_act(t, x, m), x.dtype)

    def bind(self, m: Flow) -> SB3Policy:
        """The policy with the population features of ``m`` read once (itself when it reads none)."""
        if not self.population or self.features is not None:
            return self
        return SB3Policy(self.net, T=self.T, actions=self.actions, population=True,
                         features=population_features(m, self.T))


def deterministic_net(model: Any, device: torch.device | str = "cpu") -> torch.nn.Sequential:
    """The deterministic policy of an SB3 ``model`` as a ``torch.nn.Sequential`` of torch's own layers on
    ``device``, from the observation to the unit action (what ``model.predict(obs, deterministic=True)`` returns)."""
    algo = type(model).__name__
    if algo == "SAC":
        actor = model.actor
        layers = [torch.nn.Flatten(), *actor.latent_pi, actor.mu, torch.nn.Tanh()]
    elif algo in ("TD3", "DDPG"):
        layers = [torch.nn.Flatten(), *model.actor.mu]
    elif algo == "PPO":
        pol = model.policy
        layers = [torch.nn.Flatten(), *pol.mlp_extractor.policy_net, pol.action_net, torch.nn.Hardtanh(-1.0, 1.0)]
    else:
        raise TypeError(f"no deterministic network for {algo}")
    net = copy.deepcopy(torch.nn.Sequential(*layers)).to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# ================================================================================================ oracle
@contextmanager
def _global_rngs(seed: int) -> Iterator[None]:
    """Python's, numpy's and torch's global generators seeded with ``seed`` inside, the caller's states after."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


class SB3Oracle(LearnedOracle):
    """Best responses by a Stable-Baselines3 agent (``--oracle sb3:SAC``; module docstring).

    Parameters
    ----------
    algo : str or SB3Config, optional
        SAC, TD3, DDPG or PPO (or the whole settings, as :meth:`for_run` passes them).
    config : SB3Config, optional
        Settings; keyword arguments override single fields (``SB3Oracle("TD3", updates=2000)``).

    Examples
    --------
    >>> import mfgsolve as mfg
    >>> pb = mfg.load_problem("lq-1d")
    >>> oracle = SB3Oracle("TD3", updates=60, learning_starts=20, batch_size=16, eval_agents=64, progress=False)
    >>> pi, info = oracle.best_response(pb, mfg.static_flow(pb, kind="gaussian"))  # doctest: +SKIP
    """

    name = "sb3"
    settings_type = SB3Config  #: the settings ``make_oracle(name, **settings)`` takes

    def __init__(self, algo: str | SB3Config | None = None, config: SB3Config | None = None,
                 **overrides: Any) -> None:
        if isinstance(algo, SB3Config):
            config, algo = algo, None
        base = config if config is not None else SB3Config()
        if algo is not None:
            overrides = {**overrides, "algo": algo}
        self.cfg = SB3Config(**{**asdict(base), **overrides}) if overrides else base
        self.name = f"sb3:{self.cfg.algo}"  # as --oracle names it; the run's summary says which algorithm
        _sb3()  # one SpecError line without the optional packages
        self.calls = 0
        self.model: Any = None
        self._dims: tuple[int, int, int] | None = None
        self._started = False

    @property
    def trained(self) -> bool:
        return self._started

    def config(self) -> dict[str, Any]:
        """The settings (seed and budget resolved), without ``progress``."""
        cfg = asdict(self.settings)
        cfg.pop("progress")
        return {"name": self.name, **cfg}

    # ------------------------------------------------------------------ training

    def _call_seed(self) -> int:
        return int(np.random.SeedSequence([self.settings.seed, self.calls]).generate_state(1)[0])

    def _make_model(self, env: Any, seed: int) -> Any:
        sb3 = _sb3()
        cfg = self.settings
        cls = getattr(sb3, cfg.algo)
        common = dict(learning_rate=cfg.learning_rate, gamma=cfg.gamma, seed=seed, device=str(self.device), verbose=0,
                      policy_kwargs={"net_arch": [cfg.hidden] * cfg.layers})
        if cfg.algo == "PPO":
            return cls("MlpPolicy", env, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                       **common)
        off = dict(buffer_size=cfg.buffer_size, batch_size=cfg.batch_size, learning_starts=cfg.learning_starts,
                   tau=cfg.tau)
        if cfg.algo in ("TD3", "DDPG") and cfg.noise_sigma > 0:
            from stable_baselines3.common.noise import NormalActionNoise

            p = env.action_space.shape[0]
            off["action_noise"] = NormalActionNoise(np.zeros(p), cfg.noise_sigma * np.ones(p))
        return cls("MlpPolicy", env, **off, **common)

    def _callback(self, start: float, steps: int | None) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback
        from tqdm.auto import tqdm

        cfg = self.settings
        show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()

        class _Budget(BaseCallback):  # stops at the time limit; drives the progress bar
            def _on_training_start(self) -> None:
                self.bar = tqdm(total=steps if steps is not None else cfg.seconds, disable=not show, leave=False,
                                desc=f"sb3:{cfg.algo}", unit="step" if steps is not None else "s")

            def _on_step(self) -> bool:
                elapsed = time.perf_counter() - start
                if steps is not None:
                    self.bar.update(1)
                else:
                    self.bar.n = round(min(elapsed, cfg.seconds), 1)
                    self.bar.refresh()
                return cfg.seconds is None or elapsed < cfg.seconds

            def _on_training_end(self) -> None:
                self.bar.close()

        return _Budget()

    def best_response(self, problem: Problem, m: Flow, warm_start: Any | None = None) -> tuple[SB3Policy, BestResponseInfo]:
        """Train the SB3 agent against the frozen ``m`` for the budget; return its deterministic policy."""
        from mfgsolve.envs.frozen import FrozenFlowEnv

        cfg = self.settings
        start = time.perf_counter()
        self._started = True
        self.calls += 1
        seed = self._call_seed()
        env = FrozenFlowEnv(problem, m, population_features=cfg.population_features, bounded=True,
                            action_scale=cfg.action_scale, reward_scale=cfg.reward_scale)
        dims = (problem.n, problem.p, problem.T)
        warm = (cfg.warm_start and isinstance(warm_start, SB3Policy) and self.model is not None
                and self._dims == dims)
        with _global_rngs(seed):
            if warm:
                self.model.set_env(env)
                self.model.set_random_seed(seed)
                if cfg.algo in _OFF_POLICY and not cfg.keep_replay:
                    self.model.replay_buffer.reset()
            else:
                self.model = self._make_model(env, seed)
                self._dims = dims
            steps = cfg.updates
            total = steps if steps is not None else 10**12
            before = self.model.num_timesteps
            self.model.learn(total_timesteps=total, callback=self._callback(start, steps),
                             reset_num_timesteps=not warm)
            trained_steps = self.model.num_timesteps - before
        policy = SB3Policy(deterministic_net(self.model, self.device), T=problem.T, actions=env.actions,
                           population=cfg.population_features)
        g = torch.Generator(device=self.device).manual_seed(seed)
        costs = rollout_costs(problem, policy.bind(m), m, n=cfg.eval_agents, generator=g)
        value = float(costs.mean())
        seconds = time.perf_counter() - start
        extra = {"env_steps": int(trained_steps), "total_env_steps": int(self.model.num_timesteps),
                 "eval_J": value, "warm": bool(warm), "algo": cfg.algo, "seconds": seconds}
        return policy, BestResponseInfo(seconds=seconds, value=value, extra=extra)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Settings, call count and the SB3 model as the bytes of its zip (weights and optimisers, no replay):
        bytes and plain values only, so a weights-only checkpoint holds it. A resumed run continues with an
        empty replay (what every warm start has unless ``keep_replay``)."""
        model = None
        if self.model is not None:
            buf = io.BytesIO()
            self.model.save(buf)
            model = buf.getvalue()
        return {"config": asdict(self.settings), "calls": self.calls, "started": self._started,
                "dims": None if self._dims is None else list(self._dims), "model": model}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the configuration must be the one it was saved with)."""
        cfg = self.settings
        if state["config"] != asdict(cfg):
            raise ValueError("sb3 state was saved with another configuration")
        self.calls = int(state["calls"])
        self._started = bool(state["started"])
        self._dims = None if state["dims"] is None else tuple(int(d) for d in state["dims"])  # type: ignore[assignment]
        self.model = None
        if state["model"] is not None:
            cls = getattr(_sb3(), cfg.algo)
            self.model = cls.load(io.BytesIO(state["model"]), device=str(self.device))
