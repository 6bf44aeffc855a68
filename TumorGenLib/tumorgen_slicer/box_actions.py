"""The resection box and the tumor seed: create, draw, fit, place."""

from __future__ import annotations

from tumorgen.errors import InputError
from tumorgen_slicer import box as boxes
from tumorgen_slicer import placement
from tumorgen_slicer.nodes import grid_of
from tumorgen_slicer.presenter_core import TUMOR_THRESHOLD, PresenterCore


class BoxActions(PresenterCore):
    """The resection box and the tumor seed: create, draw, fit, place."""

    def set_box(self, node) -> bool:
        """Use an existing ROI node (or its ID; None clears) as the resection box."""
        def act():
            self.state.box_id = self._id(self._node_of(node, "vtkMRMLMarkupsROINode", "a box (markups ROI)"))
        return self._action(act)

    def create_box(self) -> bool:
        """A new resection box: around the tumor when there is one, else 30 mm in the middle of the t1n."""
        def act():
            import numpy as np

            reference = self._reference()
            roi = boxes.create_box(self.ctx)
            self.state.box_id = roi.GetID()
            if self.concentration is not None and (self.editor.tumor_volume_cm3(TUMOR_THRESHOLD) or 0) > 0:
                boxes.fit_box(roi, self.concentration, threshold=TUMOR_THRESHOLD, margin_mm=self.settings["box_margin_mm"])
            else:
                grid = grid_of(reference)
                boxes.place_box(roi, grid.index_to_ras((np.asarray(grid.size) - 1) / 2.0), (30.0, 30.0, 30.0))
        return self._action(act)

    def draw_box(self) -> bool:
        """Put the views in place mode for a new resection box: click one corner in a view, then the opposite one."""
        def act():
            self._reference()
            roi = boxes.new_box_node(self.ctx)
            self.state.box_id = roi.GetID()
            placement.start_placing(self.ctx, roi)
        return self._action(act)

    def fit_box_to_tumor(self) -> bool:
        """Move the box around the current tumor (c ≥ the growth threshold) with the margin of the settings."""
        def act():
            if self.box is None:
                raise InputError("no resection box: create one first")
            if self.concentration is None:
                raise InputError("no tumor concentration to fit the box to")
            boxes.fit_box(self.box, self.concentration, threshold=TUMOR_THRESHOLD, margin_mm=self.settings["box_margin_mm"])
        return self._action(act)

    def box_mask(self):
        """The box as a mask on the t1n's grid (an engine volume)."""
        return boxes.box_mask(self.box, self._reference())

    def _box_on(self, node):
        if self.box is None:
            raise InputError("no resection box: create one first")
        mask = boxes.box_mask(self.box, node)
        if not mask.array.any():
            raise InputError("the resection box holds no voxel of the concentration's grid")
        return mask

    def set_seed_points(self, node) -> bool:
        """Take the tumor seed (and where blobs go) from the first point of a markups point list."""
        def act():
            self.state.seed_points_id = self._id(self._node_of(node, "vtkMRMLMarkupsFiducialNode", "a point list"))
        return self._action(act)

    def seed_points(self):
        """The seed's point list, created (empty) when there is none, so that a place widget always has one."""
        node = self.node(self.state.seed_points_id)
        if node is None:
            node = placement.new_seed_list(self.ctx)
            self.state.seed_points_id = node.GetID()
            self._notify("state")
        return node

    def place_seed(self) -> bool:
        """Put the views in place mode for the seed: the next click in a view sets it."""
        def act():
            points = self.seed_points()
            points.RemoveAllControlPoints()
            placement.start_placing(self.ctx, points)
        return self._action(act)

    def set_seed(self, ras) -> bool:
        def act():
            point = tuple(float(v) for v in ras)
            if len(point) != 3:
                raise InputError("a seed needs 3 coordinates (RAS mm)")
            self.state.seed_ras = point
        return self._action(act)

    def seed(self):
        """The seed in RAS mm: the point list's first point when it has one, else the last clicked seed."""
        points = self.node(self.state.seed_points_id)
        if points is not None and points.GetNumberOfControlPoints() > 0:
            ras = [0.0, 0.0, 0.0]
            points.GetNthControlPointPositionWorld(0, ras)
            return tuple(float(v) for v in ras)
        return self.state.seed_ras

