"""An analytic head phantom: nested ellipsoids (scalp, skull, brain, ventricles).

Small, deterministic and dependency-free, it stands in for a real scan where
only the plumbing is under test (the backend smoke job, unit tests). It is not
anatomy: the simulated MNI152 subjects are.
"""

from __future__ import annotations

import numpy as np

from tumorgen.volume import Grid, Volume


def head_phantom(
    size: tuple[int, int, int] = (48, 56, 44),
    spacing: tuple[float, float, float] = (3.0, 3.0, 3.0),
    *,
    origin: tuple[float, float, float] | None = None,
    direction: tuple[float, ...] | None = None,
    noise: float = 0.02,
    seed: int = 0,
) -> Volume:
    """A T1-like head phantom in arbitrary units (brain ≈ 0.8, ventricles ≈ 0.2, skull ≈ 0.1).

    Args:
        size: voxel counts (i, j, k).
        spacing: voxel size in mm.
        origin: LPS position of voxel 0; default centres the head at the origin.
        direction: 9 direction cosines, row-major; default identity.
        noise: standard deviation of additive Gaussian noise (relative units).
        seed: random seed for the noise.
    """
    size = tuple(int(n) for n in size)
    spacing_arr = np.asarray(spacing, dtype=float)
    if origin is None:
        origin = tuple(-0.5 * (np.asarray(size) - 1) * spacing_arr)
    grid = Grid(size, tuple(spacing_arr), origin, direction or (1, 0, 0, 0, 1, 0, 0, 0, 1))
    # Coordinates relative to the volume centre, in mm along the image axes.
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(size, spacing_arr)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    half = 0.5 * np.asarray(size) * spacing_arr

    def inside(scale: float, centre=(0.0, 0.0, 0.0), shape=(0.9, 0.9, 0.85)) -> np.ndarray:
        r = [scale * h * f for h, f in zip(half, shape)]
        return ((x - centre[0]) / r[0]) ** 2 + ((y - centre[1]) / r[1]) ** 2 + ((z - centre[2]) / r[2]) ** 2 <= 1.0

    image = np.zeros(size, dtype=np.float32)
    image[inside(1.0)] = 0.35  # scalp
    image[inside(0.93)] = 0.1  # skull
    image[inside(0.86)] = 0.8  # brain
    for side in (-1.0, 1.0):  # lateral ventricles
        image[inside(0.18, centre=(side * 0.12 * half[0], 0.0, 0.05 * half[2]), shape=(0.6, 1.6, 0.8))] = 0.2
    rng = np.random.default_rng(seed)
    image += rng.normal(0.0, noise, size).astype(np.float32) * (image > 0)
    return Volume(image, grid)
