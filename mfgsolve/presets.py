r"""The recommended settings of a run, per kind of oracle: one place that :func:`mfgsolve.solve`, the command
line, the benchmarks and the paper all read.

An exact oracle (Riccati) converges to rounding in tens of iterations; a learned one (about 10 s per best response
on 2 cores) stalls at its noise floor, so its run is short and its scheme must average the responses' noise.

Why these values (measured on ``lq-1d``, whose Picard rate is rho(M) = 0.47; ``bench/README.md`` has the runs):

* **Learned scheme: fictitious play with recency 6.** With 15 best responses, classical FP (weights 1/(k+1))
  cannot converge: its error falls like :math:`k^{-(1-\lambda)}` (589 exact iterations to a 2% mean error,
  the paper's recency table), while weights :math:`c/(k+c)` with c = 6 reach 2% in 10 and still average each
  response's noise down (the last of 15 weighs 0.3). Plain iteration (Picard) keeps the last response's noise in
  full: it is not the default because it does not meet the accuracy targets.
* **Learned damping 0.6** (``Damped`` when asked for): in 15 responses damping 0.5 leaves an exact error of 1.1%
  (rate 0.74, 0.74^15), 0.6 leaves 0.3% (rate 0.68) for 1.1 times the stationary spread of the responses'
  noise, 0.7 leaves 0.1% for 1.2 times. The exact oracle keeps 0.5.
* **1700 updates of batch 1024 per learned response**: 2000 were no more accurate on ``lq-1d`` (seeds 0-2, both
  schemes) and took 5.5-6 minutes a run. A best-response check (:func:`mfgsolve.br_check`) trains one response
  against the exact equilibrium, where 20000 updates are affordable.
* **Tolerance 1e-3 learned** (a learned oracle's noise floor lies above it), 1e-10 exact; **15 iterations
  learned**, 100 exact.

>>> from mfgsolve import presets
>>> presets.LEARNED.scheme().name, presets.EXACT.scheme().name
('fp', 'picard')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line reads the presets before it loads torch
    from mfgsolve.schemes import Scheme

__all__ = ["Preset", "EXACT", "LEARNED", "PATHWISE", "BR_CHECK_UPDATES", "FINAL_RESPONSE_UPDATES", "RESPONSES", "preset_for", "default_threads"]


@dataclass(frozen=True)
class Preset:
    """The settings a run takes when the caller gives none (module docstring: why these values)."""

    iterations: int
    """Outer iterations (best responses)."""
    tol: float
    """Stop when the fixed-point gap is at most this."""
    default_scheme: str
    """The scheme of a run that names none."""
    alpha: float
    """Damping weight of ``Damped`` when the caller gives none."""
    recency: float
    """Recency c of fictitious play's weights c/(k+c) when the caller gives none."""
    br_updates: int | None
    """Gradient updates per learned best response (``None``: the oracle is exact)."""
    br_check_updates: int | None = None
    """Updates of the one best response :func:`mfgsolve.br_check` trains when given no budget."""

    def scheme(self, name: str | None = None, *, alpha: float | None = None, recency: float | None = None) -> Scheme:
        """The scheme ``name`` (default :attr:`default_scheme`) with this preset's parameters where none is given."""
        from mfgsolve.schemes import make_scheme

        name = self.default_scheme if name is None else name
        if name == "damped" and alpha is None:
            alpha = self.alpha
        if name == "fp" and recency is None:
            recency = self.recency
        return make_scheme(name, alpha, recency)


#: An exact oracle: classical fictitious play (c = 1) is the rate the theory section measures.
EXACT = Preset(iterations=100, tol=1e-10, default_scheme="picard", alpha=0.5, recency=1.0, br_updates=None)
#: A learned oracle: 15 responses of 1700 updates, fictitious play with recency 6.
LEARNED = Preset(iterations=15, tol=1e-3, default_scheme="fp", alpha=0.6, recency=6.0, br_updates=1700,
                 br_check_updates=20_000)
#: The pathwise oracle (:class:`mfgsolve.PathwiseOracle`): its responses are nearly exact, so the schemes can mix
#: in most of each one and fewer responses reach the particle flow's floor.
PATHWISE = Preset(iterations=10, tol=1e-3, default_scheme="fp", alpha=0.9, recency=30.0, br_updates=200,
                  br_check_updates=1000)
#: Updates of the best response that bounds the final exploitability of a problem with no exact one
#: (:class:`mfgsolve.Evaluation`), per oracle: the pathwise response's br-check budget, and the DDPG budget of the
#: bounds reported before the pathwise oracle existed.
FINAL_RESPONSE_UPDATES = {"pathwise": 1000, "ddpg": 3000}
#: What :class:`mfgsolve.Evaluation` may bound that exploitability with: ``auto`` (pathwise where the problem's
#: callbacks pass gradients, else DDPG), one of :data:`FINAL_RESPONSE_UPDATES`' oracles, or ``none``.
RESPONSES = ("auto", *FINAL_RESPONSE_UPDATES, "none")
#: Updates of one best response trained by :func:`mfgsolve.br_check` when no budget is given (learned oracles).
BR_CHECK_UPDATES = LEARNED.br_check_updates


def preset_for(oracle: object) -> Preset:
    """The oracle's own preset (a ``preset`` attribute, as :data:`PATHWISE`'s oracle has), else :data:`EXACT` for
    an oracle that says its responses are exact (``exact = True``), else :data:`LEARNED`."""
    own = getattr(oracle, "preset", None)
    if isinstance(own, Preset):
        return own
    return EXACT if getattr(oracle, "exact", False) else LEARNED


def default_threads() -> int:
    """torch CPU threads of a run: two where two cores are free to this process, else one.

    Measured on a 2-core machine, in one process alternating the setting (so that the machine's drift cancels): a
    300-update warm DDPG response at batch 1024 took 1.95 s with two threads against 2.43 s with one, propagating
    131072 particles 0.81-0.94 s against 1.15-1.64 s. One and two threads give the same networks and the same flows
    to the last bit (``tests/test_ddpg.py``); the exploitability estimates differ in the ninth digit.
    Four threads (measured on the same machine) already change a response's value in the ninth digit.
    """
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 2 if cores >= 2 else 1
