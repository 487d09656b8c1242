"""A sweep's figure: each group's per-iteration residual, error and exploitability, the seeds as a band.

The line is the mean over the group's seeds at each iteration, the band spans their smallest to largest value
(with two or three seeds a standard deviation says little). Panel functions take data and an ``ax`` and return
the ``ax``, as in :mod:`mfgsolve.plotting`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_band", "plot_sweep"]

#: The panels: history column -> axis label.
PANELS = {"residual": "residual $W_2(m^{k+1}, m^k)$", "mean_error": "mean error vs exact",
          "relative_exploitability": "relative exploitability"}


def plot_band(series: Sequence[np.ndarray], ax: Axes, *, label: str) -> Axes:
    """Mean over ``series`` (one array per seed, iteration 1, 2, ...; NaN where not computed) and a min-max band;
    log scale when every value is positive."""
    length = max(len(s) for s in series)
    grid = np.full((len(series), length), np.nan)
    for i, s in enumerate(series):
        grid[i, : len(s)] = s
    k = np.arange(1, length + 1)
    seen = np.isfinite(grid).any(axis=0)
    if not seen.any():
        return ax
    with np.errstate(all="ignore"):
        mean = np.nanmean(grid[:, seen], axis=0)
        low, high = np.nanmin(grid[:, seen], axis=0), np.nanmax(grid[:, seen], axis=0)
    line = ax.plot(k[seen], mean, "o-", ms=3, label=f"{label} ({len(series)} seeds)")[0]
    ax.fill_between(k[seen], low, high, color=line.get_color(), alpha=0.2, lw=0)
    if np.all(grid[np.isfinite(grid)] > 0):
        ax.set_yscale("log")
    return ax


def _history(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {key: np.array([float(r[key]) if r.get(key) else np.nan for r in rows]) for key in PANELS}


def plot_sweep(directory: str | Path) -> list[Path]:
    """Write ``sweep.{png,pdf}`` into a sweep directory (from ``runs.csv`` and each finished run's
    ``history.csv``); return their paths."""
    d = Path(directory)
    with open(d / "runs.csv", newline="", encoding="utf-8") as fh:
        runs = [r for r in csv.DictReader(fh) if r["status"] == "done"]
    groups: dict[str, list[dict[str, np.ndarray]]] = {}
    for r in runs:
        path = d / "runs" / r["id"] / "history.csv"
        if path.is_file():
            groups.setdefault(r["group"], []).append(_history(path))
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, len(PANELS))
    for ax, (key, label) in zip(axes, PANELS.items()):
        for group, histories in groups.items():
            plot_band([h[key] for h in histories], ax, label=group)
        ax.set_xlabel("outer iteration $k$")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        if not ax.lines:
            ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes)
    axes[0].legend(loc="best", fontsize=7)
    fig.suptitle(f"sweep {d.name}: mean over seeds, band from the smallest to the largest", fontsize=9)
    paths = []
    for ext in ("png", "pdf"):
        path = d / f"sweep.{ext}"
        fig.savefig(path, dpi=130)
        paths.append(path)
    return paths
