"""The ``smoke`` task: a backend self-check that exercises the whole pipeline.

Reads an image (and an optional mask, checked against its geometry), resamples
it to the isotropic working grid, smooths it in a few steps with progress,
normalises intensities inside the head as BraTS preprocessing does (zero mean,
unit variance over non-zero voxels), resamples back and writes the result and
the head mask on the input's grid. No model is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.resample import resample, working_grid


@dataclass
class SmokeParams:
    #: Number of smoothing passes (each is one progress step).
    passes: int = 4
    #: Gaussian sigma of each pass, in mm.
    sigma_mm: float = 1.0
    #: Isotropic spacing of the working grid, in mm.
    working_spacing_mm: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.passes <= 100:
            raise ValueError(f"passes must be in 0..100, got {self.passes}")
        if self.sigma_mm <= 0 or self.working_spacing_mm <= 0:
            raise ValueError("sigma_mm and working_spacing_mm must be positive")


@register_task(
    "smoke",
    requires=("scipy",),
    optional_requires=("torch",),
    summary="Backend self-check: resample, smooth and normalise an image; no model involved.",
    inputs=("image",),
    optional_inputs=("mask",),
    params=SmokeParams,
)
def run_smoke(ctx: TaskContext) -> None:
    params: SmokeParams = ctx.params
    ctx.progress("read", 0.02, "reading the image")
    image = ctx.read_volume("image")
    if ctx.input_path("mask") is not None:
        mask = ctx.read_mask("mask", reference=image)
        ctx.log(f"mask covers {int(mask.array.sum())} voxels")
    ctx.progress("resample", 0.1, f"to a {params.working_spacing_mm:g} mm working grid")
    grid = working_grid(image.grid, params.working_spacing_mm)
    work = resample(image.with_array(image.array.astype(np.float32)), grid)
    ctx.log(f"working grid {grid.size} at {params.working_spacing_mm:g} mm")
    array = work.array
    sigma_vox = params.sigma_mm / params.working_spacing_mm
    for _ in ctx.steps(range(params.passes), "smooth", start=0.15, end=0.8):
        array = ndimage.gaussian_filter(array, sigma_vox)
    ctx.progress("normalise", 0.85, "z-score inside the head")
    head = array > 0.05 * float(array.max() or 1.0)
    head = ndimage.binary_fill_holes(head)
    values = array[head]
    if values.size:
        array = np.where(head, (array - values.mean()) / (values.std() or 1.0), 0.0).astype(np.float32)
    ctx.progress("write", 0.92, "back to the input grid")
    smoothed = resample(work.with_array(array), image.grid)
    head_mask = resample(work.with_array(head), image.grid)
    ctx.write_volume("smoothed", smoothed, "smoothed.nii.gz", dtype=np.float32)
    ctx.write_volume("head_mask", head_mask, "head_mask.nii.gz", dtype=np.uint8)
