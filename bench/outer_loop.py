"""A DDPG setting in the outer loop: final mean error and exploitability of learned runs, per seed, with and without.

Each run is what ``mfgsolve solve PROBLEM --scheme fp|damped --seed S`` does with its learned defaults (15 best
responses of 1700 updates, tol 1e-3, particle flows; FP recency 6, damping 0.6), through the Python API so that a
:class:`mfgsolve.DDPGConfig` field can be changed (``--set FIELD=VALUE``, repeatable, VALUE a Python literal or a word).
Without ``--set`` it measures the defaults. Runs are sequential, with the CLI's torch threads (two where two cores are free).

The current defaults (batch_size 1024, 131072 particles for LQ problems, learned damping 0.6, 1700 updates a response;
``paper/main.tex``, "Batch, particles and damping"), two or three runs at once on two cores:

| problem | scheme | mean error per seed 0, 1, 2 | relative exploitability per seed |
|---|---|---|---|
| lq-1d | fp | 1.01, 1.64, 1.49% | 0.091, 0.093, 0.095% |
| lq-1d | damped 0.6 | 0.73, 1.19, 0.86% | 0.074, 0.086, 0.052% |
| fresh 2-D | fp | 1.72, 2.36, 1.92% | 0.079, 0.100, 0.084% |

``mfgsolve solve lq-1d --scheme fp|damped --seed S``, alone and one after another, two torch threads (the CLI's default
where two cores are free; the same networks and flows to the last bit as one thread): fp seeds 0, 1, 2 266, 274,
266 s; damped 257, 272, 252 s; with one thread 296, 285, 313 s and 300, 258, 261 s. The CLI runs reproduce the
table's digits. The fresh 2-D game (CLI, two threads): seeds 1, 2 429 and 431 s; seed 1 is still falling at 15 responses
(2.66% at 14), and ``--iterations 19`` takes it to 1.92% in 539 s. With 2000 updates a response (the budget before):

| problem | scheme | mean error per seed 0, 1, 2 | relative exploitability per seed |
|---|---|---|---|
| lq-1d | fp | 1.00, 1.81, 1.32% | 0.089, 0.085, 0.073% |
| lq-1d | damped 0.6 | 1.45, 1.63, 1.10% | 0.040, 0.071, 0.059% |
| lq-1d | damped 0.7 | 2.22, 1.48, 1.36% | 0.041, 0.069, 0.064% |
| fresh 2-D | fp | 1.68, 2.03, 1.88% | 0.077, 0.094, 0.086% |

314-390 s per lq-1d run and 529-538 s per 2-D run two at once; the CLI alone: lq-1d fp seed 0 376 s, seed 1 342 s,
damped seed 0 339 s, 2-D fp seed 0 549 s (the machine's speed drifted by ~40% over these runs).

The tables below were measured with the earlier defaults (batch_size 512, 32768 particles, damping 0.5) and, before
commit 6b5ca40, Adam's foreach implementation (the fused one now used rounds differently: same statistics, not the
same digits).

Usage::

    python bench/outer_loop.py --problem lq-1d --scheme fp --seeds 0,1,2,3,4
    python bench/outer_loop.py --problem lq-1d --scheme fp --seeds 0,1,2,3,4 --set step_onehot=off
    python bench/outer_loop.py --problem bench/lq_2d_cross.toml --scheme damped --seeds 0,1

Measured (``paper/main.tex``, "Step inputs"; a fresh 2-D game, not in the repository, for the 2-D rows):

| problem | scheme | step_onehot | mean error per seed | relative exploitability per seed |
|---|---|---|---|---|
| lq-1d | fp | off | 1.52, 3.58, 1.79, 2.68, 2.20% | 0.11-0.16% (range) |
| lq-1d | fp | critic (default) | 1.40, 2.61, 1.61, 1.73, 1.52% | 0.097, 0.125, 0.119, 0.103, 0.117% |
| lq-1d | fp | all | 1.77, 2.32, 1.77, 1.93, 1.89% | 0.141, 0.136, 0.133, 0.129, 0.193% |
| lq-1d | damped | off | 2.16, 3.35, 1.86% | not recorded |
| lq-1d | damped | critic (default) | 1.43, 2.35, 1.91% | 0.130, 0.073, 0.097% |
| lq-1d | damped | all | 1.70, 2.54, 1.99% | 0.136, 0.094, 0.116% |
| fresh 2-D | fp | off | 2.47, 1.05, 1.25, 2.58% | 0.10, 0.09, -, 0.103% |
| fresh 2-D | fp | critic (default) | 1.87, 1.62, 1.52, 1.46% | 0.100, 0.100, 0.102, 0.069% |
| fresh 2-D | fp | all | 2.96, 2.23, 1.45, 2.32% | 0.123, 0.104, 0.123, 0.085% |

With ``--particles 131072`` (then 4x the LQ default; two runs at once, 260-315 s each against 200-250 s at the default):
lq-1d fp seeds 0, 1, 2: 1.31, 2.39, 1.72% (exploitability 0.094, 0.123, 0.119%); damped seed 1: 2.01% (0.077%).
The sampling floor falls (``bench/particle_floor.py``), the learned error stays: not made the default then.
Adding ``--set batch_size=1024``: fp seeds 0, 1: 0.88, 1.83%; damped seed 1: 2.15% (exploitability 0.08-0.09%), but
344 s alone for fp seed 1 even with two torch threads (355-389 s with another job): over the 5-minute budget.
Commit 6b5ca40 made the update faster, which is what the current defaults spend. (Two torch threads measured slower
then, in separate runs on a drifting machine; alternating the setting in one process, at batch 1024, they are ~20%
faster: ``mfgsolve.presets.default_threads``.)
"""

from __future__ import annotations

import argparse
import time

import torch
from exploration_scale import parse_overrides  # bench/ is on the path when run as a script

import mfgsolve as mfg
from mfgsolve.presets import LEARNED, default_threads


def run_one(problem: str, scheme: str, seed: int, particles: int | None = None, **overrides: object) -> mfg.SolveResult:
    """One learned run, the one ``mfgsolve solve PROBLEM --scheme S --seed s`` makes (the learned presets of
    :mod:`mfgsolve.presets`), with ``overrides`` of the DDPG oracle's settings (``--set updates=N`` replaces the
    preset budget) and ``particles`` per flow (``None``: the problem's default)."""
    oracle = mfg.make_oracle("ddpg", progress=False, **overrides)
    flow = None if particles is None else mfg.Particles(particles)
    return mfg.solve(mfg.load_problem(problem), oracle, scheme=LEARNED.scheme(scheme), flow=flow, seed=seed,
                     progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="lq-1d", help="a registered name or a .toml spec")
    ap.add_argument("--scheme", choices=("fp", "damped"), default="fp")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a DDPGConfig field for every run (repeatable; VALUE a Python literal, else a string)")
    ap.add_argument("--particles", type=int, default=None, help="particles per flow (default: the problem's own)")
    args = ap.parse_args()
    torch.set_num_threads(default_threads())
    overrides = parse_overrides(args.set)
    print(f"{args.problem}, scheme {args.scheme}, settings {overrides or 'default'}, particles {args.particles or 'default'}")
    print("| seed | mean error | relative exploitability | seconds |")
    print("|---|---|---|---|")
    for s in (int(v) for v in args.seeds.split(",")):
        start = time.perf_counter()
        res = run_one(args.problem, args.scheme, s, args.particles, **overrides)
        print(f"| {s} | {100 * res.summary.mean_error:.2f}% | {100 * res.summary.relative_exploitability:.3f}% "
              f"| {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
