"""Volume nodes and the engine's volumes, both ways, and volume files in and out of the scene.

A node's voxels are ``[k, j, i]`` in VTK's memory order and its geometry is
the IJK→RAS matrix; the engine's :class:`~tumorgen.volume.Volume` is indexed
``[i, j, k]`` with an LPS origin and direction. The conversions here are exact
(no resampling), so a volume taken from a node, written by the engine and read
back gives the node's own geometry.

A segmentation node (``vtkMRMLSegmentationNode``) reads as the label map of its segments on its own grid
(:func:`~tumorgen_slicer.segmentations.segmentation_labels`), so :func:`grid_of`, :func:`array_of`,
:func:`volume_of` and :func:`write_node` take one wherever they take a label map.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume
from tumorgen_slicer.vtk_arrays import array_of_matrix, fill_image, vtk_matrix

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])

#: Display choices: the first colour node present in the scene is used.
CONCENTRATION_COLORS = ("vtkMRMLColorTableNodeFileInferno.txt", "vtkMRMLPETProceduralColorNodePET-Heat", "vtkMRMLColorTableNodeIron")
UNCERTAINTY_COLORS = ("vtkMRMLColorTableNodeFileViridis.txt", "vtkMRMLColorTableNodeRainbow", "vtkMRMLColorTableNodeFullRainbow")
PROBABILITY_COLORS = ("vtkMRMLColorTableNodeFilePlasma.txt", "vtkMRMLPETProceduralColorNodePET-Rainbow2", "vtkMRMLColorTableNodeRainbow")
#: BraTS labels: 1 necrosis (NCR), 2 oedema (ED), 3 enhancing tumor (ET), 4 resection cavity (the post-operative
#: prediction's); the box mask is label 1 too.
LABEL_COLORS = {1: ("necrosis", (0.85, 0.2, 0.2)), 2: ("edema", (0.2, 0.8, 0.3)), 3: ("enhancing", (1.0, 0.85, 0.1)),
                4: ("cavity", (0.25, 0.6, 1.0))}
LABEL_TABLE_NAME = "TumorGen labels"


def ijk_to_ras(node) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return array_of_matrix(matrix)


def grid_of(node) -> Grid:
    """The engine grid of a scalar volume node (size, spacing, LPS origin and direction), or of a segmentation's labels."""
    if _is_segmentation(node):
        return _segmentation_labels(node).grid
    image = node.GetImageData() if node is not None else None
    if image is None:
        raise InputError(f"volume {_name(node)} has no image data")
    return grid_from_ijk_to_ras(ijk_to_ras(node), image.GetDimensions(), f"volume {_name(node)}")


def grid_from_ijk_to_ras(matrix: np.ndarray, size, what: str = "the volume") -> Grid:
    """The engine grid of ``size`` voxels whose IJK→RAS matrix (4×4) is ``matrix`` (InputError naming ``what`` for a zero
    spacing)."""
    lps = _RAS_TO_LPS @ np.asarray(matrix, float)[:3, :]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    if np.any(spacing <= 0):
        raise InputError(f"{what} has a zero spacing")
    direction = lps[:, :3] / spacing
    return Grid(size=tuple(size), spacing=tuple(spacing), origin=tuple(lps[:, 3]), direction=tuple(direction.ravel()))


def array_of(node) -> np.ndarray:
    """A copy of a scalar volume node's voxels (or a segmentation's labels), indexed ``[i, j, k]``."""
    from vtk.util.numpy_support import vtk_to_numpy

    if _is_segmentation(node):
        return np.asarray(_segmentation_labels(node).array)
    image = node.GetImageData() if node is not None else None
    if image is None or image.GetPointData().GetScalars() is None:
        raise InputError(f"volume {_name(node)} has no image data")
    if image.GetNumberOfScalarComponents() != 1:
        raise InputError(f"volume {_name(node)} has {image.GetNumberOfScalarComponents()} components; TumorGen needs a scalar volume")
    dims = image.GetDimensions()
    flat = vtk_to_numpy(image.GetPointData().GetScalars())
    return np.array(flat.reshape(dims[2], dims[1], dims[0]).transpose(2, 1, 0), copy=True)


def volume_of(node) -> Volume:
    """The node's voxels and geometry as an engine volume (a copy: the node is not touched)."""
    if _is_segmentation(node):
        return _segmentation_labels(node)
    return Volume(array_of(node), grid_of(node))


def set_volume(node, volume: Volume) -> None:
    """Replace a node's voxels and geometry by an engine volume's (for nodes TumorGen owns)."""
    import vtk

    image = fill_image(vtk.vtkImageData(), np.asarray(volume.array).transpose(2, 1, 0))
    was = node.StartModify()
    node.SetIJKToRASMatrix(vtk_matrix(volume.grid.index_to_ras_matrix))
    node.SetAndObserveImageData(image)
    node.EndModify(was)


def add_volume(ctx, volume: Volume, name: str, *, labelmap: bool = False):
    """A new scalar (or label map) volume node holding ``volume``, with display nodes."""
    node = ctx.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode", name)
    set_volume(node, volume)
    node.CreateDefaultDisplayNodes()
    if labelmap:
        show_labels(ctx, node)
    return node


def write_node(node, path: str | os.PathLike, *, reference=None) -> Path:
    """Write a volume node to NIfTI through the engine (atomic; the node is only read).

    A segmentation node is written as its labels (:func:`~tumorgen_slicer.segmentations.segmentation_labels`) on the
    grid of ``reference`` when that is a volume node (a run's t1n), else on its own grid; other nodes ignore it.
    """
    from tumorgen.volume_io import write_volume

    if _is_segmentation(node):
        on_volume = reference is not None and hasattr(reference, "IsA") and reference.IsA("vtkMRMLVolumeNode")
        return write_volume(_segmentation_labels(node, reference if on_volume else None), path)
    return write_volume(volume_of(node), path)


# -- display ---------------------------------------------------------------------------------------------
def color_node_id(ctx, candidates) -> str | None:
    for node_id in candidates:
        if ctx.scene.GetNodeByID(node_id) is not None:
            return node_id
    return None


def label_table(ctx):
    """The colour table for TumorGen's label maps (created once per scene)."""
    table = ctx.scene.GetFirstNodeByName(LABEL_TABLE_NAME)
    if table is not None:
        return table
    from slicer import vtkMRMLColorTableNode

    table = vtkMRMLColorTableNode()
    table.SetName(LABEL_TABLE_NAME)
    table.SetTypeToUser()
    table.SetNumberOfColors(max(LABEL_COLORS) + 1)
    table.SetColor(0, "background", 0.0, 0.0, 0.0, 0.0)
    for value, (label, rgb) in LABEL_COLORS.items():
        table.SetColor(value, label, *rgb, 1.0)
    table.SetHideFromEditors(True)
    ctx.scene.AddNode(table)
    return table


def show_labels(ctx, node) -> None:
    display = node.GetDisplayNode()
    if display is None:
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
    if display is not None:
        display.SetAndObserveColorNodeID(label_table(ctx).GetID())


def show_colormap(ctx, node, candidates, *, window: tuple[float, float] | None = None, threshold_fraction: float = 1e-3) -> None:
    """A colour map on a scalar volume over a fixed range (e.g. [0, 1] for a concentration).

    Values below ``threshold_fraction`` of the range are transparent.
    """
    display = node.GetDisplayNode()
    if display is None:
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
    color = color_node_id(ctx, candidates)
    if color:
        display.SetAndObserveColorNodeID(color)
    if window is not None:
        low, high = window
        display.AutoWindowLevelOff()
        display.SetWindowLevelMinMax(low, high)
        display.SetApplyThreshold(True)
        display.SetLowerThreshold(low + threshold_fraction * (high - low))
        display.SetUpperThreshold(high)


def show_in_slices(ctx, *, background=None, foreground=None, label=None, foreground_opacity: float = 0.5, outline: bool = True,
                   clear_foreground: bool = False) -> int:
    """Put volumes in every slice view's layers; returns how many views were set.

    ``None`` keeps a layer as it is; ``clear_foreground`` empties the foreground layer. Label maps are drawn
    as outlines when ``outline`` (the slice nodes' label-outline mode).
    """
    scene = ctx.scene
    count = scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")
    for n in range(count):
        composite = scene.GetNthNodeByClass(n, "vtkMRMLSliceCompositeNode")
        if background is not None:
            composite.SetBackgroundVolumeID(background.GetID())
        if foreground is not None:
            composite.SetForegroundVolumeID(foreground.GetID())
            composite.SetForegroundOpacity(foreground_opacity)
        elif clear_foreground:
            composite.SetForegroundVolumeID(None)
        if label is not None:
            composite.SetLabelVolumeID(label.GetID())
    for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        scene.GetNthNodeByClass(n, "vtkMRMLSliceNode").SetUseLabelOutline(bool(outline))
    return count


#: Slicer's slice views, in the order side-by-side comparisons fill them.
SLICE_VIEWS = ("Red", "Yellow", "Green")
_ORIENTATION_ATTRIBUTE = "TumorGen.orientation"


def _view_nodes(ctx, class_name: str) -> dict:
    scene = ctx.scene
    nodes = (scene.GetNthNodeByClass(n, class_name) for n in range(scene.GetNumberOfNodesByClass(class_name)))
    return {node.GetLayoutName(): node for node in nodes}


def show_side_by_side(ctx, volumes, *, labels=(), center_ras=None) -> int:
    """One volume per slice view (Red, Yellow, Green in turn), with no overlay, all in the Red view's orientation and through
    ``center_ras``, so that they compare at a glance; returns how many views were set.

    ``labels`` go with the volumes in order (None: no label). Each view's own orientation is kept on its slice node and
    comes back with :func:`restore_orientations`.
    """
    composites, slices = _view_nodes(ctx, "vtkMRMLSliceCompositeNode"), _view_nodes(ctx, "vtkMRMLSliceNode")
    red = slices.get(SLICE_VIEWS[0])
    orientation = red.GetOrientation() if red is not None else "Axial"
    orientation = orientation if orientation in ("Axial", "Sagittal", "Coronal") else "Axial"
    labels = list(labels) + [None] * len(volumes)
    count = 0
    for name, volume, label in zip(SLICE_VIEWS, volumes, labels):
        composite, slice_node = composites.get(name), slices.get(name)
        if composite is None or slice_node is None:
            continue
        composite.SetBackgroundVolumeID(volume.GetID() if volume is not None else None)
        composite.SetForegroundVolumeID(None)
        composite.SetLabelVolumeID(label.GetID() if label is not None else None)
        if slice_node.GetAttribute(_ORIENTATION_ATTRIBUTE) is None:
            slice_node.SetAttribute(_ORIENTATION_ATTRIBUTE, slice_node.GetOrientation())
        slice_node.SetOrientation(orientation)
        if center_ras is not None:
            slice_node.JumpSliceByCentering(*(float(v) for v in center_ras))
        count += 1
    return count


def restore_orientations(ctx) -> None:
    """Each slice view back to the orientation it had before :func:`show_side_by_side`."""
    for slice_node in _view_nodes(ctx, "vtkMRMLSliceNode").values():
        orientation = slice_node.GetAttribute(_ORIENTATION_ATTRIBUTE)
        if orientation is not None:
            slice_node.SetOrientation(orientation)
            slice_node.RemoveAttribute(_ORIENTATION_ATTRIBUTE)


def jump_slices(ctx, ras) -> None:
    """Every slice view through the point ``ras`` (where a result is)."""
    for slice_node in _view_nodes(ctx, "vtkMRMLSliceNode").values():
        slice_node.JumpSliceByCentering(*(float(v) for v in ras))


def _is_segmentation(node) -> bool:
    from tumorgen_slicer.segmentations import is_segmentation

    return is_segmentation(node)


def _segmentation_labels(node, reference=None) -> Volume:
    from tumorgen_slicer.segmentations import segmentation_labels

    return segmentation_labels(node, reference)


def _name(node) -> str:
    if node is None:
        return "(none)"
    return repr(node.GetName())
