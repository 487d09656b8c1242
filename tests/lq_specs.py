"""LQ specs for tests: the issue's instances and random ones with every coupling switched on."""

from __future__ import annotations

from typing import Any

import numpy as np

#: The issue's monotone instance: x' = x + a + w, cost (x + 3m)^2 + 0.1 a^2, T = 10; rho(M) is about 2.99.
MONOTONE: dict[str, Any] = {"T": 10, "A": 1.0, "B": 1.0, "Qbar": 1.0, "H": -3.0, "R": 0.1, "Sigma_w": 1.0, "mu0": 1.0}


def random_spec(seed: int, n: int = 2, p: int = 2, T: int = 8, coupling: float = 0.3) -> dict[str, Any]:
    """A random LQ spec with cross terms (N, U), drift coupling (Abar), next-step coupling (S_next) and
    every linear and constant term; ``coupling`` scales the mean-field terms."""
    rng = np.random.default_rng(seed)

    def mat(r: int, c: int, s: float = 1.0) -> list[list[float]]:
        return (s * rng.normal(size=(r, c))).tolist()

    def psd(k: int, s: float = 1.0, floor: float = 0.0) -> list[list[float]]:
        X = rng.normal(size=(k, k))
        return (s * X @ X.T / k + floor * np.eye(k)).tolist()

    def vec(k: int, s: float = 1.0) -> list[float]:
        return (s * rng.normal(size=k)).tolist()

    return {
        "family": "lq",
        "T": T,
        "A": (np.eye(n) + 0.2 * rng.normal(size=(n, n))).tolist(),
        "B": mat(n, p, 0.5),
        "Abar": mat(n, n, 0.2 * coupling),
        "c": vec(n, 0.1),
        "Sigma_w": psd(n, 0.1),
        "Q": psd(n, 1.0),
        "R": psd(p, 0.5, floor=0.5),
        "N": mat(n, p, 0.1),
        "S": mat(n, n, coupling),
        "S_next": mat(n, n, 0.5 * coupling),
        "s": vec(n, 0.2),
        "U": mat(p, n, 0.3 * coupling),
        "u": vec(p, 0.2),
        "W": psd(n, 0.5),
        "w": vec(n, 0.1),
        "QT": psd(n, 1.0),
        "ST": mat(n, n, coupling),
        "sT": vec(n, 0.1),
        "WT": psd(n, 0.5),
        "wT": vec(n, 0.1),
        "mu0": vec(n, 1.0),
        "Sigma0": psd(n, 0.3),
        "Qbar": psd(n, 0.5),
        "H": mat(n, n, coupling),
    }


def to_toml(spec: dict[str, Any]) -> str:
    """Write a spec as TOML (numbers, vectors and matrices only)."""
    lines = []
    for key, value in spec.items():
        if isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value!r}")
    return "\n".join(lines) + "\n"
