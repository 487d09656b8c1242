"""Errors raised at mfgsolve's boundaries (spec files, CLI, public constructors)."""

from __future__ import annotations

__all__ = ["SpecError", "NoEquilibriumError"]


class SpecError(ValueError):
    """Bad input that a user can fix; ``field`` names the offending key or option.

    The message is one line so that the CLI can print it as-is.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NoEquilibriumError(ArithmeticError):
    """The fixed-point equation has no unique solution (e.g. ``I - M`` is singular)."""


class ResponseFailedError(ArithmeticError):
    """A best response failed (non-finite losses, rewards or states): the run stops, its summary says why."""
