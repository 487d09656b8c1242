r"""A sweep's runs in two tables: ``runs.csv`` (a row per run) and ``table.csv`` / ``table.md`` (over seeds).

A group is the runs that differ only by their seed. For each figure of a group's finished runs, with
:math:`n` values :math:`v_i`, the tables give the mean :math:`\bar v`, the standard deviation :math:`s` (ddof 1)
and the 95% confidence interval of the mean from Student's t distribution with :math:`n - 1` degrees of freedom,

.. math::

    \bar v \pm t_{0.975,\,n-1}\, s / \sqrt{n},

empty where :math:`n < 2`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

from mfgsolve.results import Estimate, estimate
from mfgsolve.sweeps.spec import Sweep, _flatten, _toml

__all__ = ["SUMMARY_COLUMNS", "FIGURES", "Estimate", "estimate", "run_rows", "group_rows", "aggregate"]

#: The summary figures of a run in ``runs.csv`` (from its ``summary.json``; ``final_gap`` from ``history.csv``).
SUMMARY_COLUMNS = ("iterations_done", "converged", "diagnosis", "mean_error", "relative_exploitability",
                   "exploitability", "contraction_rate", "final_gap", "wall_seconds")
#: The figures averaged over seeds: column in ``runs.csv`` -> heading in ``table.md`` and its scale.
FIGURES = {"mean_error": ("mean error (%)", 100.0), "relative_exploitability": ("relative exploitability (%)", 100.0),
           "iterations_done": ("iterations", 1.0), "wall_seconds": ("wall time (s)", 1.0)}


def _summary(directory: Path) -> dict[str, Any]:
    """The summary figures of a run directory (empty when it has no ``summary.json``)."""
    try:
        summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    row = {key: summary.get(key) for key in SUMMARY_COLUMNS if key not in ("iterations_done", "final_gap")}
    row.update(iterations_done=summary.get("iterations"), final_gap=None)
    try:
        with open(directory / "history.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        row["final_gap"] = float(rows[-1]["gap"]) if rows and rows[-1]["gap"] else None
    except (OSError, ValueError, KeyError):
        pass
    return row


def run_rows(sweep: Sweep, out: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows of ``runs.csv``: id, group, status, error, the sweep's settings, the summary figures."""
    from mfgsolve.sweeps.execute import _read_manifest

    manifest = _read_manifest(out)
    settings = list(dict.fromkeys(k for c in sweep.cells for k in _flatten(c.settings)))
    settings = ["problem", *[k for k in settings if k not in ("problem", "seed")], "seed"]
    rows = []
    for cell in sweep.cells:
        record = manifest.get(cell.id, {})
        flat = _flatten(cell.settings)
        row: dict[str, Any] = {"id": cell.id, "group": cell.group, "status": record.get("status", "not run"),
                               "error": record.get("error") or ""}
        row.update({k: (flat[k] if isinstance(flat.get(k), (str, int, float)) else _toml(flat[k])) if k in flat else ""
                    for k in settings})
        row["seed"] = cell.seed
        row.update({k: "" for k in SUMMARY_COLUMNS})
        row.update({k: v for k, v in _summary(out / "runs" / cell.id).items() if v is not None})
        rows.append(row)
    return ["id", "group", "status", "error", *settings, *SUMMARY_COLUMNS], rows


def group_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows of ``table.csv``: per group of finished runs, ``runs`` and for each figure its
    ``_mean``, ``_sd``, ``_ci_low``, ``_ci_high``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "done":
            groups.setdefault(row["group"], []).append(row)
    columns = ["group", "runs", "seeds"] + [f"{f}_{s}" for f in FIGURES for s in ("mean", "sd", "ci_low", "ci_high")]
    out = []
    for group, members in groups.items():
        entry: dict[str, Any] = {"group": group, "runs": len(members),
                                 "seeds": " ".join(str(r["seed"]) for r in members)}
        for figure in FIGURES:
            e = estimate([_number(r.get(figure)) for r in members])
            entry.update({f"{figure}_mean": e.mean, f"{figure}_sd": e.sd, f"{figure}_ci_low": e.low,
                          f"{figure}_ci_high": e.high})
        out.append(entry)
    return columns, out


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if isinstance(row.get(k), float) and not math.isfinite(row[k]) else
                         (repr(row[k]) if isinstance(row.get(k), float) else row.get(k, "")) for k in columns})
    return buf.getvalue().encode()


def _cell(entry: dict[str, Any], figure: str, scale: float) -> str:
    mean, sd, low, high = (entry[f"{figure}_{s}"] * scale for s in ("mean", "sd", "ci_low", "ci_high"))
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(sd):
        return f"{mean:.3g}"
    return f"{mean:.3g} ± {sd:.2g} [{low:.3g}, {high:.3g}]"


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """``table.md``: a group per line, each figure as ``mean ± sd [95% CI]`` over its seeds."""
    head = ["group", "runs", *(label for label, _ in FIGURES.values())]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for entry in rows:
        cells = [entry["group"], str(entry["runs"]), *(_cell(entry, f, s) for f, (_, s) in FIGURES.items())]
        lines.append("| " + " | ".join(cells) + " |")
    note = ("\nEach figure: mean ± standard deviation [95% confidence interval of the mean, Student t] over the "
            "group's seeds; runs that did not finish are left out (see runs.csv).\n")
    return "\n".join(lines) + "\n" + note


def aggregate(sweep: Sweep, out: Path) -> Path:
    """Write ``runs.csv``, ``table.csv`` and ``table.md`` into the sweep directory ``out``; return ``table.md``."""
    from mfgsolve.results import atomic_write

    columns, rows = run_rows(sweep, out)
    atomic_write(out / "runs.csv", _csv(columns, rows))
    columns, groups = group_rows(rows)
    atomic_write(out / "table.csv", _csv(columns, groups))
    atomic_write(out / "table.md", markdown(groups).encode("utf-8"))
    return out / "table.md"
