"""Named generators from one seed: every random stream of a learner, independent, reproduced by the seed alone.

Each name gets its own child of ``numpy.random.SeedSequence(seed)`` (spawned in the order of ``names``), whose
first 64-bit word, halved into torch's seed range, seeds a ``torch.Generator``. The streams depend on the seed and
on a name's position in ``names``: a learner that adds a stream appends its name, so the others stay as they were.

>>> g = named_generators(3, ("init", "rollout"))
>>> h = named_generators(3, ("init", "rollout"))
>>> bool(torch.equal(torch.rand(2, generator=g["rollout"]), torch.rand(2, generator=h["rollout"])))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["named_generators"]


def named_generators(seed: int, names: Sequence[str], device: torch.device | str = "cpu") -> dict[str, torch.Generator]:
    """One ``torch.Generator`` per name in ``names`` on ``device``, all derived from ``seed`` (module docstring)."""
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {name: torch.Generator(device=device).manual_seed(int(s.generate_state(1, dtype=np.uint64)[0] >> 1))
            for name, s in zip(names, children)}
