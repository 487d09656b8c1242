r"""The LQ family: a :class:`~mfgsolve.problem.Problem` built from the terms of DESIGN.md's LQ convention.

A spec is a mapping (a TOML table) with ``family = "lq"``, the horizon ``T`` and any of the terms below as
numbers (1 x 1 or length-1 terms), lists (vectors) or nested lists (matrices). Absent terms are zero.

======================  ==========  ============================================================
terms                   shape       role
======================  ==========  ============================================================
A, Abar                 (n, n)      dynamics on the state and on the population mean
B                       (n, p)      dynamics on the action
c                       (n,)        constant drift
Sigma_w, Sigma0         (n, n)      noise and initial covariances (symmetric PSD)
mu0                     (n,)        initial mean
Q, R, N                 ..          x'Qx + a'Ra + 2x'Na
S, S_next, s            ..          2x'(S m_t + S_next m_{t+1} + s)
U, u                    (p, n),(p,) 2a'(U m_t + u)
W, w                    ..          m_t'W m_t + 2w'm_t
QT, ST, sT, WT, wT      ..          final cost x'QT x + 2x'(ST m_T + sT) + m_T'WT m_T + 2wT'm_T
Qbar, H / QbarT, HT     (n, n)      shorthand: adds (x - H m)'Qbar(x - H m) to the stage / final cost
======================  ==========  ============================================================

Cost matrices enter only through quadratic forms, so ``Q, R, W, QT, WT, Qbar, QbarT`` are symmetrised.
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from mfgsolve._linalg import psd_sqrt
from mfgsolve.errors import SpecError
from mfgsolve.flows import Flow
from mfgsolve.lq.reference import LQCoefficients, LQReference, equilibrium, riccati

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["LQProblem", "LQ_TERMS", "load_toml"]

#: Every term of the convention and its shape in the dimensions ``n`` (state) and ``p`` (action).
LQ_TERMS: dict[str, tuple[str, ...]] = {
    "A": ("n", "n"), "B": ("n", "p"), "Abar": ("n", "n"), "c": ("n",), "Sigma_w": ("n", "n"),
    "Q": ("n", "n"), "R": ("p", "p"), "N": ("n", "p"), "S": ("n", "n"), "S_next": ("n", "n"), "s": ("n",),
    "U": ("p", "n"), "u": ("p",), "W": ("n", "n"), "w": ("n",),
    "QT": ("n", "n"), "ST": ("n", "n"), "sT": ("n",), "WT": ("n", "n"), "wT": ("n",),
    "mu0": ("n",), "Sigma0": ("n", "n"),
    "Qbar": ("n", "n"), "H": ("n", "n"), "QbarT": ("n", "n"), "HT": ("n", "n"),
}
_META_KEYS = {"family", "name", "description", "T"}
#: Largest magnitude of a spec entry: products of a few such terms (x'QT x, A'PA) stay within double precision.
MAX_MAGNITUDE = 1e50
_SYMMETRIC = ("Q", "R", "W", "QT", "WT", "Qbar", "QbarT")
_COVARIANCES = ("Sigma_w", "Sigma0")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML spec file; a syntax error is a :class:`SpecError` naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(str(path), f"not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise SpecError(str(path), "not valid TOML (not UTF-8 text)") from None
    except RecursionError:
        raise SpecError(str(path), "not valid TOML (nested too deeply)") from None
    except OSError as exc:
        raise SpecError(str(path), f"cannot read ({exc.strerror})") from None


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_array(key: str, value: object) -> np.ndarray:
    """Nested lists of numbers -> float array, refusing ragged, non-numeric and non-finite input."""
    if _is_number(value):
        arr = np.array(float(value))
    elif isinstance(value, (list, tuple)):
        if all(_is_number(v) for v in value):
            arr = np.array([float(v) for v in value])
        elif all(isinstance(v, (list, tuple)) for v in value) and value:
            rows = list(value)
            if any(not all(_is_number(x) for x in row) for row in rows):
                raise SpecError(key, "matrix entries must be numbers")
            if len({len(row) for row in rows}) != 1:
                raise SpecError(key, "ragged matrix (rows of different lengths)")
            arr = np.array([[float(x) for x in row] for row in rows])
        else:
            raise SpecError(key, "must be a number, a list of numbers or a list of equal-length lists of numbers")
    else:
        raise SpecError(key, f"must be a number or a (nested) list of numbers, got {type(value).__name__}")
    if not np.all(np.isfinite(arr)):
        raise SpecError(key, "contains a non-finite number")
    if arr.size and float(np.abs(arr).max()) > MAX_MAGNITUDE:
        raise SpecError(key, f"an entry of magnitude {float(np.abs(arr).max()):.3g} is beyond {MAX_MAGNITUDE:g} "
                             "(the exact solve would overflow double precision; rescale the problem)")
    return arr


def _dims(arrays: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Infer ``n`` and ``p`` from the first non-scalar term that carries each; 1 where none does."""
    dims: dict[str, tuple[int, str]] = {}
    for key, arr in arrays.items():
        axes = LQ_TERMS[key]
        if arr.ndim == 0:
            continue
        if arr.ndim != len(axes):
            want = "a vector" if len(axes) == 1 else "a matrix"
            raise SpecError(key, f"must be {want} of shape ({', '.join(axes)}), got {arr.ndim}-D input")
        for axis, size in zip(axes, arr.shape):
            if axis in dims and dims[axis][0] != size:
                size0, src = dims[axis]
                shape = "(" + ", ".join(str(dims.get(a, (size,))[0]) for a in axes) + ")"
                raise SpecError(key, f"shape {arr.shape} does not match {axis}={size0} (from {src}); expected {shape}")
            dims.setdefault(axis, (size, key))
    return {"n": dims.get("n", (1, ""))[0], "p": dims.get("p", (1, ""))[0]}


def _coefficients(spec: Mapping[str, Any]) -> LQCoefficients:
    unknown = sorted(set(spec) - set(LQ_TERMS) - _META_KEYS)
    if unknown:
        raise SpecError(unknown[0], f"unknown key (known: T, {', '.join(LQ_TERMS)})")
    if spec.get("family", "lq") != "lq":
        raise SpecError("family", f"expected 'lq', got {spec.get('family')!r}")
    if "T" not in spec:
        raise SpecError("T", "missing (the horizon, a positive integer)")
    T = spec["T"]
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise SpecError("T", f"must be a positive integer, got {T!r}")
    arrays = {key: _as_array(key, spec[key]) for key in LQ_TERMS if key in spec}
    dims = _dims(arrays)
    full: dict[str, np.ndarray] = {}
    for key, axes in LQ_TERMS.items():
        shape = tuple(dims[a] for a in axes)
        if key not in arrays:
            full[key] = np.zeros(shape)
            continue
        arr = arrays[key]
        if arr.ndim == 0:
            if any(s != 1 for s in shape):
                raise SpecError(key, f"a number stands only for a 1 x 1 term; expected shape {shape}")
            arr = arr.reshape(shape)
        full[key] = arr
    for key in _SYMMETRIC:
        full[key] = 0.5 * (full[key] + full[key].T)
    for key in _COVARIANCES:
        C = full[key]
        scale = max(1.0, float(np.abs(C).max()))
        if not np.allclose(C, C.T, rtol=0.0, atol=1e-12 * scale):
            raise SpecError(key, "covariance is not symmetric")
        if np.linalg.eigvalsh(C).min() < -1e-12 * scale:
            raise SpecError(key, "covariance is not positive semi-definite")
    Qbar, H, QbarT, HT = full.pop("Qbar"), full.pop("H"), full.pop("QbarT"), full.pop("HT")
    full["Q"] = full["Q"] + Qbar
    full["S"] = full["S"] - Qbar @ H
    full["W"] = full["W"] + H.T @ Qbar @ H
    full["QT"] = full["QT"] + QbarT
    full["ST"] = full["ST"] - QbarT @ HT
    full["WT"] = full["WT"] + HT.T @ QbarT @ HT
    return LQCoefficients(T=T, **full)


def _largest(coef: LQCoefficients) -> str:
    """The term of largest magnitude, e.g. ``A = 1e+20`` (for messages)."""
    terms = {k: float(np.abs(v).max()) for k, v in coef.as_dict().items() if k != "T" and np.size(v)}
    key = max(terms, key=lambda k: terms[k])
    return f"{key} = {terms[key]:.3g}"


class LQProblem:
    """A linear-quadratic mean field game (DESIGN.md's convention) as a batched torch :class:`Problem`.

    Parameters
    ----------
    coef : LQCoefficients
        The terms of the convention.
    name : str
        Name recorded in run files.
    spec : Mapping, optional
        The spec it came from (recorded in ``config.json``).

    Raises
    ------
    SpecError
        When ``R + B'P_{t+1}B`` is not positive definite at some ``t`` (field ``R``).

    Examples
    --------
    >>> pb = LQProblem.from_spec({"T": 2, "A": 1, "B": 1, "R": 1, "Q": 1, "mu0": 1})
    >>> pb.n, pb.p, pb.T
    (1, 1, 2)
    """

    action_low: torch.Tensor | None = None
    action_high: torch.Tensor | None = None
    particles: int = 131072
    """Default flow size: the dynamics and costs read only the flow's mean, so particles are cheap, and the
    sampling error of that mean is what a learned run's mean error cannot go below (one propagation of the
    exact equilibrium policy on ``lq-1d``: 0.22% of the mean scale at 131072 particles, 0.47% at 32768, 1.6% at
    4096; ``bench/particle_floor.py``)."""

    def __init__(self, coef: LQCoefficients, *, name: str = "lq", spec: Mapping[str, Any] | None = None) -> None:
        self.coef = coef
        self.name = name
        self.spec = dict(spec) if spec is not None else None
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, in one line
            self.riccati = riccati(coef)  # validates R + B'P_{t+1}B > 0 for every t
        if not all(np.all(np.isfinite(a)) for a in (self.riccati.P, self.riccati.K, self.riccati.G)):
            raise SpecError("spec", f"the Riccati recursion overflows double precision over T={coef.T} steps "
                                    f"(largest term {_largest(coef)}); rescale the problem or shorten T")
        self.n, self.p, self.T = coef.n, coef.p, coef.T
        self._noise_sqrt = psd_sqrt(coef.Sigma_w)
        self._x0_sqrt = psd_sqrt(coef.Sigma0)
        self._tensors: dict[tuple[torch.dtype, torch.device], dict[str, torch.Tensor]] = {}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], *, name: str | None = None) -> LQProblem:
        """Build from a spec mapping, validating every field (see the module docstring)."""
        if not isinstance(spec, Mapping):
            raise SpecError("spec", "must be a table of LQ terms")
        coef = _coefficients(spec)
        return cls(coef, name=name or str(spec.get("name", "lq")), spec=spec)

    @classmethod
    def from_toml(cls, path: str | Path) -> LQProblem:
        """Build from a TOML spec file (``family = "lq"``)."""
        return cls.from_spec(load_toml(path), name=str(path))

    def _t(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        key = (like.dtype, like.device)
        if key not in self._tensors:
            arrays = self.coef.as_dict()
            arrays.pop("T")
            arrays["noise_sqrt"], arrays["x0_sqrt"] = self._noise_sqrt, self._x0_sqrt
            self._tensors[key] = {
                k: torch.as_tensor(v, dtype=like.dtype, device=like.device) for k, v in arrays.items()
            }
        return self._tensors[key]

    def sample_x0(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        c = self._t(torch.empty(0, dtype=dtype, device=generator.device))
        z = torch.randn(n, self.n, generator=generator, dtype=dtype, device=generator.device)
        return c["mu0"] + z @ c["x0_sqrt"].T

    def step(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow, generator: torch.Generator) -> torch.Tensor:
        c = self._t(x)
        mt = m.mean(t).to(x)
        z = torch.randn(x.shape[0], self.n, generator=generator, dtype=x.dtype, device=x.device)
        return x @ c["A"].T + a @ c["B"].T + c["Abar"] @ mt + c["c"] + z @ c["noise_sqrt"].T

    def reward(self, t: int, x: torch.Tensor, a: torch.Tensor, m: Flow) -> torch.Tensor:
        c = self._t(x)
        mt, mn = m.mean(t).to(x), m.mean(t + 1).to(x)
        cost = (
            ((x @ c["Q"]) * x).sum(-1)
            + ((a @ c["R"]) * a).sum(-1)
            + 2.0 * ((x @ c["N"]) * a).sum(-1)
            + 2.0 * x @ (c["S"] @ mt + c["S_next"] @ mn + c["s"])
            + 2.0 * a @ (c["U"] @ mt + c["u"])
            + mt @ c["W"] @ mt
            + 2.0 * c["w"] @ mt
        )
        return -cost

    def terminal_reward(self, x: torch.Tensor, m: Flow) -> torch.Tensor:
        c = self._t(x)
        mT = m.mean(self.T).to(x)
        cost = (
            ((x @ c["QT"]) * x).sum(-1)
            + 2.0 * x @ (c["ST"] @ mT + c["sT"])
            + mT @ c["WT"] @ mT
            + 2.0 * c["wT"] @ mT
        )
        return -cost

    @cached_property
    def _reference(self) -> LQReference:
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                ref = equilibrium(self.coef, self.riccati)
        except (RuntimeError, np.linalg.LinAlgError, OverflowError, FloatingPointError) as exc:
            # a singular or non-finite factor: the fixed-point system is beyond double precision (not a proof
            # that no equilibrium exists, which is NoEquilibriumError's meaning)
            raise SpecError("spec", f"the exact equilibrium cannot be computed in double precision "
                                    f"({str(exc).splitlines()[0][:80]}; largest term {_largest(self.coef)}, "
                                    f"T={self.coef.T}); rescale the problem or shorten T") from None
        if not all(np.all(np.isfinite(np.asarray(a))) for a in (getattr(ref, "mean", 0.0), getattr(ref, "cov", 0.0))):
            raise SpecError("spec", f"the exact equilibrium overflows double precision (largest term "
                                    f"{_largest(self.coef)}, T={self.coef.T}); rescale the problem or shorten T")
        return ref

    def reference(self) -> LQReference:
        """The exact equilibrium (computed once). Raises NoEquilibriumError when it is not unique."""
        return self._reference

    def config(self) -> dict[str, Any]:
        spec = self.spec if self.spec is not None else {k: _jsonable(v) for k, v in self.coef.as_dict().items()}
        return {"family": "lq", "name": self.name, "spec": {k: _jsonable(v) for k, v in spec.items()}}

    def __repr__(self) -> str:
        return f"LQProblem(name={self.name!r}, n={self.n}, p={self.p}, T={self.T})"


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
