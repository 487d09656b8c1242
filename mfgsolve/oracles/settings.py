"""Checks of an oracle's settings by the types their fields are annotated with, shared by every learned oracle's
settings dataclass and by :func:`mfgsolve.make_oracle` (so the command line's ``--br-set`` and the Python API refuse
the same values, in the same words)."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np

from mfgsolve.errors import SpecError

__all__ = ["check_setting", "check_fields", "check_budget"]


#: Largest value of an integer size setting (agents, batch, replay...): beyond it the tensors it sizes cannot fit in
#: memory. Layer widths square, so ``hidden`` and ``encoder_dim`` have a bound of their own.
_MAX_SIZE = 2**24
_MAX_WIDTH = 2**14
_UNBOUNDED = ("seed", "updates", "eval_every")
_KINDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}


def check_setting(key: str, value: Any, annotation: str) -> None:
    """A setting's value of the type its field is annotated with (integers as integers, finite numbers) and of a
    size that fits in memory; a :class:`SpecError` naming the setting otherwise."""
    kinds = {part.strip() for part in annotation.split("|")}
    if value is None or not kinds - {"None"}:
        return
    expected = " or ".join(_KINDS.get(k, k) for k in sorted(kinds - {"None"}))
    if isinstance(value, bool):
        if "bool" not in kinds:
            raise SpecError(key, f"expected {expected}, got {value!r}")
        return
    if "int" in kinds and "float" not in kinds:
        if not isinstance(value, (int, np.integer)):
            raise SpecError(key, f"expected an integer, got {value!r}")
        bound = _MAX_WIDTH if key in ("hidden", "encoder_dim") else _MAX_SIZE
        if key not in _UNBOUNDED and value > bound:
            raise SpecError(key, f"{value} is too large (at most {bound}: the tensors it sizes would not fit in "
                                 "memory)")
        return
    if "float" in kinds:
        if not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
            raise SpecError(key, f"expected a finite number, got {value!r}")
        return
    if "str" in kinds and not isinstance(value, str):
        raise SpecError(key, f"expected a string, got {value!r}")
    if "bool" in kinds and kinds <= {"bool", "None"}:
        raise SpecError(key, f"expected true or false, got {value!r}")


def check_budget(settings: Any) -> None:
    """The fields every learned oracle shares: ``seed`` (``None``: the run's), ``updates`` and ``seconds`` (the
    budget; ``None`` for both: the run's)."""
    seed, updates, seconds = settings.seed, settings.updates, settings.seconds
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise SpecError("seed", f"must be a non-negative integer or None, got {seed!r}")
    if updates is not None and (not isinstance(updates, (int, np.integer)) or isinstance(updates, bool) or updates < 1):
        raise SpecError("updates", f"must be a positive integer or None, got {updates!r}")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating))
                                or not math.isfinite(seconds) or not seconds > 0):
        raise SpecError("seconds", f"must be a positive number or None, got {seconds!r}")


def check_fields(settings: Any) -> None:
    """Every field of a settings dataclass checked by :func:`check_setting` against its annotation, and the
    shared budget fields by :func:`check_budget`."""
    check_budget(settings)
    for f in fields(settings):
        check_setting(f.name, getattr(settings, f.name), f.type if isinstance(f.type, str) else f.type.__name__)
