"""Benchmark of the pathwise best-response oracle against DDPG: relative gap against wall seconds, and one solve.

For each problem (``lq-1d``, the 2-D cross-term instance ``bench/lq_2d_cross.toml``, ``systemic-risk``,
``price-impact``, ``flocking``), each oracle and each seed, the oracle is trained against the exact equilibrium
flow for a wall-clock budget and scored by :func:`mfgsolve.br_check`: relative gap
(J(pi | m*) - J*(m*)) / |J*(m*)| by Monte Carlo on common random numbers against the exact best response (its
standard error beside it). The gap at earlier times is read from the oracle's own evaluations (``evals``: the same
fixed agents each time, no common random numbers with the exact policy, so noisier), at the wall seconds given by
``--marks``. With ``--solve`` it also runs ``mfgsolve.solve(lq-1d, PathwiseOracle(), seed=s)`` with the learned
presets and reports mean error, relative exploitability and wall time.

Usage::

    python bench/pathwise_oracle.py --seeds 0 1 2                      # every problem, both oracles, 30 s
    python bench/pathwise_oracle.py --seeds 0 --problems lq-1d --oracles pathwise --seconds 30 --solve

Runs are sequential (one process, ``--threads`` torch threads): wall-clock budgets are only comparable when
nothing else competes for the cores, so the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import mfgsolve as mfg

HERE = Path(__file__).resolve().parent
PROBLEMS = ("lq-1d", str(HERE / "lq_2d_cross.toml"), "systemic-risk", "price-impact", "flocking")
ORACLES = {"pathwise": mfg.PathwiseOracle, "ddpg": mfg.DDPGOracle}


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def gap_at(check: mfg.BRCheck, seconds: float) -> float | None:
    """Relative gap of the best evaluation the oracle had made by ``seconds`` (its own ``evals``), or ``None``."""
    rows = [r for r in check.oracle_info.get("evals", []) if r[1] <= seconds]
    if not rows:
        return None
    return (min(r[2:] for r in rows)[0] - check.J_best) / abs(check.J_best)


def run_br(problems: list[str], oracles: list[str], seeds: list[int], seconds: float, marks: list[float]) -> None:
    print(f"# br_check at {seconds:g} s per response, 1 thread, {_load()}")
    head = f"{'problem':<16}{'oracle':<10}{'seed':>5}{'updates':>9}{'wall s':>8}{'rel gap':>11}{'se':>10}"
    print(head + "".join(f"{'@' + format(s, 'g') + 's':>10}" for s in marks))
    for name in problems:
        pb = mfg.load_problem(name)
        label = Path(name).stem if name.endswith(".toml") else name
        for oname in oracles:
            gaps = []
            for seed in seeds:
                oracle = ORACLES[oname](seed=seed, seconds=seconds, updates=None, progress=False)
                check = mfg.br_check(pb, oracle, seed=seed)
                gaps.append(check.relative_gap)
                early = [gap_at(check, s) for s in marks]
                print(f"{label:<16}{oname:<10}{seed:>5}{check.oracle_info['updates']:>9}{check.seconds:>8.1f}"
                      f"{check.relative_gap:>11.2e}{check.se / abs(check.J_best):>10.1e}"
                      + "".join(f"{'-' if g is None else format(g, '.1e'):>10}" for g in early), flush=True)
            print(f"{label:<16}{oname:<10}{'med':>5}{'':>9}{'':>8}{statistics.median(gaps):>11.2e}", flush=True)
    print(f"# {_load()}")


def run_solve(seeds: list[int]) -> None:
    print(f"# solve lq-1d, PathwiseOracle() defaults, learned presets, 1 thread, {_load()}")
    print(f"{'seed':>5}{'iters':>6}{'mean error':>12}{'rel exploit':>13}{'wall s':>8}")
    pb = mfg.load_problem("lq-1d")
    for seed in seeds:
        start = time.perf_counter()
        res = mfg.solve(pb, mfg.PathwiseOracle(progress=False), seed=seed, progress=False)
        s = res.summary
        print(f"{seed:>5}{len(res.history):>6}{s.mean_error:>12.2e}{s.relative_exploitability:>13.2e}"
              f"{time.perf_counter() - start:>8.1f}", flush=True)
    print(f"# {_load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--oracles", nargs="+", default=list(ORACLES), choices=list(ORACLES))
    ap.add_argument("--seconds", type=float, default=30.0, help="wall seconds per best response")
    ap.add_argument("--marks", type=float, nargs="*", default=[5.0, 10.0, 20.0], help="early gaps at these seconds")
    ap.add_argument("--solve", action="store_true", help="also solve lq-1d with the pathwise defaults")
    ap.add_argument("--no-br", action="store_true", help="skip the br_check table")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.no_br:
        run_br(args.problems, args.oracles, args.seeds, args.seconds, args.marks)
    if args.solve:
        run_solve(args.seeds)


if __name__ == "__main__":
    main()
