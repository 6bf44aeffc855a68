"""Inpainting in the box (its result shows through :mod:`~tumorgen_slicer.result_actions`)."""

from __future__ import annotations

from typing import Any

from tumorgen.errors import InputError
from tumorgen.settings import INPAINTING
from tumorgen_slicer import checks
from tumorgen_slicer.result_actions import ResultActions
from tumorgen_slicer.result_view import centre_of, match_window
from tumorgen_slicer.runs import Run, RunSpec


class InpaintingActions(ResultActions):
    """Inpainting in the box: healthy tissue, or a tumor from the concentration."""

    def inpaint(self) -> bool:
        """Inpaint inside the box: healthy tissue, or (tumor mode) a tumor from the concentration."""
        params = self.settings.params(INPAINTING)
        try:
            t1n, mask = self._t1n_and_box()
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
            self._colour_uncertainty()
            match_window(t1n, [run.nodes.get("inpainted")])
            self._show_result(True)
            self._show_in_views(centre_of(run.nodes.get("mask")))

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
        """The panel's Apply: inpainting (post-operative prediction, follow-up and synthesis have buttons of their own)."""
        return self.inpaint()
