"""The contraction check on particle flows in several dimensions, exact oracle: measured rate against rho(M).

    python bench/contraction_nd.py bench/lq_2d_cross.toml bench/lq_3d_cross.toml --seeds 0,1,2
    python bench/contraction_nd.py my_3d_game.toml --metric exact --iterations 10   # the former estimator

Prints, per spec and seed: rho(M), the measured Picard rate (regression over the second half of the run) and
its relative error, the decades of residual the run spans, the diagnosis, the smallest ratio of the
a-posteriori bound to the moment distance between the flow and the exact equilibrium law (>= 1: the bound
held at every iteration that reports it), the final mean error, and the seconds per iteration spent on the
checks (residual, sampling floor, distance to the reference), timed separately from the solve.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mfgsolve as mfg


def _check_seconds(res: mfg.SolveResult, ref: mfg.GaussianFlow, metric: str, repeats: int = 3) -> float:
    """Median wall time of one iteration's checks on the run's final flow (as the loop computes them)."""
    m = res.flow
    kw = {"method": metric, "rng": np.random.default_rng(0)}
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mfg.flow_distance(m, m, **kw)
        mfg.resolution(m, **kw)
        mfg.flow_distance(m, ref, method="moments")
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+", help="LQ problems: registered names or .toml specs")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--particles", type=int, default=131072)
    parser.add_argument("--metric", default="auto", help="auto | coupling | moments | exact | sliced")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--tol", type=float, default=1e-10)
    args = parser.parse_args()
    head = (f"{'problem':<14}{'seed':>5}{'rho(M)':>9}{'rate':>9}{'rel.err':>9}{'decades':>9}  {'diagnosis':<12}"
            f"{'bound/dist':>11}{'mean err':>10}{'its':>5}{'check s/it':>11}")
    print(head)
    for spec in args.specs:
        pb = mfg.load_problem(spec)
        ref = pb.reference()
        ref_flow = mfg.GaussianFlow.from_numpy(ref.mean, ref.cov)
        for seed in (int(s) for s in args.seeds.split(",")):
            res = mfg.solve(pb, mfg.ExactLQOracle(), stop=mfg.Stop(iterations=args.iterations, tol=args.tol), flow=mfg.Particles(args.particles, metric=args.metric), seed=seed, progress=False)
            r = res.residuals
            rate = res.summary.contraction_rate
            ratios = [h.bound / h.reference_w2 for h in res.history if h.bound is not None]
            print(f"{pb.name:<14}{seed:>5}{ref.rho:>9.4f}{rate if rate else float('nan'):>9.4f}"
                  f"{abs(rate / ref.rho - 1) if rate else float('nan'):>9.2%}{np.log10(r.max() / r[-1]):>9.1f}  "
                  f"{res.summary.diagnosis:<12}{min(ratios) if ratios else float('nan'):>11.2f}"
                  f"{res.summary.mean_error:>10.2e}{len(r):>5}"
                  f"{_check_seconds(res, ref_flow, res.config['metric']):>11.3f}", flush=True)


if __name__ == "__main__":
    main()
