"""Editing a concentration field by hand: the operations behind the GUI's tools.

Each is a pure function: it takes a field :class:`~tumorgen.volume.Volume`
(values in [0, 1]) and returns a new one on the same grid, leaving its input
untouched. Points are RAS millimetres (as Slicer gives them) or voxel indices;
sizes are millimetres, so the tools behave the same on any spacing or
orientation.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import ndimage

from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume


def _check_field(field: Volume) -> np.ndarray:
    a = np.asarray(field.array, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise InputError("concentration field has NaN or Inf values")
    return a


def _point_index(grid: Grid, ras: Sequence[float] | None, voxel: Sequence[float] | None) -> np.ndarray:
    if (ras is None) == (voxel is None):
        raise InputError("give the point either in RAS millimetres or as a voxel index (exactly one)")
    p = grid.ras_to_index(ras) if ras is not None else np.asarray(voxel, dtype=float)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError("a point needs 3 finite coordinates")
    return p


def _physical_offsets(grid: Grid, centre_index: np.ndarray, radius_mm: float):
    """Voxel slices around a centre and the physical offset (mm, LPS) of each voxel in them."""
    m = grid.index_to_lps_matrix[:3, :3]
    # Index extent of a sphere of radius_mm: |Δi| ≤ radius · ‖row of M⁻¹‖.
    extent = radius_mm * np.linalg.norm(np.linalg.inv(m), axis=1)
    lo = np.maximum(np.floor(centre_index - extent), 0).astype(int)
    hi = np.minimum(np.ceil(centre_index + extent) + 1, grid.size).astype(int)
    if np.any(hi <= lo):
        return None, None
    idx = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1).astype(float)
    offsets = (idx - centre_index) @ m.T
    return tuple(slice(a, b) for a, b in zip(lo, hi)), offsets


def add_blob(
    field: Volume,
    *,
    ras: Sequence[float] | None = None,
    voxel: Sequence[float] | None = None,
    sigma_mm: float = 3.0,
    amplitude: float = 1.0,
    erase: bool = False,
    within: Volume | None = None,
) -> Volume:
    """Add (or with ``erase`` remove) a Gaussian blob of concentration at a point.

    ``amplitude`` is the blob's peak; the result is clipped to [0, 1]. With
    ``within`` (a boolean volume, e.g. the tissue mask) the blob only lands there.
    """
    a = _check_field(field).copy()
    if not (math.isfinite(sigma_mm) and sigma_mm > 0):
        raise InputError(f"blob sigma must be a positive number of mm, got {sigma_mm}")
    if not (math.isfinite(amplitude) and 0 < amplitude <= 1):
        raise InputError(f"blob amplitude must be in (0, 1], got {amplitude}")
    centre = _point_index(field.grid, ras, voxel)
    box, offsets = _physical_offsets(field.grid, centre, 3.0 * sigma_mm)
    if box is None:
        raise InputError("the blob lies entirely outside the image")
    blob = (amplitude * np.exp(-np.sum(offsets**2, axis=-1) / (2 * sigma_mm**2))).astype(np.float32)
    if within is not None:
        _same_grid(field, within, "mask")
        blob = np.where(within.array[box], blob, np.float32(0.0))
    a[box] = a[box] - blob if erase else a[box] + blob
    return field.with_array(np.clip(a, 0.0, 1.0))


def scale_region(field: Volume, region: Volume, factor: float) -> Volume:
    """Multiply the concentration inside ``region`` (boolean volume) by ``factor``, clipped to [0, 1]."""
    a = _check_field(field)
    if not (math.isfinite(factor) and factor >= 0):
        raise InputError(f"scale factor must be a non-negative number, got {factor}")
    _same_grid(field, region, "region")
    return field.with_array(np.clip(np.where(region.array.astype(bool), a * np.float32(factor), a), 0.0, 1.0).astype(np.float32))


def clamp(field: Volume, low: float = 0.0, high: float = 1.0) -> Volume:
    """Clip the concentration to [low, high] (within [0, 1])."""
    a = _check_field(field)
    if not (0 <= low <= high <= 1):
        raise InputError(f"clamp needs 0 <= low <= high <= 1, got low {low}, high {high}")
    return field.with_array(np.clip(a, low, high).astype(np.float32))


def smooth(field: Volume, sigma_mm: float = 1.0) -> Volume:
    """Gaussian smoothing with a physical sigma (per-axis in voxels from the spacing)."""
    a = _check_field(field)
    if not (math.isfinite(sigma_mm) and sigma_mm > 0):
        raise InputError(f"smoothing sigma must be a positive number of mm, got {sigma_mm}")
    sigma_vox = [sigma_mm / h for h in field.grid.spacing]
    return field.with_array(np.clip(ndimage.gaussian_filter(a, sigma_vox, mode="constant"), 0.0, 1.0).astype(np.float32))


def box_mask(grid: Grid, centre_ras: Sequence[float], size_mm: Sequence[float], orientation: Sequence[float] | None = None) -> Volume:
    """Voxels whose centres lie in a box given in RAS (as a Slicer ROI is).

    ``orientation`` is the box's 3×3 axes in RAS (row-major, columns are the
    box axes); ``None`` means aligned with RAS. Works for any image direction.
    """
    centre, size, axes = check_box(centre_ras, size_mm, orientation)
    centre_index = grid.ras_to_index(centre)
    box, offsets_lps = _physical_offsets(grid, centre_index, float(np.linalg.norm(size) / 2))
    mask = np.zeros(grid.size, bool)
    if box is not None:
        offsets_ras = offsets_lps * np.array([-1.0, -1.0, 1.0])
        local = offsets_ras @ axes  # coordinates along the box axes
        mask[box] = np.all(np.abs(local) <= size / 2 + 1e-6, axis=-1)
    return Volume(mask, grid)


def check_box(centre_ras: Sequence[float], size_mm: Sequence[float], orientation: Sequence[float] | None = None):
    """Validate a box; returns its centre, size and 3×3 axes (columns) as arrays, or raises InputError."""
    centre = np.asarray(centre_ras, dtype=float)
    size = np.asarray(size_mm, dtype=float)
    if centre.shape != (3,) or size.shape != (3,) or not np.all(np.isfinite(centre)) or not np.all(np.isfinite(size)):
        raise InputError("a box needs a centre and a size of 3 finite values each")
    if np.any(size <= 0):
        raise InputError(f"box size must be positive in every direction, got {tuple(size)}")
    axes = np.eye(3) if orientation is None else np.asarray(orientation, dtype=float).reshape(3, 3)
    if not np.allclose(axes.T @ axes, np.eye(3), atol=1e-4):
        raise InputError("box orientation must be a rotation (orthonormal axes)")
    return centre, size, axes


def zero_box(field: Volume, box: Volume) -> Volume:
    """Set the concentration to 0 inside a box mask (a resection); see :func:`box_mask`."""
    a = _check_field(field)
    _same_grid(field, box, "box")
    return field.with_array(np.where(box.array.astype(bool), np.float32(0.0), a))


def regrow(field: Volume, tissues, days: float, params=None, **grow_options) -> Volume:
    """Let an edited field grow on for ``days`` under the Fisher–Kolmogorov model."""
    from tumorgen.biophysics.fk import GrowthParams, grow

    result = grow(tissues, params or GrowthParams(), initial=field.with_array(_check_field(field)), days=days, **grow_options)
    return result.concentration


def _same_grid(field: Volume, other: Volume, name: str) -> None:
    if not field.grid.matches(other.grid):
        raise InputError(f"field and {name} have different geometry: {'; '.join(field.grid.differences(other.grid))}")
