"""The ``followup`` task: a tumor-size series and the latest scan → the synthetic follow-up scan at a day.

Inputs: ``t1n`` (the latest scan), ``series`` (a CSV file: ``day`` and ``size``
in cm³, or ``day`` and ``seg``, label maps whose whole-tumor volume is the
size; optionally ``rt_start``), the latest tumor as ``seg`` (BraTS labels) or
``concentration``, and optionally ``resect`` (a resection box as a 0/1 mask on
the T1's grid: the composed what-if, resect → residual → follow-up). The tissue
maps the tumor regrows on come from ``csf``/``gm``/``wm`` or ``tissue_labels``
when given, else from the template registered to the T1 (the tumor ignored).

Outputs: ``followup`` (the follow-up t1n: the mean over the samples), ``std``
(their voxelwise standard deviation), ``probability`` (the fraction of forecast
draws in which each voxel is tumor), ``labels`` (BraTS labels of the median
forecast; 4 where a resection cavity is), ``concentration`` (the median
forecast's field), ``region`` (what was generated), ``forecast`` (``forecast.csv``:
day, median, low, high and the observed sizes, for the plot) and ``summary``
(``followup.json``). With a resection also ``postop`` (the predicted
post-operative t1n the follow-up starts from) and ``residual`` (the field left
outside the cavity).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.followup.settings import FollowupSettings
from tumorgen.settings import FOLLOWUP

INPUTS = ("t1n", "series")
OPTIONAL_INPUTS = ("seg", "concentration", "resect", "csf", "gm", "wm", "tissue_labels")
#: Output name → file name (``postop`` and ``residual`` only with a resection).
OUTPUT_FILES = {
    "followup": "followup-t1n.nii.gz", "std": "followup-std.nii.gz", "probability": "followup-probability.nii.gz",
    "labels": "followup-seg.nii.gz", "concentration": "followup-concentration.nii.gz", "region": "region.nii.gz",
    "postop": "postop-t1n.nii.gz", "residual": "residual-concentration.nii.gz",
    "forecast": "forecast.csv", "summary": "followup.json",
}
#: The outputs that are label maps.
LABEL_OUTPUTS = frozenset({"labels", "region"})


@dataclass
class FollowupTaskParams(FollowupSettings):
    """The follow-up settings, the case library (with a resection) and the model."""

    library: Optional[str] = FOLLOWUP.default("library")
    weights: Optional[str] = FOLLOWUP.default("weights")

    @property
    def settings(self) -> FollowupSettings:
        return FollowupSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(FollowupSettings)})


def run_followup(inputs: dict, params: FollowupTaskParams, device: str = "auto", progress=None, cancelled=None):
    """Read the inputs (paths; ``resect`` may be a Volume), register the template for the tissue maps, predict the
    post-operative state first when there is a resection, and predict the follow-up. Returns the
    :class:`~tumorgen.followup.predict.FollowupResult` and the post-operative prediction (or None)."""
    import numpy as np

    from tumorgen.anatomy.registration import tissues_for_subject
    from tumorgen.errors import InputError
    from tumorgen.followup.field import labels_to_concentration
    from tumorgen.followup.predict import predict_followup
    from tumorgen.followup.series import read_series
    from tumorgen.models.pending import PendingModel
    from tumorgen.volume import Volume
    from tumorgen.volume_io import check_finite, check_same_geometry, read_mask, read_volume

    report = progress or (lambda stage, fraction, message: None)
    if inputs.get("t1n") is None or inputs.get("series") is None:
        raise InputError("a follow-up needs the latest scan (t1n) and the series (a CSV file)")
    if (inputs.get("seg") is None) == (inputs.get("concentration") is None):
        raise InputError("give the latest tumor as a segmentation (--seg) or a concentration field (--concentration), one of them")
    t1n = read_volume(inputs["t1n"], role="t1n")
    check_finite(t1n, "t1n")
    series = read_series(inputs["series"], reference=t1n, rt_start=params.rt_start)
    if inputs.get("seg") is not None:
        seg = read_volume(inputs["seg"], role="seg")
        check_same_geometry(t1n, seg, ("t1n", "seg"))
        tumor = np.isin(np.rint(np.asarray(seg.array)), (1, 2, 3))
        if not tumor.any():
            raise InputError("the segmentation is empty: no tumor (labels 1, 2 or 3) to forecast")
        concentration = None
    else:
        concentration = read_volume(inputs["concentration"], role="concentration")
        check_same_geometry(t1n, concentration, ("t1n", "concentration"))
        c = np.asarray(concentration.array)
        if not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 1:
            raise InputError("the concentration field must be finite and in [0, 1]")
        tumor = c >= 0.25
        if not tumor.any():
            raise InputError("the concentration field has no tumor (no voxel >= 0.25) to forecast")
    resect = inputs.get("resect")
    if resect is not None and not isinstance(resect, Volume):
        resect = read_mask(resect, reference=t1n, reference_name="t1n", role="resection box", allow_empty=True)
    model = PendingModel(params.weights, device=device)  # loaded while the template is registered and the tumor regrown
    if not model.has("controlnet"):
        raise InputError(f"the model weights in {model.folder} have no ControlNet (controlnet.safetensors), which the follow-up needs")
    settings = params.settings
    from tumorgen.followup.predict import target_day

    target_day(series, settings)  # a bad day fails before the slow steps
    if settings.route == "guided":
        from tumorgen.followup.guided import check_guided

        check_guided(model)
    maps = {k: inputs.get(k) for k in ("csf", "gm", "wm", "tissue_labels")}
    given = any(v is not None for v in maps.values())
    if given:
        from tumorgen.tasks.grow import tissues_from_inputs

        tissues, _ = tissues_from_inputs(maps)
        if not tissues.grid.matches(t1n.grid):
            raise InputError(f"tissue maps and t1n have different geometry: {'; '.join(t1n.grid.differences(tissues.grid))}")
    model.start()  # every input checked: the model loads during the registration, the forecast and the growth
    if not given:
        report("tissues", 0.0, "registering the template to the T1")
        tissues = tissues_for_subject(t1n, t1n.with_array(tumor.astype(np.uint8)), cancelled=cancelled,
                                      progress=lambda s, f, m: report("tissues", 0.15 * f, m))
    domain = (np.asarray(tissues.gm.array) + np.asarray(tissues.wm.array)) > np.asarray(tissues.csf.array)
    field_now = concentration if concentration is not None else labels_to_concentration(seg, d_white=settings.d_white, rho=settings.rho,
                                                                                          domain=domain)
    image, cavity, removed, postop = t1n, None, None, None
    lo = 0.15
    if resect is not None:
        from tumorgen.postop.predict import PostopSettings, predict_postop
        from tumorgen.tasks.postop import load_library

        library = load_library(params.library)
        model = model.get(cancelled)  # the post-operative prediction comes first and needs it
        postop = predict_postop(model, t1n, resect, library, PostopSettings(samples=settings.samples, seed=settings.seed),
                                seg=seg if concentration is None else None, concentration=concentration, cancelled=cancelled,
                                progress=lambda s, f, m: report(f"postop {s}", 0.15 + 0.35 * f, m))
        image = postop.mean
        cavity = np.asarray(postop.cavity.array) > 0
        removed = np.asarray(resect.array).astype(bool) & (np.asarray(t1n.array) > 0)
        lo = 0.5
    result = predict_followup(model, image, series, settings, field_now=field_now, tissues=tissues, cavity=cavity, removed=removed,
                              cancelled=cancelled, progress=lambda s, f, m: report(s, lo + (0.97 - lo) * f, m))
    if postop is not None:
        result.timings.update({f"postop_{k}": v for k, v in postop.timings.items()})
        result.info["postop_cavity_cm3"] = round(float(cavity.sum()) * t1n.grid.voxel_volume_mm3 / 1000, 3)
    return result, postop


def output_volumes(result, postop) -> dict:
    import numpy as np

    volumes = {"followup": (result.mean, None), "std": (result.std, np.float32), "probability": (result.probability, np.float32),
               "labels": (result.labels, np.uint8), "concentration": (result.concentration, np.float32),
               "region": (result.region, np.uint8)}
    if postop is not None:
        volumes["postop"] = (postop.mean, None)
        volumes["residual"] = (result.residual, np.float32)
    return volumes


def summary(result, params: FollowupTaskParams) -> dict:
    return {**result.info, "forecast": result.forecast.as_dict(), "settings": dataclasses.asdict(params.settings),
            "seconds": {k: round(v, 2) for k, v in result.timings.items()}}


@register_task(
    "followup",
    requires=("scipy", "nilearn", "torch", "monai", "einops", "safetensors", "inpainting", "matplotlib", "PIL"),
    summary="Synthetic follow-up: forecast the tumor volume at a day from a series, regrow the tumor to it, draw the scan.",
    inputs=INPUTS,
    optional_inputs=OPTIONAL_INPUTS,
    params=FollowupTaskParams,
)
def run_followup_task(ctx: TaskContext) -> None:
    import json

    from tumorgen.followup.predict import write_curve

    p: FollowupTaskParams = ctx.params
    inputs = {name: ctx.input_path(name) for name in INPUTS + OPTIONAL_INPUTS}
    result, postop = run_followup(inputs, p, ctx.requested_device, progress=ctx.progress, cancelled=lambda: ctx.cancelled)
    info = summary(result, p)
    ctx.log(f"day {info['day']:g}: forecast {info['forecast_cm3']['median']} cm³ ({info['forecast_cm3']['low']}–"
            f"{info['forecast_cm3']['high']}), predicted tumor {info['predicted_cm3']} cm³; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items() if not k.startswith(("image_", "postop_"))))
    ctx.progress("write", 0.98, "writing outputs")
    for name, (volume, dtype) in output_volumes(result, postop).items():
        ctx.write_volume(name, volume, OUTPUT_FILES[name], dtype=dtype)
    write_curve(result.forecast, ctx.output_path("forecast", OUTPUT_FILES["forecast"]))
    ctx.output_path("summary", OUTPUT_FILES["summary"]).write_text(json.dumps(info, indent=2) + "\n")
