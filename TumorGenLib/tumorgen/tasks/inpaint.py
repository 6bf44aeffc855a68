"""The ``inpaint`` task: healthy tissue or a tumor generated inside a mask of a T1 image.

Inputs: ``t1n`` and ``mask`` (the BraTS inpainting challenge's inputs: a voided
t1n and its mask work as they are), ``concentration`` for tumor mode, and the
tissue maps (``csf``/``gm``/``wm`` or ``tissue_labels``); without tissue maps
the template's are carried to the T1 by registration, ignoring the mask.
Outputs: ``inpainted`` (the mean over the samples), ``mask`` (the region that
was generated, the input mask's file), with several samples ``std`` (the
voxelwise standard deviation) and ``sample-<k>``, and with the self-check
``check`` (``self-check.json``: the scores on known tissue, also logged, as a
warning when the result is doubtful).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.errors import InputError
from tumorgen.inpainting.core import InpaintResult, InpaintSettings
from tumorgen.settings import INPAINTING
from tumorgen.volume_io import volume_suffix

ProgressFn = Callable[[str, float, str], None]
NO_PROBE = "self-check: no region of the mask's shape fits on known tissue clear of the mask, so none was run"
INPUTS = ("t1n", "mask")
OPTIONAL_INPUTS = ("concentration", "csf", "gm", "wm", "tissue_labels")


@dataclass
class InpaintTaskParams(InpaintSettings):
    """The inpainting settings (:class:`~tumorgen.inpainting.core.InpaintSettings`) and the model to use."""

    weights: Optional[str] = INPAINTING.default("weights")

    @property
    def settings(self) -> InpaintSettings:
        return InpaintSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(InpaintSettings)})


def _load_model(weights: str | None, device: str):
    from tumorgen.models.sampling import LatentDiffusion  # PyTorch and MONAI are imported here, in the loading thread

    return LatentDiffusion(weights, device=device)


def run_inpainting(inputs: dict[str, Optional[Path]], params: InpaintTaskParams, device: str = "auto",
                   progress: ProgressFn | None = None, cancelled: Callable[[], bool] | None = None) -> tuple[InpaintResult, str]:
    """Read the inputs, get the tissue maps, load the model and inpaint; returns the result and where the tissue maps came from."""
    from concurrent.futures import ThreadPoolExecutor

    from tumorgen.inpainting.core import inpaint
    from tumorgen.tasks.grow import tissues_from_inputs
    from tumorgen.volume_io import check_same_geometry, read_mask, read_volume

    report = progress or (lambda stage, fraction, message: None)
    if inputs.get("t1n") is None or inputs.get("mask") is None:
        raise InputError("inpainting needs a t1n image and a mask")
    t1n = read_volume(inputs["t1n"], role="t1n")
    mask = read_mask(inputs["mask"], reference=t1n, reference_name="t1n", role="mask")
    concentration = None
    if params.mode == "tumor":
        if inputs.get("concentration") is None:
            raise InputError("tumor mode needs a concentration field (--concentration)")
        concentration = read_volume(inputs["concentration"], role="concentration")
        check_same_geometry(t1n, concentration, ("t1n", "concentration"))
    elif inputs.get("concentration") is not None:
        raise InputError("a concentration field only applies in tumor mode")
    if params.weights and not Path(params.weights).is_dir():  # before the tissue maps, which may take a registration
        raise InputError(f"model weights folder not found: {params.weights}")
    user_maps = any(inputs.get(k) is not None for k in ("csf", "gm", "wm", "tissue_labels"))
    tissue_inputs = {k: inputs.get(k) for k in ("csf", "gm", "wm", "tissue_labels")}
    if not user_maps:
        tissue_inputs.update(t1n=inputs["t1n"], exclude=inputs["mask"])
    report("tissues", 0.0, "registering the template to the T1" if not user_maps else "reading tissue maps")
    # The model loads (PyTorch and MONAI imports, the weights: 2–3 s on 2 cores) while the tissue maps are read or
    # carried across (ITK's resampling and numpy release the interpreter): about a second less per what-if.
    with ThreadPoolExecutor(1, thread_name_prefix="tumorgen-model") as pool:
        loading = pool.submit(_load_model, params.weights, device)
        tissues, source = tissues_from_inputs(tissue_inputs, progress=None if user_maps else (lambda s, f, m: report("tissues", 0.4 * f, m)),
                                              cancelled=cancelled)
        model = loading.result()
    if model.controlnet is None:
        raise InputError(f"the model weights in {model.folder} have no ControlNet (controlnet.safetensors), which inpainting needs")
    if not tissues.grid.matches(t1n.grid):
        raise InputError(f"tissue maps and t1n have different geometry: {'; '.join(t1n.grid.differences(tissues.grid))}")
    start = 0.02 if user_maps else 0.4

    def sampling(stage: str, fraction: float, message: str) -> None:
        report(stage, start + (0.97 - start) * fraction, message)  # the rest is for writing

    result = inpaint(model, t1n, mask, {"csf": tissues.csf, "gm": tissues.gm, "wm": tissues.wm}, params.settings,
                     concentration=concentration, progress=sampling, cancelled=cancelled, registered_maps=not user_maps)
    return result, source


@register_task(
    "inpaint",
    requires=("scipy", "nilearn", "torch", "monai", "einops", "safetensors", "inpainting", "matplotlib", "PIL"),
    summary="Healthy-tissue or tumor inpainting inside a mask with latent diffusion + ControlNet and RePaint.",
    inputs=INPUTS,
    optional_inputs=OPTIONAL_INPUTS,
    params=InpaintTaskParams,
)
def run_inpaint(ctx: TaskContext) -> None:
    p: InpaintTaskParams = ctx.params
    inputs = {name: ctx.input_path(name) for name in INPUTS + OPTIONAL_INPUTS}
    result, source = run_inpainting(inputs, p, ctx.requested_device, progress=ctx.progress, cancelled=lambda: ctx.cancelled)
    ctx.log(f"tissue maps: {source}; crop {tuple(s.stop - s.start for s in result.box)} voxels; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))
    ctx.progress("write", 0.98, "writing outputs")
    ctx.write_volume("inpainted", result.mean, "inpainted.nii.gz")
    # the region that was generated, as a file beside the result (front ends load it from here, not from memory)
    mask = inputs["mask"]
    shutil.copyfile(mask, ctx.output_path("mask", f"mask{volume_suffix(mask)}"))
    if len(result.samples) > 1:
        ctx.write_volume("std", result.std, "inpainted-std.nii.gz")
        for k, sample in enumerate(result.samples):
            ctx.write_volume(f"sample-{k}", sample, f"inpainted-sample-{k}.nii.gz")
    if result.check is not None:
        ctx.log(result.check.summary(), level="warning" if result.check.doubtful else "info")
        ctx.output_path("check", "self-check.json").write_text(json.dumps(result.check.as_dict(), indent=2) + "\n")
    elif p.self_check and p.mode == "healthy":
        ctx.log(NO_PROBE)
