"""Where a run computes: the one function that turns ``--device`` / ``device=`` into a ``torch.device``.

A run's particle flows, its policies' evaluations, and a learned oracle's networks, replay and rollouts live on
the run's device, and its random streams are ``torch.Generator``s made on that device: on the CPU a seed gives the
same history as it always did; on CUDA a seed reproduces a run on the same GPU and torch build, with other random
numbers than on the CPU. Exact computations (Riccati, Gaussian flows, reference solvers) stay in numpy; the
Gymnasium and PettingZoo environments, the N-player game and its MADDPG stay on the CPU (the SB3 oracle's agent
trains on the device, its environment steps on the CPU). The CUDA path is implemented but not yet measured on a GPU.

>>> resolve_device("cpu"), resolve_device(None)
(device(type='cpu'), device(type='cpu'))
"""

from __future__ import annotations

import torch

from mfgsolve.errors import SpecError

__all__ = ["DEVICES", "resolve_device", "parse_device"]

#: What ``--device`` takes: ``auto`` is CUDA when it is available, else the CPU; ``cuda:N`` names one GPU.
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """The ``torch.device`` that ``spec`` names: ``"cpu"`` (also ``None``), ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    Parameters
    ----------
    spec : str or torch.device or None

    Raises
    ------
    SpecError
        (field ``device``) for another name, or for CUDA on a machine where torch sees no CUDA device.
    """
    device = parse_device(spec)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        raise SpecError("device", f"{spec} asked for, but torch sees no CUDA device here "
                                  f"(torch {torch.__version__}); use cpu or auto")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise SpecError("device", f"{device} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return device


def parse_device(spec: str | torch.device | None) -> torch.device | None:
    """The device ``spec`` names, whatever this machine has (``None`` for ``"auto"``): a sweep checks its runs'
    devices by name on the machine that launches it, and each run resolves its own where it runs.

    >>> parse_device("cuda:1"), parse_device("auto")
    (device(type='cuda', index=1), None)

    Raises
    ------
    SpecError
        (field ``device``) for a name that is none of :data:`DEVICES` or ``cuda:N``.
    """
    if spec is None:
        return torch.device("cpu")
    if isinstance(spec, str) and spec.strip() == "auto":
        return None
    try:
        device = torch.device(spec.strip() if isinstance(spec, str) else spec)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        raise SpecError("device", f"unknown device {spec!r} (choose from {', '.join(DEVICES)}, or cuda:N)") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise SpecError("device", f"unsupported device {str(device)!r} (choose from {', '.join(DEVICES)}, or cuda:N)")
    return device
