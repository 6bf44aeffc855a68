"""Post-operative prediction: a pre-operative T1, its tumor and a resection box → the predicted post-operative T1.

:func:`predict_postop`

1. checks the inputs (the box must reach the brain and the tumor; the
   segmentation must hold a tumor; ``k`` must fit the library);
2. normalises the T1 to the training scale (the brain's percentiles outside the tumor);
3. registers the template to the T1 (affine, the tumor kept out of the metric;
   cached) and carries the tumor mask to the template's grid;
4. retrieves ``k`` library cases (:meth:`~tumorgen.postop.library.CaseLibrary.retrieve`:
   tumor-guided by default);
5. builds the composite prompt (:mod:`tumorgen.postop.composite`) on a crop
   around the box plus :attr:`PostopSettings.margin_mm` (the region generated)
   and a context margin;
6. conditions the post-operative ControlNet on the composite, the tumor
   (concentration, or one made from the labels) and the box mask, starts the
   chain from the composite's latents noised to ``strength`` and denoises with
   DDIM, the latents outside the region injected from the pre-operative image
   at every step (RePaint's known-region injection); with ``cfg`` ≠ 1 the
   noise estimate is classifier-free guided: ``ε_∅ + cfg · (ε_c − ε_∅)``, ε_∅
   from the null condition the ControlNet saw in training (condition dropout);
7. decodes, blends the region into its surroundings in the gradient domain and
   writes it into a copy of the input: voxels outside the region keep their
   values bit for bit;
8. over the samples: the mean (the prediction), the standard deviation (the
   uncertainty) and the cavity: region voxels whose mean turned fluid-dark
   (below halfway between the retrieved cavities' signal and the resected
   tissue's) and were tumor or brighter tissue before, connected to the
   resected tumor (BraTS label 4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import ndimage

from tumorgen.errors import InputError
from tumorgen.settings import POSTOP
from tumorgen.volume import Volume

ProgressFn = Callable[[str, float, str], None]
#: The tumor prompt made from labels: necrotic core, oedema, enhancing (as for training without a concentration).
LABEL_TO_CONCENTRATION = {1: 1.0, 2: 0.4, 3: 0.8}
#: Context around the generated region that the networks see, mm.
CONTEXT_MM = 8.0


@dataclass
class PostopSettings:
    """How to predict: :data:`tumorgen.settings.POSTOP` holds each field's default, range and help."""

    k: int = POSTOP.default("k")
    retrieval: str = POSTOP.default("retrieval")
    cfg: float = POSTOP.default("cfg")
    samples: int = POSTOP.default("samples")
    seed: int = POSTOP.default("seed")
    steps: int = POSTOP.default("steps")
    strength: float = POSTOP.default("strength")
    margin_mm: float = POSTOP.default("margin_mm")
    composite: bool = POSTOP.default("composite")
    tumor_prompt: bool = POSTOP.default("tumor_prompt")

    def __post_init__(self):
        POSTOP.check(self)

    def network_evaluations(self) -> int:
        from tumorgen.models.repaint import start_index

        steps = start_index(self.steps, self.strength) + 1
        return steps * (2 if self.cfg != 1.0 else 1)


@dataclass
class PostopResult:
    """The prediction on the input's grid and what guided it."""

    mean: Volume
    std: Volume
    cavity: Volume
    composite: Volume
    region: Volume
    samples: list[Volume]
    matches: list
    #: Each retrieved case's pre- and post-operative patch carried onto the input's grid, on the input's intensity scale.
    retrieved: list[dict[str, Volume]]
    box: tuple[slice, slice, slice]
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        cm3 = self.cavity.grid.voxel_volume_mm3 / 1000.0
        return {"retrieved": [m.as_dict() for m in self.matches],
                "cavity_cm3": round(float(np.count_nonzero(self.cavity.array)) * cm3, 2),
                "region_cm3": round(float(np.count_nonzero(self.region.array)) * cm3, 2),
                "crop_voxels": [s.stop - s.start for s in self.box],
                "mean_std_in_region": round(float(self.std.array[self.region.array > 0].mean()), 4) if self.region.array.any() else 0.0}


def tumor_prompt(seg: Volume | None, concentration: Volume | None) -> tuple[np.ndarray, np.ndarray]:
    """The tumor channel (concentration in [0, 1]) and the tumor mask, from a concentration field or a label map."""
    if concentration is not None:
        c = np.clip(np.asarray(concentration.array, np.float32), 0.0, 1.0)
        return c, c >= 0.25
    labels = np.rint(np.asarray(seg.array)).astype(np.int16)
    c = np.zeros(labels.shape, np.float32)
    for label, value in LABEL_TO_CONCENTRATION.items():
        c[labels == label] = value
    return c, np.isin(labels, (1, 2, 3))


def check_inputs(pre: Volume, tumor: np.ndarray, core: np.ndarray, box: np.ndarray, library, settings: PostopSettings) -> None:
    if not tumor.any():
        raise InputError("the segmentation is empty: no tumor to resect (labels 1-3, or concentration >= 0.25)")
    if not box.any():
        raise InputError("the resection box holds no voxel of the image")
    brain = np.asarray(pre.array) > 0
    if not (box & brain).any():
        raise InputError("the resection box lies outside the brain")
    if not (box & (core if core.any() else tumor)).any():
        raise InputError("the resection box does not touch the tumor: nothing would be resected")
    if settings.k > len(library):
        raise InputError(f"k = {settings.k} is larger than the case library ({len(library)} cases)")


def predict_postop(model, pre: Volume, box: Volume, library, settings: PostopSettings, *, seg: Volume | None = None,
                   concentration: Volume | None = None, progress: ProgressFn | None = None,
                   cancelled: Callable[[], bool] | None = None, use_cache: bool = True, affine=None) -> PostopResult:
    """See the module docstring. ``model``: a :class:`~tumorgen.models.sampling.LatentDiffusion` with a post-operative ControlNet;
    ``affine``: the subject → template transform when already known (default: registered here)."""
    import torch

    from tumorgen.inpainting.core import SAMPLE_BATCH, _compose, _latent_mask, crop_box
    from tumorgen.inpainting.postprocess import PoissonBlender
    from tumorgen.models.repaint import RePaintChain, RePaintSchedule, repaint, time_grid
    from tumorgen.postop.composite import carried_cases, composite_image
    from tumorgen.postop.library import normalise, register_affine, template_grids, template_tumor, embed
    from tumorgen.volume_io import check_finite, check_same_geometry

    report = progress or (lambda stage, fraction, message: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    if (seg is None) == (concentration is None):
        raise InputError("give the tumor as a segmentation or as a concentration field, not both and not neither")
    check_finite(pre, "pre-operative t1n")
    given = seg if seg is not None else concentration
    check_same_geometry(pre, given, ("t1n", "segmentation" if seg is not None else "concentration"))
    check_same_geometry(pre, box, ("t1n", "box"))
    if getattr(model, "postop", None) is None:
        raise InputError(f"{model.folder} has no post-operative ControlNet (postop.safetensors)")
    prompt, tumor = tumor_prompt(seg, concentration)
    core = np.isin(np.rint(np.asarray(seg.array)).astype(np.int16), (1, 3)) if seg is not None else prompt >= 0.6
    box_array = np.asarray(box.array).astype(bool)
    check_inputs(pre, tumor, core, box_array, library, settings)
    normalised, lo, hi = normalise(pre, tumor)

    # -- retrieval ---------------------------------------------------------
    report("register", 0.0, "registering the template (affine)")
    if affine is None:
        affine = register_affine(pre, tumor, use_cache=use_cache, cancelled=cancelled,
                                 progress=lambda stage, fraction, message: report("register", 0.15 * fraction, message))
    template, _ = template_grids()
    timings["register"] = time.perf_counter() - clock
    clock = time.perf_counter()
    query_tumor = template_tumor(tumor.astype(np.int16), pre.grid, affine) if settings.retrieval == "tumor" else None
    embedding = embed(model, pre.with_array(normalised), affine) if settings.retrieval == "image" else None
    matches = library.retrieve(settings.k, settings.retrieval, tumor=query_tumor, embedding=embedding, seed=settings.seed)
    timings["retrieve"] = time.perf_counter() - clock
    report("retrieve", 0.18, "retrieved " + ", ".join(m.name for m in matches))

    # -- the crop, the composite and the condition -------------------------
    clock = time.perf_counter()
    spacing = float(model.config.spacing_mm)
    if not np.allclose(pre.spacing, spacing, atol=1e-3):
        raise InputError(f"post-operative prediction works on the model's {spacing:g} mm grid; the T1 has spacing "
                         f"{tuple(round(s, 3) for s in pre.spacing)} (resample it first)")
    region = generated_region(box_array, normalised > 0, settings.margin_mm, pre.spacing)
    factor = model.down * model.latent_multiple
    crop = crop_box(region, tuple(int(np.ceil(CONTEXT_MM / s)) for s in pre.spacing), factor, pre.shape)
    work_region = region[crop]
    work_pre = normalised[crop]
    cases = [library.cases[m.index] for m in matches]
    # each case carried onto the whole grid once: the composite uses its crop, the outputs the whole
    carried_whole = carried_cases(cases, affine, pre.grid, template)
    carried = [{name: array[crop] for name, array in case.items()} for case in carried_whole]
    composite, pasted = composite_image(work_pre, work_region, carried, pre.spacing)
    channels = [composite if settings.composite else np.zeros_like(composite),
                prompt[crop] if settings.tumor_prompt else np.zeros_like(composite),
                box_array[crop].astype(np.float32)]
    condition = np.clip(np.stack(channels).astype(np.float32), 0.0, 2.0)
    timings["prepare"] = time.perf_counter() - clock

    # -- sampling ------------------------------------------------------------
    clock = time.perf_counter()
    net = model.postop_model()
    known = net.encode(work_pre)
    start_latents = net.encode(composite)
    latent_mask = _latent_mask(work_region, known.shape[2:], net.down)
    mask_tensor = torch.from_numpy(latent_mask[None, None].astype(np.float32)).to(known.device)
    cond = net.condition_tensor(condition)
    null = net.condition_tensor(np.zeros_like(condition)) if settings.cfg != 1.0 else None
    schedule = RePaintSchedule("ddim", settings.steps, 1, 1)
    grid_scheduler = net.scheduler("ddim", settings.steps)
    chain = RePaintChain(grid_scheduler.alphas_cumprod, time_grid(grid_scheduler), "ddim")
    cache: dict = {}
    blend = PoissonBlender(work_region)  # one Laplacian for every sample

    def predict(x, t):
        eps = net.predict_noise(x, t, cond, cache)
        if null is None:
            return eps
        unconditional = net.predict_noise(x, t, null, cache)
        return unconditional + settings.cfg * (eps - unconditional)

    timings["encode"] = time.perf_counter() - clock
    outputs, generated_crops = [], []
    timings["sample"] = timings["decode"] = 0.0
    seeds = [settings.seed + n for n in range(settings.samples)]
    for first in range(0, len(seeds), SAMPLE_BATCH):  # the samples as one batch through the networks
        batch = seeds[first:first + SAMPLE_BATCH]
        clock = time.perf_counter()
        span = (0.2 + 0.75 * first / len(seeds), 0.2 + 0.75 * (first + len(batch)) / len(seeds))
        what = f"sample {first + 1}/{len(seeds)}" if len(batch) == 1 else f"samples {first + 1}–{first + len(batch)}/{len(seeds)}"

        def step(fraction, span=span, what=what):
            report("sample", span[0] + (span[1] - span[0]) * 0.9 * fraction, what)

        latents = repaint(predict, known, mask_tensor, chain, schedule, seed=batch, progress=step, cancelled=cancelled,
                          prior=start_latents, strength=settings.strength)
        timings["sample"] += time.perf_counter() - clock
        clock = time.perf_counter()
        for generated in net.decode_batch(latents, work_region.shape):
            generated = np.clip(blend(generated.astype(np.float32), work_pre), 0.0, None)
            generated_crops.append(generated)
            outputs.append(_compose(pre, region, crop, generated, lo, hi))
        timings["decode"] += time.perf_counter() - clock

    # -- mean, spread, cavity ----------------------------------------------------
    clock = time.perf_counter()
    stack = np.stack([o[crop].astype(np.float64) for o in outputs])  # the samples differ only inside the crop
    mean = _compose(pre, region, crop, None, lo, hi, values=stack.mean(0))
    std = np.zeros(pre.shape, np.float32)
    std[crop][region[crop]] = stack.std(0)[region[crop]].astype(np.float32)
    mean_crop = np.mean(generated_crops, axis=0)
    cavity = np.zeros(pre.shape, np.uint8)
    cavity[crop] = np.where(_cavity(mean_crop, work_pre, work_region, box_array[crop], tumor[crop], core[crop], carried), 4, 0)
    composite_full = np.array(pre.array, dtype=np.float32, copy=True)  # the input, with the pasted voxels on its scale
    composite_full[crop][pasted] = lo + composite[pasted] * (hi - lo)
    retrieved = []
    for case in carried_whole:
        retrieved.append({name: pre.with_array((lo + case[name] * (hi - lo)).astype(np.float32) * (case[name] > 0))
                          for name in ("pre", "post")})
    timings["combine"] = time.perf_counter() - clock
    report("done", 1.0, "predicted")
    return PostopResult(pre.with_array(mean), pre.with_array(std), pre.with_array(cavity),
                        pre.with_array(composite_full), pre.with_array(region.astype(np.uint8)),
                        [pre.with_array(o) for o in outputs], matches, retrieved, crop, timings)


def generated_region(box: np.ndarray, foreground: np.ndarray, margin_mm: float, spacing) -> np.ndarray:
    """The box grown by ``margin_mm`` (a box again), within two voxels of the scan's foreground: what is generated."""
    grow = [max(0, int(round(margin_mm / s))) for s in spacing]
    idx = np.argwhere(box)
    lo = np.maximum(idx.min(0) - np.asarray(grow), 0)
    hi = np.minimum(idx.max(0) + 1 + np.asarray(grow), box.shape)
    reach = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    # the box's bounding box grown (exact for an axis-aligned box; an oblique one grows by its bounding box)
    region = np.zeros(box.shape, bool)
    outer = tuple(slice(max(0, r.start - 2), min(n, r.stop + 2)) for r, n in zip(reach, box.shape))
    near = ndimage.binary_dilation(foreground[outer], iterations=2)
    inner = tuple(slice(r.start - o.start, r.stop - o.start) for r, o in zip(reach, outer))
    grown = box[reach]
    for axis, g in enumerate(grow):  # a block dilation, one axis at a time
        if g:
            shape = [1, 1, 1]
            shape[axis] = 2 * g + 1
            grown = ndimage.binary_dilation(grown, structure=np.ones(shape, bool))
    region[reach] = grown & near[inner]
    return region


def _cavity(mean: np.ndarray, pre: np.ndarray, region: np.ndarray, box: np.ndarray, tumor: np.ndarray, core: np.ndarray,
            carried) -> np.ndarray:
    """The predicted cavity on the crop (see the module docstring, step 8)."""
    resected = box & (core if (box & core).any() else tumor)
    tissue = float(np.median(pre[resected]))
    fluid_values = [case["post"][case["cavity"]] for case in carried if case["cavity"].any()]
    fluid = float(np.median(np.concatenate(fluid_values))) if fluid_values else 0.15
    threshold = 0.5 * (fluid + tissue)
    candidate = region & (mean < threshold) & (tumor | (pre >= threshold))
    labels, count = ndimage.label(candidate)
    if count == 0:
        return candidate
    touching = np.unique(labels[resected & candidate])
    keep = np.isin(labels, touching[touching > 0])
    return ndimage.binary_fill_holes(keep) & region


__all__ = ["PostopResult", "PostopSettings", "check_inputs", "generated_region", "predict_postop", "tumor_prompt"]
