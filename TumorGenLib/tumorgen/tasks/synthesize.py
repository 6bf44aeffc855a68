"""The ``synthesize`` task: a healthy t1n and a label map → t1n, t1c, t2w, t2f with the tumor the labels describe.

Inputs: ``t1n`` (a healthy, skull-stripped scan) and the tumor as ``seg``
(BraTS labels 1/2/3) or ``concentration`` (a field in [0, 1], turned into
labels with the default thresholds), on the scan's grid. Outputs: ``t1n``,
``t1c``, ``t2w``, ``t2f`` (the synthesized contrasts; t1n in the scan's units,
the others BraTS-normalised to [0, 1]), ``seg`` (the labels used) and
``summary`` (``synthesis.json``: settings, region volumes, timings).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.errors import InputError
from tumorgen.settings import SYNTHESIS
from tumorgen.synthesis.settings import SynthesisSettings

INPUTS = ("t1n",)
OPTIONAL_INPUTS = ("seg", "concentration")
CONTRAST_OUTPUTS = ("t1n", "t1c", "t2w", "t2f")
#: Output name → file name.
OUTPUT_FILES = {**{c: f"synthetic-{c}.nii.gz" for c in CONTRAST_OUTPUTS}, "seg": "synthetic-seg.nii.gz", "summary": "synthesis.json"}
#: The outputs that are label maps.
LABEL_OUTPUTS = frozenset({"seg"})


@dataclass
class SynthesizeTaskParams(SynthesisSettings):
    """The synthesis settings and the model."""

    weights: Optional[str] = SYNTHESIS.default("weights")

    @property
    def settings(self) -> SynthesisSettings:
        return SynthesisSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SynthesisSettings)})


def read_labels(seg_path: Path | None, concentration_path: Path | None, t1n):
    """The label map from a segmentation or a concentration field (one of them), checked against the scan's geometry."""
    from tumorgen.biophysics.labels import concentration_to_labels
    from tumorgen.volume_io import check_same_geometry, read_volume

    if (seg_path is None) == (concentration_path is None):
        raise InputError("give the tumor as a label map (--seg) or a concentration field (--concentration), one of them")
    if seg_path is not None:
        labels = read_volume(seg_path, role="seg")
        check_same_geometry(t1n, labels, ("the t1n", "the labels"))
        return labels
    field = read_volume(concentration_path, role="concentration")
    check_same_geometry(t1n, field, ("the t1n", "the concentration"))
    if float(field.array.min()) < 0.0 or float(field.array.max()) > 1.0:
        raise InputError(f"the concentration must lie in [0, 1], got values from {float(field.array.min()):g} to {float(field.array.max()):g}")
    return concentration_to_labels(field)


def run_synthesis(t1n_path: Path, params: SynthesizeTaskParams, *, seg_path: Path | None = None, concentration_path: Path | None = None,
                  device: str = "auto", progress=None, cancelled=None):
    from tumorgen.synthesis.synthesize import SynthesisModel, synthesize
    from tumorgen.volume_io import read_volume

    t1n = read_volume(t1n_path, role="t1n")
    labels = read_labels(seg_path, concentration_path, t1n)
    model = SynthesisModel(params.weights, device=device)
    report = progress or (lambda stage, fraction, message: None)
    return synthesize(model, t1n, labels, params.settings, cancelled=cancelled,
                      progress=lambda stage, fraction, message: report(stage, 0.97 * fraction, message))


@register_task(
    "synthesize",
    requires=("scipy", "nilearn", "torch", "monai", "einops", "safetensors"),
    summary="Label map → four MR contrasts (t1n, t1c, t2w, t2f) in a healthy scan, with the synthesis generator (paper 003).",
    inputs=INPUTS,
    optional_inputs=OPTIONAL_INPUTS,
    params=SynthesizeTaskParams,
)
def run_synthesize(ctx: TaskContext) -> None:
    import numpy as np

    p: SynthesizeTaskParams = ctx.params
    result = run_synthesis(ctx.input_path("t1n"), p, seg_path=ctx.input_path("seg"), concentration_path=ctx.input_path("concentration"),
                           device=ctx.requested_device, progress=ctx.progress, cancelled=lambda: ctx.cancelled)
    ctx.log("synthesized t1n, t1c, t2w, t2f; " + ", ".join(f"{k} {v:.1f} s" for k, v in result.info["timings_s"].items()))
    ctx.progress("write", 0.98, "writing outputs")
    for contrast in CONTRAST_OUTPUTS:
        ctx.write_volume(contrast, result.images[contrast], OUTPUT_FILES[contrast], dtype=np.float32)
    ctx.write_volume("seg", result.seg, OUTPUT_FILES["seg"], dtype=np.uint8)
    ctx.output_path("summary", OUTPUT_FILES["summary"]).write_text(json.dumps({**result.info, "settings": dataclasses.asdict(p.settings)},
                                                                              indent=2) + "\n")
