"""The mean error a particle flow carries by sampling alone: the exact equilibrium policy of an LQ problem,
propagated with N particles, against the exact mean (the floor under any learned run's ``mean_error``).

    python bench/particle_floor.py [--problem lq-1d] [--seeds 20]

Prints, per N, the mean and the largest ``mean_error`` over the seeds and the seconds per propagation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import mfgsolve as mfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="lq-1d")
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pb = mfg.load_problem(args.problem)
    ref = pb.reference()
    policy = mfg.AffinePolicy(ref.K, ref.k)
    print(f"{'particles':>9} {'mean err':>9} {'max err':>9} {'s/propagation':>13}")
    for n in (1000, 4096, 16384, 32768, 65536):
        errors, start = [], time.perf_counter()
        for seed in range(args.seeds):
            flow = mfg.propagate(pb, policy, None, n=n, generator=torch.Generator().manual_seed(seed))
            errors.append(mfg.mean_error(flow, ref.mean))
        secs = (time.perf_counter() - start) / args.seeds
        print(f"{n:>9} {np.mean(errors):>9.4%} {np.max(errors):>9.4%} {secs:>13.3f}")


if __name__ == "__main__":
    main()
