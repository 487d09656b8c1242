"""Flow figures of particle runs in the plane."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from mfgsolve.plotting import plot_snapshots


def test_snapshots_draw_each_time_at_its_particles():
    rng = np.random.default_rng(0)
    T, n = 4, 2000
    particles = rng.normal(size=(T + 1, n, 2)) + np.arange(T + 1)[:, None, None] * np.array([1.0, 0.0])
    flow = {"particles": particles, "weights": np.full((T + 1, n), 1.0 / n)}
    ax = Figure().subplots()
    plot_snapshots(flow, ax, [0, 2, 4], points=500)
    clouds = [c.get_offsets() for c in ax.collections]
    assert [len(c) for c in clouds] == [500, 500, 500]
    for t, c in zip([0, 2, 4], clouds):  # each cloud is a subset of that time's particles
        assert np.isin(np.asarray(c)[:, 0], particles[t, :, 0]).all()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["t=0", "t=2", "t=4"]
