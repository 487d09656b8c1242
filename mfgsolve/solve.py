r"""The outer loop: an explicit search for :math:`m^* = \mu(\mathrm{BR}(m^*))`.

One iteration ``k``: freeze :math:`m^k`, ask the oracle for :math:`\pi^k = \mathrm{BR}(m^k)`, propagate
:math:`\mu(\pi^k)` against :math:`m^k`, mix with the scheme's weight into :math:`m^{k+1}`, and record the
residual :math:`\max_t W_2(m^{k+1}_t, m^k_t)`, its ratios, the a-posteriori bound, the error against the
reference and the exploitability when they are computable. Every oracle and scheme runs through this one loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from mfgsolve import rundir
from mfgsolve.checkpoint import load_checkpoint, save_checkpoint
from mfgsolve.diagnosis import diagnose, posterior_bound, regression_rate, running_rate
from mfgsolve.errors import RunDirError
from mfgsolve.flows import Flow, GaussianFlow, ParticleFlow
from mfgsolve.lq import LQProblem
from mfgsolve.metrics import Method, exploitability, flow_distance, mean_error
from mfgsolve.oracles.base import Oracle
from mfgsolve.policies import Policy
from mfgsolve.population import FlowKind, propagate, static_flow
from mfgsolve.problem import Problem, default_particles
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


def _reference_of(problem: Problem) -> Any | None:
    ref = getattr(problem, "reference", None)
    if ref is None:
        return None
    try:
        return ref()
    except ArithmeticError:  # no unique equilibrium: nothing to measure against
        return None


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
        Stop when the residual :math:`\max_t W_2(m^{k+1}_t, m^k_t)` falls to ``tol`` or below.
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
    metric : {"auto", "exact", "sliced"}
        How particle flows are compared in several dimensions (see :func:`mfgsolve.wasserstein`).
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
    if iterations < 1:
        raise ValueError("iterations must be a positive integer")
    if not tol > 0:
        raise ValueError("tol must be positive")
    if resume and run_dir is None:
        raise ValueError("resume needs the run_dir of the interrupted run")
    particles = default_particles(problem) if particles is None else particles
    if flow is None:
        flow = "gaussian" if isinstance(problem, LQProblem) and oracle.name == "exact" else "particles"
    config = {
        "problem": problem.config(),
        "oracle": oracle.config(),
        "scheme": scheme.config(),
        "iterations": iterations,
        "tol": tol,
        "flow": flow,
        "particles": particles if flow == "particles" else None,
        "metric": metric,
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
    reference = _reference_of(problem)
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
        m0 = initial_flow if initial_flow is not None else static_flow(problem, kind=flow, n=particles, generator=generator)
        st = _LoopState(k=0, m=m0, policy=None, warm=None, history=[], gaps=[], cosines=[], last_step=None,
                        elapsed=0.0, torch_state=generator.get_state(), numpy_state=rng.bit_generator.state,
                        eval_state=eval_generator.get_state())
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "config.json", config)
    distance = dict(method=metric, rng=rng)

    converged = bool(st.history) and st.history[-1].residual <= tol
    blew_up = False
    start = time.perf_counter() - st.elapsed
    bar = tqdm(total=iterations, initial=st.k, desc=f"{scheme.name}/{oracle.name}",
               disable=None if progress is None else not progress)
    while st.k < iterations and not converged:
        k, m = st.k, st.m
        pi, info = oracle.best_response(problem, m, warm_start=st.warm)
        mu = propagate(problem, pi, m, kind=flow, n=particles, generator=generator)
        # the response is a strategy against m: bound to it, it stays one inside averages and evaluations
        m_next, policy = scheme.update(k, m, mu, pi.bind(m), st.policy)
        if isinstance(m_next, ParticleFlow) and m_next.size > particles:
            m_next = m_next.resample(particles, generator)

        residual = flow_distance(m_next, m, **distance)
        gap = residual if isinstance(scheme, Picard) else flow_distance(mu, m, **distance)
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
            bound=None if scheme.decreasing else posterior_bound(rate, residual),
            mean_error=mean_error(m_next, reference.mean) if reference is not None else None,
            reference_w2=flow_distance(m_next, ref_flow) if isinstance(m_next, GaussianFlow) and ref_flow else None,
            exploitability=expl.value if expl else None,
            relative_exploitability=expl.relative if expl else None,
            exploitability_se=expl.se if expl else None,
            br_value=info.value,
            br_seconds=info.seconds,
            seconds=time.perf_counter() - start,
        )
        st = _LoopState(
            k=k + 1, m=m_next, policy=policy, warm=pi, history=st.history + [rec], gaps=st.gaps + [gap],
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
        bar.set_postfix(residual=f"{residual:.3g}")
        converged = residual <= tol
        if not math.isfinite(residual) or residual > BLOWUP * max(st.history[0].residual, 1e-300):
            blew_up = True
            break
    bar.close()
    history = st.history
    wall = time.perf_counter() - start

    verdict = diagnose(
        st.gaps,
        st.cosines,
        converged=converged,
        blew_up=blew_up,
        decreasing_weights=scheme.decreasing,
        scheme=scheme.name,
        alpha=scheme.alpha if isinstance(scheme, Damped) else None,
        tol=tol,
    )
    residuals = [h.residual for h in history]
    last = history[-1]
    # the summary's exploitability: exact where it can be, else an accurate Monte-Carlo estimate of the final policy
    expl = exploitability(problem, st.policy, n=final_eval_particles, generator=eval_generator, flow=st.m)
    summary = Summary(
        problem=getattr(problem, "name", type(problem).__name__),
        oracle=oracle.name,
        scheme=scheme.name,
        iterations=len(history),
        converged=converged,
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
