"""Post-operative prediction for the resection box, and the retrieved cases that guided it, side by side with it.

The prediction is a backend job (task ``postop``): the t1n, the box as a mask on its grid and the tumor (the
concentration being edited, else the ``seg`` input). Moving the box and predicting again is the what-if loop:
each run's nodes stay in the scene under their own folder, and the panels follow the last one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tumorgen.errors import InputError
from tumorgen.settings import POSTOP
from tumorgen_slicer import box as boxes
from tumorgen_slicer.nodes import array_of, grid_of, show_side_by_side
from tumorgen_slicer.result_actions import ResultActions
from tumorgen_slicer.result_view import match_window
from tumorgen_slicer.runs import Run, RunSpec

#: The outputs shown as label maps: the cavity (label 4) and what was generated (the region).
LABEL_OUTPUTS = frozenset({"cavity", "region"})
#: What a retrieved case's score is, by retrieval method.
SCORE_NAMES = {"tumor": "IoU", "image": "cosine"}


class PostopActions(ResultActions):
    """Post-operative prediction for the resection box, and the retrieved cases that guided it."""

    def predict_postop(self) -> bool:
        """Predict the post-operative t1n for a resection of the box, guided by cases retrieved from the case library."""
        params = self.settings.params(POSTOP)
        try:
            t1n, mask = self._t1n_and_box()
            inputs: dict[str, Any] = {"t1n": t1n, "box": mask, **self._tumor_input(t1n, "post-operative prediction")}
        except InputError as exc:
            return self._fail(str(exc))
        spec = RunSpec("postop", self._run_name("Post-operative prediction"), inputs=inputs,
                       params={k: v for k, v in params.items() if v is not None}, labelmaps=LABEL_OUTPUTS,
                       segmentations=frozenset({"cavity"}))
        centre = tuple(boxes.box_geometry(self.box)[0])

        def predicted(run: Run) -> None:
            self.state.result_input_id = t1n.GetID()
            self._read_summary(run)
            self._colour_uncertainty()
            match_window(t1n, [run.nodes.get("postop")])
            self._show_result(True)
            self._show_in_views(centre, run.segmentations.values())

        return self._start(spec, predicted)

    def _read_summary(self, run: Run) -> None:
        """The run's summary (``postop.json``) into the state: the retrieved cases with their scans' nodes, and one line."""
        path = run.outcome.outputs.get("summary")
        if path is None:
            raise InputError("the prediction wrote no summary (postop.json)")
        summary = json.loads(Path(path).read_text())
        retrieved = []
        for n, match in enumerate(summary.get("retrieved", []), start=1):
            scans = {scan: run.nodes.get(f"retrieved-{n}-{scan}") for scan in ("pre", "post")}
            for scan, node in scans.items():
                if node is not None:
                    node.SetName(f"{run.name} case {n} {match['case']} {scan}")
            case = {"case": str(match["case"]), "score": match.get("score"), "method": str(match.get("method", "")),
                    **{scan: node.GetID() if node is not None else "" for scan, node in scans.items()}}
            retrieved.append({**case, "label": describe_case(n, case)})
        self.state.retrieved = retrieved
        cases = ", ".join(case["label"] for case in retrieved)
        self.state.postop_summary = f"cavity {summary.get('cavity_cm3', 0):g} cm³; guided by {cases or 'no case'}"
        self.state.log.append(f"{run.name}: {self.state.postop_summary}")
        run.summary = self.state.postop_summary

    def show_retrieved(self, n: int) -> bool:
        """Side by side: the prediction (red view), retrieved case ``n``'s post-operative scan (yellow) and its pre-operative
        scan (green), all in one orientation through the cavity; :meth:`show_result` goes back to the prediction alone."""
        def act():
            retrieved = self.state.retrieved
            prediction = self.node(self.state.results.get("postop", ""))
            if prediction is None or not retrieved:
                raise InputError("no post-operative prediction to compare yet: predict first")
            number = _case_number(n)
            if number is None or not 1 <= number <= len(retrieved):
                raise InputError(f"choose a retrieved case from 1 to {len(retrieved)}, got {n!r}")
            case = retrieved[number - 1]
            post, pre = self.node(case["post"]), self.node(case["pre"])
            if post is None or pre is None:
                raise InputError(f"the scans of case {number} ({case['case']}) are no longer in the scene")
            cavity = self.node(self.state.results.get("cavity", ""))
            match_window(prediction, (post, pre))  # on its intensity scale, zero away from their cavity
            if not show_side_by_side(self.ctx, (prediction, post, pre), labels=(cavity,), center_ras=self._cavity_centre()):
                raise InputError("no slice views to show the cases in")
            self.state.side_by_side = number
            self.state.log.append(f"side by side: the prediction, then {case['case']} after and before its resection")
        return self._action(act)

    def _cavity_centre(self):
        """Where the last prediction's cavity (else what it generated) is, in RAS mm; None when neither holds a voxel."""
        import numpy as np

        for key in ("cavity", "region"):
            node = self.node(self.state.results.get(key, ""))
            if node is not None:
                voxels = np.argwhere(array_of(node) > 0)
                if len(voxels):
                    return tuple(grid_of(node).index_to_ras(voxels.mean(axis=0)))
        return None


def _case_number(n) -> int | None:
    """A case number as a front end hands it (an int, or the text of one), None for anything else."""
    if isinstance(n, bool):
        return None
    try:
        number = int(n)
    except (TypeError, ValueError):
        return None
    return number if number == n or str(n).strip() == str(number) else None


def describe_case(n: int, case: dict) -> str:
    """``1. sim-004 (IoU 0.41)``: a retrieved case as the panels list it."""
    score = case.get("score")
    if score is None:
        return f"{n}. {case['case']}"
    return f"{n}. {case['case']} ({SCORE_NAMES.get(case.get('method', ''), 'score')} {score:.2f})"

