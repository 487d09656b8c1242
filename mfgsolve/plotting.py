"""Figures of a run: convergence (residual, ratio, bound, exploitability, error) and the flow against the reference.

Each panel function takes data and a matplotlib ``ax`` and returns the ``ax``; :func:`plot_run` assembles them
from a run directory and writes PNG and PDF files into it. Nothing here calls ``plt.show()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mfgsolve.results import RunFiles, load_run

__all__ = ["plot_residuals", "plot_series", "plot_mean_flow", "plot_marginals", "plot_snapshots", "plot_run"]


def _column(history: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    k = np.array([row["iteration"] for row in history], dtype=float)
    v = np.array([np.nan if row.get(key) is None else row[key] for row in history], dtype=float)
    return k, v


def plot_residuals(history: Sequence[dict[str, Any]], ax: Axes) -> Axes:
    """Residual ``max_t W2(m^{k+1}, m^k)`` and the a-posteriori bound (log scale), ratio on a twin axis."""
    k, r = _column(history, "residual")
    _, b = _column(history, "bound")
    ax.semilogy(k, r, "o-", ms=3, label="residual $W_2(m^{k+1}, m^k)$")
    _, g = _column(history, "gap")
    if np.isfinite(g).any() and not np.allclose(g, r, equal_nan=True):
        ax.semilogy(k, g, "s-", ms=2, lw=0.8, label=r"gap $W_2(\mu(\pi^k), m^k)$")
    _, f = _column(history, "floor")
    if (f > 0).any():
        ax.semilogy(k, f, color="0.5", lw=0.8, label="sampling floor")
    if np.isfinite(b).any():
        ax.semilogy(k, b, "--", label=r"bound $\hat\rho/(1-\hat\rho)\,$residual $+ 2\,$floor")
    _, err = _column(history, "reference_w2")
    if np.isfinite(err).any():
        ax.semilogy(k, err, ":", label="$W_2(m^{k+1}, m^*)$")
    ax.set_xlabel("outer iteration $k$")
    ax.set_ylabel("distance")
    twin = ax.twinx()
    _, ratio = _column(history, "ratio")
    twin.plot(k, ratio, color="0.6", lw=0.8, label="ratio")
    twin.set_ylabel("ratio of successive residuals", color="0.4")
    ax.legend(loc="best", fontsize=7)
    return ax


def plot_series(history: Sequence[dict[str, Any]], key: str, ax: Axes, *, label: str | None = None) -> Axes:
    """One history column against the iteration, on a log scale where it is positive."""
    k, v = _column(history, key)
    ok = np.isfinite(v)
    if ok.any() and np.all(v[ok] > 0):
        ax.semilogy(k[ok], v[ok], "o-", ms=3)
    else:
        ax.plot(k[ok], v[ok], "o-", ms=3)
    ax.set_xlabel("outer iteration $k$")
    ax.set_ylabel(label or key)
    if not ok.any():
        ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes)
    return ax


def plot_mean_flow(mean: np.ndarray, ax: Axes, reference_mean: np.ndarray | None = None) -> Axes:
    """Mean flow ``(T+1, n)`` per coordinate, against the reference's when there is one."""
    t = np.arange(mean.shape[0])
    for i in range(mean.shape[1]):
        line = ax.plot(t, mean[:, i], "o-", ms=3, label=f"$m_t$[{i}]")[0]
        if reference_mean is not None:
            ax.plot(t, reference_mean[:, i], "--", color=line.get_color(), label=f"$m^*_t$[{i}] (exact)")
    ax.set_xlabel("time $t$")
    ax.set_ylabel("mean")
    ax.legend(loc="best", fontsize=7)
    return ax


def _gauss(x: np.ndarray, mu: float, var: float) -> np.ndarray:
    return np.exp(-0.5 * (x - mu) ** 2 / var) / np.sqrt(2 * np.pi * var)


def plot_marginals(
    flow: dict[str, np.ndarray], ax: Axes, times: Sequence[int], reference: Any | None = None
) -> Axes:
    """First-coordinate marginals of the flow at ``times`` (histogram or Gaussian), exact Gaussian dashed."""
    for t in times:
        color = None
        if "particles" in flow:
            x, w = flow["particles"][t][:, 0], flow["weights"][t]
            _, _, patches = ax.hist(x, bins=60, weights=w, density=True, histtype="step", label=f"t={t}")
            color = patches[0].get_edgecolor()
            lo, hi = np.quantile(x, [0.001, 0.999])
        else:
            mu, var = flow["mean"][t][0], flow["cov"][t][0, 0]
            sd = np.sqrt(max(var, 1e-300))
            lo, hi = mu - 4 * sd, mu + 4 * sd
            grid = np.linspace(lo, hi, 200)
            color = ax.plot(grid, _gauss(grid, mu, var), label=f"t={t}")[0].get_color()
        if reference is not None and hasattr(reference, "cov"):
            mu, var = reference.mean[t][0], reference.cov[t][0, 0]
            sd = np.sqrt(var)
            grid = np.linspace(min(lo, mu - 4 * sd), max(hi, mu + 4 * sd), 200)
            ax.plot(grid, _gauss(grid, mu, var), "--", color=color, lw=1)
    ax.set_xlabel("$x$ (first coordinate)")
    ax.set_ylabel("density" + (" (dashed: exact)" if reference is not None else ""))
    ax.legend(loc="best", fontsize=7)
    return ax


def plot_snapshots(flow: dict[str, np.ndarray], ax: Axes, times: Sequence[int], *, points: int = 600) -> Axes:
    """A 2-D particle flow as scatter plots at ``times``, one colour per time.

    At most ``points`` particles per time (evenly spaced in storage order, a deterministic subsample), each
    drawn with an area proportional to its weight.
    """
    for t in times:
        x, w = flow["particles"][t], flow["weights"][t]
        idx = np.unique(np.linspace(0, x.shape[0] - 1, min(points, x.shape[0])).round().astype(int))
        size = 3.0 * w[idx] * x.shape[0]
        ax.scatter(x[idx, 0], x[idx, 1], s=size, alpha=0.5, label=f"t={t}")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="best", fontsize=7, markerscale=3)
    return ax


def plot_run(directory: str | Path, reference: Any | None = None) -> list[Path]:
    """Write ``convergence.{png,pdf}`` and ``flow.{png,pdf}`` into the run directory; return their paths.

    ``reference`` defaults to the problem's exact equilibrium, rebuilt from ``config.json`` when possible.
    """
    d = Path(directory)
    run: RunFiles = load_run(d)
    if reference is None:
        from mfgsolve.registry import problem_from_config

        problem = problem_from_config(run.config)
        try:
            reference = problem.reference() if problem is not None else None
        except ArithmeticError:
            reference = None
    title = f"{run.summary['problem']} | oracle {run.summary['oracle']} | scheme {run.summary['scheme']}"

    conv = Figure(figsize=(13, 3.6), layout="constrained")
    axes = conv.subplots(1, 3)
    plot_residuals(run.history, axes[0])
    plot_series(run.history, "relative_exploitability", axes[1], label="relative exploitability")
    plot_series(run.history, "mean_error", axes[2], label="mean error vs exact")
    conv.suptitle(f"{title} | diagnosis: {run.summary['diagnosis']}", fontsize=9)

    planar = "particles" in run.flow and run.flow["particles"].shape[-1] == 2
    fl = Figure(figsize=(14 if planar else 9, 3.6), layout="constrained")
    a0, a1, *rest = fl.subplots(1, 3 if planar else 2)
    ref_mean = getattr(reference, "mean", None)
    plot_mean_flow(run.flow["mean"], a0, ref_mean if isinstance(ref_mean, np.ndarray) and ref_mean.shape == run.flow["mean"].shape else None)
    T = run.flow["mean"].shape[0] - 1
    plot_marginals(run.flow, a1, sorted({0, T // 2, T}), reference if hasattr(reference, "cov") else None)
    if planar:  # a crowd in the plane: where the particles are, not only the first coordinate
        plot_snapshots(run.flow, rest[0], sorted({0, T // 4, T // 2, 3 * T // 4, T}))
    fl.suptitle(title, fontsize=9)

    paths = []
    for name, fig in (("convergence", conv), ("flow", fl)):
        for ext in ("png", "pdf"):
            path = d / f"{name}.{ext}"
            fig.savefig(path, dpi=130)
            paths.append(path)
    return paths
