"""A plain explicit-Euler Fisher–Kolmogorov solver: the in-repository reference.

The same equation and discretisation as :mod:`tumorgen.biophysics.fk`
(harmonic-mean face diffusivities, forward Euler for diffusion and reaction,
no flux out of the tissue domain), written the straightforward way: float64,
the whole grid every step, new arrays each step. It exists to check the fast
solver's field and to measure its speed-up (Testing/benchmarks/bench_growth.py);
nothing in the engine calls it.
"""

from __future__ import annotations

import math

import numpy as np


def grow_reference(d: np.ndarray, c0: np.ndarray, spacing, rho: float, dt: float, *, days: float | None = None,
                   target_voxels: int | None = None, threshold: float = 0.25, max_steps: int = 10**6):
    """Step ``c0`` on diffusivity ``d`` (mm²/day) until ``days`` pass or ``target_voxels`` reach ``threshold``.

    Returns ``(field, steps)``. The last step of a fixed-time run is shortened to land on ``days``.
    """
    c = c0.astype(np.float64)
    d = d.astype(np.float64)
    k = []
    for axis, h in enumerate(spacing):
        a = d[(slice(None),) * axis + (slice(1, None),)]
        b = d[(slice(None),) * axis + (slice(None, -1),)]
        with np.errstate(invalid="ignore", divide="ignore"):
            k.append(np.where(a + b > 0, 2 * a * b / (a + b), 0.0) / h**2)
    n_steps = int(math.ceil(days / dt - 1e-9)) if days is not None else max_steps
    step = 0
    while step < n_steps:
        if target_voxels is not None and np.count_nonzero(c >= threshold) >= target_voxels:
            break
        h = min(dt, days - step * dt) if days is not None else dt
        div = np.zeros_like(c)
        for axis in range(3):
            hi = (slice(None),) * axis + (slice(1, None),)
            lo = (slice(None),) * axis + (slice(None, -1),)
            flux = k[axis] * (c[hi] - c[lo])
            div[lo] += flux
            div[hi] -= flux
        c = c + h * (div + rho * c * (1 - c))
        step += 1
    return c, step
