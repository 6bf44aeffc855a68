"""Label-map synthesis: the current labels drawn into the t1n as four MR contrasts (t1n, t1c, t2w, t2f).

The synthesis is a backend job (task ``synthesize``): the t1n and the current labels, which are the segmentation input
(``seg``, BraTS labels 1/2/3) or, when there is none, the concentration being edited (sent as ``concentration``; the
engine turns it into labels with the default thresholds). The four contrasts load as scalar volumes named after the
t1n (``<t1n> synthetic t1c``), the labels as a label map drawn as outlines, and the views show the synthetic t1c through
the tumor. Annotators use it to make labelled scans: every run's nodes stay in the scene under their own folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError
from tumorgen.settings import SYNTHESIS
from tumorgen_slicer.nodes import array_of
from tumorgen_slicer.result_actions import ResultActions
from tumorgen_slicer.result_view import centre_of
from tumorgen_slicer.runs import Run, RunSpec

#: The outputs loaded as label maps: tumorgen.tasks.synthesize.LABEL_OUTPUTS (a test checks they agree; importing
#: tumorgen.tasks would load torch into Slicer's GUI process).
LABEL_OUTPUTS = frozenset({"seg"})
#: The synthesized contrasts, in the order the panels list them (the views show t1c: result_actions.RESULT_LAYERS).
CONTRASTS = ("t1n", "t1c", "t2w", "t2f")
#: The labels synthesis takes (BraTS): 1 necrotic core, 2 oedema, 3 enhancing tumor.
BRATS_LABELS = (0, 1, 2, 3)
#: The tumor's regions in the summary (synthesis.json's regions_cm3), as the panels name them.
REGIONS = (("necrotic", "necrotic"), ("edema", "oedema"), ("enhancing", "enhancing"))


class SynthesizeActions(ResultActions):
    """Synthesis of the four contrasts from the current labels."""

    def _synthesis_labels(self):
        """The labels a synthesis would use: ``("seg", node)``, else ``("concentration", node)``, else ``(None, None)``."""
        seg = self.input_node("seg")
        if seg is not None:
            return "seg", seg
        if self.concentration is not None:
            return "concentration", self.concentration
        return None, None

    def _refresh(self) -> None:
        super()._refresh()
        name, node = self._synthesis_labels()
        self.state.synthesis_labels = f"{name}: {node.GetName()}" if node is not None else ""

    def synthesize(self) -> bool:
        """Synthesize t1n, t1c, t2w and t2f with the tumor of the current labels (the segmentation input, else the
        concentration being edited) in the t1n."""
        params = {k: v for k, v in self.settings.params(SYNTHESIS).items() if v is not None}
        try:
            self.runs.check_idle()
            t1n = self._reference()
            if self._synthesis_labels()[1] is None:
                raise InputError("synthesis needs labels: choose a segmentation (seg), or grow or paint a tumor concentration")
            labels = self._tumor_input(t1n, "synthesis", labels_first=True)
            if "seg" in labels:
                _check_brats(labels["seg"])
        except InputError as exc:
            return self._fail(str(exc))
        (source, node), = labels.items()
        described = f"{source} {node.GetName()!r}"
        spec = RunSpec("synthesize", self._run_name("Synthesis"), inputs={"t1n": t1n, **labels}, params=params,
                       labelmaps=LABEL_OUTPUTS, segmentations=frozenset({"seg"}))

        def synthesized(run: Run) -> None:
            for key, output in run.nodes.items():
                output.SetName(f"{t1n.GetName()} synthetic {key}")
            self.state.result_input_id = t1n.GetID()
            self._read_synthesis(run, described)
            self._show_result(True)
            self._show_in_views(centre_of(run.nodes["seg"]), run.segmentations.values())  # every view on the tumor

        return self._start(spec, synthesized)

    def _read_synthesis(self, run: Run, source: str) -> None:
        """The run's summary (synthesis.json) into the state, in one line."""
        missing = [key for key in (*CONTRASTS, "seg") if key not in run.nodes]
        path = run.outcome.outputs.get("summary")
        if missing or path is None:
            raise InputError(f"the synthesis wrote no {', '.join(missing) or 'summary (synthesis.json)'}")
        self.state.synthesis_text = describe_synthesis(json.loads(Path(path).read_text()), source)
        self.state.log.append(f"{run.name}: {self.state.synthesis_text}")
        run.summary = self.state.synthesis_text


def describe_synthesis(summary: dict, source: str) -> str:
    """``t1n, t1c, t2w, t2f from seg 'case-seg': necrotic 1.2, oedema 8.4, enhancing 3.1 cm³ (20 steps, seed 0)``."""
    regions = summary.get("regions_cm3", {})
    volumes = ", ".join(f"{label} {float(regions.get(key, 0.0)):g}" for key, label in REGIONS)
    return f"{', '.join(CONTRASTS)} from {source}: {volumes} cm³ ({summary.get('steps', '?')} steps, seed {summary.get('seed', '?')})"


def _check_brats(seg) -> None:
    """InputError (one line) unless the segmentation holds only BraTS labels 0-3 (a cavity, label 4, is no tumor to draw)."""
    values = np.unique(array_of(seg))
    other = [v for v in values if v not in BRATS_LABELS]
    if other:
        raise InputError(f"the segmentation {seg.GetName()!r} holds label {other[0]:g}: synthesis takes the BraTS labels "
                         "1 (necrotic core), 2 (oedema) and 3 (enhancing tumor)")
