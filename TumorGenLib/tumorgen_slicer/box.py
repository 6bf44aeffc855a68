"""The resection box: a markups ROI node, placed, read and turned into a mask on an image's grid."""

from __future__ import annotations

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume
from tumorgen_slicer.nodes import grid_of

DEFAULT_NAME = "Resection box"


def create_box(ctx, name: str = DEFAULT_NAME, *, center_ras=(0.0, 0.0, 0.0), size_mm=(30.0, 30.0, 30.0)):
    """A new ROI node (a box the user can drag in the views)."""
    roi = new_box_node(ctx, name)
    place_box(roi, center_ras, size_mm)
    return roi


def new_box_node(ctx, name: str = DEFAULT_NAME):
    """An empty ROI node drawn as an outline with a faint fill, so the image inside stays visible.

    Its name is not written in the views: Slicer draws it at the box's centre, which is where the tumor and its seed
    are (the panels and the data tree name the box).
    """
    roi = ctx.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", name)
    roi.CreateDefaultDisplayNodes()
    display = roi.GetDisplayNode()
    if display is not None:
        display.SetFillOpacity(0.08)
        display.SetPropertiesLabelVisibility(False)
    return roi


def place_box(roi, center_ras, size_mm, axes=None) -> None:
    """Set the box's centre (RAS mm), edge lengths (mm) and axes (3×3, columns; ``None``: RAS-aligned)."""
    import vtk

    from tumorgen.biophysics.edit import check_box

    center, size, rotation = check_box(center_ras, size_mm, axes)
    matrix = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, float(rotation[r, c]))
        matrix.SetElement(r, 3, float(center[r]))
    was = roi.StartModify()
    roi.SetAndObserveObjectToNodeMatrix(matrix)
    roi.SetCenter(*center)
    roi.SetSize(*size)
    roi.EndModify(was)


def box_geometry(roi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre (RAS mm), size (mm) and axes (3×3, columns) of the box in world coordinates."""
    if roi is None:
        raise InputError("no resection box: create one first")
    center = np.zeros(3)
    roi.GetCenterWorld(center)
    size = np.zeros(3)
    roi.GetSizeWorld(size)
    columns = []
    for getter in (roi.GetXAxisWorld, roi.GetYAxisWorld, roi.GetZAxisWorld):
        axis = np.zeros(3)
        getter(axis)
        columns.append(axis)
    axes = np.stack(columns, axis=1)
    axes /= np.linalg.norm(axes, axis=0)
    return center, size, axes


def ras_bounds(roi) -> tuple[float, ...]:
    """The box's axis-aligned RAS bounds: (R min, R max, A min, A max, S min, S max)."""
    bounds = [0.0] * 6
    roi.GetRASBounds(bounds)
    return tuple(float(b) for b in bounds)


def box_mask(roi, reference_node) -> Volume:
    """The voxels of ``reference_node`` whose centres lie in the box (uint8 0/1, the reference's grid)."""
    from tumorgen.biophysics.edit import box_mask as engine_box_mask

    center, size, axes = box_geometry(roi)
    if np.any(size <= 0):
        raise InputError("the resection box has no volume; drag its handles to size it")
    mask = engine_box_mask(grid_of(reference_node), center, size, axes)
    return mask.with_array(mask.array.astype(np.uint8))


def fit_box(roi, node, *, threshold: float = 0.5, margin_mm: float = 5.0) -> None:
    """Place the box around the voxels of ``node`` at or above ``threshold``, ``margin_mm`` wider on every side.

    The box takes the image's axes, so it fits snugly on oblique volumes too.
    """
    from tumorgen_slicer.nodes import array_of

    if not (np.isfinite(margin_mm) and margin_mm >= 0):
        raise InputError(f"box margin must be a non-negative number of mm, got {margin_mm}")
    array = array_of(node)
    inside = np.argwhere(array >= threshold)
    if inside.size == 0:
        raise InputError(f"{node.GetName()!r} has no voxel at or above {threshold:g}: there is no tumor to put the box around")
    grid = grid_of(node)
    lo, hi = inside.min(axis=0), inside.max(axis=0)
    center = grid.index_to_ras((lo + hi) / 2.0)
    size = (hi - lo + 1) * np.asarray(grid.spacing) + 2 * margin_mm
    ras_axes = np.diag([-1.0, -1.0, 1.0]) @ grid.direction_matrix
    place_box(roi, center, size, ras_axes)
