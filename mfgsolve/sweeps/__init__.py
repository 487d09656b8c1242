"""Sweeps: a grid of ``mfgsolve solve`` runs executed on Ray, and their tables over seeds.

``mfgsolve sweep SWEEP.toml --out DIR``: :mod:`~mfgsolve.sweeps.spec` reads and checks the file (every cell is the
argument list of one ``mfgsolve solve``), :mod:`~mfgsolve.sweeps.execute` runs each cell as a Ray task through the
command line's own ``main``, :mod:`~mfgsolve.sweeps.aggregate` writes ``runs.csv`` and ``table.{csv,md}``, and
:mod:`~mfgsolve.sweeps.plot` draws each group with seed bands. Ray (the optional extra ``sweep``) is imported only
when a sweep runs.
"""

from mfgsolve.sweeps.aggregate import Estimate, aggregate, estimate
from mfgsolve.sweeps.execute import INSTALL_HINT, run_sweep
from mfgsolve.sweeps.spec import Cell, Sweep, load_sweep, parse_sweep

__all__ = ["Cell", "Sweep", "load_sweep", "parse_sweep", "run_sweep", "aggregate", "estimate", "Estimate",
           "INSTALL_HINT"]
