"""Typed results of a solve and the run directory that stores them.

A run directory holds ``config.json`` (everything needed to rerun, with versions), ``history.csv`` (a row per
outer iteration), ``summary.json`` and ``flow.npz`` (the final flow; always ``mean`` ``(T+1, n)``). Every file
is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mfgsolve.flows import Flow
from mfgsolve.policies import Policy

__all__ = ["IterationRecord", "Summary", "SolveResult", "RunFiles", "save_run", "load_run", "environment", "write_json", "save_npz", "write_history", "atomic_write",
           "Estimate", "estimate"]


@dataclass(frozen=True)
class IterationRecord:
    """One outer iteration ``k``: frozen ``m^k`` -> best response ``pi^k`` -> ``mu(pi^k)`` -> ``m^{k+1}``.

    Attributes
    ----------
    iteration : int
        ``k + 1``, the number of best responses computed so far.
    residual : float
        :math:`\\max_t W_2(m^{k+1}_t, m^k_t)`.
    gap : float
        Fixed-point gap :math:`\\max_t W_2(\\mu(\\pi^k)_t, m^k_t)` (equals the residual for Picard); the run
        stops on it.
    floor : float
        The sampling floor of the distance on :math:`m^{k+1}` (:func:`mfgsolve.resolution`: the distance between
        two independent halves of the flow; 0 for Gaussian flows). A residual or gap at or below it is within
        what the particle count resolves.
    ratio : float or None
        ``residual / previous residual``.
    rate_estimate : float or None
        Largest of the last three ratios (used for the bound).
    bound : float or None
        A-posteriori bound ``rate / (1 - rate) * residual + 2 * floor`` on the distance to the equilibrium,
        when ``rate < 1`` (the floor term covers the sampling error of a particle flow).
    mean_error : float or None
        :math:`\\max_t\\|m^{k+1}_t - m^*_t\\|_\\infty / \\max_t\\|m^*_t\\|_\\infty` against the reference.
    reference_w2 : float or None
        :math:`\\max_t W_2(m^{k+1}_t, m^*_t)` when the reference law is Gaussian and known: exact for Gaussian
        flows, the moment (Gelbrich) distance for particle flows.
    exploitability, relative_exploitability : float or None
        Of the scheme's current policy, on its own flow, when computable.
    exploitability_se : float or None
        Its Monte-Carlo standard error (0 when exact).
    br_value : float or None
        The oracle's estimate of ``J(BR(m^k) | m^k)``.
    br_seconds, seconds : float
        Wall time of the best response; cumulative wall time of the run.
    """

    iteration: int
    residual: float
    gap: float
    floor: float
    ratio: float | None
    rate_estimate: float | None
    bound: float | None
    mean_error: float | None
    reference_w2: float | None
    exploitability: float | None
    relative_exploitability: float | None
    exploitability_se: float | None
    br_value: float | None
    br_seconds: float
    seconds: float


@dataclass(frozen=True)
class Summary:
    """The run in a few figures (``summary.json``)."""

    problem: str
    oracle: str
    scheme: str
    iterations: int
    converged: bool
    diagnosis: str
    advice: str
    residuals: list[float]
    contraction_rate: float | None
    mean_error: float | None
    exploitability: float | None
    relative_exploitability: float | None
    exploitability_se: float | None
    J_policy: float | None
    J_best: float | None
    reference_J: float | None
    reference_rho: float | None
    wall_seconds: float
    suggestion: dict[str, Any] | None = None
    """The scheme the advice recommends, as its ``config()`` (e.g. ``{"name": "damped", "alpha": 0.31}``)."""
    exploitability_bound: dict[str, Any] | None = None
    """For a problem with no exact exploitability: the trained best response whose gap is the exploitability
    reported (a **lower bound**): ``oracle``, ``updates``, ``seed``, ``agents``. ``None``: the value is exact (or
    an unbiased Monte-Carlo estimate on an LQ problem)."""


@dataclass(frozen=True, eq=False)
class SolveResult:
    """What :func:`mfgsolve.solve` returns: the history, the summary, the final flow and policy, the config."""

    history: tuple[IterationRecord, ...]
    summary: Summary
    flow: Flow
    policy: Policy
    config: dict[str, Any]

    @property
    def residuals(self) -> np.ndarray:
        return np.array([h.residual for h in self.history])

    def save(self, directory: str | Path) -> Path:
        """Write the run directory (see :func:`save_run`)."""
        return save_run(self, directory)


@dataclass(frozen=True)
class RunFiles:
    """A run directory read back: ``config`` and ``summary`` dicts, ``history`` rows, ``flow`` arrays."""

    config: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, float | None]]
    flow: dict[str, np.ndarray]


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become null, numpy scalars and arrays become Python values."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iub" or (value.dtype.kind == "f" and np.isfinite(value).all()):
            return value.tolist()  # one C pass: long reference flows would spend seconds per element here
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file of a unique name in the same directory, then rename.

    Two writers never share a temporary file, and a failed write (a full disk, an interrupt) removes its own.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the run's files get the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (non-finite numbers as null); a list that holds no mapping is
    written on one line (by the C encoder: a reference's flows at T = 1e5 took seconds element by element)."""
    atomic_write(Path(path), (_dumps(_clean(obj), "") + "\n").encode())


def _dumps(value: Any, indent: str) -> str:
    if isinstance(value, Mapping) and value:
        inner = indent + "  "
        items = (f"{inner}{json.dumps(k)}: {_dumps(v, inner)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list):
        flat = json.dumps(value)
        if "{" not in flat:  # no mapping inside (a brace inside a string only costs the one-line layout)
            return flat
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _dumps(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value)


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Atomically write named arrays to an ``.npz`` file."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(Path(path), buf.getvalue())


def write_history(path: str | Path, history: Sequence[IterationRecord]) -> None:
    """Atomically write ``history.csv``: a header and one row per outer iteration (empty cell = not computed)."""
    atomic_write(Path(path), _history_csv(history))


def _history_csv(history: Sequence[IterationRecord]) -> bytes:
    buf = io.StringIO()
    names = [f.name for f in fields(IterationRecord)]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for rec in history:
        row = []
        for name in names:
            v = getattr(rec, name)
            row.append("" if v is None or (isinstance(v, float) and not math.isfinite(v)) else repr(v))
        writer.writerow(row)
    return buf.getvalue().encode()


def save_run(result: SolveResult, directory: str | Path) -> Path:
    """Write ``config.json``, ``history.csv``, ``summary.json`` and ``flow.npz`` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", result.config)
    write_history(out / "history.csv", result.history)
    write_json(out / "summary.json", asdict(result.summary))
    save_npz(out / "flow.npz", result.flow.arrays())
    return out


def load_run(directory: str | Path) -> RunFiles:
    """Read a run directory written by :func:`save_run`.

    Raises
    ------
    RunDirError
        One line when a file is missing (not a finished run directory) or damaged (not JSON, not a CSV of numbers,
        not an ``.npz`` of plain arrays).
    """
    import zipfile

    from mfgsolve.errors import RunDirError

    d = Path(directory)
    missing = [name for name in ("config.json", "summary.json", "history.csv", "flow.npz") if not (d / name).is_file()]
    if missing:
        raise RunDirError("run_dir", f"{d} is not a finished run directory (no {', '.join(missing)})")
    name = "config.json"
    try:
        config = json.loads((d / name).read_text(encoding="utf-8"))
        name = "summary.json"
        summary = json.loads((d / name).read_text(encoding="utf-8"))
        name = "history.csv"
        with open(d / name, newline="", encoding="utf-8") as fh:
            history = [
                {k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(fh)
            ]
        name = "flow.npz"
        with np.load(d / name) as npz:
            flow = {k: npz[k] for k in npz.files}
    except (ValueError, KeyError, TypeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        first = (str(exc).splitlines() or [""])[0][:100]
        raise RunDirError("run_dir", f"{d / name} is damaged ({type(exc).__name__}: {first})") from None
    return RunFiles(config=config, summary=summary, history=history, flow=flow)


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(device: Any = "cpu") -> dict[str, Any]:
    """Versions and provenance recorded with every run, so a cited number can be traced to its code (``device``:
    the run's; a CUDA device adds the GPU's name and the CUDA version torch was built with)."""
    import ot
    import torch

    device = torch.device(device)
    gpu = {"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda} if device.type == "cuda" else {}

    from mfgsolve._version import __version__

    return {
        "mfgsolve": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pot": ot.__version__,
        "platform": platform.platform(),
        "device": str(device),
        **gpu,
        "torch_threads": torch.get_num_threads(),
    }


@dataclass(frozen=True)
class Estimate:
    """Mean, standard deviation and 95% Student-t confidence interval of ``n`` values (``nan`` where undefined)."""

    n: int
    mean: float
    sd: float
    low: float
    high: float


def estimate(values: Sequence[float]) -> Estimate:
    r"""The :class:`Estimate` of the finite ``values`` (``None`` and NaN left out): the mean :math:`\bar v`, the
    standard deviation :math:`s` (ddof 1) and :math:`\bar v \pm t_{0.975,\,n-1}\, s / \sqrt{n}` (undefined where
    :math:`n < 2`). The seed statistics of sweep tables and of the paper's tables."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    n = int(v.size)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return Estimate(1, mean, math.nan, math.nan, math.nan)
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return Estimate(n, mean, sd, mean - half, mean + half)
