"""Healthy-tissue and tumor inpainting with the latent diffusion model and RePaint.

:func:`inpaint` takes an image (one contrast, the model's: t1n for the bundled
models), a mask, the subject's tissue maps and, for tumor mode, a tumor
concentration field, all on the image's grid. It

1. normalises the image to the training scale (the brain's 0.5th–99.5th
   percentiles outside the mask → [0, 1]; any input scale works and the result
   comes back in it);
2. crops a box around the mask plus a context margin (grown to what the
   networks need) and resamples it to the model's working grid when the
   image's spacing differs;
3. encodes the crop with the mask region voided, and builds the ControlNet
   condition: the tissue maps and the concentration (zero in healthy mode);
4. runs RePaint (:mod:`tumorgen.models.repaint`) inside the latent mask (the
   mask's latent voxels, dilated by one, so that latents which saw the void are
   regenerated), for the samples with seeds ``seed, seed + 1, …`` as one batch, from pure
   noise as the paper does (``prior="noise"``). With a fill prior the chain
   starts part of the way down instead, from the latents of a fill of the mask
   noised to ``strength``: the fill's layout survives and the network adds the
   anatomy's detail (healthy mode only: a tumor has no fill to start from).
   ``harmonic`` is Laplace's equation with the surrounding tissue as boundary
   values (and ``auto``'s choice when the tissue maps were registered rather
   than given); ``unet`` the learned fill (:mod:`tumorgen.inpainting.prior`);
5. decodes, blends at the mask's boundary in the gradient domain and, when
   asked (off by default), first matches the histogram to the surrounding
   tissue (:mod:`tumorgen.inpainting.postprocess`); with registered tissue
   maps and ``confidence_mm`` above 0 (off by default: it scored lower on the
   fidelity benchmark), blends the result toward the learned fill with the
   depth into the mask (weight exp(−depth / ``confidence_mm``) on the
   generated tissue): the registered maps are the template's folding, sure
   near the border and a guess deep inside;
6. writes the generated voxels, and only those, into a copy of the input:
   every voxel outside the mask keeps its value and dtype bit for bit.

``method="unet"`` skips 4–5: the learned fill is the result. Several samples
give their mean and a voxelwise standard deviation. With ``self_check`` (the
default; healthy mode) the same inpainting runs once more on a region of the
mask's shape in known tissue of the scan and is scored against a classical
fill and the learned fill there (:mod:`tumorgen.inpainting.selfcheck`), so a
doubtful result says so; with ``fallback="auto"`` (the default) a result that
scored below the classical fill there is replaced by the better of the two
fills, and the check records it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
from scipy import ndimage

from tumorgen.errors import InputError
from tumorgen.inpainting.postprocess import SHELL_VOXELS, PoissonBlender, match_histogram
from tumorgen.inpainting.selfcheck import SelfCheck
from tumorgen.settings import INPAINTING
from tumorgen.models.repaint import RePaintChain, RePaintSchedule, repaint, start_index, time_grid
from tumorgen.volume import Grid, Volume

ProgressFn = Callable[[str, float, str], None]

#: Samples that go through the networks as one batch (more run in batches of this size). On a GPU a batch costs
#: about what one sample does; on the CPU it saves the per-step overhead and runs oneDNN on larger tensors.
SAMPLE_BATCH = 8
#: Percentiles of the brain outside the mask that map to 0 and 1.
PERCENTILES = (0.5, 99.5)
MODES = INPAINTING["mode"].choices


@dataclass
class InpaintSettings:
    """How to inpaint: :data:`tumorgen.settings.INPAINTING` holds each field's default, range and help.

    The defaults come from the ablations in docs/results/fidelity.md: DDIM with 25 steps, RePaint jumps of 5 resampled 5 times
    (105 network evaluations from noise), started from the harmonic fill at strength 0.2 when the tissue maps were
    registered (25), Poisson blending without histogram matching (which cost 2.4 dB on the fidelity benchmark's scans
    unlike the training data), no blend toward the learned fill (it scored lower), the self-check, and the fallback
    to the better fill when the self-check puts TumorGen behind the classical fill.
    """

    mode: Literal["healthy", "tumor"] = INPAINTING.default("mode")
    method: Literal["diffusion", "unet"] = INPAINTING.default("method")
    scheduler: Literal["ddpm", "ddim"] = INPAINTING.default("scheduler")
    steps: int = INPAINTING.default("steps")
    jump: int = INPAINTING.default("jump")
    resample: int = INPAINTING.default("resample")
    prior: Literal["auto", "noise", "harmonic", "unet"] = INPAINTING.default("prior")
    strength: float = INPAINTING.default("strength")
    confidence_mm: float = INPAINTING.default("confidence_mm")
    fallback: Literal["auto", "off"] = INPAINTING.default("fallback")
    samples: int = INPAINTING.default("samples")
    seed: int = INPAINTING.default("seed")
    histogram: bool = INPAINTING.default("histogram")
    poisson: bool = INPAINTING.default("poisson")
    self_check: bool = INPAINTING.default("self_check")
    margin_mm: float = INPAINTING.default("margin_mm")

    def __post_init__(self):
        INPAINTING.check(self)
        self.schedule  # checks scheduler, steps, jump, resample
        if self.method == "unet" and self.mode != "healthy":
            raise InputError("the unet method fills healthy tissue only: use --method diffusion for tumor mode")
        if self.method == "unet" and self.samples > 1:
            raise InputError("the unet method is deterministic: it gives one sample (--samples 1)")

    @property
    def schedule(self) -> RePaintSchedule:
        return RePaintSchedule(self.scheduler, self.steps, min(self.jump, self.steps), self.resample)

    def starts_from_fill(self, registered_maps: bool) -> bool:
        """Whether the chain starts from a fill: healthy mode, strength below 1, and the harmonic or unet prior, or
        ``auto`` with tissue maps from registration (uncertain inside the mask)."""
        return self.mode == "healthy" and self.strength < 1.0 and self.fill_prior(registered_maps) is not None

    def fill_prior(self, registered_maps: bool) -> str | None:
        """The fill the chain starts from (``harmonic`` or ``unet``), or None for pure noise."""
        if self.prior in ("harmonic", "unet"):
            return self.prior
        return "harmonic" if self.prior == "auto" and registered_maps else None

    def uses_learned_fill(self, registered_maps: bool) -> bool:
        """Whether the run needs the learned fill: the method itself, the chain's start or the blend's smooth side."""
        return (self.method == "unet" or self.blends(registered_maps)
                or (self.starts_from_fill(registered_maps) and self.fill_prior(registered_maps) == "unet"))

    def blends(self, registered_maps: bool) -> bool:
        """Whether the generated tissue is blended toward the learned fill with depth (registered maps only)."""
        return self.mode == "healthy" and self.method == "diffusion" and registered_maps and self.confidence_mm > 0

    def network_evaluations(self, registered_maps: bool = False) -> int:
        """How many times the denoiser runs per sample."""
        start = start_index(self.steps, self.strength) if self.starts_from_fill(registered_maps) else None
        return self.schedule.evaluations_from(start)


@dataclass
class InpaintResult:
    """``samples``: each sample on the input's grid; ``mean`` and ``std`` over them (``std`` 0 outside the mask)."""

    samples: list[Volume]
    mean: Volume
    std: Volume
    box: tuple[slice, slice, slice]
    timings: dict[str, float] = field(default_factory=dict)
    #: The self-check on known tissue (:mod:`tumorgen.inpainting.selfcheck`); None when off or when no probe fits.
    check: SelfCheck | None = None
    #: The learned fill alone on the input's grid and scale (:mod:`tumorgen.inpainting.prior`), when the run made one.
    learned: Volume | None = None


def crop_box(mask: np.ndarray, margin: tuple[int, int, int], multiple: int, limits) -> tuple[slice, slice, slice]:
    """The mask's bounding box grown by ``margin`` voxels, then to a multiple of ``multiple`` where the image allows."""
    where = np.argwhere(mask)
    low, high = where.min(0), where.max(0) + 1
    box = []
    for lo, hi, m, n in zip(low, high, margin, limits):
        lo, hi = max(0, int(lo) - m), min(n, int(hi) + m)
        extra = min(-(-(hi - lo) // multiple) * multiple, n) - (hi - lo)
        below = min(extra // 2, lo)
        above = min(extra - below, n - hi)
        below += min(extra - below - above, lo - below)  # what the far end could not take
        box.append(slice(lo - below, hi + above))
    return tuple(box)


def crop_volume(volume: Volume, box) -> Volume:
    """The sub-volume at ``box`` on its own grid (same spacing and direction, origin moved)."""
    start = [s.start for s in box]
    origin = volume.grid.index_to_lps(start)
    grid = Grid(tuple(s.stop - s.start for s in box), volume.spacing, tuple(float(v) for v in origin), volume.direction)
    return Volume(volume.array[box], grid)


def condition_maps(csf: np.ndarray, gm: np.ndarray, wm: np.ndarray, concentration: np.ndarray) -> np.ndarray:
    """The ControlNet's condition: the tissue maps and the tumor's concentration, one float32 stack clipped to [0, 1]."""
    return np.clip(np.stack([np.asarray(a, np.float32) for a in (csf, gm, wm, concentration)]), 0.0, 1.0)


def normalisation(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """The intensities that map to 0 and 1: percentiles of the nonzero voxels outside the mask."""
    values = image[(~mask) & (image > 0)]
    if values.size < 1000:
        raise InputError(f"the image has only {values.size} nonzero voxels outside the mask: too little brain to set the intensity scale")
    lo, hi = np.percentile(values.astype(np.float64), PERCENTILES)
    if not hi > lo:
        raise InputError("the image is constant outside the mask: no intensity scale to work on")
    return float(max(lo, 0.0)), float(hi)


def inpaint(model, image: Volume, mask: Volume, tissues: dict[str, Volume], settings: InpaintSettings, *,
            concentration: Volume | None = None, progress: ProgressFn | None = None,
            cancelled: Callable[[], bool] | None = None, registered_maps: bool = False, decode_kept: bool = False) -> InpaintResult:
    """Inpaint ``image`` inside ``mask`` with ``model`` (a :class:`~tumorgen.models.sampling.LatentDiffusion`).

    ``tissues``: ``csf``, ``gm``, ``wm`` probability maps on the image's grid; ``registered_maps``: whether
    they were carried from the template by registration (``prior="auto"`` then starts from the harmonic fill).
    ``concentration``: the tumor field in [0, 1] (tumor mode; ignored in healthy mode). ``decode_kept``: decode
    only the latents over what the result keeps (:func:`decoded_region`, on the model's grid) instead of the whole
    crop, whose context margin only the denoiser needs: a third fewer decoder windows on a follow-up's crop, with
    the windows laid differently (the follow-up's choice; see docs/results/speed.md).
    """
    report = progress or (lambda stage, fraction, message: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    mask_array = _check_inputs(model, image, mask, tissues, settings, concentration)
    lo, hi = normalisation(image.array, mask_array)

    # -- the crop on the working grid -----------------------------------------
    spacing = float(model.config.spacing_mm)
    factor = model.down * model.latent_multiple
    margin = tuple(int(np.ceil(settings.margin_mm / s)) for s in image.spacing)
    same_grid = np.allclose(image.spacing, spacing, rtol=0, atol=1e-3)
    box = crop_box(mask_array, margin, factor if same_grid else 1, image.shape)
    normalised = image.with_array(np.clip((image.array.astype(np.float32) - lo) / (hi - lo), 0.0, None))
    maps = {"image": normalised, "mask": mask.with_array(mask_array.astype(np.float32))}
    maps.update({k: tissues[k] for k in ("csf", "gm", "wm")})
    if settings.mode == "tumor":
        maps["concentration"] = concentration
    crops = {k: crop_volume(v, box) for k, v in maps.items()}
    if not same_grid:
        from tumorgen.resample import resample, working_grid

        work = working_grid(crops["image"].grid, spacing)
        crops = {k: resample(v.with_array(v.array.astype(np.float32)), work, interpolation="linear") for k, v in crops.items()}
    work_mask = crops["mask"].array > 0.5 if not same_grid else mask_array[box]
    if not work_mask.any():
        raise InputError("the mask is smaller than one voxel of the model's working grid")
    known_image = np.where(work_mask, 0.0, crops["image"].array).astype(np.float32)
    condition = condition_maps(*(crops[k].array for k in ("csf", "gm", "wm")),
                               crops["concentration"].array if settings.mode == "tumor" else np.zeros(work_mask.shape, np.float32))
    timings["prepare"] = time.perf_counter() - clock

    def to_output(generated: np.ndarray) -> np.ndarray:
        """A generated crop (normalised, working grid) written into a copy of the input."""
        if not same_grid:
            from tumorgen.resample import resample

            generated = resample(crops["image"].with_array(generated), crop_volume(image, box).grid, interpolation="linear").array
        return _compose(image, mask_array, box, generated, lo, hi)

    learned = None  # the learned fill of the crop
    if settings.uses_learned_fill(registered_maps):
        from tumorgen.inpainting.prior import prior_fill

        clock = time.perf_counter()
        report("prior", 0.02, "the learned fill")
        learned = prior_fill(crops["image"].array, work_mask, crops["image"].spacing, model_prior(model))
        timings["prior"] = time.perf_counter() - clock
    if settings.method == "unet":
        return _finish(model, image, mask_array, tissues, settings, margin, factor if same_grid else 1, box,
                       [to_output(learned)], timings, report, cancelled, registered_maps, crops, work_mask, learned, to_output)

    # -- encode, sample, decode -----------------------------------------------
    clock = time.perf_counter()
    report("encode", 0.02, "encoding the crop")
    known = model.encode(known_image)
    latent_mask = _latent_mask(work_mask, known.shape[2:], model.down)
    cond = model.condition_tensor(condition)
    prior_latents = None
    if settings.starts_from_fill(registered_maps):  # a tumor starts from noise
        from tumorgen.inpainting.selfcheck import harmonic_fill

        filled = learned if settings.fill_prior(registered_maps) == "unet" else \
            harmonic_fill(crops["image"].array, work_mask, tuple(slice(0, n) for n in work_mask.shape))
        prior_latents = model.encode(filled)
    timings["encode"] = time.perf_counter() - clock
    trust = None
    if settings.blends(registered_maps):  # structure where the condition is known, the smooth learned fill where not
        from tumorgen.inpainting.prior import confidence

        trust = confidence(work_mask, crops["image"].spacing, settings.confidence_mm)[work_mask]
    schedule = settings.schedule
    grid_scheduler = model.scheduler(schedule.kind, schedule.steps)
    chain = RePaintChain(grid_scheduler.alphas_cumprod, time_grid(grid_scheduler), schedule.kind)
    import torch

    mask_tensor = torch.from_numpy(latent_mask[None, None].astype(np.float32)).to(known.device)
    outputs = []
    cache: dict = {}  # the ControlNet's conditioning embedding, shared by every step and sample
    timings["sample"] = timings["decode"] = timings["postprocess"] = 0.0
    checking = settings.self_check and settings.mode == "healthy"  # a generated tumor has no truth to be checked against
    share = 0.45 if checking else 0.9  # of the progress bar, for the samples
    seeds = [settings.seed + k for k in range(settings.samples)]
    blender = PoissonBlender(work_mask) if settings.poisson else None  # one Laplacian for every sample
    kept = decoded_region(work_mask, settings) if decode_kept and same_grid else None  # resampled back: the whole crop
    for first in range(0, len(seeds), SAMPLE_BATCH):  # the samples as one batch through the networks
        batch = seeds[first:first + SAMPLE_BATCH]
        clock = time.perf_counter()
        span = (0.05 + share * first / len(seeds), 0.05 + share * (first + len(batch)) / len(seeds))
        what = f"sample {first + 1}/{len(seeds)}" if len(batch) == 1 else f"samples {first + 1}–{first + len(batch)}/{len(seeds)}"

        def step(fraction, span=span, what=what):
            report("sample", span[0] + (span[1] - span[0]) * 0.9 * fraction, what)

        latents = repaint(lambda x, t: model.predict_noise(x, t, cond, cache), known, mask_tensor, chain, schedule,
                          seed=batch, progress=step, cancelled=cancelled, prior=prior_latents, strength=settings.strength)
        timings["sample"] += time.perf_counter() - clock
        clock = time.perf_counter()
        decoded = model.decode_batch(latents, work_mask.shape, where=kept)
        timings["decode"] += time.perf_counter() - clock
        clock = time.perf_counter()
        for generated in decoded:
            generated = _postprocess(generated, crops["image"].array, work_mask, settings, blender)
            if trust is not None:
                generated[work_mask] = trust * generated[work_mask] + (1.0 - trust) * learned[work_mask]
            outputs.append(to_output(generated))
        timings["postprocess"] += time.perf_counter() - clock
    return _finish(model, image, mask_array, tissues, settings, margin, factor if same_grid else 1, box, outputs, timings,
                   report, cancelled, registered_maps, crops, work_mask, learned, to_output)


def _finish(model, image: Volume, mask_array: np.ndarray, tissues, settings: InpaintSettings, margin, multiple: int, box,
            outputs: list[np.ndarray], timings: dict, report: ProgressFn, cancelled, registered_maps: bool, crops, work_mask,
            learned: np.ndarray | None, to_output) -> InpaintResult:
    """The samples' mean and spread, the self-check, and with ``fallback=auto`` the classical fill where it scored better."""
    checking = settings.self_check and settings.mode == "healthy"
    check = None
    if checking:
        clock = time.perf_counter()
        check = _self_check(model, image, mask_array, tissues, settings, margin, multiple,
                            lambda stage, fraction, message: report("check", 0.5 + 0.48 * fraction, f"self-check: {message}"),
                            cancelled, registered_maps)
        timings["check"] = time.perf_counter() - clock
        if check is not None and settings.fallback == "auto" and check.behind:
            from dataclasses import replace

            from tumorgen.inpainting.selfcheck import harmonic_fill

            chosen = check.best_fill
            if chosen == "unet" and learned is None:
                from tumorgen.inpainting.prior import prior_fill

                learned = prior_fill(crops["image"].array, work_mask, crops["image"].spacing, model_prior(model))
            fill = learned if chosen == "unet" else harmonic_fill(crops["image"].array, work_mask,
                                                                 tuple(slice(0, n) for n in work_mask.shape))
            outputs = [to_output(fill)] * len(outputs)
            check = replace(check, fallback=chosen)
    clock = time.perf_counter()
    stack = np.stack([o[box].astype(np.float64) for o in outputs])  # the samples differ only inside the box
    mean = _compose(image, mask_array, box, None, 0.0, 1.0, values=stack.mean(0))
    std = np.zeros(image.shape, np.float32)
    inside = mask_array[box]
    std[box][inside] = stack.std(0)[inside].astype(np.float32)
    timings["combine"] = time.perf_counter() - clock
    report("done", 1.0, "inpainted")
    return InpaintResult([image.with_array(o) for o in outputs], image.with_array(mean), image.with_array(std), box, timings, check,
                         image.with_array(to_output(learned)) if learned is not None else None)


def _self_check(model, image: Volume, mask: np.ndarray, tissues: dict[str, Volume], settings: InpaintSettings, margin, multiple: int,
                progress: ProgressFn, cancelled, registered_maps: bool) -> SelfCheck | None:
    """The same inpainting on a probe of known tissue (:func:`tumorgen.inpainting.selfcheck.probe_region`), scored
    with the classical (harmonic) fill and the learned fill alone on the same probe."""
    from dataclasses import replace

    from tumorgen.inpainting.metrics import inpainting_metrics
    from tumorgen.inpainting.prior import prior_fill
    from tumorgen.inpainting.selfcheck import harmonic_fill, probe_region

    def box_of(region: np.ndarray):
        return crop_box(region, margin, multiple, image.shape)

    found = probe_region(image.array, mask, image.direction, image.spacing, keep_clear=box_of, margin=margin)
    if found is None:
        return None
    probe, placement, shift = found
    voided = np.where(probe, 0, image.array).astype(image.array.dtype)
    probe_settings = replace(settings, mode="healthy", samples=1, self_check=False)
    probed = inpaint(model, image.with_array(voided), image.with_array(probe), tissues, probe_settings, progress=progress,
                     cancelled=cancelled, registered_maps=registered_maps)
    ours = inpainting_metrics(probed.mean.array, image.array, probe, voided)
    classical = inpainting_metrics(harmonic_fill(voided, probe, box_of(probe)), image.array, probe, voided)
    if settings.method == "unet":
        learned = ours
    else:  # the probe's run made the learned fill when it started from it or blended toward it
        fill = probed.learned.array if probed.learned is not None else prior_fill(voided, probe, image.spacing, model_prior(model))
        learned = inpainting_metrics(fill, image.array, probe, voided)
    offset = tuple(round(float(n * s), 1) for n, s in zip(shift, image.spacing))
    return SelfCheck(placement, offset, int(probe.sum()), round(ours["psnr"], 2), round(ours["ssim"], 4),
                     round(classical["psnr"], 2), round(classical["ssim"], 4), round(learned["psnr"], 2), round(learned["ssim"], 4))


def model_prior(model):
    """The learned fill's network: ``prior.safetensors`` in the model's folder when it has one, else the bundled one."""
    from pathlib import Path

    from tumorgen.inpainting.prior import FILE, load_prior

    own = Path(model.folder) / FILE if getattr(model, "folder", None) else None
    return load_prior(own if own is not None and own.is_file() else None)


def _check_inputs(model, image: Volume, mask: Volume, tissues: dict[str, Volume], settings: InpaintSettings,
                  concentration: Volume | None) -> np.ndarray:
    from tumorgen.volume_io import check_finite, check_same_geometry

    check_finite(image, "image")
    check_same_geometry(image, mask, ("image", "mask"))
    mask_array = np.asarray(mask.array).astype(bool)
    if not mask_array.any():
        raise InputError("the mask is empty: nothing to inpaint")
    if mask_array.all():
        raise InputError("the mask covers the whole image: there is no known region to inpaint from")
    missing = [k for k in ("csf", "gm", "wm") if k not in tissues]
    if missing:
        raise InputError(f"tissue map(s) {', '.join(missing)} missing")
    for k in ("csf", "gm", "wm"):
        check_same_geometry(image, tissues[k], ("image", f"{k} map"))
        check_finite(tissues[k], f"{k} map")
    if settings.mode == "tumor":
        if concentration is None:
            raise InputError("tumor mode needs a concentration field (--concentration)")
        check_same_geometry(image, concentration, ("image", "concentration"))
        check_finite(concentration, "concentration")
        if not (np.asarray(concentration.array)[mask_array] > 0).any():
            raise InputError("the concentration field is zero everywhere inside the mask: no tumor to inpaint")
    if model.controlnet is None:
        raise InputError(f"{model.folder} has no ControlNet (controlnet.safetensors): inpainting needs the tissue condition")
    return mask_array


def _latent_mask(mask: np.ndarray, latent_shape, down: int) -> np.ndarray:
    """The latent voxels whose image block touches ``mask``, dilated by one voxel."""
    padded = np.zeros(tuple(n * down for n in latent_shape), bool)
    padded[tuple(slice(0, n) for n in mask.shape)] = mask
    blocks = padded.reshape(latent_shape[0], down, latent_shape[1], down, latent_shape[2], down).any(axis=(1, 3, 5))
    return ndimage.binary_dilation(blocks, structure=np.ones((3, 3, 3), bool))


def decoded_region(mask: np.ndarray, settings: InpaintSettings | None = None) -> np.ndarray:
    """What the post-processing reads of a generated crop: the mask, the voxel ring around it that the Poisson blend
    takes its boundary from, and with histogram matching the shell that calibrates it."""
    from scipy.ndimage import binary_dilation

    width = SHELL_VOXELS if settings is not None and settings.histogram else 1
    return binary_dilation(mask, iterations=width)


def _postprocess(generated: np.ndarray, reference: np.ndarray, mask: np.ndarray, settings: InpaintSettings,
                 blender: PoissonBlender | None = None) -> np.ndarray:
    out = generated.astype(np.float32)
    if settings.histogram:
        out = match_histogram(out, reference, mask)
    if settings.poisson:
        out = (blender or PoissonBlender(mask))(out, reference)
    return np.clip(out, 0.0, None)


def _compose(image: Volume, mask: np.ndarray, box, generated: np.ndarray | None, lo: float, hi: float,
             values: np.ndarray | None = None) -> np.ndarray:
    """A copy of the input with the mask's voxels replaced: ``generated`` (normalised, on the crop) or ``values`` (input scale)."""
    out = np.array(image.array, copy=True)
    inside = mask[box]
    new = (lo + generated.astype(np.float64) * (hi - lo)) if generated is not None else values.astype(np.float64)
    new = new[inside]
    if np.issubdtype(out.dtype, np.integer):
        info = np.iinfo(out.dtype)
        new = np.clip(np.rint(new), info.min, info.max)
    region = out[box]
    region[inside] = new.astype(out.dtype)
    return out


__all__ = ["InpaintResult", "InpaintSettings", "crop_box", "crop_volume", "condition_maps", "inpaint", "normalisation"]
