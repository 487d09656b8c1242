"""The budget of one training: gradient updates, wall-clock seconds or both, whichever ends first.

>>> b = Budget(updates=200, seconds=None)
>>> b.fraction(50), b.over(199), b.over(200)
(0.25, False, True)
"""

from __future__ import annotations

import time

__all__ = ["Budget"]


class Budget:
    """Updates and/or seconds of one training; progress is the larger of the two fractions used.

    Parameters
    ----------
    updates : int or None
        Gradient updates (``None``: no update limit).
    seconds : float or None
        Wall-clock seconds from ``start`` (``None``: no time limit).
    start : float, optional
        ``time.perf_counter()`` at the start of the training (default: now).
    """

    def __init__(self, updates: int | None, seconds: float | None, start: float | None = None) -> None:
        if updates is None and seconds is None:
            raise ValueError("a budget is needed: set updates, seconds or both")
        self.updates, self.seconds = updates, seconds
        self.start = time.perf_counter() if start is None else start

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start

    def fraction(self, done: int) -> float:
        """Progress in ``[0, 1]`` after ``done`` updates: what learning rates and exploration anneal on."""
        f = done / self.updates if self.updates is not None else 0.0
        if self.seconds is not None:
            f = max(f, self.elapsed() / self.seconds)
        return min(f, 1.0)

    def over(self, done: int) -> bool:
        """Whether the budget is spent after ``done`` updates."""
        if self.updates is not None and done >= self.updates:
            return True
        return self.seconds is not None and self.elapsed() >= self.seconds
