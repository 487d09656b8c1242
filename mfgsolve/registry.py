"""Finding a problem by name (entry-point group ``mfgsolve.problems``) or by the path of a TOML spec.

A package registers problems with an entry point whose object is a factory: called with keyword overrides,
it returns a :class:`~mfgsolve.problem.Problem`. mfgsolve's own ``problems`` package registers this way too,
exactly as a user's package would.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
import os
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

from mfgsolve.errors import SpecError
from mfgsolve.lq.problem import LQProblem, load_toml
from mfgsolve.problem import Problem

__all__ = ["available_problems", "load_problem", "problem_from_config", "problem_source", "ENTRY_POINT_GROUP",
           "FAMILIES"]

ENTRY_POINT_GROUP = "mfgsolve.problems"

#: Spec-file families: ``family = "..."`` -> builder from the spec mapping.
FAMILIES: dict[str, Callable[..., Problem]] = {"lq": LQProblem.from_spec}


#: How each live problem made by :func:`load_problem` was named (id -> source); an entry goes with its problem.
_SOURCES: dict[int, dict[str, Any]] = {}


def _record_source(problem: Problem, name: str, overrides: Mapping[str, Any]) -> Problem:
    key = id(problem)
    _SOURCES[key] = {"problem": name, "overrides": dict(overrides)}
    try:
        weakref.finalize(problem, _SOURCES.pop, key, None)
    except TypeError:  # an object that takes no weak reference: its entry stays (it is a few bytes)
        pass
    return problem


def problem_source(problem: Problem) -> dict[str, Any] | None:
    """How ``problem`` was loaded (``{"problem": name or spec path, "overrides": {...}}``), if by
    :func:`load_problem`: :func:`mfgsolve.solve` records it in ``config.json`` so that the run's problem can be
    rebuilt the same way (:func:`problem_from_config`)."""
    return _SOURCES.get(id(problem))


def available_problems() -> dict[str, EntryPoint]:
    """Registered problem names and their entry points."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _looks_like_path(name: str) -> bool:
    return name.endswith(".toml") or "/" in name or Path(name).is_file()


def load_problem(name: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> Problem:
    """A problem by registered name or by spec path (a string or a path object).

    Raises
    ------
    SpecError
        For an unknown name, a missing or invalid spec file, or an invalid override.
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise SpecError("PROBLEM", f"expected a problem name or spec path, got {type(name).__name__}")
    overrides = dict(overrides or {})
    if _looks_like_path(name):
        path = Path(name)
        if not path.is_file():
            raise SpecError("PROBLEM", f"no such spec file: {name}")
        spec = load_toml(path)
        spec.update(overrides)
        family = spec.get("family")
        if family not in FAMILIES:
            raise SpecError("family", f"unknown or missing family {family!r} (known: {', '.join(FAMILIES)})")
        return _record_source(FAMILIES[family](spec, name=str(spec.get("name", path.stem))), name, overrides)
    registered = available_problems()
    if name not in registered:
        known = ", ".join(sorted(registered)) or "none installed"
        raise SpecError("PROBLEM", f"unknown problem {name!r} (registered: {known}; or give a .toml spec path)")
    factory = registered[name].load()
    return _record_source(factory(**overrides), name, overrides)


def problem_from_config(config: Mapping[str, Any]) -> Problem | None:
    """Rebuild a run's problem from its ``config.json``: by the recorded source (name and overrides) when the
    CLI recorded one, else from an LQ spec; ``None`` when neither is there."""
    source = config.get("source")
    if isinstance(source, Mapping) and "problem" in source:
        return load_problem(str(source["problem"]), source.get("overrides") or {})
    problem = config.get("problem", {})
    if isinstance(problem, Mapping) and problem.get("family") in FAMILIES and "spec" in problem:
        spec = problem["spec"]
        return FAMILIES[problem["family"]](spec, name=str(problem.get("name", "lq")))
    return None
