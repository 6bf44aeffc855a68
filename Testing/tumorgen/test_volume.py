"""Grid and Volume: coordinates, conventions and the SimpleITK bridge."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from tumorgen.volume import Grid, Volume


def test_index_and_physical_points_agree_with_simpleitk(oblique_volume):
    image = oblique_volume.to_sitk()
    for index in [(0, 0, 0), (19, 23, 15), (3, 17, 9)]:
        expected = image.TransformIndexToPhysicalPoint(index)
        np.testing.assert_allclose(oblique_volume.grid.index_to_lps(index), expected, atol=1e-9)
        np.testing.assert_allclose(oblique_volume.grid.lps_to_index(expected), index, atol=1e-9)


def test_ras_is_lps_with_the_first_two_axes_flipped(oblique_grid):
    lps = oblique_grid.index_to_lps((5, 6, 7))
    ras = oblique_grid.index_to_ras((5, 6, 7))
    np.testing.assert_allclose(ras, [-lps[0], -lps[1], lps[2]])
    np.testing.assert_allclose(oblique_grid.ras_to_index(ras), (5, 6, 7), atol=1e-9)
    np.testing.assert_allclose(oblique_grid.index_to_ras_matrix @ [5, 6, 7, 1], [*ras, 1.0])


def test_array_is_indexed_i_j_k_like_the_file(oblique_volume):
    image = oblique_volume.to_sitk()
    assert image.GetSize() == oblique_volume.shape
    assert image.GetPixel(3, 17, 9) == pytest.approx(float(oblique_volume.array[3, 17, 9]))
    back = Volume.from_sitk(image)
    np.testing.assert_array_equal(back.array, oblique_volume.array)
    assert back.grid == oblique_volume.grid


def test_boolean_volumes_go_to_sitk_as_uint8():
    mask = Volume(np.zeros((3, 4, 5), bool))
    assert mask.to_sitk().GetPixelID() == sitk.sitkUInt8


def test_grid_rejects_nonsense():
    with pytest.raises(ValueError, match="spacing"):
        Grid((4, 4, 4), spacing=(1, 0, 1))
    with pytest.raises(ValueError, match="size"):
        Grid((4, 0, 4))
    with pytest.raises(ValueError, match="9 values"):
        Grid((4, 4, 4), direction=(1, 0, 0, 1))
    with pytest.raises(ValueError, match="3D"):
        Volume(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="does not match"):
        Volume(np.zeros((4, 4, 4)), Grid((4, 4, 5)))


def test_differences_name_what_differs(oblique_grid):
    other = Grid(oblique_grid.size, (0.9, 1.3, 2.0), oblique_grid.origin, oblique_grid.direction)
    diffs = oblique_grid.differences(other)
    assert len(diffs) == 1 and diffs[0].startswith("spacing")
    assert oblique_grid.matches(oblique_grid)
