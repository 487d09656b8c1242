"""Finding an oracle by name (entry-point group ``mfgsolve.oracles``), the way problems are found.

A package registers an oracle with an entry point whose object is a factory, usually the oracle class: called
with keyword settings, it returns an :class:`~mfgsolve.oracles.base.Oracle`. mfgsolve's own oracles are
registered this way in its ``pyproject.toml``; the command line, the benchmarks and the paper make every oracle
through :func:`make_oracle`.

>>> from mfgsolve.oracles.registry import make_oracle
>>> make_oracle("exact").name
'exact'
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable

from mfgsolve.errors import SpecError
from mfgsolve.oracles.base import Oracle

__all__ = ["ENTRY_POINT_GROUP", "available_oracles", "make_oracle", "oracle_settings"]

ENTRY_POINT_GROUP = "mfgsolve.oracles"


def available_oracles() -> dict[str, EntryPoint]:
    """Registered oracle names and their entry points."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _factory(name: str) -> Callable[..., Oracle]:
    registered = available_oracles()
    if name not in registered:
        known = ", ".join(sorted(registered)) or "none installed"
        raise SpecError("oracle", f"unknown oracle {name!r} (registered: {known})")
    return registered[name].load()


def _setting_types(name: str) -> dict[str, str]:
    """Each setting of a registered oracle (the fields of its ``settings_type`` dataclass; none for an oracle
    without settings, such as the exact one) and its annotation as text (``"int | None"``)."""
    kind = getattr(_factory(name), "settings_type", None)
    if kind is None or not is_dataclass(kind):
        return {}
    return {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            for f in fields(kind)}


def oracle_settings(name: str) -> tuple[str, ...]:
    """The settings a registered oracle takes (none for an oracle without settings, such as the exact one)."""
    return tuple(_setting_types(name))


def make_oracle(name: str, **settings: Any) -> Oracle:
    """The oracle registered as ``name``, made with ``settings``.

    Raises
    ------
    SpecError
        For an unknown name, a setting the oracle does not take (naming the known ones) or a bad value.
    """
    factory = _factory(name)
    types = _setting_types(name)
    for key in settings:  # the values are checked by the settings type itself (mfgsolve.oracles.settings)
        if key not in types:
            takes = f"known: {', '.join(sorted(types))}" if types else "it takes none"
            raise SpecError("oracle", f"{name} has no setting {key!r} ({takes})")
    try:
        return factory(**settings)
    except SpecError:  # already names the setting
        raise
    except (TypeError, ValueError) as exc:
        raise SpecError("oracle", f"{name}: {str(exc).splitlines()[0]}") from None
