"""Volume nodes <-> engine volumes, and the resection box on oblique volumes, on a real MRML scene."""

from __future__ import annotations

import numpy as np
import pytest
from tumorgen_testing import OBLIQUE_DIRECTION

from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume
from tumorgen.volume_io import read_volume
from tumorgen_slicer import box as boxes
from tumorgen_slicer.exchange import load_node as load_volume
from tumorgen_slicer.nodes import add_volume, array_of, grid_of, ijk_to_ras, volume_of, write_node


@pytest.fixture
def oblique_node(ctx):
    grid = Grid(size=(20, 24, 16), spacing=(0.9, 1.3, 2.2), origin=(-12.5, 30.25, 7.0), direction=OBLIQUE_DIRECTION)
    array = np.random.default_rng(0).normal(100.0, 20.0, grid.size).astype(np.float32)
    return add_volume(ctx, Volume(array, grid), "oblique"), Volume(array, grid)


def test_a_node_holds_the_engine_volume_exactly(oblique_node):
    node, volume = oblique_node
    assert grid_of(node).matches(volume.grid)
    np.testing.assert_array_equal(array_of(node), volume.array)
    np.testing.assert_allclose(ijk_to_ras(node), volume.grid.index_to_ras_matrix, atol=1e-9)
    # VTK's memory order is k, j, i: voxel (i, j, k) = (3, 5, 7) sits at flat index i + nx*(j + ny*k)
    from vtk.util.numpy_support import vtk_to_numpy

    flat = vtk_to_numpy(node.GetImageData().GetPointData().GetScalars())
    assert flat[3 + 20 * (5 + 24 * 7)] == volume.array[3, 5, 7]


def test_written_and_reloaded_nodes_keep_their_geometry(ctx, oblique_node, tmp_path):
    node, volume = oblique_node
    path = write_node(node, tmp_path / "oblique.nii.gz")
    engine = read_volume(path)
    assert engine.grid.matches(volume.grid)
    np.testing.assert_array_equal(engine.array, volume.array)
    loaded = load_volume(ctx, path, "reloaded")
    assert loaded.GetID() != node.GetID()
    np.testing.assert_allclose(ijk_to_ras(loaded), ijk_to_ras(node), atol=1e-4)
    np.testing.assert_array_equal(array_of(loaded), volume.array)
    assert loaded.GetStorageNode() is not None and loaded.GetDisplayNode() is not None


def test_a_vector_volume_is_refused(ctx):
    node = ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "rgb")
    import vtk

    image = vtk.vtkImageData()
    image.SetDimensions(4, 4, 4)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 3)
    node.SetAndObserveImageData(image)
    with pytest.raises(InputError, match="3 components"):
        volume_of(node)


def _rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_roi_to_box_mask_on_an_oblique_volume_matches_the_roi_itself(ctx, oblique_node):
    node, volume = oblique_node
    grid = volume.grid
    centre = grid.index_to_ras((np.asarray(grid.size) - 1) / 2.0) + np.array([1.3, -0.7, 0.4])
    roi = boxes.create_box(ctx)
    boxes.place_box(roi, centre, (9.7, 14.3, 11.1), _rotation(0.4, -0.3, 0.9))
    c, size, axes = boxes.box_geometry(roi)
    np.testing.assert_allclose(c, centre, atol=1e-6)
    np.testing.assert_allclose(size, (9.7, 14.3, 11.1), atol=1e-6)
    np.testing.assert_allclose(axes, _rotation(0.4, -0.3, 0.9), atol=1e-6)

    mask = boxes.box_mask(roi, node)
    assert mask.grid.matches(grid) and mask.array.dtype == np.uint8
    # The oracle: MRML's own point-in-ROI test at every voxel centre, from the node's IJK->RAS matrix.
    m = ijk_to_ras(node)
    expected = np.zeros(grid.size, np.uint8)
    for ijk in np.ndindex(*grid.size):
        ras = m[:3, :3] @ np.asarray(ijk, float) + m[:3, 3]
        expected[ijk] = roi.IsPointInROIWorld(ras)
    assert 200 < expected.sum() < expected.size // 2
    np.testing.assert_array_equal(mask.array, expected)


def test_box_bounds_and_a_box_fitted_to_a_tumor(ctx, oblique_node):
    node, volume = oblique_node
    field = np.zeros(volume.grid.size, np.float32)
    field[5:9, 10:15, 6:9] = 0.8
    tumor = add_volume(ctx, Volume(field, volume.grid), "tumor")
    roi = boxes.create_box(ctx)
    boxes.fit_box(roi, tumor, threshold=0.5, margin_mm=2.0)
    mask = boxes.box_mask(roi, tumor)
    # every tumor voxel is inside the box, and the box is no bigger than the tumor plus the margin
    assert np.all(mask.array[field >= 0.5] == 1)
    _, size, axes = boxes.box_geometry(roi)
    np.testing.assert_allclose(size, np.array([4, 5, 3]) * np.asarray(volume.grid.spacing) + 4.0, atol=1e-6)
    np.testing.assert_allclose(axes, np.diag([-1.0, -1.0, 1.0]) @ volume.grid.direction_matrix, atol=1e-6)
    bounds = boxes.ras_bounds(roi)
    corners = [c for c in np.ndindex(2, 2, 2)]
    centre, _, _ = boxes.box_geometry(roi)
    pts = np.array([centre + axes @ ((np.array(c) - 0.5) * size) for c in corners])
    np.testing.assert_allclose(bounds, [pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max(), pts[:, 2].min(), pts[:, 2].max()], atol=1e-4)
    with pytest.raises(InputError, match="no voxel at or above"):
        boxes.fit_box(roi, add_volume(ctx, Volume(np.zeros(volume.grid.size, np.float32), volume.grid), "empty"))


def test_bad_boxes_are_refused(ctx):
    roi = boxes.create_box(ctx)
    with pytest.raises(InputError, match="positive"):
        boxes.place_box(roi, (0, 0, 0), (10, 0, 10))
    with pytest.raises(InputError, match="orthonormal axes"):
        boxes.place_box(roi, (0, 0, 0), (10, 10, 10), np.diag([1.0, 2.0, 1.0]))
    with pytest.raises(InputError, match="no resection box"):
        boxes.box_geometry(None)


def test_a_label_map_file_loads_as_a_label_map_node(ctx, tmp_path):
    from tumorgen.volume_io import write_volume

    grid = Grid(size=(6, 5, 4), spacing=(1.0, 1.5, 2.0))
    labels = np.zeros(grid.size, np.uint8)
    labels[1:4, 1:3, 1:3] = 2
    labels[2, 2, 2] = 3
    path = write_volume(Volume(labels, grid), tmp_path / "seg.nii.gz")
    node = load_volume(ctx, path, "seg", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(array_of(node), labels)
    assert node.GetDisplayNode().GetColorNode().GetName() == "TumorGen labels"
    scalar = load_volume(ctx, path, "seg as image")
    assert scalar.IsA("vtkMRMLScalarVolumeNode") and not scalar.IsA("vtkMRMLLabelMapVolumeNode")
