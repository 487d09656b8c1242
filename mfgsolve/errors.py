"""Errors raised at mfgsolve's boundaries (spec files, CLI, public constructors)."""

from __future__ import annotations

__all__ = ["SpecError", "RunDirError", "NoEquilibriumError"]


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
