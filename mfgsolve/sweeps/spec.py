"""Sweep files: fixed settings, a grid and explicit runs, each cell the arguments of one ``mfgsolve solve``.

A sweep file is TOML with three tables, every key an option of ``mfgsolve solve`` written with underscores
(``br_updates`` for ``--br-updates``; ``problem`` for the positional problem; ``set`` and ``br_set`` are tables of
problem overrides and oracle settings)::

    [fixed]                 # shared by every run
    oracle = "ddpg"
    iterations = 3
    br_updates = 200

    [grid]                  # lists of values: their cartesian product
    problem = ["lq-1d"]
    scheme = ["fp", "damped"]
    seed = [0, 1]

    [[runs]]                # explicit runs where a product does not fit (over [fixed], whose keys they may change)
    problem = "lq-1d"
    scheme = "damped"
    alpha = 0.3

Every cell becomes the argument list of ``mfgsolve solve`` and is checked by :func:`mfgsolve.cli.check_solve`
before any run starts: an unknown key, an empty grid or a bad value in any cell is one :class:`SpecError` naming
it. The options that say where and how a run executes (``out``, ``resume``, ``force``, ``quiet``, ``threads``)
belong to ``mfgsolve sweep`` and are refused in the file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from mfgsolve.errors import SpecError

__all__ = ["Cell", "Sweep", "load_sweep", "parse_sweep", "sweep_keys"]

#: ``mfgsolve solve`` options that ``mfgsolve sweep`` sets itself.
_RESERVED = ("out", "resume", "force", "quiet", "threads", "help")
#: Options whose value is a table of ``KEY=VALUE`` pairs.
_TABLES = ("set", "br_set")
#: Settings that every run id names, in this order, before the settings that vary and the seed.
_ALWAYS = ("problem", "oracle", "scheme")


@dataclass(frozen=True)
class Cell:
    """One run of a sweep.

    Attributes
    ----------
    id : str
        The readable name of its directory, ``DIR/runs/<id>``: problem, oracle, scheme, the settings that vary
        across the sweep, then ``seed<n>``.
    group : str
        ``id`` without the seed: the runs averaged together in ``table.csv``.
    settings : dict
        The sweep file's settings of this run (``[fixed]`` merged with its grid values or ``[[runs]]`` table).
    argv : tuple of str
        The arguments of ``mfgsolve solve`` for this run, without ``--out``, ``--resume`` and ``--threads``.
    seed : int
        Its seed (the default 0 where none is given).
    """

    id: str
    group: str
    settings: dict[str, Any]
    argv: tuple[str, ...]
    seed: int


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file: its path, its text and its runs."""

    path: Path
    text: str
    cells: tuple[Cell, ...]


def sweep_keys() -> dict[str, str]:
    """The keys a sweep file takes: ``{key: option}`` in the order of ``mfgsolve solve --help``."""
    from mfgsolve.cli import _parser

    solve = _parser()._subparsers._group_actions[0].choices["solve"]  # type: ignore[union-attr]
    keys = {}
    for action in solve._actions:
        if action.dest in _RESERVED:
            continue
        keys[action.dest] = action.option_strings[-1] if action.option_strings else action.dest.upper()
    return keys


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file (see the module docstring).

    Raises
    ------
    SpecError
        One line naming the file, the table or cell, and the key or option at fault.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), f"cannot read the sweep file ({getattr(exc, 'strerror', None) or exc})") from None
    return parse_sweep(text, path)


def parse_sweep(text: str, path: Path) -> Sweep:
    """Check the sweep file ``text`` (read from ``path``: spec files are found relative to it)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(str(path), f"not TOML ({exc})") from None
    try:
        cells = _cells(data, path.parent)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc.field}", exc.message) from None
    return Sweep(path=path, text=text, cells=tuple(cells))


# ---------------------------------------------------------------------------------------------- the cells
def _cells(data: dict[str, Any], here: Path) -> list[Cell]:
    unknown = sorted(set(data) - {"fixed", "grid", "runs"})
    if unknown:
        raise SpecError(unknown[0], "unknown key (a sweep file has the tables [fixed], [grid] and [[runs]])")
    keys = sweep_keys()
    fixed = _table(data.get("fixed", {}), "[fixed]", keys)
    grid = _table(data.get("grid", {}), "[grid]", keys)
    runs = data.get("runs", [])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise SpecError("runs", "must be a list of tables ([[runs]])")
    runs = [_table(r, f"runs[{i}]", keys) for i, r in enumerate(runs)]
    for where, table in [("[fixed]", fixed), *((f"runs[{i}]", r) for i, r in enumerate(runs))]:
        for key, value in table.items():
            if isinstance(value, list):
                raise SpecError(f"{where} {key}", f"one value expected, got {_toml(value)} (lists of values go under [grid])")
    if "grid" in data and not grid and not runs:
        raise SpecError("[grid]", "empty (give lists of values, e.g. seed = [0, 1])")
    if not grid and not runs:
        raise SpecError("[grid]", "no runs: give a [grid] of lists of values or [[runs]] tables")
    for key, values in grid.items():
        if not isinstance(values, list):
            raise SpecError(f"[grid] {key}", f"must be a list of values, got {values!r}")
        if not values:
            raise SpecError(f"[grid] {key}", "an empty list: the grid has no runs (give at least one value)")
        if key in fixed:
            raise SpecError(f"[grid] {key}", "also in [fixed] (give it in one of them)")

    named: list[tuple[str, dict[str, Any]]] = []
    if grid:
        for values in itertools.product(*grid.values()):
            point = dict(zip(grid, values))
            where = "grid cell (" + ", ".join(f"{k} = {_toml(v)}" for k, v in point.items()) + ")"
            named.append((where, {**fixed, **point}))
    named += [(f"runs[{i}]", {**fixed, **r}) for i, r in enumerate(runs)]
    return _name([(where, settings, _argv(where, settings, keys, here)) for where, settings in named])


def _table(value: Any, where: str, keys: Mapping[str, str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(where, f"must be a table, got {value!r}")
    for key in value:
        if key in _RESERVED:
            raise SpecError(f"{where} {key}", "is an option of `mfgsolve sweep` (where and how runs execute), not of a run")
        if key not in keys:
            raise SpecError(f"{where} {key}", f"unknown key (known: {', '.join(keys)})")
    return dict(value)


def _argv(where: str, settings: dict[str, Any], keys: Mapping[str, str], here: Path) -> list[str]:
    """The ``mfgsolve solve`` arguments of a cell, in the order of the command's options."""
    if "problem" not in settings:
        raise SpecError(where, "no problem (give problem in [fixed], [grid] or the run)")
    argv: list[str] = []
    for key, option in keys.items():
        if key not in settings:
            continue
        value = settings[key]
        if key in _TABLES:
            if not isinstance(value, dict):
                raise SpecError(f"{where} {key}", f"must be a table of KEY = VALUE, got {_toml(value)}")
            for name, item in value.items():
                argv += [option, f"{name}={_toml(item)}"]
        elif key == "problem":
            argv.insert(0, _problem(where, value, here))
        else:
            argv += [option, _text(where, key, value)]
    return [*argv, "--quiet"]


def _problem(where: str, value: Any, here: Path) -> str:
    """A registered name as it is; a spec file relative to the sweep file, made absolute."""
    if not isinstance(value, str):
        raise SpecError(f"{where} problem", f"must be a name or a spec file, got {_toml(value)}")
    if value.endswith(".toml") or "/" in value:
        path = Path(value).expanduser()
        return str((path if path.is_absolute() else here / path).resolve())
    return value


def _text(where: str, key: str, value: Any) -> str:
    if isinstance(value, (list, dict)):
        raise SpecError(f"{where} {key}", f"one value expected, got {_toml(value)} (lists of values go under [grid])")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpecError(f"{where} {key}", f"must be a number or a string, got {_toml(value)}")
    return repr(value) if isinstance(value, float) else str(value)


def _toml(value: Any) -> str:
    """``value`` written as a TOML value (what ``--set KEY=VALUE`` reads back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


# ---------------------------------------------------------------------------------------------- the names
def _name(cells: list[tuple[str, dict[str, Any], list[str]]]) -> list[Cell]:
    """Check every cell with ``mfgsolve solve``'s own checks, then give each a readable, unique id."""
    from mfgsolve.cli import check_solve

    checked = []
    for where, settings, argv in cells:
        try:
            checked.append(check_solve(argv))
        except SpecError as exc:
            raise SpecError(where, f"{exc.field}: {exc.message}") from None
    flat = [_flatten(settings) for _, settings, _ in cells]
    varying = [k for k in dict.fromkeys(k for f in flat for k in f)
               if k.split(".")[0] not in (*_ALWAYS, "seed") and len({_toml(f.get(k)) for f in flat}) > 1]
    groups = []
    for (_, _, argv), c, f in zip(cells, checked, flat):
        parts = [c.problem, c.oracle, c.scheme] + [f"{k}={_toml(f[k]).strip(chr(34))}" for k in varying if k in f]
        groups.append(_clean("__".join(parts)))
    ids = [f"{g}__seed{c.args.seed}" for g, c in zip(groups, checked)]
    seen: dict[str, int] = {}
    for i, (where, _, argv) in enumerate(cells):
        j = seen.setdefault(ids[i], i)
        if j != i and cells[j][2] == argv:
            raise SpecError(where, f"repeats {cells[j][0]} (the same run twice)")
    for i, (_, _, argv) in enumerate(cells):  # two runs that only the cleaning made alike: told apart by a hash
        if sum(x == ids[i] for x in ids) > 1:
            digest = hashlib.sha256("\0".join(argv).encode()).hexdigest()[:6]
            groups[i] = f"{groups[i]}__{digest}"
    return [Cell(id=f"{g}__seed{c.args.seed}", group=g, settings=s, argv=tuple(argv), seed=c.args.seed)
            for g, c, (_, s, argv) in zip(groups, checked, cells)]


def _flatten(settings: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in settings.items():
        if key in _TABLES and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _clean(text: str) -> str:
    """``text`` as a directory name: letters, digits and ``._=+-`` kept, anything else ``_``."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("._") or "run"
