"""Backend tasks that exist only for the tests (loaded through TUMORGEN_TASK_MODULES).

They exercise what real tasks rarely do on purpose: crash, run long, ignore a
cancel, start child processes, print to stdout; and ``test_postop``,
``test_followup`` and ``test_synthesize`` stand in for the post-operative and the
follow-up prediction and the label-map synthesis where the scene logic is tested
without a model or a case library.

A process the tests start but cannot hand a job starter (the web app's server)
runs the real tasks named in ``TUMORGEN_STAND_IN_TASKS`` (comma-separated, e.g.
``synthesize``) as their stand-ins: importing this module puts the stand-in in
the real task's place in the registry.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from tumorgen.backend import registry
from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.errors import InputError
from tumorgen.tasks.followup import FollowupTaskParams
from tumorgen.tasks.postop import PostopTaskParams
from tumorgen.tasks.synthesize import SynthesizeTaskParams
from tumorgen.volume import Volume


@dataclass
class SlowParams:
    steps: int = 50
    step_seconds: float = 0.1
    #: Block in one long sleep instead of stepping: the task never sees the cancel.
    ignore_cancel: bool = False
    #: Start a child process (a sleeping Python) that the cancel must also end.
    spawn_child: bool = False


@register_task("test_slow", summary="Writes part of an output, then runs for a long time.", params=SlowParams)
def run_slow(ctx: TaskContext) -> None:
    p: SlowParams = ctx.params
    ctx.write_volume("first", Volume(np.ones((4, 4, 4), np.float32)))
    partial = ctx.output_path("second", "second.nii.gz")
    partial.write_bytes(b"half-written")
    if p.spawn_child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        ctx.log(f"child pid {child.pid}")
    if p.ignore_cancel:
        ctx.log("sleeping without checking for cancel")
        time.sleep(120)
    for _ in ctx.steps(range(p.steps), "work"):
        time.sleep(p.step_seconds)


@register_task("test_crash", summary="Fails with an internal error half-way.")
def run_crash(ctx: TaskContext) -> None:
    ctx.progress("solve", 0.5, "solving")
    ctx.write_volume("never", Volume(np.zeros((2, 2, 2), np.float32)))
    raise RuntimeError("the solver diverged at step 17")


@register_task("test_print", summary="Prints to stdout (which must not corrupt the event stream).")
def run_print(ctx: TaskContext) -> None:
    print("some library chatter on stdout")
    print('{"type": "result", "outputs": {"fake": "/nowhere"}}')
    ctx.write_volume("ones", Volume(np.ones((3, 3, 3), np.float32)))


@register_task("test_postop", summary="The postop task's inputs, parameters and outputs, with a cavity drawn instead of predicted.",
               inputs=("t1n", "box"), optional_inputs=("seg", "concentration"), params=PostopTaskParams)
def run_postop(ctx: TaskContext) -> None:
    """What ``postop`` writes, made by arithmetic: the cavity is the box's voxels inside the brain (label 4), the prediction the
    t1n with the cavity dark, and retrieved case ``n`` the t1n shifted by ``n`` voxels and scaled (pre) with the cavity dark (post)."""
    from scipy import ndimage

    p: PostopTaskParams = ctx.params
    t1n = ctx.read_volume("t1n")
    box = ctx.read_mask("box", reference=t1n, reference_name="t1n")
    tumor_name = "seg" if ctx.input_path("seg") is not None else "concentration"
    if (ctx.input_path("seg") is None) == (ctx.input_path("concentration") is None):
        raise InputError("give the tumor as a segmentation or as a concentration field, not both and not neither")
    ctx.read_volume(tumor_name)
    image = np.asarray(t1n.array, np.float32)
    cavity = box.array.astype(bool) & (image > 0)
    region = ndimage.binary_dilation(cavity, iterations=1)
    for _ in ctx.steps(range(p.samples), "sample", end=0.9):
        time.sleep(0.02)
    postop = np.where(cavity, 0.1 * image, image)
    std = np.where(region, 0.05 * image.max(), 0.0).astype(np.float32)
    ctx.write_volume("postop", t1n.with_array(postop.astype(np.float32)), "postop-t1n.nii.gz")
    ctx.write_volume("std", t1n.with_array(std), "postop-std.nii.gz")
    ctx.write_volume("cavity", t1n.with_array(np.where(cavity, 4, 0).astype(np.uint8)), "postop-cavity.nii.gz")
    ctx.write_volume("composite", t1n.with_array(postop.astype(np.float32)), "composite.nii.gz")
    ctx.write_volume("region", t1n.with_array(region.astype(np.uint8)), "region.nii.gz")
    matches = []
    for n in range(1, p.k + 1):
        pre = np.roll(image, n, axis=0) * (1.0 + 0.1 * n)
        ctx.write_volume(f"retrieved-{n}-pre", t1n.with_array(pre.astype(np.float32)), f"retrieved-{n}-pre.nii.gz")
        ctx.write_volume(f"retrieved-{n}-post", t1n.with_array(np.where(cavity, 0.0, pre).astype(np.float32)),
                         f"retrieved-{n}-post.nii.gz")
        matches.append({"case": f"sim-{n:03d}", "score": None if p.retrieval == "random" else round(0.5 / n, 4), "method": p.retrieval})
    cm3 = t1n.grid.voxel_volume_mm3 / 1000.0
    summary = {"retrieved": matches, "cavity_cm3": round(float(cavity.sum()) * cm3, 2), "region_cm3": round(float(region.sum()) * cm3, 2)}
    ctx.log(f"retrieved {', '.join(m['case'] for m in matches)}; cavity {summary['cavity_cm3']} cm³")
    ctx.output_path("summary", "postop.json").write_text(json.dumps(summary) + "\n")


#: The stand-in forecast's spread: the interval's half-width grows by this fraction of the median per 90 days.
_FOLLOWUP_SPREAD = 0.2


@register_task("test_followup", summary="The followup task's inputs, parameters and outputs, with the tumor dilated instead of regrown.",
               inputs=("t1n", "series"), optional_inputs=("seg", "concentration", "resect"), params=FollowupTaskParams)
def run_followup(ctx: TaskContext) -> None:
    """What ``followup`` writes, made by arithmetic: an exponential through the first and last measurement is the
    forecast (its interval widening with the days), the tumor (seg ≠ 0, or c ≥ 0.25) dilated until its volume grows by
    the forecast's factor is the tumor at the day (label 2, the tumor now label 3), the follow-up is the t1n brightened
    there, the probability a blurred mask of it. With ``resect``: the cavity is the box inside the brain (label 4 in the
    labels, dark in ``postop``), the residual the tumor outside it."""
    from scipy import ndimage

    from tumorgen.followup.series import read_series
    from tumorgen.followup.settings import DEFAULT_HORIZON_DAYS

    p: FollowupTaskParams = ctx.params
    if (ctx.input_path("seg") is None) == (ctx.input_path("concentration") is None):
        raise InputError("give the tumor as a segmentation or as a concentration field, not both and not neither")
    t1n = ctx.read_volume("t1n")
    series = read_series(ctx.input_path("series"), rt_start=p.rt_start)
    image = np.asarray(t1n.array, np.float32)
    brain = image > 0
    if ctx.input_path("seg") is not None:
        tumor = np.asarray(ctx.read_volume("seg").array) > 0
        field = tumor.astype(np.float32)
    else:
        field = np.asarray(ctx.read_volume("concentration").array, np.float32)
        tumor = field >= 0.25
    cavity = np.zeros_like(brain)
    residual_fraction = None  # as the real task's summary: the fraction of the tumor's cells a resection leaves
    if ctx.input_path("resect") is not None:
        cavity = ctx.read_mask("resect", reference=t1n, reference_name="t1n").array.astype(bool) & brain
        kept = np.where(cavity, 0.0, field).astype(np.float32)
        residual_fraction = round(float(kept.sum() / max(float(field.sum()), 1e-9)), 4)
        tumor, field = tumor & ~cavity, kept
    start = time.monotonic()

    days, sizes = series.days, series.sizes_cm3
    rate = np.log(sizes[-1] / sizes[0]) / (days[-1] - days[0])
    day = p.day if p.day is not None else series.last_day + DEFAULT_HORIZON_DAYS

    def curve(d):
        median = sizes[-1] * np.exp(rate * (np.asarray(d, float) - days[-1]))
        spread = _FOLLOWUP_SPREAD * median * np.abs(np.asarray(d, float) - days[-1]) / 90.0
        return median, np.maximum(median - spread, 0.0), median + spread

    curve_days = np.union1d(np.linspace(days[0], day + 0.1 * (day - days[0]), 25), days)
    median, low, high = curve(curve_days)
    observed = {float(d): float(s) for d, s in zip(days, sizes)}
    lines = ["day,median,low,high,observed"] + [
        f"{d:g},{m:.4f},{lo:.4f},{hi:.4f}," + (f"{observed[float(d)]:.4f}" if float(d) in observed else "")
        for d, m, lo, hi in zip(curve_days, median, low, high)]
    ctx.output_path("forecast", "forecast.csv").write_text("\n".join(lines) + "\n")

    at_day = [float(v) for v in curve(day)]
    voxel_cm3 = t1n.grid.voxel_volume_mm3 / 1000.0
    wanted = tumor.sum() * at_day[0] / sizes[-1]
    grown = tumor.copy()
    for _ in ctx.steps(range(p.samples * p.steps), "sample", end=0.9):  # 2 ms a denoising step: 16 × 1000 steps run 32 s
        time.sleep(0.002)
    while grown.any() and grown.sum() < wanted:
        larger = ndimage.binary_dilation(grown) & brain & ~cavity
        if larger.sum() == grown.sum():
            break
        grown = larger
    base = np.where(cavity, 0.1 * image, image)
    region = ndimage.binary_dilation(grown | tumor | cavity, iterations=1)
    labels = np.where(cavity, 4, np.where(tumor, 3, np.where(grown, 2, 0))).astype(np.uint8)
    followup = np.where(grown, 1.3 * base, base).astype(np.float32)
    probability = np.clip(ndimage.gaussian_filter(grown.astype(np.float32), 1.0), 0.0, 1.0).astype(np.float32)
    ctx.write_volume("followup", t1n.with_array(followup), "followup-t1n.nii.gz")
    ctx.write_volume("std", t1n.with_array(np.where(region, 0.05 * image.max(), 0.0).astype(np.float32)), "followup-std.nii.gz")
    ctx.write_volume("probability", t1n.with_array(probability), "followup-probability.nii.gz")
    ctx.write_volume("labels", t1n.with_array(labels), "followup-seg.nii.gz")
    ctx.write_volume("concentration", t1n.with_array(np.maximum(field, grown * 0.5).astype(np.float32)), "followup-concentration.nii.gz")
    ctx.write_volume("region", t1n.with_array(region.astype(np.uint8)), "region.nii.gz")
    if ctx.input_path("resect") is not None:
        ctx.write_volume("postop", t1n.with_array(base.astype(np.float32)), "postop-t1n.nii.gz")
        ctx.write_volume("residual", t1n.with_array(field), "residual-concentration.nii.gz")
    summary = {"day": float(day), "last_day": series.last_day, "route": p.route,
               "forecast_cm3": {"median": round(at_day[0], 3), "low": round(at_day[1], 3), "high": round(at_day[2], 3)},
               "predicted_cm3": round(float(grown.sum()) * voxel_cm3, 3), "residual_fraction": residual_fraction,
               "observed": {"days": [float(d) for d in days], "sizes_cm3": [float(s) for s in sizes]},
               "rt_start": series.rt_start, "seconds": {"total": round(time.monotonic() - start, 2)}}
    ctx.log(f"forecast at day {day:g}: {summary['forecast_cm3']['median']} cm³; predicted {summary['predicted_cm3']} cm³")
    ctx.output_path("summary", "followup.json").write_text(json.dumps(summary) + "\n")


#: The stand-in synthesis's time per denoising step: 1000 steps run 30 s (time to cancel), the default 20 steps 0.6 s.
_SYNTHESIS_STEP_SECONDS = 0.03
#: Each contrast's intensity (BraTS-normalised, [0, 1]) in the necrotic core (1), the oedema (2) and the enhancing tumor (3).
_SYNTHESIS_LESION = {"t1n": (0.15, 0.55, 0.45), "t1c": (0.15, 0.55, 1.0), "t2w": (1.0, 0.9, 0.7), "t2f": (0.5, 1.0, 0.8)}


@register_task("test_synthesize", summary="The synthesize task's inputs, parameters and outputs, with the contrasts drawn by arithmetic.",
               inputs=("t1n",), optional_inputs=("seg", "concentration"), params=SynthesizeTaskParams)
def run_synthesize(ctx: TaskContext) -> None:
    """What ``synthesize`` writes, made by arithmetic: the labels are the real task's (the seg, or the concentration's
    BraTS labels, checked as it checks them), each contrast the BraTS-normalised scan (t2w inverted) with the tumor's
    compartments at fixed intensities (:data:`_SYNTHESIS_LESION`), zero outside the brain; the t1n goes back to the scan's
    units inside the tumor, 3 % darker in the blend margin around it, and is the scan unchanged beyond it."""
    from scipy import ndimage

    from tumorgen.synthesis.synthesize import check_labels, normalise
    from tumorgen.tasks.synthesize import CONTRAST_OUTPUTS, OUTPUT_FILES, read_labels

    p: SynthesizeTaskParams = ctx.params
    t1n = ctx.read_volume("t1n")
    seg = check_labels(read_labels(ctx.input_path("seg"), ctx.input_path("concentration"), t1n))
    scan = np.asarray(t1n.array, np.float32)
    brain = scan > 0
    normalised, lo, hi = normalise(scan, brain)
    for _ in ctx.steps(range(p.steps), "sample", end=0.9):
        time.sleep(_SYNTHESIS_STEP_SECONDS)
    tumor, head = seg > 0, brain | (seg > 0)
    margin = ndimage.distance_transform_edt(~tumor, sampling=t1n.spacing) <= p.blend_mm
    for contrast in CONTRAST_OUTPUTS:
        image = 1.0 - 0.7 * normalised if contrast == "t2w" else normalised.copy()
        for label, value in zip((1, 2, 3), _SYNTHESIS_LESION[contrast]):
            image[seg == label] = value
        image = np.where(head, image, 0.0)
        if contrast == "t1n":
            image = np.where(tumor, image * (hi - lo) + lo, np.where(margin, 0.97 * scan, scan))
        ctx.write_volume(contrast, t1n.with_array(image.astype(np.float32)), OUTPUT_FILES[contrast], dtype=np.float32)
    ctx.write_volume("seg", t1n.with_array(seg), OUTPUT_FILES["seg"], dtype=np.uint8)
    cm3 = t1n.grid.voxel_volume_mm3 / 1000.0
    summary = {"steps": p.steps, "seed": p.seed, "blend_mm": p.blend_mm, "network_evaluations": 4 * p.steps,
               "regions_cm3": {name: round(float(np.count_nonzero(seg == v)) * cm3, 3) for name, v in (("necrotic", 1), ("edema", 2),
                                                                                                    ("enhancing", 3))},
               "scan_lo_hi": [lo, hi], "timings_s": {"sample": round(p.steps * _SYNTHESIS_STEP_SECONDS, 2)}, "weights": "stand-in",
               "settings": dataclasses.asdict(p.settings)}
    ctx.log(f"synthesized t1n, t1c, t2w, t2f (stand-in): {summary['regions_cm3']}")
    ctx.output_path("summary", OUTPUT_FILES["summary"]).write_text(json.dumps(summary, indent=2) + "\n")


def _stand_in_for_real_tasks() -> None:
    """The real tasks named in ``TUMORGEN_STAND_IN_TASKS`` run as their stand-ins (``test_<name>``)."""
    for name in filter(None, (n.strip() for n in os.environ.get("TUMORGEN_STAND_IN_TASKS", "").split(","))):
        registry._REGISTRY[name] = dataclasses.replace(registry._REGISTRY[f"test_{name}"], name=name)


_stand_in_for_real_tasks()
