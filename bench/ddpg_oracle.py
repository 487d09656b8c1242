"""Benchmark of the DDPG best-response oracle: relative gap against wall time, per option, 3 seeds.

For each problem (``lq-1d`` and the 2-D cross-term instance ``bench/lq_2d_cross.toml``) and each variant (the
defaults, then one option changed at a time: encoders, noises, TD3 on/off, n-step), the oracle is trained
against the exact equilibrium flow for a wall-clock budget and scored by :func:`mfgsolve.br_check`:
relative gap = (J(pi | m*) - J*(m*)) / |J*(m*)|, with J(pi | m*) by Monte Carlo on common random numbers against
the exact best response (its standard error is printed beside the gap). The gap at earlier times is read from
the oracle's own periodic evaluations (``evals``: the same fixed agents each time), converted to a relative gap
against the exact J*; those are noisier (4096 agents, no common random numbers with the exact policy).

Usage::

    python bench/ddpg_oracle.py                # full: 60 s (lq-1d) and 120 s (2-D) per run, 3 seeds
    python bench/ddpg_oracle.py --quick        # 10 s and 20 s per run, 3 seeds
    python bench/ddpg_oracle.py --only defaults,td3-off --seeds 0 --threads 1

Runs are sequential (one process, ``--threads`` torch threads): wall-clock budgets are only comparable when
nothing else competes for the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import mfgsolve as mfg

HERE = Path(__file__).resolve().parent

#: One option changed at a time from the defaults.
VARIANTS: dict[str, dict[str, object]] = {
    "defaults": {},
    "enc=histogram": {"encoder": "histogram"},
    "enc=deepsets": {"encoder": "deepsets"},
    "enc=attention": {"encoder": "attention"},
    "noise=ou": {"noise": "ou"},
    "noise=parameter": {"noise": "parameter"},
    "noise=population": {"noise": "population"},
    "td3-full(twin)": {"twin_critics": True},
    "td3-off": {"td3": False},
    "n_step=3": {"n_step": 3},
    "seed-critic(no bilinear)": {"critic_bilinear": False},
    "noise annealed(0.1)": {"noise_final": 0.1},
}

PROBLEMS = {"lq-1d": "lq-1d", "lq-2d-cross": str(HERE / "lq_2d_cross.toml")}


def run_one(problem: str, variant: dict[str, object], seed: int, seconds: float) -> dict[str, object]:
    pb = mfg.load_problem(PROBLEMS[problem])
    ref = pb.reference()
    oracle = mfg.DDPGOracle(seed=seed, updates=None, seconds=seconds, progress=False, **variant)
    res = mfg.br_check(pb, oracle, seed=seed)
    info = res.oracle_info
    # The exact best response on the oracle's own evaluation agents (common random numbers with its evaluations).
    m = mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)
    gen = torch.Generator().manual_seed(int(info["eval_seed"]))
    n_eval = oracle.cfg.eval_agents
    J_exact_fixed = float(mfg.rollout_costs(pb, mfg.AffinePolicy(ref.K, ref.k), m, n=n_eval, generator=gen).mean())
    best, trajectory = float("inf"), []
    for row in info["evals"]:
        best = min(best, *row[2:])
        trajectory.append((row[1], (best - J_exact_fixed) / abs(ref.J)))
    return {
        "relative_gap": res.relative_gap,
        "se": res.gap_se / abs(res.J_best),
        "seconds": res.seconds,
        "updates": info["updates"],
        "trajectory": trajectory,
    }


def gap_at(trajectory: list[tuple[float, float]], seconds: float) -> float:
    """Relative gap of the best actor evaluated up to ``seconds`` (nan before the first evaluation)."""
    vals = [g for s, g in trajectory if s <= seconds]
    return vals[-1] if vals else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 s (lq-1d) and 20 s (2-D) per run instead of 60 s and 120 s")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    ap.add_argument("--problems", default="lq-1d,lq-2d-cross", help="comma-separated problems")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seconds", default=None, help="override the budgets: 'S1,S2' for lq-1d and the 2-D game")
    ap.add_argument("--json", type=Path, default=None, help="also write every run to this JSON file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = {"lq-1d": 10.0, "lq-2d-cross": 20.0} if args.quick else {"lq-1d": 60.0, "lq-2d-cross": 120.0}
    if args.seconds:
        budget = dict(zip(budget, (float(v) for v in args.seconds.split(","))))
    seeds = [int(s) for s in args.seeds.split(",")]
    names = list(VARIANTS) if args.only is None else args.only.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    rows, log = [], []
    print(f"threads={torch.get_num_threads()}, budgets={budget} s, seeds={seeds}; relative gap = (J(pi|m*) - J*)/|J*|,")
    print("median over seeds of the best actor so far at 25% / 50% of the budget (oracle's evaluations, CRN with the")
    print("exact policy) and at the end (br_check: Monte Carlo with CRN, 65536+ agents)", flush=True)
    header = (f"{'problem':12s} {'variant':26s} {'updates':>7s} {'@25%':>7s} {'@50%':>7s} {'@100%':>7s}   "
              f"final gap per seed (+- MC s.e.)")
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    for problem in args.problems.split(","):
        for name in names:
            res = [run_one(problem, VARIANTS[name], s, budget[problem]) for s in seeds]
            med = statistics.median(r["relative_gap"] for r in res)  # type: ignore[misc]
            upd = statistics.median(r["updates"] for r in res)  # type: ignore[misc]
            early = [statistics.median(gap_at(r["trajectory"], f * budget[problem]) for r in res)  # type: ignore[arg-type]
                     for f in (0.25, 0.5)]
            per = "  ".join(f"{r['relative_gap']:.2%}(+-{r['se']:.2%})" for r in res)
            print(f"{problem:12s} {name:26s} {upd:7.0f} {early[0]:7.2%} {early[1]:7.2%} {med:7.2%}   {per}", flush=True)
            rows.append((problem, name, med))
            log.append({"problem": problem, "variant": name, "options": VARIANTS[name], "runs": res})
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(log, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
