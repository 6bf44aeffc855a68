"""The ``postop`` task: a resection box on a pre-operative T1 → the predicted post-operative T1.

Inputs: ``t1n`` (pre-operative), ``box`` (the resection box as a 0/1 mask on
the T1's grid) and the tumor as ``seg`` (BraTS labels) or ``concentration``.
Outputs: ``postop`` (the prediction: the mean over the samples), ``std`` (their
voxelwise standard deviation, the uncertainty), ``cavity`` (label 4 where the
cavity is predicted), ``composite`` (the composite prompt), ``region`` (what
was generated), ``retrieved-<n>-pre`` / ``retrieved-<n>-post`` (each retrieved
case's scans around its cavity, carried onto the T1's grid, on its intensity
scale: what guided the prediction) and ``summary`` (``postop.json``: the
retrieved cases and their scores, the cavity's volume, the timings).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.errors import InputError
from tumorgen.postop.predict import PostopResult, PostopSettings
from tumorgen.settings import POSTOP

ProgressFn = Callable[[str, float, str], None]
INPUTS = ("t1n", "box")
OPTIONAL_INPUTS = ("seg", "concentration")


@dataclass
class PostopTaskParams(PostopSettings):
    """The prediction settings (:class:`~tumorgen.postop.predict.PostopSettings`), the library and the model."""

    library: Optional[str] = POSTOP.default("library")
    weights: Optional[str] = POSTOP.default("weights")

    @property
    def settings(self) -> PostopSettings:
        return PostopSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(PostopSettings)})


def load_library(path: str | None):
    from tumorgen.postop.library import CaseLibrary, bundled_library

    return CaseLibrary.load(Path(path) if path else bundled_library())


def run_prediction(t1n_path: Path, box, params: PostopTaskParams, *, seg_path: Path | None = None, concentration_path: Path | None = None,
                   device: str = "auto", progress: ProgressFn | None = None, cancelled: Callable[[], bool] | None = None) -> PostopResult:
    """Read the inputs (``box``: a mask file path or a Volume), load the library and the model, and predict."""
    from tumorgen.models.sampling import LatentDiffusion
    from tumorgen.postop.predict import predict_postop
    from tumorgen.volume_io import read_mask, read_volume

    if (seg_path is None) == (concentration_path is None):
        raise InputError("give the tumor as a segmentation (--seg) or a concentration field (--concentration), one of them")
    t1n = read_volume(t1n_path, role="t1n")
    seg = read_volume(seg_path, role="seg") if seg_path is not None else None
    concentration = read_volume(concentration_path, role="concentration") if concentration_path is not None else None
    if isinstance(box, (str, Path)):
        box = read_mask(box, reference=t1n, reference_name="t1n", role="box mask", allow_empty=True)
    library = load_library(params.library)
    model = LatentDiffusion(params.weights, device=device)
    report = progress or (lambda stage, fraction, message: None)
    return predict_postop(model, t1n, box, library, params.settings, seg=seg, concentration=concentration, cancelled=cancelled,
                          progress=lambda stage, fraction, message: report(stage, 0.97 * fraction, message))  # the rest: writing


def output_files(result: PostopResult) -> dict[str, str]:
    """Output name → file name."""
    files = {"postop": "postop-t1n.nii.gz", "std": "postop-std.nii.gz", "cavity": "postop-cavity.nii.gz",
             "composite": "composite.nii.gz", "region": "region.nii.gz"}
    for n in range(len(result.retrieved)):
        files[f"retrieved-{n + 1}-pre"] = f"retrieved-{n + 1}-pre.nii.gz"
        files[f"retrieved-{n + 1}-post"] = f"retrieved-{n + 1}-post.nii.gz"
    return files


def output_volumes(result: PostopResult) -> dict:
    import numpy as np

    volumes = {"postop": (result.mean, None), "std": (result.std, None), "cavity": (result.cavity, np.uint8),
               "composite": (result.composite, np.float32), "region": (result.region, np.uint8)}
    for n, case in enumerate(result.retrieved):
        volumes[f"retrieved-{n + 1}-pre"] = (case["pre"], np.float32)
        volumes[f"retrieved-{n + 1}-post"] = (case["post"], np.float32)
    return volumes


def summary(result: PostopResult, params: PostopTaskParams) -> dict:
    return {**result.summary(), "settings": dataclasses.asdict(params.settings),
            "network_evaluations_per_sample": params.settings.network_evaluations(),
            "seconds": {k: round(v, 2) for k, v in result.timings.items()}}


@register_task(
    "postop",
    requires=("scipy", "nilearn", "torch", "monai", "einops", "safetensors", "inpainting"),
    summary="Post-operative prediction for a resection box, guided by tumor-retrieved cases (composite prompt + ControlNet).",
    inputs=INPUTS,
    optional_inputs=OPTIONAL_INPUTS,
    params=PostopTaskParams,
)
def run_postop(ctx: TaskContext) -> None:
    p: PostopTaskParams = ctx.params
    result = run_prediction(ctx.input_path("t1n"), ctx.input_path("box"), p, seg_path=ctx.input_path("seg"),
                            concentration_path=ctx.input_path("concentration"), device=ctx.requested_device, progress=ctx.progress,
                            cancelled=lambda: ctx.cancelled)
    info = summary(result, p)
    ctx.log("retrieved " + ", ".join(f"{m['case']} ({m['score']})" for m in info["retrieved"]) + f"; cavity {info['cavity_cm3']} cm³; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))
    ctx.progress("write", 0.98, "writing outputs")
    files = output_files(result)
    for name, (volume, dtype) in output_volumes(result).items():
        ctx.write_volume(name, volume, files[name], dtype=dtype)
    ctx.output_path("summary", "postop.json").write_text(json.dumps(info, indent=2) + "\n")
