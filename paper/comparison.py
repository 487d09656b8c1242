"""E4 (issue 6): the seed's comparison, measured. Run through ``python paper/experiments.py --only E4 [--quick]``.

Three parts, one table each and one figure:

* ``e4_critic_cost``: per-update wall time and memory of the MADDPG critic (all N observations and actions) and
  of the mean-field critic Q(t, x, a, m_t) of MF-MADDPG, on transitions of the same N-player game, N = 2..256
  (and to 1024 for the mean-field critic) -- :func:`critic_cost.critic_update_cost`;
* ``e4_epsilon_nash``: epsilon-Nash against N on lq-1d, exact (:func:`mfgsolve.nplayer.lq_epsilon_nash`), of
  the exact MFG equilibrium policy and of the MF-MADDPG policy (its affine projection on its own flow), with
  fitted log-log slopes;
* ``e4_methods``: DDPG without m, MADDPG (N-player, several N), MF-MADDPG, MF-Q, MF-AC and Nash-Q on lq-1d and
  crowd-aversion at equal training wall time: relative exploitability in the MFG (lq-1d: Monte Carlo against
  the exact best response; crowd-aversion: exact DP on the grid) and, for MADDPG on lq-1d, its epsilon-Nash in
  the N-player game it was trained in.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable

import numpy as np
import torch
from matplotlib.figure import Figure

import mfgsolve as mfg
from critic_cost import CriticBench
from mfgsolve.nplayer import MADDPG
from mfgsolve.nplayer.game import affine_projection, epsilon_nash_mc, lq_epsilon_nash, nplayer_costs
from mfgsolve.reference.potential import best_response_value, flow_of

SaveTable = Callable[..., None]


@functools.lru_cache(maxsize=None)
def _problem(name: str) -> Any:
    """One instance per problem: crowd-aversion's grid reference (a cvxpy solve, seconds) is computed once."""
    return mfg.load_problem(name)


def _slope(N: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope of log y against log N and its standard error (least squares; nan with fewer than 3 points)."""
    keep = np.isfinite(y) & (y > 0)
    N, y = np.asarray(N, float)[keep], np.asarray(y, float)[keep]
    if N.size < 2:
        return math.nan, math.nan
    if N.size < 3:
        return float(np.polyfit(np.log(N), np.log(y), 1)[0]), math.nan
    coef, cov = np.polyfit(np.log(N), np.log(y), 1, cov=True)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


# ----------------------------------------------------------------------------------------------- critic cost
def critic_costs(quick: bool) -> list[dict[str, Any]]:
    Ns = [2, 16, 128] if quick else [2, 4, 8, 16, 32, 64, 128, 256]
    extra = [1024] if quick else [512, 1024]
    repeats = 5 if quick else 40
    pb = mfg.load_problem("lq-1d")
    benches = [CriticBench(kind, pb, N, batch=256, hidden=64, seed=0)
               for kind, sizes in (("maddpg", Ns + extra[:-1]), ("mean-field", Ns + extra)) for N in sizes]
    # interleaved rounds in a fresh random order each: a slow spell of the machine hits every N alike instead of
    # one N's whole series, and no bench always follows the heaviest update (the first full run measured the
    # mean-field N = 2 bench, which always came right after MADDPG's N = 512, 20% slower than the others)
    order = np.random.default_rng(0)
    for _ in range(repeats):
        for i in order.permutation(len(benches)):
            benches[i].time_update()
    rows = []
    for b in benches:
        c = b.cost()
        rows.append({"critic": c.kind, "N": c.N, "ms_per_update": 1e3 * c.seconds, "params": c.params,
                     "input_floats": c.input_floats, "replay_floats": c.replay_floats,
                     "memory_MB": c.memory_bytes / 2**20})
    return rows


# ----------------------------------------------------------------------------------------------- epsilon-Nash
def _mf_maddpg(pb: Any, quick: bool, seed: int = 0) -> mfg.SolveResult:
    # an update budget, not a wall budget: this policy is the same on every machine
    budget = {"updates": 200, "eval_every": 100, "eval_agents": 512} if quick else {"updates": 1500, "eval_every": 500}
    return mfg.solve(pb, mfg.DDPGOracle(seed=seed, progress=False, **budget), scheme=mfg.Damped(0.5),
                     stop=mfg.Stop(iterations=2 if quick else 5, tol=1e-10), flow=mfg.Particles(2000), evaluation=mfg.Evaluation(particles=200, final_particles=2000 if quick else 20_000), seed=seed, progress=False)


def epsilon_nash(quick: bool) -> tuple[list[dict[str, Any]], dict[str, float]]:
    pb = mfg.load_problem("lq-1d")
    ref = pb.reference()
    exact = mfg.AffinePolicy(ref.K, ref.k)
    res = _mf_maddpg(pb, quick)
    fit = affine_projection(pb, res.policy, res.flow, n=8192, generator=torch.Generator().manual_seed(0))
    eps_inf = mfg.exploitability(pb, fit)
    Ns = 2 ** np.arange(1, 11)
    mc_Ns, games = ([2, 8], 200) if quick else ([2, 8, 32, 128], 1000)
    rows = []
    for N in Ns:
        e_ex = lq_epsilon_nash(pb, exact, int(N))
        e_ml = lq_epsilon_nash(pb, fit, int(N))
        row = {"N": int(N), "eps_exact_mfe": e_ex.value, "N_x_eps": N * e_ex.value,
               "eps_mf_maddpg": e_ml.value, "rel_eps_mf_maddpg": e_ml.relative,
               "excess_over_mfg": e_ml.value - eps_inf.value, "mc_eps_network": None, "mc_se": None}
        if N in mc_Ns:
            # the network itself (the MFG flow plugged in) in a simulated N-player game; the deviator plays the
            # exact best response against the others' affine projection: a lower bound on its epsilon-Nash,
            # common random numbers (same seed: same initial states and noises)
            c_pol = nplayer_costs(pb, int(N), res.policy, games=games, generator=torch.Generator().manual_seed(7),
                                  m=res.flow)
            c_dev = nplayer_costs(pb, int(N), res.policy, games=games, generator=torch.Generator().manual_seed(7),
                                  m=res.flow, deviator=e_ml.deviator)
            d = (c_pol[:, 0] - c_dev[:, 0]).numpy()
            row["mc_eps_network"], row["mc_se"] = float(d.mean()), float(d.std(ddof=1) / np.sqrt(games))
        rows.append(row)
    s_ex, se_ex = _slope(Ns, np.array([r["eps_exact_mfe"] for r in rows]))
    tail = Ns >= 16  # the asymptotic rate, past the O(1/N^2) correction of small N
    s_tail, se_tail = _slope(Ns[tail], np.array([r["eps_exact_mfe"] for r in rows])[tail])
    s_ml, se_ml = _slope(Ns, np.array([r["excess_over_mfg"] for r in rows]))
    s_raw, se_raw = _slope(Ns, np.array([r["eps_mf_maddpg"] for r in rows]))
    fits = {"slope_exact": s_ex, "se_exact": se_ex, "slope_exact_N16": s_tail, "se_exact_N16": se_tail, "slope_mf_maddpg_excess": s_ml, "se_mf_maddpg_excess": se_ml,
            "slope_mf_maddpg": s_raw, "se_mf_maddpg": se_raw, "eps_inf_mf_maddpg": eps_inf.value,
            "rel_eps_inf_mf_maddpg": eps_inf.relative,
            "mc_rel_exploitability_network": res.summary.relative_exploitability or math.nan}
    return rows, fits


class _GridDestination(mfg.Policy):
    """A grid policy played in the continuous game: from the nearest grid point, move to its destination."""

    def __init__(self, grid: np.ndarray, dest: np.ndarray) -> None:
        self.low, self.h = float(grid[0]), float(grid[1] - grid[0])
        self.dest = torch.as_tensor(dest, dtype=torch.float64)  # (T, S)

    def act(self, t: int, x: torch.Tensor, m: mfg.Flow) -> torch.Tensor:
        i = ((x[:, 0] - self.low) / self.h).round().long().clamp(0, self.dest.shape[1] - 1)
        return (self.dest[t, i] - x[:, 0])[:, None].to(x.dtype)


def crowd_epsilon(quick: bool) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """crowd-aversion: the MF-MADDPG policy in the N-player game against the grid DP best response to its flow.

    The deviation is exact for the grid model (the policy projected on the grid, its flow, the DP best response
    to that flow) and is played in the continuous game from the nearest grid point: a Monte-Carlo lower bound on
    the epsilon-Nash, on common random numbers.
    """
    pb = _problem("crowd-aversion")
    res = _mf_maddpg(pb, quick)
    model = pb.grid_model()
    m_grid = flow_of(model, pb.grid_policy(res.policy, res.flow))
    _, q = best_response_value(model, m_grid)
    deviation = _GridDestination(model.grid, model.grid[q.argmin(axis=2)])
    ge = pb.exploitability(res.policy, res.flow)
    Ns, games = ([2, 8], 100) if quick else ([2, 4, 8, 16, 32, 64, 128], 400)
    rows = []
    for N in Ns:
        e = epsilon_nash_mc(pb, res.policy, deviation, N, games=games, generator=torch.Generator().manual_seed(11),
                            m=res.flow)
        rows.append({"N": N, "eps_mc": e.mean, "se": e.se, "rel_eps": e.mean / abs(ge.J_best), "games": games})
    slope, se = _slope(np.array(Ns), np.array([r["eps_mc"] for r in rows]))
    return rows, {"slope": slope, "se": se, "grid_exploitability": ge.value, "rel_grid_exploitability": ge.relative}


# ----------------------------------------------------------------------------------------------- methods
def _mfg_exploitability(pb: Any, policy: mfg.Policy, m: mfg.Flow | None, n: int) -> tuple[float, float]:
    """Relative exploitability in the MFG and its standard error (0 where exact)."""
    gen = torch.Generator().manual_seed(12345)
    if isinstance(pb, mfg.LQProblem):
        e = mfg.exploitability(pb, policy, n=n, generator=gen)
        assert e is not None
        return e.relative, e.se / abs(e.J_best)
    own = m if m is not None else mfg.propagate(pb, policy, None, n=4096, generator=gen)
    return pb.exploitability(policy, own).relative, 0.0


def methods(quick: bool) -> list[dict[str, Any]]:
    wall = 1.5 if quick else 8.0
    iters = 2 if quick else 5
    n_eval = 2000 if quick else 20_000
    maddpg_N = [2, 8] if quick else [2, 4, 8, 16, 32, 64, 128, 256]
    rows: list[dict[str, Any]] = []
    for name in ("lq-1d", "crowd-aversion"):
        pb = _problem(name)
        brs = wall / iters
        # evaluations inside a best response count in its wall time: the same small evaluation for every oracle
        budget = dict(seed=0, seconds=brs, eval_agents=512)  # a time budget alone: no update count
        oracles = {
            "DDPG (no m)": mfg.make_oracle("ddpg-nopop", progress=False, **budget),
            "MF-MADDPG": mfg.make_oracle("ddpg", progress=False, **budget),
            "MF-Q": mfg.make_oracle("mf-q", **budget),
            "MF-AC": mfg.make_oracle("mf-ac", **budget),
        }
        for label, oracle in oracles.items():
            res = mfg.solve(pb, oracle, scheme=mfg.Damped(0.5), stop=mfg.Stop(iterations=iters, tol=1e-10), flow=mfg.Particles(2000), evaluation=mfg.Evaluation(particles=200, final_particles=n_eval), seed=0,
                            progress=False)
            rel, se = _mfg_exploitability(pb, res.policy, res.flow, n_eval)
            rows.append({"problem": name, "method": label, "N": "inf", "train_s": sum(h.br_seconds for h in res.history),
                         "rel_exploitability": rel, "se": se, "rel_eps_nash_N": None,
                         "note": f"damped 0.5, {iters} best responses"})
        for N in maddpg_N:
            learner = MADDPG(pb, N, seed=0, seconds=wall, updates=None)
            info = learner.train()
            pol = learner.policy()
            rel, se = _mfg_exploitability(pb, pol, None, n_eval)
            eps_N = None
            if isinstance(pb, mfg.LQProblem):
                gen = torch.Generator().manual_seed(0)
                own = mfg.propagate(pb, pol, None, n=4096, generator=gen)
                eps_N = lq_epsilon_nash(pb, affine_projection(pb, pol, own, n=8192, generator=gen), N).relative
            rows.append({"problem": name, "method": "MADDPG", "N": N, "train_s": info["seconds"],
                         "rel_exploitability": rel, "se": se, "rel_eps_nash_N": eps_N,
                         "note": f"N-player training, {info['updates']} updates"})
        rows.append({"problem": name, "method": "Nash-Q", "N": "inf", "train_s": None,
                     "rel_exploitability": None, "se": None, "rel_eps_nash_N": None,
                     "note": "reduces to MF-Q (symmetric: the stage-game Nash is each agent's argmax Q(s, a, m)); "
                             "exact form: a stage game over all N agents' joint actions"})
    return rows


# ----------------------------------------------------------------------------------------------- E4
def e4(quick: bool, *, save_table: SaveTable, save_figure: Callable[[Figure, str], None]) -> None:
    """Regenerate E4's three tables and its figure."""
    torch.set_num_threads(1)  # per-update costs of small networks: one thread, as every method here runs
    suffix = " --quick" if quick else ""
    cmd = "python paper/experiments.py --only E4" + suffix
    start = time.perf_counter()

    cost = critic_costs(quick)
    save_table(cost, "e4_critic_cost", cmd,
               "Per critic update (batch 256, hidden 64, one thread; median over repeats): target, loss, backward "
               "and Adam step, on transitions of the lq-1d N-player game. MADDPG's target actor plays all N next "
               "actions; the mean-field critic reads the empirical measure's moments. memory\\_MB: tensors saved "
               "for backward plus parameters, gradients and Adam moments.")
    mf = [r["ms_per_update"] for r in cost if r["critic"] == "mean-field"]
    md = [r for r in cost if r["critic"] == "maddpg"]
    print(f"  mean-field critic: max/min per-update time over N = {max(mf) / min(mf):.3f}; "
          f"MADDPG: N={md[-1]['N']} / N={md[0]['N']} = {md[-1]['ms_per_update'] / md[0]['ms_per_update']:.2f}")

    eps, fits = epsilon_nash(quick)
    save_table(eps, "e4_epsilon_nash", cmd,
               f"lq-1d, exact N-player epsilon-Nash. Exact MFE policy: log-log slope {fits['slope_exact']:.3f} "
               f"(se {fits['se_exact']:.2g}) over $N = 2, \\dots, 1024$, {fits['slope_exact_N16']:.3f} "
               f"(se {fits['se_exact_N16']:.2g}) over $N \\ge 16$. MF-MADDPG policy (affine projection on its flow): "
               f"its MFG exploitability {fits['eps_inf_mf_maddpg']:.3g}, slope of the excess over it "
               f"{fits['slope_mf_maddpg_excess']:.3f}; mc\\_eps\\_network: the network itself in a simulated "
               "N-player game against the exact best response to its projection (a lower bound), with its "
               "standard error.")
    print("  fits: " + ", ".join(f"{k}={v:.4g}" for k, v in fits.items()))

    ceps, cfits = crowd_epsilon(quick)
    save_table(ceps, "e4_epsilon_crowd", cmd,
               "crowd-aversion: gain of one agent deviating from the MF-MADDPG policy (MFG flow plugged in) to the "
               "grid DP best response to the policy's flow, N-player Monte Carlo on common random numbers (se). "
               f"Grid exploitability (N = inf) {cfits['grid_exploitability']:.3g} (relative "
               f"{cfits['rel_grid_exploitability']:.3g}); log-log slope over N {cfits['slope']:.3f}.")
    print("  crowd fits: " + ", ".join(f"{k}={v:.4g}" for k, v in cfits.items()))

    meth = methods(quick)
    save_table(meth, "e4_methods", cmd,
               "Equal training wall time per method (damped 0.5 fixed point for the mean-field oracles; MADDPG "
               "trains in the N-player game). Relative exploitability in the MFG: lq-1d by Monte Carlo against "
               "the exact best response (se), crowd-aversion by exact DP on the grid. Nash-Q reduces to MF-Q in a "
               "symmetric MFG (mfgsolve/oracles/mfrl.py).")

    fig = Figure(figsize=(15, 3.8), layout="constrained")
    a0, a1, a3, a2 = fig.subplots(1, 4)
    a3.errorbar([r["N"] for r in ceps], [r["eps_mc"] for r in ceps], yerr=[2 * r["se"] for r in ceps], fmt="o-",
                capsize=3, label="MF-MADDPG vs grid DP deviation")
    a3.axhline(cfits["grid_exploitability"], color="0.6", ls=":", lw=1, label="grid exploitability (N = inf)")
    a3.set_xscale("log")
    a3.set_xlabel("N players (crowd-aversion)")
    a3.set_ylabel("deviation gain (MC, 2 se)")
    a3.legend(fontsize=7)
    for kind, marker in (("maddpg", "o-"), ("mean-field", "s-")):
        r = [x for x in cost if x["critic"] == kind]
        a0.loglog([x["N"] for x in r], [x["ms_per_update"] for x in r], marker, label=kind)
    a0.set_xlabel("N agents")
    a0.set_ylabel("ms per critic update")
    a0.legend(fontsize=7)
    Ns = np.array([r["N"] for r in eps])
    a1.loglog(Ns, [r["eps_exact_mfe"] for r in eps], "o-", label=f"exact MFE (slope {fits['slope_exact']:.2f})")
    a1.loglog(Ns, [r["eps_mf_maddpg"] for r in eps], "s-", label="MF-MADDPG (affine proj.)")
    a1.axhline(fits["eps_inf_mf_maddpg"], color="0.6", ls=":", lw=1, label="MF-MADDPG, N = inf")
    a1.set_xlabel("N players")
    a1.set_ylabel("epsilon-Nash")
    a1.legend(fontsize=7)
    for name, marker in (("lq-1d", "o-"), ("crowd-aversion", "s-")):
        r = [x for x in meth if x["problem"] == name and x["method"] == "MADDPG"]
        a2.loglog([x["N"] for x in r], [max(x["rel_exploitability"], 1e-6) for x in r], marker, label=f"MADDPG, {name}")
        mfm = [x for x in meth if x["problem"] == name and x["method"] == "MF-MADDPG"][0]
        a2.axhline(max(mfm["rel_exploitability"], 1e-6), ls=":", lw=1, color=a2.lines[-1].get_color(),
                   label=f"MF-MADDPG, {name}")
    a2.set_xlabel("N players (MADDPG)")
    a2.set_ylabel("relative exploitability (MFG)")
    a2.legend(fontsize=7)
    save_figure(fig, "e4_comparison")
    print(f"  E4 took {time.perf_counter() - start:.0f} s")
