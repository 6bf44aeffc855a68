"""Inpainting in the box, and showing its result: before/after and the uncertainty overlay."""

from __future__ import annotations

from typing import Any

from tumorgen.errors import InputError
from tumorgen.settings import INPAINTING
from tumorgen_slicer import checks
from tumorgen_slicer.nodes import UNCERTAINTY_COLORS, show_colormap, show_in_slices, volume_of
from tumorgen_slicer.presenter_core import PresenterCore
from tumorgen_slicer.runs import Run, RunSpec


class InpaintingActions(PresenterCore):
    """Inpainting in the box, and showing its result: before/after and the uncertainty overlay."""

    def inpaint(self) -> bool:
        """Inpaint inside the box: healthy tissue, or (tumor mode) a tumor from the concentration."""
        params = self.settings.params(INPAINTING)
        try:
            self.runs.check_idle()
            t1n = self._reference()
            mask = self.box_mask()
            if not mask.array.any():
                raise InputError("the resection box holds no voxel of the t1n: move it onto the image")
            inputs: dict[str, Any] = {"t1n": t1n, "mask": mask}
            if params["mode"] == "tumor":
                if self.concentration is None:
                    raise InputError("tumor inpainting needs a tumor concentration: grow or paint one first")
                inputs["concentration"] = self.concentration
            inputs.update({role: self.input_node(role) for role in checks.TISSUE_ROLES if self.input_node(role) is not None})
        except InputError as exc:
            return self._fail(str(exc))
        params["jump"] = min(params["jump"], params["steps"])
        spec = RunSpec("inpaint", self._run_name(f"Inpainting {params['mode']}"), inputs=inputs,
                       params={k: v for k, v in params.items() if v is not None}, labelmaps=frozenset({"mask"}),
                       load=("inpainted", "std", "mask"))

        def inpainted(run: Run) -> None:
            self.state.result_input_id = t1n.GetID()
            self._read_check(run)
            std = run.nodes.get("std")
            if std is not None:
                import numpy as np

                # zero (outside the mask) stays transparent; the colours span the run's own range
                peak = float(np.max(volume_of(std).array))
                show_colormap(self.ctx, std, UNCERTAINTY_COLORS, window=(0.0, peak if peak > 0 else 1.0))
            self._show_result(True)

        return self._start(spec, inpainted)

    def _read_check(self, run: Run) -> None:
        """The run's self-check (``self-check.json``: its summary and verdict) into the state, for the panels."""
        import json
        from pathlib import Path

        self.state.check, self.state.check_doubtful = "", False
        path = run.outcome.outputs.get("check") if run.outcome is not None else None
        if path is not None:
            check = json.loads(Path(path).read_text())
            self.state.check, self.state.check_doubtful = str(check["summary"]), bool(check["doubtful"])

    def apply(self) -> bool:
        """The panel's Apply: inpainting (later work adds post-op, follow-up and synthesis)."""
        return self.inpaint()

    def show_result(self, after: bool) -> bool:
        """Toggle the views between the last result (after) and its input (before)."""
        return self._action(lambda: self._show_result(after))

    def _show_result(self, after: bool) -> None:
        result = self.node(self.state.results.get("inpainted", ""))
        if result is None:
            raise InputError("no inpainting result to show yet")
        before = self.node(self.state.result_input_id)
        std = self.node(self.state.results.get("std", ""))
        mask = self.node(self.state.results.get("mask", ""))
        show_in_slices(self.ctx, background=result if after or before is None else before, foreground=std, label=mask,
                       foreground_opacity=0.4, clear_foreground=std is None)
        self.state.showing_result = after

    def show_uncertainty(self, visible: bool) -> bool:
        """Show or hide the last result's uncertainty (std) overlay."""
        def act():
            std = self.node(self.state.results.get("std", ""))
            if std is None:
                raise InputError("the last result has no uncertainty map (run with more than one sample)")
            show_in_slices(self.ctx, foreground=std, foreground_opacity=0.4 if visible else 0.0)
            self.state.log.append("uncertainty overlay " + ("shown" if visible else "hidden"))
        return self._action(act)

