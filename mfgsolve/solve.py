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
from mfgsolve.diagnosis import diagnose, posterior_bound, regression_rate, running_rate
from mfgsolve.errors import NoEquilibriumError, ResponseFailedError, RunDirError, SpecError
from mfgsolve.flows import Flow, GaussianFlow, ParticleFlow
from mfgsolve.lq.problem import LQProblem
from mfgsolve.metrics import METHODS, Method, exploitability, flow_distance, mean_error, resolution
from mfgsolve.oracles.base import Oracle
from mfgsolve.policies import Policy
from mfgsolve.population import FlowKind, propagate, static_flow
from mfgsolve.problem import Problem, default_particles, probe_problem
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
from mfgsolve.schemes import Damped, Picard, Scheme

__all__ = ["solve"]

#: A residual this many times the first one (or a non-finite one) ends the run as diverging.
BLOWUP = 1e8


def _reference_of(problem: Problem) -> tuple[Any | None, str | None]:
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


def _load_checkpoint(run_dir: Path, oracle: Oracle, fingerprint: str) -> _LoopState:
    # data only (mfgsolve.checkpoint's allow-list): a crafted file is refused before anything in it runs
    blob = load_checkpoint(run_dir / CHECKPOINT, extra=[_LoopState])
    if blob.get("fingerprint") != fingerprint or not isinstance(blob["state"], _LoopState):
        raise RunDirError("run_dir", f"{run_dir / CHECKPOINT} belongs to another run than {run_dir / 'config.json'}")
    if blob["oracle"] is not None:
        oracle.load_state_dict(blob["oracle"])  # type: ignore[attr-defined]
    return blob["state"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_arguments(problem: Any, oracle: Any, scheme: Any, *, iterations: Any, tol: Any, flow: Any,
                     particles: Any, seed: Any, initial_flow: Any, eval_particles: Any,
                     final_eval_particles: Any) -> None:
    """Types and ranges of :func:`solve`'s arguments, each refused with a :class:`SpecError` naming it."""
    for name in ("sample_x0", "step", "reward", "terminal_reward"):
        if not callable(getattr(problem, name, None)):
            hint = " (load it with mfgsolve.load_problem)" if isinstance(problem, (str, Path)) else ""
            raise SpecError("problem", f"expected a Problem, got {type(problem).__name__}{hint}")
    if not callable(getattr(oracle, "best_response", None)):
        raise SpecError("oracle", f"expected an oracle (e.g. mfgsolve.ExactLQOracle()), got {type(oracle).__name__}")
    if not isinstance(scheme, Scheme):
        raise SpecError("scheme", f"expected a Scheme (Picard(), Damped(alpha), FictitiousPlay()), got {scheme!r}")
    if not _is_int(iterations) or iterations < 1:
        raise SpecError("iterations", f"must be a positive integer, got {iterations!r}")
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not math.isfinite(tol) or not tol > 0:
        raise SpecError("tol", f"must be a positive number, got {tol!r}")
    if flow not in (None, "gaussian", "particles"):
        raise SpecError("flow", f"must be 'gaussian' or 'particles', got {flow!r}")
    if flow == "gaussian" and not getattr(oracle, "exact", False):
        raise SpecError("flow", "gaussian flows are exact only for the exact oracle's affine policies; use particles")
    for name, value in (("particles", particles), ("eval_particles", eval_particles),
                        ("final_eval_particles", final_eval_particles)):
        if value is not None and (not _is_int(value) or value < (2 if name == "particles" else 0)):
            raise SpecError(name, f"must be an integer >= {2 if name == 'particles' else 0}, got {value!r}")
    if not _is_int(seed) or not 0 <= seed < 2**63:
        raise SpecError("seed", f"must be an integer in [0, 2^63), got {seed!r}")
    T = getattr(problem, "T", None)
    if particles is not None and flow != "gaussian":
        # a run holds a few flows of (T+1) x particles x n doubles at once (frozen, new, mixed, halves)
        need = 6 * particles * (T + 1) * problem.n * 8
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if need > have:
            raise SpecError("particles", f"{particles} particles over {T + 1} times in R^{problem.n} need about "
                            f"{need / 2**30:.3g} GiB, more than the {have / 2**30:.3g} GiB of memory")
    if initial_flow is not None:
        if not isinstance(initial_flow, (GaussianFlow, ParticleFlow)):
            raise SpecError("initial_flow", f"expected a GaussianFlow or ParticleFlow, got {type(initial_flow).__name__}")
        if initial_flow.T != T or initial_flow.n != problem.n:
            raise SpecError("initial_flow", f"has horizon {initial_flow.T} and dimension {initial_flow.n}; the problem "
                            f"has {T} and {problem.n}")
    probe_problem(problem)


def _fail_run(out: Path | None, problem: Problem, oracle: Oracle, scheme: Scheme, st: _LoopState, error: str,
              wall: float) -> None:
    """Write the summary of a run whose best response failed (the history so far is already on disk)."""
    if out is None:
        return
    residuals = [h.residual for h in st.history]
    summary = Summary(
        problem=getattr(problem, "name", type(problem).__name__), oracle=oracle.name, scheme=scheme.name,
        iterations=len(st.history), converged=False, diagnosis="failed-response",
        advice=f"{error}; the learned oracle's settings can be set with --br-set KEY=VALUE",
        residuals=residuals, contraction_rate=regression_rate(residuals),
        mean_error=st.history[-1].mean_error if st.history else None, exploitability=None,
        relative_exploitability=None, exploitability_se=None, J_policy=None, J_best=None, reference_J=None,
        reference_rho=None, wall_seconds=wall,
    )
    write_json(out / "summary.json", asdict(summary))


def solve(
    problem: Problem,
    oracle: Oracle,
    *,
    scheme: Scheme | None = None,
    iterations: int = 100,
    tol: float = 1e-10,
    flow: FlowKind | None = None,
    particles: int | None = None,
    seed: int = 0,
    initial_flow: Flow | None = None,
    metric: Method = "auto",
    progress: bool | None = None,
    callback: Callable[[IterationRecord], None] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
    eval_particles: int = 2000,
    final_eval_particles: int = 100_000,
) -> SolveResult:
    r"""Search the equilibrium flow by iterating best responses under ``scheme``.

    Parameters
    ----------
    problem : Problem
    oracle : Oracle
        Best responses to frozen flows (e.g. :class:`mfgsolve.ExactLQOracle`).
    scheme : Scheme, optional
        :class:`Picard` (default), :class:`Damped` or :class:`FictitiousPlay`.
    iterations : int
        Budget of outer iterations (best responses).
    tol : float
        Stop when the fixed-point gap :math:`\max_t W_2(\mu(\pi^k)_t, m^k_t)` falls to ``tol`` or below (for
        Picard the residual :math:`W_2(m^{k+1}, m^k)`; damping would shrink the residual, not the gap).
    flow : {"gaussian", "particles"}, optional
        Flow representation; default ``"gaussian"`` (exact) for an LQ problem with the exact oracle, else
        ``"particles"``.
    particles : int, optional
        Particles per flow (``flow="particles"``); mixtures are resampled back to this size. Default: the
        problem's ``particles`` attribute (131072 for LQ problems), else 4096.
    seed : int
        Seeds the one ``torch.Generator`` (particles, mixture draws) and ``numpy.random.Generator``
        (Wasserstein subsampling) of the run.
    initial_flow : Flow, optional
        :math:`m^0`; default the initial law held still over time.
    metric : {"auto", "coupling", "moments", "exact", "sliced"}
        How successive particle flows are compared (see :func:`mfgsolve.wasserstein`). ``"auto"``: the exact
        distance in 1-D (sorted samples), the coupling upper bound in several dimensions. Every particle flow of
        the run is drawn with common random numbers (particle ``i`` keeps its initial state and noise path;
        schemes mix by taking each particle from one side), so the coupling measures what the policies changed,
        with no sampling floor. ``config.json`` names the estimator used; each iteration also records its
        sampling floor (:func:`mfgsolve.resolution`) beside the residual.
    progress : bool, optional
        Progress bar on stderr; default: only when stderr is a terminal.
    callback : callable, optional
        Called with each :class:`IterationRecord` as it is made.
    run_dir : path, optional
        Write the run directory as the run goes: ``config.json`` first, then after every iteration
        ``history.csv`` and ``checkpoint.pt`` (loop state, generator states and the oracle's ``state_dict``),
        and at the end ``summary.json`` and ``flow.npz``.
        ``run_dir`` belongs to this run (:mod:`mfgsolve.rundir`): it must be empty or absent, it is locked while
        the run writes, and ``config.json`` and the checkpoint record the run's fingerprint (problem content,
        oracle, scheme, flow, particles, seed, metric, evaluation sizes, initial flow).
    resume : bool
        Continue from ``run_dir``'s checkpoint (from the start if the run died before its first one). With the same arguments the resumed run ends with the same
        history as an uninterrupted one (timing columns aside). Refused, naming the setting, when ``run_dir``
        holds another run (a different fingerprint); ``iterations`` and ``tol`` may change.
    overwrite : bool
        Replace what ``run_dir`` holds (another run's files first of all its checkpoint) instead of refusing.
    metadata : dict, optional
        Extra entries for ``config.json`` (the CLI records how the problem was named).
    eval_particles, final_eval_particles : int
        Agents for the Monte-Carlo exploitability of learned policies on LQ problems (see
        :func:`mfgsolve.exploitability`): a cheap estimate every iteration, an accurate one for the summary.
        Exact policies are evaluated exactly and ignore both. The estimates draw from their own generator
        (seeded ``seed + 1``), so evaluating does not change the run.

    Returns
    -------
    SolveResult
        ``history`` (one :class:`IterationRecord` per iteration), ``summary``, final ``flow`` and ``policy``:
        the last best response (Picard, damped) or fictitious play's mixture of them, each bound to the flow it
        answered (:meth:`Policy.bind`), so that exploitabilities evaluate the strategies that were computed.
    """
    scheme = Picard() if scheme is None else scheme
    _check_arguments(problem, oracle, scheme, iterations=iterations, tol=tol, flow=flow, particles=particles,
                     seed=seed, initial_flow=initial_flow, eval_particles=eval_particles,
                     final_eval_particles=final_eval_particles)
    if resume and run_dir is None:
        raise ValueError("resume needs the run_dir of the interrupted run")
    particles = default_particles(problem) if particles is None else particles
    if flow is None:
        flow = "gaussian" if isinstance(problem, LQProblem) and oracle.name == "exact" else "particles"
    estimator = _resolve_metric(metric, flow, problem.n)
    config = {
        "problem": problem.config(),
        "oracle": oracle.config(),
        "scheme": scheme.config(),
        "iterations": iterations,
        "tol": tol,
        "flow": flow,
        "particles": particles if flow == "particles" else None,
        "metric": estimator,
        "seed": seed,
        "eval_particles": eval_particles,
        "final_eval_particles": final_eval_particles,
        "initial_flow": rundir.flow_digest(initial_flow),
        **(metadata or {}),
        "environment": environment(),
    }
    generator = torch.Generator().manual_seed(seed)
    eval_generator = torch.Generator().manual_seed(seed + 1)
    rng = np.random.default_rng(seed)
    crn = noise_seed(seed)
    reference, no_equilibrium = _reference_of(problem)
    ref_flow = (
        GaussianFlow.from_numpy(reference.mean, reference.cov)
        if reference is not None and hasattr(reference, "cov")
        else None
    )
    out = Path(run_dir) if run_dir is not None else None
    claim = None
    if run_dir is not None:  # the directory is this run's (lock, fingerprint, no stale checkpoint) before any work
        settings = rundir.run_settings(config)
        claim = rundir.claim(run_dir, settings, resume=resume, overwrite=overwrite)
        config["fingerprint"] = claim.fingerprint
    if claim is not None and claim.has_checkpoint:
        assert out is not None
        st = _load_checkpoint(out, oracle, claim.fingerprint)
        generator.set_state(st.torch_state)
        eval_generator.set_state(st.eval_state)
        rng.bit_generator.state = st.numpy_state
    else:
        m0 = initial_flow if initial_flow is not None else static_flow(
            problem, kind=flow, n=particles, generator=torch.Generator().manual_seed(crn))
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
        mu = propagate(problem, pi, m, kind=flow, n=particles, generator=generator,
                       noise=torch.Generator().manual_seed(crn))
        # the response is a strategy against m: bound to it, it stays one inside averages and evaluations
        m_next, policy = scheme.update(k, m, mu, pi.bind(m), st.policy, generator)
        if isinstance(m_next, ParticleFlow) and m_next.size > particles:
            m_next = m_next.resample(particles, generator)

        residual = flow_distance(m_next, m, **distance)
        gap = residual if isinstance(scheme, Picard) else flow_distance(mu, m, **distance)
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
    verdict = diagnose(
        st.gaps,
        st.cosines,
        floors=st.floors,
        learned=learned,
        converged=converged,
        blew_up=blew_up,
        decreasing_weights=scheme.decreasing,
        scheme=scheme.name,
        alpha=scheme.alpha if isinstance(scheme, Damped) else None,
        tol=tol,
        no_equilibrium=no_equilibrium,
        relative_exploitability=expl.relative if expl else None,
    )
    residuals = [h.residual for h in history]
    last = history[-1]
    summary = Summary(
        problem=getattr(problem, "name", type(problem).__name__),
        oracle=oracle.name,
        scheme=scheme.name,
        iterations=len(history),
        converged=converged and verdict.diagnosis != "failed-response",
        diagnosis=verdict.diagnosis,
        advice=verdict.advice,
        residuals=residuals,
        contraction_rate=regression_rate(residuals),
        mean_error=last.mean_error,
        exploitability=expl.value if expl else None,
        relative_exploitability=expl.relative if expl else None,
        exploitability_se=expl.se if expl else None,
        J_policy=expl.J_policy if expl else None,
        J_best=expl.J_best if expl else None,
        reference_J=float(reference.J) if reference is not None and hasattr(reference, "J") else None,
        reference_rho=float(reference.rho) if reference is not None and hasattr(reference, "rho") else None,
        wall_seconds=wall,
    )
    assert st.policy is not None
    result = SolveResult(history=tuple(history), summary=summary, flow=st.m, policy=st.policy, config=config)
    if out is not None:
        save_run(result, out)
    if claim is not None:
        claim.release()
    return result
