"""Showing a run's result at once, in every view: the slice views through it, its tumor as surfaces in 3D with the box
and the seed, and the 3D camera framing them.

Everything here sets MRML nodes (slice, segmentation display, markups and camera nodes), so the desktop module and the
web app show a result alike, and the scene tests check it without a view:

* every slice node is centred on the result (``JumpSliceByCentering``: its plane goes through the centre, which is
  in the middle of the view);
* the segmentations given get a closed-surface representation and are visible in 3D (the oedema as a veil around the
  core, :data:`SURFACE_OPACITY`), and only there: the slice views draw the result's label map as outlines in their label
  layer, so a view that shows something else (a retrieved case side by side, another time point) has none of them;
  those an earlier result showed here are hidden (its outlines over this result would read as this one's);
* the slices are hidden in the 3D view (a slice plane there is as large as its view's field of view, black outside the
  image, and would hide the surfaces);
* every camera keeps its direction and looks at the shown surfaces, markups and centre from the distance that frames
  them (as Slicer's "reset field of view" does).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from tumorgen_slicer.nodes import array_of, grid_of, jump_slices

#: A segment's opacity in 3D by label where the segmentation has other labels too; others are opaque. The oedema (2)
#: surrounds the core: drawn opaque it would hide it.
SURFACE_OPACITY = {2: 0.3}
#: The attribute that marks the segmentations shown as surfaces by :func:`show_surfaces` (the next result hides them).
SHOWN_IN_3D = "TumorGen.shownIn3D"
#: The smallest radius (mm) the cameras frame: a tiny result still shows some of its surroundings.
MIN_RADIUS_MM = 20.0
#: Slicer's closed-surface representation name.
CLOSED_SURFACE = "Closed surface"


def centre_of(node: Any, threshold: float | None = None) -> tuple[float, float, float] | None:
    """The RAS centre (mm) of the voxels of ``node`` above zero (at or above ``threshold``), None when there is none."""
    if node is None:
        return None
    array = array_of(node)
    inside = np.nonzero(array >= threshold if threshold is not None else array > 0)
    if not len(inside[0]):
        return None
    index = np.array([axis.mean() for axis in inside])
    return tuple(float(v) for v in grid_of(node).index_to_ras(index))


def labels_centre(node: Any) -> tuple[float, float, float] | None:
    """Where a label map's labels are (:func:`centre_of`), or a segmentation's segments (the middle of their RAS bounds:
    its segments' names need not be TumorGen's yet); None when there is none."""
    if node is None or not node.IsA("vtkMRMLSegmentationNode"):
        return centre_of(node)
    bounds = _ras_bounds(node)
    return tuple(float(v) for v in (bounds[0::2] + bounds[1::2]) / 2.0) if bounds is not None else None


def show_result(ctx: Any, centre_ras=None, *, surfaces: Iterable[Any] = (), markups: Iterable[Any] = ()) -> None:
    """Every view on a result: the slice views centred on ``centre_ras`` (None: they stay), the segmentations
    ``surfaces`` as surfaces in 3D (none given: the ones shown stay), ``markups`` (the box, the seed; None is skipped)
    visible in 3D, the slices hidden in 3D, and every 3D camera framing the surfaces, markups and centre."""
    if centre_ras is not None:
        jump_slices(ctx, centre_ras)
    surfaces = [s for s in surfaces if s is not None]
    if surfaces:
        show_surfaces(ctx, surfaces)
    markups = [m for m in markups if m is not None and m.GetNumberOfControlPoints() > 0]
    for markup in markups:
        display = markup.GetDisplayNode()
        if display is not None:
            display.SetVisibility(True)
            display.SetVisibility3D(True)
    show_slices_in_3d(ctx, False)
    bounds = [_ras_bounds(node) for node in (*shown_surfaces(ctx), *markups)]
    if centre_ras is not None:
        bounds.append(np.repeat(np.asarray(centre_ras, float), 2))
    bounds = [b for b in bounds if b is not None]
    if bounds:
        frame_cameras(ctx, np.min([b[0::2] for b in bounds], axis=0), np.max([b[1::2] for b in bounds], axis=0))


def show_surfaces(ctx: Any, segmentations: Iterable[Any]) -> int:
    """Show ``segmentations`` in 3D as closed surfaces (created from their labelmaps when they have none) and hide the
    ones an earlier call showed, in 3D and in the slice views (their outlines there are an earlier result's); returns how
    many have a surface to show."""
    wanted = [s for s in segmentations if s is not None]
    ids = {s.GetID() for s in wanted}
    for node in _nodes(ctx, "vtkMRMLSegmentationNode"):
        if node.GetAttribute(SHOWN_IN_3D) and node.GetID() not in ids:
            display = node.GetDisplayNode()
            if display is not None:
                display.SetVisibility(False)
            node.RemoveAttribute(SHOWN_IN_3D)
    count = 0
    for node in wanted:
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        count += bool(node.CreateClosedSurfaceRepresentation())
        display.SetPreferredDisplayRepresentationName3D(CLOSED_SURFACE)
        display.SetVisibility(True)
        display.SetVisibility3D(True)
        display.SetVisibility2D(False)  # the slice views draw the result's label map (its label layer), where it belongs
        segmentation = node.GetSegmentation()
        ids = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]
        labels = {segment_id: _label_of(segmentation.GetSegment(segment_id).GetName()) for segment_id in ids}
        veiled = len(set(labels.values())) > 1  # a veil only where there is something inside it to show
        for segment_id, label in labels.items():
            display.SetSegmentOpacity3D(segment_id, SURFACE_OPACITY.get(label, 1.0) if veiled else 1.0)
        node.SetAttribute(SHOWN_IN_3D, "1")
    return count


def shown_surfaces(ctx: Any) -> list:
    """The segmentations :func:`show_surfaces` shows in 3D now."""
    return [node for node in _nodes(ctx, "vtkMRMLSegmentationNode") if node.GetAttribute(SHOWN_IN_3D)
            and node.GetDisplayNode() is not None and node.GetDisplayNode().GetVisibility3D()]


def show_slices_in_3d(ctx: Any, visible: bool) -> None:
    """Show or hide every slice view's plane in the 3D views."""
    for node in _nodes(ctx, "vtkMRMLSliceNode"):
        node.SetSliceVisible(bool(visible))


def frame_cameras(ctx: Any, low, high) -> None:
    """Point every 3D camera at the middle of the RAS box ``low``–``high`` (mm), keeping its direction, from the distance
    at which the box's bounding sphere fills its view angle (perspective) or parallel scale (orthographic)."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    centre = (low + high) / 2.0
    radius = max(float(np.linalg.norm(high - low)) / 2.0, MIN_RADIUS_MM)
    for node in _nodes(ctx, "vtkMRMLCameraNode"):
        direction = np.asarray(node.GetPosition(), float) - np.asarray(node.GetFocalPoint(), float)
        length = float(np.linalg.norm(direction))
        direction = direction / length if length > 1e-9 else np.array([0.0, 1.0, 0.0])  # Slicer's default: from the front
        angle = node.GetCamera().GetViewAngle() if node.GetCamera() is not None else 30.0
        distance = radius / math.sin(math.radians(angle) / 2.0)
        was = node.StartModify()
        node.SetFocalPoint(*centre)
        node.SetPosition(*(centre + distance * direction))
        node.SetParallelScale(radius)
        node.EndModify(was)
        node.ResetClippingRange()


def match_window(reference: Any, nodes: Iterable[Any]) -> None:
    """``nodes`` in the window and level of ``reference`` (a result in its input's, so that before and after compare)."""
    shown = reference.GetDisplayNode() if reference is not None else None
    if shown is None or shown.GetWindow() <= 0:
        return
    for node in nodes:
        display = node.GetDisplayNode() if node is not None else None
        if display is not None:
            display.AutoWindowLevelOff()
            display.SetWindowLevel(shown.GetWindow(), shown.GetLevel())


def _ras_bounds(node: Any):
    bounds = [0.0] * 6
    node.GetRASBounds(bounds)
    bounds = np.asarray(bounds, float)
    return bounds if np.all(np.isfinite(bounds)) and np.all(bounds[0::2] <= bounds[1::2]) else None


def _label_of(segment_name: str) -> int | None:
    from tumorgen.errors import InputError
    from tumorgen_slicer.segmentations import label_of_segment

    try:
        return label_of_segment(segment_name)
    except InputError:
        return None


def _nodes(ctx: Any, class_name: str) -> list:
    scene = ctx.scene
    return [scene.GetNthNodeByClass(n, class_name) for n in range(scene.GetNumberOfNodesByClass(class_name))]
