"""The ``tissues`` task: CSF/GM/WM maps for a subject's T1 from the registered template.

Inputs: ``t1n`` (required) and ``exclude`` (optional mask on the T1's grid kept
out of the registration metric: a tumor, a resection cavity, the region to
inpaint). Outputs, on the T1's exact grid: ``csf``, ``gm``, ``wm`` (float32
probabilities) and ``labels`` (0 background, 1 CSF, 2 GM, 3 WM). The
registration is cached per input (see :mod:`tumorgen.anatomy.registration`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tumorgen.anatomy.registration import RegistrationSettings, tissues_for_subject
from tumorgen.anatomy.tissues import FILE_NAMES, LABEL_FILE_NAME, TISSUE_NAMES
from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task


@dataclass
class TissuesTaskParams:
    #: Run the deformable (B-spline) stage after the affine one.
    deformable: bool = True
    #: Reuse / store the registration in the cache.
    use_cache: bool = True


@register_task(
    "tissues",
    requires=("scipy", "nilearn"),
    optional_requires=("torch",),
    summary="Register the MNI152 template to a T1 and carry its CSF/GM/WM maps across.",
    inputs=("t1n",),
    optional_inputs=("exclude",),
    params=TissuesTaskParams,
)
def run_tissues(ctx: TaskContext) -> None:
    p: TissuesTaskParams = ctx.params
    ctx.progress("read", 0.0, "reading the T1")
    t1n = ctx.read_volume("t1n")
    exclude = ctx.read_mask("exclude", reference=t1n, reference_name="t1n") if ctx.input_path("exclude") is not None else None
    maps = tissues_for_subject(
        t1n,
        exclude,
        settings=RegistrationSettings(deformable=p.deformable),
        use_cache=p.use_cache,
        progress=lambda stage, f, m: ctx.progress(stage, 0.02 + 0.9 * f, m),
        cancelled=lambda: ctx.cancelled,
    )
    ctx.check_cancelled()
    ctx.progress("write", 0.95, "writing the tissue maps")
    for name in TISSUE_NAMES:
        ctx.write_volume(name, getattr(maps, name), FILE_NAMES[name])
    ctx.write_volume("labels", maps.labels(), LABEL_FILE_NAME)
