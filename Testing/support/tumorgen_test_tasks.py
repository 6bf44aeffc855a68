"""Backend tasks that exist only for the tests (loaded through TUMORGEN_TASK_MODULES).

They exercise what real tasks rarely do on purpose: crash, run long, ignore a
cancel, start child processes, print to stdout; and ``test_postop`` stands in for
the post-operative prediction where the scene logic is tested without a model or
a case library.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.errors import InputError
from tumorgen.tasks.postop import PostopTaskParams
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
