"""Parameter overrides for the problem factories, validated like a spec: one :class:`SpecError` naming the field."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from mfgsolve import SpecError

__all__ = ["Check", "number", "integer", "vector", "merge", "steps"]

#: A check turns a raw override into a clean value or raises ``SpecError(key, ...)``.
Check = Callable[[str, Any], Any]


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: Most Euler steps of a discretised problem (the defaults take 20 to 40).
MAX_STEPS = 100_000
#: Largest magnitude of a parameter: squares and products of a few parameters stay within double precision.
MAX_MAGNITUDE = 1e50


def _magnitude(key: str, v: float) -> None:
    if abs(v) > MAX_MAGNITUDE:
        raise SpecError(key, f"magnitude {abs(v):.3g} is beyond {MAX_MAGNITUDE:g} (it would overflow double "
                             "precision; rescale the problem)")


def number(*, low: float | None = None, high: float | None = None, strict: bool = True) -> Check:
    """A finite real in ``(low, high)`` (``[low, high]`` with ``strict=False``); either bound may be absent."""

    def check(key: str, v: Any) -> float:
        if not _is_number(v) or not math.isfinite(v):
            raise SpecError(key, f"must be a finite number, got {v!r}")
        _magnitude(key, v)
        v = float(v)
        if low is not None and (v <= low if strict else v < low):
            raise SpecError(key, f"must be {'>' if strict else '>='} {low:g}, got {v:g}")
        if high is not None and (v >= high if strict else v > high):
            raise SpecError(key, f"must be {'<' if strict else '<='} {high:g}, got {v:g}")
        return v

    return check


def integer(*, low: int = 1) -> Check:
    """An integer ``>= low``."""

    def check(key: str, v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise SpecError(key, f"must be an integer >= {low}, got {v!r}")
        return int(v)

    return check


def vector(size: int) -> Check:
    """A list of ``size`` finite numbers."""

    def check(key: str, v: Any) -> list[float]:
        if not isinstance(v, (list, tuple)) or len(v) != size or not all(_is_number(x) and math.isfinite(x) for x in v):
            raise SpecError(key, f"must be a list of {size} finite numbers, got {v!r}")
        for x in v:
            _magnitude(key, x)
        return [float(x) for x in v]

    return check


def merge(defaults: Mapping[str, Any], checks: Mapping[str, Check], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by ``overrides``, every key known and every value checked."""
    for key in overrides:
        if key not in checks:
            raise SpecError(key, f"unknown parameter (known: {', '.join(checks)})")
    merged = {**defaults, **overrides}
    return {key: checks[key](key, merged[key]) for key in checks}


def steps(horizon: float, dt: float) -> int:
    """Number of Euler steps ``horizon / dt``, which must be an integer (to 1e-9 relative)."""
    T = round(horizon / dt)
    if T < 1 or abs(T * dt - horizon) > 1e-9 * horizon:
        raise SpecError("dt", f"horizon / dt must be a positive integer, got {horizon:g} / {dt:g} = {horizon / dt:g}")
    if T > MAX_STEPS:
        raise SpecError("dt", f"horizon / dt = {horizon:g} / {dt:g} = {T:,} steps; at most {MAX_STEPS:,} (every "
                              "step is a step of each rollout and of the exact solve): raise dt or shorten horizon")
    return T
