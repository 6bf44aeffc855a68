"""What the generating runs share: their inputs (the t1n, the box, the tumor) and showing their last result (before/after,
the uncertainty overlay), for inpainting, post-operative and follow-up prediction and synthesis alike."""

from __future__ import annotations

from typing import Any

from tumorgen.errors import InputError
from tumorgen_slicer.nodes import UNCERTAINTY_COLORS, array_of, grid_of, restore_orientations, show_colormap, show_in_slices, volume_of
from tumorgen_slicer.presenter_core import TUMOR_THRESHOLD, PresenterCore

#: A run's result output and the label map drawn over it, by task: what "after" shows (a follow-up after a resection
#: also has a ``postop`` output, so the follow-up comes first; a synthesis shows its t1c).
RESULT_LAYERS = (("inpainted", "mask"), ("followup", "labels"), ("postop", "cavity"), ("t1c", "seg"))
#: The std overlay's opacity over a result while it is shown.
UNCERTAINTY_OPACITY = 0.4


class ResultActions(PresenterCore):
    """The generating runs' inputs, and showing their last result: before/after, and the uncertainty overlay."""

    def _tumor_input(self, t1n, task: str, *, labels_first: bool = False) -> dict[str, Any]:
        """The tumor a run of ``task`` is for: the concentration being edited, else the segmentation input (with
        ``labels_first`` the other way round; InputError naming what is missing, off the t1n's grid or empty)."""
        candidates = {"concentration": self.concentration, "seg": self.input_node("seg")}
        order = ("seg", "concentration") if labels_first else ("concentration", "seg")
        name = next((n for n in order if candidates[n] is not None), "")
        node = candidates.get(name)
        if node is None:
            raise InputError(f"{task} needs the tumor: grow or paint a concentration, or choose a segmentation (seg)")
        differences = grid_of(t1n).differences(grid_of(node))
        if differences:
            raise InputError(f"the tumor's {name} {node.GetName()!r} is not on the t1n's grid: {'; '.join(differences)}")
        if name == "concentration" and not (self.editor.tumor_volume_cm3(TUMOR_THRESHOLD) or 0) > 0:
            raise InputError(f"the concentration {node.GetName()!r} holds no tumor (c ≥ {TUMOR_THRESHOLD:g}): grow or paint one first")
        if name == "seg" and not array_of(node).any():
            raise InputError(f"the segmentation {node.GetName()!r} is empty: it holds no tumor label")
        return {name: node}

    def _t1n_and_box(self):
        """For a run in the box: the idle check, the t1n and the box's mask on its grid (InputError when empty)."""
        self.runs.check_idle()
        t1n = self._reference()
        mask = self.box_mask()
        if not mask.array.any():
            raise InputError("the resection box holds no voxel of the t1n: move it onto the image")
        return t1n, mask

    def show_result(self, after: bool) -> bool:
        """Toggle the views between the last result (after) and its input (before)."""
        return self._action(lambda: self._show_result(after))

    def _show_result(self, after: bool) -> None:
        results = self.state.results
        key, label_key = next(((k, label) for k, label in RESULT_LAYERS if k in results), ("", ""))
        result = self.node(results.get(key, ""))
        if result is None:
            raise InputError("no result to show yet: run inpainting, a prediction or a synthesis first")
        before = self.node(self.state.result_input_id)
        std = self.node(results.get("std", ""))
        restore_orientations(self.ctx)
        show_in_slices(self.ctx, background=result if after or before is None else before, foreground=std,
                       label=self.node(results.get(label_key, "")), foreground_opacity=self._uncertainty_opacity(),
                       clear_foreground=std is None)
        self.state.showing_result, self.state.side_by_side = after, 0

    def _uncertainty_opacity(self) -> float:
        """The std overlay's opacity: as its toggle says (:meth:`show_uncertainty`), whatever else the views show."""
        return UNCERTAINTY_OPACITY if self.state.showing_uncertainty else 0.0

    def _colour_uncertainty(self) -> None:
        """The last result's std as a colour map over its own range (zero, where nothing was generated, stays transparent)."""
        std = self.node(self.state.results.get("std", ""))
        if std is not None:
            import numpy as np

            peak = float(np.max(volume_of(std).array))
            show_colormap(self.ctx, std, UNCERTAINTY_COLORS, window=(0.0, peak if peak > 0 else 1.0))

    def show_uncertainty(self, visible: bool) -> bool:
        """Show or hide the last result's uncertainty (std) overlay."""
        def act():
            std = self.node(self.state.results.get("std", ""))
            if std is None:
                raise InputError("the last result has no uncertainty map (run with more than one sample)")
            self.state.showing_uncertainty = bool(visible)
            show_in_slices(self.ctx, foreground=std, foreground_opacity=self._uncertainty_opacity())
            self.state.log.append("uncertainty overlay " + ("shown" if visible else "hidden"))
        return self._action(act)
