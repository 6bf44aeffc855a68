"""Resampling between an input's grid and the engine's working grid.

Models and solvers work on a regular grid of their own (say isotropic 1 mm);
outputs go back onto the input's grid so they keep its geometry exactly. The
working grid covers the same physical box as the input: its first and last
voxel *corners* coincide with the input's, so nothing is cropped or shifted.
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np

from tumorgen.volume import Grid, Volume

Interpolation = Literal["nearest", "linear", "bspline"]


def working_grid(grid: Grid, spacing: float | tuple[float, float, float] = 1.0, *, axis_aligned: bool = False) -> Grid:
    """A grid with the given spacing covering the same physical region as ``grid``.

    Args:
        grid: the input's grid.
        spacing: the working spacing in mm (one value for isotropic).
        axis_aligned: if true the working grid's axes are the LPS axes (identity
            direction) and it covers the bounding box of the input's corners; if
            false it keeps the input's direction (no rotation, the least blurring).
    """
    new_spacing = np.broadcast_to(np.asarray(spacing, dtype=float), (3,)).copy()
    if np.any(new_spacing <= 0):
        raise ValueError(f"spacing must be positive, got {spacing}")
    old_spacing = np.asarray(grid.spacing)
    if not axis_aligned:
        extent = np.asarray(grid.size) * old_spacing
        size = np.maximum(1, np.ceil(extent / new_spacing - 1e-6)).astype(int)
        d = grid.direction_matrix
        corner = np.asarray(grid.origin) - d @ (0.5 * old_spacing)
        origin = corner + d @ (0.5 * new_spacing)
        return Grid(tuple(size), tuple(new_spacing), tuple(origin), grid.direction)
    corners = np.array(
        [grid.index_to_lps(np.array(c) - 0.5) for c in itertools.product(*[(0, n) for n in grid.size])]
    )
    low, high = corners.min(axis=0), corners.max(axis=0)
    size = np.maximum(1, np.ceil((high - low) / new_spacing - 1e-6)).astype(int)
    origin = low + 0.5 * new_spacing
    return Grid(tuple(size), tuple(new_spacing), tuple(origin))


def resample(
    volume: Volume,
    grid: Grid,
    *,
    interpolation: Interpolation = "linear",
    default_value: float = 0.0,
) -> Volume:
    """Resample ``volume`` onto ``grid`` (physical space is shared; no transform).

    Boolean volumes are resampled with nearest neighbour and stay boolean.
    Values outside the input's extent get ``default_value``.
    """
    import SimpleITK as sitk

    if volume.grid == grid:
        return volume
    is_bool = volume.dtype == bool
    if is_bool:
        interpolation = "nearest"
    interpolator = {
        "nearest": sitk.sitkNearestNeighbor,
        "linear": sitk.sitkLinear,
        "bspline": sitk.sitkBSpline,
    }[interpolation]
    source = volume.to_sitk()
    if interpolation != "nearest" and source.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        source = sitk.Cast(source, sitk.sitkFloat32)
    reference = sitk.Image([int(n) for n in grid.size], source.GetPixelID())
    reference.SetSpacing(grid.spacing)
    reference.SetOrigin(grid.origin)
    reference.SetDirection(grid.direction)
    result = sitk.Resample(source, reference, sitk.Transform(), interpolator, float(default_value))
    out = Volume.from_sitk(result)
    # SimpleITK round-trips the reference's geometry through its own doubles;
    # re-attach the requested grid so callers compare equal exactly.
    array = out.array.astype(bool) if is_bool else out.array
    return Volume(array, grid)
