"""Finding an oracle by name (entry-point group ``mfgsolve.oracles``), the way problems are found.

A package registers an oracle with an entry point whose object is a factory, usually the oracle class: called
with keyword settings, it returns an :class:`~mfgsolve.oracles.base.Oracle`. mfgsolve's own oracles are
registered this way in its ``pyproject.toml``; the command line, the benchmarks and the paper make every oracle
through :func:`make_oracle`.

A name may carry one argument after a colon, ``name:arg``: the entry ``name``'s factory is then called with
``arg`` as its first positional argument (``sb3:SAC`` is ``SB3Oracle("SAC", **settings)``), and that argument's
setting is no longer among :func:`oracle_settings`.

>>> from mfgsolve.oracles.registry import make_oracle, parse_oracle_name
>>> make_oracle("exact").name
'exact'
>>> parse_oracle_name("sb3:SAC")
('sb3', 'SAC')
>>> parse_oracle_name("ddpg")
('ddpg', None)
"""

from __future__ import annotations

import inspect
from dataclasses import fields, is_dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable

from mfgsolve.errors import SpecError
from mfgsolve.oracles.base import Oracle

__all__ = ["ENTRY_POINT_GROUP", "available_oracles", "make_oracle", "oracle_settings", "parse_oracle_name"]

ENTRY_POINT_GROUP = "mfgsolve.oracles"


def available_oracles() -> dict[str, EntryPoint]:
    """Registered oracle names and their entry points."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def parse_oracle_name(name: str) -> tuple[str, str | None]:
    """``"name:arg"`` as ``("name", "arg")``, a plain ``"name"`` as ``("name", None)``.

    Raises
    ------
    SpecError
        For an empty name or argument (``"sb3:"``, ``":SAC"``) or more than one colon.
    """
    if not isinstance(name, str):
        raise SpecError("oracle", f"an oracle name is a string, got {name!r}")
    base, sep, arg = name.partition(":")
    if not sep:
        return name, None
    if not base or not arg or ":" in arg:
        raise SpecError("oracle", f"bad oracle name {name!r} (expected name or name:argument, e.g. sb3:SAC)")
    return base, arg


def _factory(name: str) -> Callable[..., Oracle]:
    base, _ = parse_oracle_name(name)
    registered = available_oracles()
    if base not in registered:
        known = ", ".join(sorted(registered)) or "none installed"
        raise SpecError("oracle", f"unknown oracle {base!r} (registered: {known})")
    return registered[base].load()


def _first_parameter(factory: Callable[..., Any]) -> str | None:
    """The name of the factory's first positional parameter (what ``name:arg`` sets), if it has one."""
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return p.name
    return None


def _setting_types(name: str) -> dict[str, str]:
    """Each setting of a registered oracle (the fields of its ``settings_type`` dataclass; none for an oracle
    without settings, such as the exact one) and its annotation as text (``"int | None"``); for ``name:arg``,
    without the setting that ``arg`` gives."""
    factory = _factory(name)
    kind = getattr(factory, "settings_type", None)
    if kind is None or not is_dataclass(kind):
        return {}
    out = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
           for f in fields(kind)}
    if parse_oracle_name(name)[1] is not None:
        out.pop(_first_parameter(factory) or "", None)
    return out


def oracle_settings(name: str) -> tuple[str, ...]:
    """The settings a registered oracle takes (none for an oracle without settings, such as the exact one)."""
    return tuple(_setting_types(name))


def make_oracle(name: str, **settings: Any) -> Oracle:
    """The oracle registered as ``name``, made with ``settings``; ``name:arg`` calls the factory of ``name`` with
    ``arg`` as its first positional argument (``make_oracle("sb3:SAC", updates=500)``).

    Raises
    ------
    SpecError
        For an unknown name, a setting the oracle does not take (naming the known ones) or a bad value.
    """
    factory = _factory(name)
    _, arg = parse_oracle_name(name)
    types = _setting_types(name)
    for key in settings:  # the values are checked by the settings type itself (mfgsolve.oracles.settings)
        if key not in types:
            takes = f"known: {', '.join(sorted(types))}" if types else "it takes none"
            raise SpecError("oracle", f"{name} has no setting {key!r} ({takes})")
    try:
        return factory(**settings) if arg is None else factory(arg, **settings)
    except SpecError:  # already names the setting
        raise
    except (TypeError, ValueError) as exc:
        raise SpecError("oracle", f"{name}: {str(exc).splitlines()[0]}") from None
