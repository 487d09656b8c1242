"""Errors raised at mfgsolve's boundaries (spec files, CLI, public constructors)."""

from __future__ import annotations

__all__ = ["SpecError", "RunDirError", "NoEquilibriumError", "ResponseFailedError", "UncertifiedReferenceError"]


class SpecError(ValueError):
    """Bad input that a user can fix; ``field`` names the offending key or option.

    The message is one line so that the CLI can print it as-is.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class RunDirError(SpecError):
    """A run directory that this run may not use (another run's, foreign files, locked, damaged, unwritable).

    ``field`` is ``run_dir`` from Python; the CLI names its own option (``--out``, ``--resume``) instead.
    """


class NoEquilibriumError(ArithmeticError):
    """The fixed-point equation has no unique solution (e.g. ``I - M`` is singular)."""


class ResponseFailedError(ArithmeticError):
    """A best response failed (non-finite losses, rewards or states): the run stops, its summary says why."""


class UncertifiedReferenceError(ArithmeticError):
    """A reference solver's answer failed its own certificate (solver status, or its exact exploitability above
    the stated tolerance): there is no ground truth to measure against, and none is written.

    An ``ArithmeticError`` like :class:`NoEquilibriumError`, so that :func:`mfgsolve.solve` runs without a
    reference (no error against it) rather than scoring a run against a wrong one; the CLI's ``reference``
    command prints the one-line message and exits with code 2.
    """
