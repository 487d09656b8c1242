"""Exploration scale of the DDPG oracle on unbounded (LQ) actions: best-response accuracy at the exact equilibrium.

For each problem and exploration scale ``noise_sigma``, a DDPG oracle is trained against the exact equilibrium
flow m* as the outer loop trains it: a cold best response, then warm-started ones (``--updates 3000,2000``: a
3000-update response, then a 2000-update one started from it). The last response is scored against the exact
(Riccati) best response to m*:

* relative gap: (J(pi | m*) - J*) / |J*| by Monte Carlo on common random numbers (``--agents`` agents);
* mean-flow error: max_t |mean of mu(pi, m*)_t - mean of mu(pi*, m*)_t| / max_t |m*_t|, both flows propagated
  with the same particles and noises (common random numbers), so that sampling error cancels and what is left
  is the response's own error: the quantity the fixed point then amplifies into ``mean_error``.

Usage::

    python bench/exploration_scale.py                       # lq-1d and the 2-D cross-term game, 5 scales, 4 seeds
    python bench/exploration_scale.py --problems lq-1d --sigmas 0.3,1.0 --seeds 0,1
    python bench/exploration_scale.py --problems lq-1d --sigmas 1.0 --set critic_lr=4e-3 --set n_step=3

Any registered LQ problem name works in ``--problems`` (e.g. ``systemic-risk,price-impact,flocking``). Runs are
sequential (one torch thread); about 45 s per run (training and evaluation) on one CPU core. ``--set FIELD=VALUE``
(repeatable) overrides a :class:`mfgsolve.DDPGConfig` field in every run, to compare a setting at a fixed scale.

Measured before step inputs became the default (``--set step_onehot=off`` reproduces these; ``--sigmas 0.3,1.0``,
seeds 0-3; the table in ``paper/main.tex``, "Exploration scale"):

| problem | noise_sigma | relative gap | mean-flow error | per seed: gap / mean-flow error |
|---|---|---|---|---|
| lq-1d | 0.3 | 0.84% | 2.26% | 0.98/2.13, 0.99/3.91, 0.67/1.24, 0.71/1.74 |
| lq-1d | 1 | 0.26% | 1.60% | 0.27/0.83, 0.25/2.36, 0.27/1.73, 0.27/1.47 |
| lq-2d-cross | 0.3 | 0.27% | 1.43% | 0.28/1.55, 0.23/1.17, 0.24/1.36, 0.33/1.65 |
| lq-2d-cross | 1 | 0.17% | 1.23% | 0.17/0.99, 0.17/1.27, 0.22/1.81, 0.14/0.86 |

``--problems systemic-risk,price-impact,flocking --sigmas 0.3,1.0 --seeds 0,1``:

| problem | noise_sigma | relative gap | mean-flow error | per seed: gap / mean-flow error |
|---|---|---|---|---|
| systemic-risk | 0.3 | 0.33% | 0.54% | 0.36/0.28, 0.30/0.80 |
| systemic-risk | 1 | 0.22% | 0.19% | 0.22/0.07, 0.22/0.31 |
| price-impact | 0.3 | 0.17% | 1.12% | 0.22/1.05, 0.12/1.19 |
| price-impact | 1 | 0.02% | 0.36% | 0.03/0.32, 0.02/0.40 |
| flocking | 0.3 | 0.94% | 4.74% | 0.94/4.74, diverged |
| flocking | 1 | 0.12% | 2.44% | 0.11/1.67, 0.13/3.21 |
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import mfgsolve as mfg
from mfgsolve.evaluation import cost_difference

HERE = Path(__file__).resolve().parent
PROBLEMS = {"lq-1d": "lq-1d", "lq-2d-cross": str(HERE / "lq_2d_cross.toml")}


def run_one(problem: str, sigma: float, seed: int, budgets: list[int], agents: int, **overrides: object) -> dict[str, float]:
    pb = mfg.load_problem(PROBLEMS.get(problem, problem))
    ref = pb.reference()
    m = mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)
    oracle = mfg.DDPGOracle(seed=seed, updates=budgets[0], noise_sigma=sigma, progress=False, **overrides)
    start = time.perf_counter()
    pi = None
    for updates in budgets:
        oracle.cfg = dataclasses.replace(oracle.cfg, updates=updates)
        pi, _ = oracle.best_response(pb, m, warm_start=pi)
    seconds = time.perf_counter() - start
    exact = mfg.AffinePolicy(ref.K, ref.k)
    gap = cost_difference(pb, pi, exact, m, n=agents, generator=torch.Generator().manual_seed(seed + 1000))
    flows = [mfg.propagate(pb, policy, m, n=agents, generator=torch.Generator().manual_seed(seed + 2000))
             for policy in (pi.bind(m), exact)]
    diff = (flows[0].means() - flows[1].means()).double().numpy()
    scale = float(np.max(np.abs(ref.mean)))
    return {"gap": gap.mean / abs(ref.J), "gap_se": gap.se / abs(ref.J),
            "mean_error": float(np.max(np.abs(diff))) / scale, "seconds": seconds}


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``--set FIELD=VALUE`` items as keyword arguments: VALUE a Python literal (``4e-3``, ``True``, ``None``),
    else the text itself (``critic``)."""
    def value(text: str) -> object:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    return {k: value(v) for k, v in (item.split("=", 1) for item in items)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="lq-1d,lq-2d-cross")
    ap.add_argument("--sigmas", default="0.3,0.6,1.0,1.5,2.0")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--updates", default="3000,2000", help="budgets of the successive (warm-started) responses")
    ap.add_argument("--agents", type=int, default=65536)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a DDPGConfig field for every run (repeatable; VALUE a Python literal, else a string)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = parse_overrides(args.set)
    budgets = [int(u) for u in args.updates.split(",")]
    print("| problem | noise_sigma | relative gap (mean over seeds that ran) | mean-flow error (mean) | per seed: gap / mean-flow error |")
    print("|---|---|---|---|---|")
    for problem in args.problems.split(","):
        for sigma in (float(s) for s in args.sigmas.split(",")):
            rows, per = [], []
            for s in seeds:
                try:
                    rows.append(run_one(problem, sigma, s, budgets, args.agents, **overrides))
                    per.append(f"{100 * rows[-1]['gap']:.2f}/{100 * rows[-1]['mean_error']:.2f}")
                except FloatingPointError:  # the oracle's own divergence check (non-finite loss or parameters)
                    per.append("diverged")
            mean = (lambda key: f"{100 * statistics.mean(r[key] for r in rows):.2f}%") if rows else (lambda key: "-")
            print(f"| {problem} | {sigma:g} | {mean('gap')} | {mean('mean_error')} | {', '.join(per)} |", flush=True)


if __name__ == "__main__":
    main()
