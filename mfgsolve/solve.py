r"""The outer loop: an explicit search for :math:`m^* = \mu(\mathrm{BR}(m^*))`.

One iteration ``k``: freeze :math:`m^k`, ask the oracle for :math:`\pi^k = \mathrm{BR}(m^k)`, propagate
:math:`\mu(\pi^k)` against :math:`m^k`, mix with the scheme's weight into :math:`m^{k+1}`, and record the
residual :math:`\max_t W_2(m^{k+1}_t, m^k_t)`, its ratios, the a-posteriori bound, the error against the
reference and the exploitability when they are computable. Every oracle and scheme runs through this one loop.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from mfgsolve import rundir
from mfgsolve.checkpoint import load_checkpoint, save_checkpoint
from mfgsolve.devices import resolve_device
from mfgsolve.diagnosis import diagnose, posterior_bound, regression_rate, running_rate
from mfgsolve.errors import NoEquilibriumError, ResponseFailedError, RunDirError, SpecError
from mfgsolve.flows import Flow, GaussianFlow, ParticleFlow
from mfgsolve.lq.problem import LQProblem
from mfgsolve.metrics import (METHODS, Method, bounding_response, computes_exploitability, exploitability,
                              exploitability_by_oracle, flow_distance, mean_error, resolution)
from mfgsolve.oracles.base import Oracle
from mfgsolve.policies import Policy
from mfgsolve.population import FlowKind, propagate, static_flow
from mfgsolve.options import Evaluation, FlowOption, Gaussian, Particles, RunDir, Stop
from mfgsolve.presets import preset_for
from mfgsolve.problem import Problem, Reference, default_particles, probe_problem
from mfgsolve.registry import problem_source
from mfgsolve.results import (
    IterationRecord,
    SolveResult,
    Summary,
    atomic_write,
    environment,
    save_run,
    write_history,
    write_json,
)
from mfgsolve.schemes import Scheme

__all__ = ["solve"]

#: A residual this many times the first one (or a non-finite one) ends the run as diverging.
BLOWUP = 1e8


def _reference_of(problem: Problem) -> tuple[Reference | None, str | None]:
    """The problem's exact equilibrium (or ``None``) and, when it has none, why."""
    ref = getattr(problem, "reference", None)
    if ref is None:
        return None, None
    try:
        return ref(), None
    except NoEquilibriumError as exc:  # no unique equilibrium: nothing to measure against, and nothing to find
        return None, str(exc)
    except ArithmeticError:  # e.g. a reference that fails its own certificate: nothing to measure against
        return None, None


def _resolve_metric(metric: Method, flow: FlowKind, n: int) -> str:
    """The estimator the loop uses: closed forms for Gaussian flows; for particles the exact sorted distance in
    1-D and the coupling bound in n-D (``"auto"``), else what was asked for."""
    if metric not in METHODS:
        raise SpecError("metric", f"unknown estimator {metric!r} (choose from {', '.join(METHODS)})")
    if flow == "gaussian":
        if metric in ("auto", "moments"):
            return "closed-form"
        raise SpecError("metric", f"{metric!r} applies to particle flows; Gaussian flows use the closed form")
    if metric == "auto":
        return "exact" if n == 1 else "coupling"
    return metric


def noise_seed(seed: int) -> int:
    """The seed of the run's common random numbers (initial states and dynamics noise), derived from ``seed``
    apart from the streams ``seed`` and ``seed + 1`` that the run's other generators use."""
    return int(np.random.SeedSequence([seed, 0x4352_4E]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _cosine(d1: torch.Tensor | None, d0: torch.Tensor | None) -> float:
    if d1 is None or d0 is None:
        return math.nan
    a, b = d1.flatten(), d0.flatten()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else math.nan


@dataclass
class _LoopState:
    """Everything the loop carries between iterations: a checkpoint is this plus the oracle's state."""

    k: int
    m: Flow
    policy: Policy | None
    warm: Any
    history: list[IterationRecord]
    gaps: list[float]
    floors: list[float]
    cosines: list[float]
    last_step: torch.Tensor | None
    elapsed: float
    torch_state: torch.Tensor
    numpy_state: dict[str, Any]
    eval_state: torch.Tensor


CHECKPOINT = rundir.CHECKPOINT


def _save_checkpoint(run_dir: Path, state: _LoopState, oracle: Oracle) -> None:
    oracle_state = oracle.state_dict() if hasattr(oracle, "state_dict") else None
    blob = {"fingerprint": rundir.fingerprint_of(run_dir), "state": state, "oracle": oracle_state}
    atomic_write(run_dir / CHECKPOINT, save_checkpoint(blob))


def _load_checkpoint(run_dir: Path, oracle: Oracle, fingerprint: str, device: torch.device) -> _LoopState:
    # data only (mfgsolve.checkpoint's allow-list): a crafted file is refused before anything in it runs
    blob = load_checkpoint(run_dir / CHECKPOINT, extra=[_LoopState], device=device)
    if blob.get("fingerprint") != fingerprint or not isinstance(blob["state"], _LoopState):
        raise RunDirError("run_dir", f"{run_dir / CHECKPOINT} belongs to another run than {run_dir / 'config.json'}")
    if blob["oracle"] is not None:
        oracle.load_state_dict(blob["oracle"])  # type: ignore[attr-defined]
    return blob["state"]


def _check_arguments(problem: Any, oracle: Any, scheme: Any, *, stop: Any, flow: Any, seed: Any,
                     initial_flow: Any, evaluation: Any, run_dir: Any, callback: Any = None,
                     metadata: Any = None, device: torch.device = torch.device("cpu")) -> None:
    """Types and ranges of :func:`solve`'s arguments, each refused with a :class:`SpecError` naming it (the
    option objects check their own fields when they are made)."""
    for name in ("sample_x0", "step", "reward", "terminal_reward"):
        if not callable(getattr(problem, name, None)):
            hint = " (load it with mfgsolve.load_problem)" if isinstance(problem, (str, Path)) else ""
            raise SpecError("problem", f"expected a Problem, got {type(problem).__name__}{hint}")
    for name in ("n", "p", "T"):
        value = getattr(problem, name, None)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise SpecError("problem", f"{name} must be a positive integer, got {value!r}")
    if not callable(getattr(problem, "config", None)):  # recorded in config.json (the run's fingerprint)
        raise SpecError("problem", f"{type(problem).__name__} has no config() method: give it one returning a "
                                   "JSON-able dict that describes the problem (recorded in config.json)")
    if not callable(getattr(oracle, "best_response", None)):
        raise SpecError("oracle", f"expected an oracle (e.g. mfgsolve.ExactLQOracle()), got {type(oracle).__name__}")
    for name, value, kinds, what in (
            ("scheme", scheme, (Scheme,), "a Scheme (Picard(), Damped(alpha), FictitiousPlay())"),
            ("stop", stop, (Stop,), "a Stop(iterations=..., tol=...)"),
            ("flow", flow, (Particles, Gaussian), "Particles(n, metric) or Gaussian()"),
            ("evaluation", evaluation, (Evaluation,), "an Evaluation(particles, final_particles)"),
            ("run_dir", run_dir, (RunDir, str, os.PathLike), "a directory path or a RunDir(path, resume, overwrite)")):
        if value is not None and not isinstance(value, kinds):
            raise SpecError(name, f"expected {what}, got {value!r}")
    if callback is not None and not callable(callback):
        raise SpecError("callback", f"expected a function of an IterationRecord, got {callback!r}")
    if metadata is not None and not isinstance(metadata, dict):
        raise SpecError("metadata", f"expected a dict of config.json entries, got {type(metadata).__name__}")
    if isinstance(flow, Gaussian) and not getattr(oracle, "exact", False):
        raise SpecError("flow", "gaussian flows are exact only for the exact oracle's affine policies; use particles")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise SpecError("seed", f"must be an integer in [0, 2^63), got {seed!r}")
    T = getattr(problem, "T", None)
    if isinstance(flow, Particles) and flow.n is not None:
        # a run holds a few flows of (T+1) x particles x n doubles at once (frozen, new, mixed, halves)
        need = 6 * flow.n * (T + 1) * problem.n * 8
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if need > have:
            raise SpecError("particles", f"{flow.n} particles over {T + 1} times in R^{problem.n} need about "
                            f"{need / 2**30:.3g} GiB, more than the {have / 2**30:.3g} GiB of memory")
    if initial_flow is not None:
        if not isinstance(initial_flow, (GaussianFlow, ParticleFlow)):
            raise SpecError("initial_flow", f"expected a GaussianFlow or ParticleFlow, got {type(initial_flow).__name__}")
        if initial_flow.T != T or initial_flow.n != problem.n:
            raise SpecError("initial_flow", f"has horizon {initial_flow.T} and dimension {initial_flow.n}; the problem "
                            f"has {T} and {problem.n}")
    probe_problem(problem, device)


def _summary(problem: Problem, oracle: Oracle, scheme: Scheme, history: list[IterationRecord], *, converged: bool,
             diagnosis: str, advice: str | None, expl: Any, reference: Reference | None, wall: float,
             suggestion: Scheme | None = None, bound: dict[str, Any] | None = None) -> Summary:
    """The summary of a run from its history, its verdict and the final exploitability (``None``: none)."""
    residuals = [h.residual for h in history]
    return Summary(
        problem=getattr(problem, "name", type(problem).__name__),
        oracle=oracle.name,
        scheme=scheme.name,
        iterations=len(history),
        converged=converged,
        diagnosis=diagnosis,
        advice=advice,
        residuals=residuals,
        contraction_rate=regression_rate(residuals),
        mean_error=history[-1].mean_error if history else None,
        exploitability=expl.value if expl else None,
        relative_exploitability=expl.relative if expl else None,
        exploitability_se=expl.se if expl else None,
        J_policy=expl.J_policy if expl else None,
        J_best=expl.J_best if expl else None,
        reference_J=float(reference.J) if reference is not None and reference.J is not None else None,
        reference_rho=float(reference.rho) if reference is not None and reference.rho is not None else None,
        wall_seconds=wall,
        suggestion=suggestion.config() if suggestion is not None else None,
        exploitability_bound=bound,
    )


def _fail_run(out: Path | None, problem: Problem, oracle: Oracle, scheme: Scheme, st: _LoopState, error: str,
              wall: float) -> None:
    """Write the summary of a run whose best response failed (the history so far is already on disk)."""
    if out is None:
        return
    summary = _summary(problem, oracle, scheme, st.history, converged=False, diagnosis="failed-response",
                       advice=f"{error}; the learned oracle's settings can be set with --br-set KEY=VALUE",
                       expl=None, reference=None, wall=wall)
    write_json(out / "summary.json", asdict(summary))


def solve(
    problem: Problem,
    oracle: Oracle,
    *,
    scheme: Scheme | None = None,
    stop: Stop | None = None,
    flow: FlowOption | None = None,
    seed: int = 0,
    initial_flow: Flow | None = None,
    evaluation: Evaluation | None = None,
    run_dir: RunDir | str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    callback: Callable[[IterationRecord], None] | None = None,
    metadata: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
) -> SolveResult:
    r"""Search the equilibrium flow by iterating best responses under ``scheme``.

    Every setting left out takes the recommended value for the oracle's kind (:mod:`mfgsolve.presets`: exact or
    learned), the same as the command line's: ``solve(load_problem("lq-1d"), DDPGOracle(), seed=0)`` is the run
    of ``mfgsolve solve lq-1d --seed 0``.

    Parameters
    ----------
    problem : Problem
    oracle : Oracle
        Best responses to frozen flows (e.g. :class:`mfgsolve.ExactLQOracle`). A learned oracle made without a
        seed or a budget takes the run's ``seed`` and the preset's budget (:meth:`Oracle.for_run`).
    scheme : Scheme, optional
        :class:`Picard`, :class:`Damped` or :class:`FictitiousPlay`; default the preset's (Picard for an exact
        oracle, fictitious play with recency 6 for a learned one).
    stop : Stop, optional
        Iteration budget and tolerance on the fixed-point gap (:class:`mfgsolve.Stop`); what it leaves out, the
        preset gives (100 iterations and 1e-10 exact, 15 and 1e-3 learned).
    flow : Particles or Gaussian, optional
        How the flow is carried (:class:`mfgsolve.Particles`, :class:`mfgsolve.Gaussian`); default Gaussian for
        an LQ problem with the exact oracle, else particles. Every particle flow of the run is drawn with common
        random numbers (particle ``i`` keeps its initial state and noise path; schemes mix by taking each
        particle from one side), so the coupling measures what the policies changed, with no sampling floor.
        ``config.json`` names the estimator used; each iteration also records its sampling floor
        (:func:`mfgsolve.resolution`) beside the residual.
    seed : int
        Seeds the one ``torch.Generator`` (particles, mixture draws) and ``numpy.random.Generator``
        (Wasserstein subsampling) of the run, and a learned oracle made without a seed.
    initial_flow : Flow, optional
        :math:`m^0`; default the initial law held still over time.
    evaluation : Evaluation, optional
        Agents of the Monte-Carlo exploitability of learned policies (:class:`mfgsolve.Evaluation`).
    run_dir : path or RunDir, optional
        Write the run directory as the run goes: ``config.json`` first, then after every iteration
        ``history.csv`` and ``checkpoint.pt`` (loop state, generator states and the oracle's ``state_dict``),
        and at the end ``summary.json`` and ``flow.npz``. The directory belongs to this run
        (:mod:`mfgsolve.rundir`): it must be empty or absent, it is locked while the run writes, and
        ``config.json`` and the checkpoint record the run's fingerprint (problem content, oracle, scheme, flow,
        particles, seed, metric, evaluation sizes, initial flow). ``RunDir(path, resume=True)`` continues the
        run recorded there: with the same arguments it ends with the same history as an uninterrupted run
        (timing columns aside); another run's directory is refused, naming the setting that differs
        (``stop`` may change). ``RunDir(path, overwrite=True)`` replaces what the directory holds.
    progress : bool, optional
        Progress bar on stderr; default: only when stderr is a terminal.
    callback : callable, optional
        Called with each :class:`IterationRecord` as it is made.
    metadata : dict, optional
        Extra entries for ``config.json``.
    device : str or torch.device
        Where the particle flows, their propagation and evaluation, and a learned oracle's networks, replay and
        rollouts live: ``"cpu"`` (default: a seed gives the same history on every CPU), ``"cuda"``, ``"cuda:N"``
        or ``"auto"`` (:func:`mfgsolve.devices.resolve_device`). The run's random streams are drawn on it, so a
        CUDA run has other random numbers than a CPU run of the same seed. Recorded in ``config.json``; a run is
        resumed on a device of the same kind.

    Returns
    -------
    SolveResult
        ``history`` (one :class:`IterationRecord` per iteration), ``summary``, final ``flow`` and ``policy``:
        the last best response (Picard, damped) or fictitious play's mixture of them, each bound to the flow it
        answered (:meth:`Policy.bind`), so that exploitabilities evaluate the strategies that were computed.
    """
    device = resolve_device(device)
    _check_arguments(problem, oracle, scheme, stop=stop, flow=flow, seed=seed, initial_flow=initial_flow,
                     evaluation=evaluation, run_dir=run_dir, callback=callback, metadata=metadata, device=device)
    preset = preset_for(oracle)
    scheme = preset.scheme() if scheme is None else scheme
    stop = Stop() if stop is None else stop
    iterations = preset.iterations if stop.iterations is None else stop.iterations
    tol = preset.tol if stop.tol is None else stop.tol
    evaluation = Evaluation() if evaluation is None else evaluation
    eval_particles, final_eval_particles = evaluation.particles, evaluation.final_particles
    run = run_dir if isinstance(run_dir, RunDir) or run_dir is None else RunDir(run_dir)
    if preset.br_updates is not None and callable(getattr(oracle, "for_run", None)):
        oracle = oracle.for_run(seed=seed, updates=preset.br_updates, device=device)
    if flow is None:
        flow = Gaussian() if isinstance(problem, LQProblem) and getattr(oracle, "exact", False) else Particles()
    kind: FlowKind = flow.kind
    particles = default_particles(problem) if not isinstance(flow, Particles) or flow.n is None else flow.n
    estimator = _resolve_metric(flow.metric if isinstance(flow, Particles) else "auto", kind, problem.n)
    source = problem_source(problem)
    bound_oracle, bound_record = None, None
    if not computes_exploitability(problem) and evaluation.response != "none":
        bound_oracle, bound_record = bounding_response(problem, evaluation.response,
                                                      updates=evaluation.response_updates, seed=seed + 2)
        bound_record["agents"] = evaluation.response_agents
    config = {
        "problem": problem.config(),
        "oracle": oracle.config(),
        "scheme": scheme.config(),
        "iterations": iterations,
        "tol": tol,
        "flow": kind,
        "particles": particles if kind == "particles" else None,
        "metric": estimator,
        "seed": seed,
        "device": str(device),
        "eval_particles": eval_particles,
        "final_eval_particles": final_eval_particles,
        "initial_flow": rundir.flow_digest(initial_flow),
        **({"final_response": bound_record} if bound_record is not None else {}),
        **({"source": source} if source is not None else {}),
        **(metadata or {}),
        "environment": environment(device),
    }
    generator = torch.Generator(device=device).manual_seed(seed)
    eval_generator = torch.Generator(device=device).manual_seed(seed + 1)
    rng = np.random.default_rng(seed)
    crn = noise_seed(seed)
    reference, no_equilibrium = _reference_of(problem)
    ref_flow = (
        GaussianFlow.from_numpy(reference.mean, reference.cov)
        if reference is not None and reference.cov is not None
        else None
    )
    out = run.directory if run is not None else None
    claim = None
    if run is not None:  # the directory is this run's (lock, fingerprint, no stale checkpoint) before any work
        settings = rundir.run_settings(config)
        claim = rundir.claim(run.path, settings, resume=run.resume, overwrite=run.overwrite)
        config["fingerprint"] = claim.fingerprint
    try:  # the directory is released however the run ends (a refused argument, a failed response, Ctrl-C)
        if claim is not None and claim.has_checkpoint:
            assert out is not None
            st = _load_checkpoint(out, oracle, claim.fingerprint, device)
            generator.set_state(st.torch_state.cpu())  # a generator's state is a CPU tensor, whatever its device
            eval_generator.set_state(st.eval_state.cpu())
            rng.bit_generator.state = st.numpy_state
        else:
            m0 = initial_flow if initial_flow is not None else static_flow(
                problem, kind=kind, n=particles, generator=torch.Generator(device=device).manual_seed(crn))
            if isinstance(m0, ParticleFlow):
                m0 = m0.to(device)
            st = _LoopState(k=0, m=m0, policy=None, warm=None, history=[], gaps=[], floors=[], cosines=[], last_step=None,
                            elapsed=0.0, torch_state=generator.get_state(), numpy_state=rng.bit_generator.state,
                            eval_state=eval_generator.get_state())
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                write_json(out / "config.json", config)
        distance = dict(method="auto" if estimator == "closed-form" else estimator, rng=rng)
        learned = not getattr(oracle, "exact", False)

        converged = bool(st.history) and st.history[-1].gap <= tol
        blew_up = False
        start = time.perf_counter() - st.elapsed
        bar = tqdm(total=iterations, initial=st.k, desc=f"{scheme.name}/{oracle.name}",
                   disable=None if progress is None else not progress)
        while st.k < iterations and not converged:
            k, m = st.k, st.m
            try:
                pi, info = oracle.best_response(problem, m, warm_start=st.warm)
            except FloatingPointError as exc:
                _fail_run(out, problem, oracle, scheme, st, str(exc), time.perf_counter() - start)
                raise ResponseFailedError(f"best response {k + 1} failed: {exc}") from None
            mu = propagate(problem, pi, m, kind=kind, n=particles, generator=generator,
                           noise=torch.Generator(device=device).manual_seed(crn))
            # the response is a strategy against m: bound to it, it stays one inside averages and evaluations
            m_next, policy = scheme.update(k, m, mu, pi.bind(m), st.policy, generator)
            if isinstance(m_next, ParticleFlow) and m_next.size > particles:
                m_next = m_next.resample(particles, generator)

            residual = flow_distance(m_next, m, **distance)
            gap = residual if scheme.residual_is_gap else flow_distance(mu, m, **distance)
            floor = float(np.max(resolution(m_next, **distance)))
            step = m_next.means() - m.means()
            prev = st.history[-1].residual if st.history else None
            rate = running_rate([h.residual for h in st.history] + [residual])
            expl = exploitability(problem, policy, n=eval_particles, generator=eval_generator, flow=m_next)
            rec = IterationRecord(
                iteration=k + 1,
                residual=residual,
                gap=gap,
                ratio=residual / prev if prev else None,
                rate_estimate=rate,
                floor=floor,
                bound=None if scheme.decreasing else posterior_bound(rate, residual, floor),
                mean_error=mean_error(m_next, reference.mean) if reference is not None else None,
                reference_w2=flow_distance(m_next, ref_flow, method="moments") if ref_flow is not None else None,
                exploitability=expl.value if expl else None,
                relative_exploitability=expl.relative if expl else None,
                exploitability_se=expl.se if expl else None,
                br_value=info.value,
                br_seconds=info.seconds,
                seconds=time.perf_counter() - start,
            )
            st = _LoopState(
                k=k + 1, m=m_next, policy=policy, warm=pi, history=st.history + [rec], gaps=st.gaps + [gap],
                floors=st.floors + [floor],
                cosines=st.cosines + [_cosine(step, st.last_step)], last_step=step, elapsed=rec.seconds,
                torch_state=generator.get_state(), numpy_state=rng.bit_generator.state,
                eval_state=eval_generator.get_state(),
            )
            if out is not None:
                write_history(out / "history.csv", st.history)
                _save_checkpoint(out, st, oracle)
            if callback is not None:
                callback(rec)
            bar.update(1)
            bar.set_postfix(gap=f"{gap:.3g}")
            converged = gap <= tol
            if not math.isfinite(residual) or residual > BLOWUP * max(st.history[0].residual, 1e-300):
                blew_up = True
                break
        bar.close()
        history = st.history
        wall = time.perf_counter() - start

        # the summary's exploitability: exact where it can be, else an accurate Monte-Carlo estimate of the final policy
        expl = exploitability(problem, st.policy, n=final_eval_particles, generator=eval_generator, flow=st.m)
        if expl is None and bound_oracle is not None:  # a lower bound by the strongest trained response
            assert bound_record is not None
            responder = bound_oracle.for_run(seed=bound_record["seed"], updates=bound_record["updates"], device=device)
            expl = exploitability_by_oracle(problem, st.policy, responder, n=bound_record["agents"],
                                            particles=particles, generator=eval_generator)
        verdict = diagnose(
            st.gaps,
            st.cosines,
            floors=st.floors,
            learned=learned,
            converged=converged,
            blew_up=blew_up,
            decreasing_weights=scheme.decreasing,
            scheme=scheme.name,
            alpha=scheme.damping,
            tol=tol,
            no_equilibrium=no_equilibrium,
            relative_exploitability=expl.relative if expl else None,
        )
        summary = _summary(problem, oracle, scheme, history, converged=converged and verdict.diagnosis != "failed-response",
                           diagnosis=verdict.diagnosis, advice=verdict.advice, expl=expl, reference=reference, wall=wall,
                           suggestion=verdict.suggestion, bound=bound_record if expl is not None else None)
        assert st.policy is not None
        result = SolveResult(history=tuple(history), summary=summary, flow=st.m, policy=st.policy, config=config)
        if out is not None:
            save_run(result, out)
        return result
    finally:
        if claim is not None:
            claim.release()
