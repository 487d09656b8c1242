"""Finding a problem by name (entry-point group ``mfgsolve.problems``) or by the path of a TOML spec.

A package registers problems with an entry point whose object is a factory: called with keyword overrides,
it returns a :class:`~mfgsolve.problem.Problem`. mfgsolve's own ``problems`` package registers this way too,
exactly as a user's package would.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
import os
from pathlib import Path
from typing import Any, Callable, Mapping

from mfgsolve.errors import SpecError
from mfgsolve.lq.problem import LQProblem, load_toml
from mfgsolve.problem import Problem

__all__ = ["available_problems", "load_problem", "problem_from_config", "ENTRY_POINT_GROUP", "FAMILIES"]

ENTRY_POINT_GROUP = "mfgsolve.problems"

#: Spec-file families: ``family = "..."`` -> builder from the spec mapping.
FAMILIES: dict[str, Callable[..., Problem]] = {"lq": LQProblem.from_spec}


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
        return FAMILIES[family](spec, name=str(spec.get("name", path.stem)))
    registered = available_problems()
    if name not in registered:
        known = ", ".join(sorted(registered)) or "none installed"
        raise SpecError("PROBLEM", f"unknown problem {name!r} (registered: {known}; or give a .toml spec path)")
    factory = registered[name].load()
    return factory(**overrides)


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
