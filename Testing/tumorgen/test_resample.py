"""Working grids and resampling back: nothing cropped, shifted or changed in type."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tumorgen.resample import resample, working_grid
from tumorgen.volume import Grid, Volume


def _corners(grid: Grid) -> np.ndarray:
    return np.array([grid.index_to_lps(np.array(c) - 0.5) for c in itertools.product(*[(0, n) for n in grid.size])])


def test_working_grid_covers_the_same_box(oblique_grid):
    work = working_grid(oblique_grid, 0.5)
    assert work.spacing == (0.5, 0.5, 0.5)
    assert work.direction == oblique_grid.direction
    # 20×0.9 mm = 18 mm → 36 voxels; 24×1.3 = 31.2 → 63 (ceil); 16×2.2 = 35.2 → 71.
    assert work.size == (36, 63, 71)
    np.testing.assert_allclose(_corners(work)[0], _corners(oblique_grid)[0], atol=1e-9)


def test_axis_aligned_working_grid_contains_every_corner(oblique_grid):
    work = working_grid(oblique_grid, 1.0, axis_aligned=True)
    assert work.direction == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    for corner in _corners(oblique_grid):
        assert work.contains_index(work.lps_to_index(corner))


def test_there_and_back_keeps_the_grid_and_a_smooth_signal(oblique_grid):
    # A linear ramp in physical space is reproduced exactly by linear interpolation.
    points = np.stack(np.meshgrid(*[np.arange(n) for n in oblique_grid.size], indexing="ij"), -1)
    lps = points @ oblique_grid.index_to_lps_matrix[:3, :3].T + oblique_grid.origin
    ramp = (lps @ np.array([0.3, -0.2, 0.5])).astype(np.float32)
    volume = Volume(ramp, oblique_grid)
    work = resample(volume, working_grid(oblique_grid, 0.7))
    back = resample(work, oblique_grid)
    assert back.grid == oblique_grid
    interior = (slice(2, -2),) * 3
    np.testing.assert_allclose(back.array[interior], ramp[interior], atol=1e-3)


def test_boolean_masks_stay_boolean_and_keep_their_volume(oblique_grid):
    mask = np.zeros(oblique_grid.size, bool)
    mask[5:15, 6:18, 4:12] = True
    volume = Volume(mask, oblique_grid)
    work = resample(volume, working_grid(oblique_grid, 0.5))
    assert work.dtype == bool
    mm3 = lambda v: v.array.sum() * v.grid.voxel_volume_mm3  # noqa: E731
    assert mm3(work) == pytest.approx(mm3(volume), rel=0.05)
    back = resample(work, oblique_grid)
    assert np.mean(back.array == mask) > 0.98


def test_resampling_onto_the_same_grid_is_a_no_op(oblique_volume):
    assert resample(oblique_volume, oblique_volume.grid) is oblique_volume
